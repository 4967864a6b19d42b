"""Commit cost: one big `syncd_commit` under the old contract against the capped calls the
client makes now. Prints numbers; checks only that every change landed (a wrong result
exits non-zero), times nothing against a limit.

    python bench/commit_bench.py [--sizes 1000,4000,8000,20000] [--dsn ADMIN_DSN]

For each size, a new workspace gets that many new IDSE-like documents (~500 bytes, 100 per
session stage). The old contract (a database migrated only up to 0014) takes them in one
call, which holds the workspace lock for all of it; the current one takes them through
`RpcStore.commit`, which splits them into calls under the server's caps. The longest
single call is the longest time another copy's commit can wait behind this one.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.conninfo import make_conninfo

from syncd.store.local_server import LocalServer
from syncd.store.migrate import migrate
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

OLD_CONTRACT = 14  # the last migration before the caps


class TimedStore(PostgresStore):
    """Records how long each call of the contract took."""

    def __init__(self, *args):
        super().__init__(*args)
        self.calls: list[float] = []

    def _call(self, function, payload):
        started = time.perf_counter()
        try:
            return super()._call(function, payload)
        finally:
            if function == "syncd_commit":
                self.calls.append(time.perf_counter() - started)


def changes(n: int) -> list[Change]:
    body = "Some words of the session's spec. " * 14
    return [Change(f"projects/P{i // 2000:02d}/sessions/s{i // 100:04d}/specs/f{i:06d}.md", None,
                   {"encoding": "utf-8", "format": "markdown", "text": f"# Spec {i}\n\n{body}\n"})
            for i in range(n)]


@contextmanager
def database(admin_dsn: str, upto: int | None) -> Iterator[str]:
    name = f"syncd_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        dsn = make_conninfo(admin_dsn, dbname=name)
        migrate(dsn, upto=upto)
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'drop database "{name}" with (force)')


def run(admin_dsn: str, upto: int | None, n: int) -> TimedStore:
    with database(admin_dsn, upto) as dsn:
        store = TimedStore(dsn, "bench")
        store.open(create=True)
        batch = changes(n)
        if upto is None:
            statuses = [r.status for r in store.commit(batch)]
        else:  # the old client sent a batch as it came, in one call
            statuses = [r["status"] for r in store._call("syncd_commit", {
                "workspace": store.workspace, "changes": [c.payload() for c in batch]})["results"]]
        store.close()
    if statuses != ["accepted"] * n:
        sys.exit(f"{n} changes: {statuses.count('accepted')} accepted")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000,8000,20000")
    parser.add_argument("--dsn", help="an admin DSN (default: a private server)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="syncd-commit-bench-") as work:
        server = None
        admin = args.dsn
        if admin is None:
            server = LocalServer(Path(work) / "pg")
            server.start()
            admin = server.dsn()
        try:
            print(f"{'changes':>8} {'old: one call':>14} {'new: total':>11} {'calls':>6} "
                  f"{'per change':>11} {'longest call':>13}")
            for n in sizes:
                old = run(admin, OLD_CONTRACT, n)
                new = run(admin, None, n)
                total = sum(new.calls)
                print(f"{n:>8} {old.calls[0]:>13.2f}s {total:>10.2f}s {len(new.calls):>6} "
                      f"{total / n * 1000:>9.3f}ms {max(new.calls):>12.2f}s", flush=True)
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
