"""A signed-in member's reads on a big workspace, under row level security: the contract
before 0017 (a policy function called for every row) against the current one (the
caller's memberships computed once per statement). On Supabase a signed-in user's
statement is cancelled after 8 s. Prints numbers; checks only that both contracts return
the same answers (a difference exits non-zero), times nothing against a limit.

    python bench/reader_bench.py [--documents 30000] [--dsn ADMIN_DSN]

The workspace holds that many documents in 50 sessions of one project; the readers are a
workspace reader and a reader of one session, as PostgREST runs them (`set role
authenticated` and the JWT claims).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from syncd.store.local_server import LocalServer
from syncd.store.migrate import migrate

BEFORE = 16  # the last migration before 0017's policies
CALLS = {
    "syncd_documents": {},
    "syncd_changes": {"since": 0, "limit": 500},
    "syncd_versions": {"versions": [{"path": f"projects/P/sessions/s1/notes/{i}.md", "version": 1}
                                    for i in range(1, 501, 50)]},
    "syncd_activity": {"after": 0},
    "syncd_stats": {},
}


@contextmanager
def workspace(admin_dsn: str, upto: int | None, documents: int) -> Iterator[tuple[str, dict[str, str]]]:
    name = f"syncd_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        dsn = make_conninfo(admin_dsn, dbname=name)
        migrate(dsn, upto=upto)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("select public.syncd_open(%s)", (Jsonb({"workspace": "ws", "create": True}),))
            for start in range(0, documents, 500):
                conn.execute("select public.syncd_commit(%s)", (Jsonb({"workspace": "ws", "changes": [
                    {"path": f"projects/P/sessions/s{i % 50}/notes/{i}.md", "base_version": None,
                     "content": {"encoding": "utf-8", "format": "text", "text": f"note {i}\n"}}
                    for i in range(start, min(documents, start + 500))]}),))
            readers = {}
            for who, where in (("workspace reader", {}), ("session reader", {"project": "P", "session": "s1"})):
                login = who.split()[0]
                readers[who] = str(conn.execute(
                    "insert into auth.users (id, email, raw_user_meta_data) values (gen_random_uuid(), %s, %s)"
                    " returning id", (f"{login}@example.com", Jsonb({"user_name": login}))).fetchone()[0])
                conn.execute("select public.syncd_members(%s)", (Jsonb(
                    {"workspace": "ws", "action": "add", "login": login, "role": "reader", **where}),))
            conn.execute("analyze")
        yield dsn, readers
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def measure(dsn: str, user: str) -> dict[str, tuple[float, str]]:
    """function → (seconds, a digest of the answer)."""
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"sub": user, "role": "authenticated"}),))
        conn.execute("set role authenticated")
        for function, payload in CALLS.items():
            start = time.perf_counter()
            answer = conn.execute(f"select public.{function}(%s)", (Jsonb({"workspace": "ws", **payload}),)).fetchone()[0]
            out[function] = (time.perf_counter() - start, _digest(answer))
    return out


def _digest(answer) -> str:
    """The answer without what differs between two databases (ids, times)."""
    text = json.dumps(answer, sort_keys=True)
    for key in ("at", "id", "document_id", "author_id", "device_id", "created_at", "updated_at", "last_seen"):
        text = re.sub(rf'"{key}": "[^"]*"', f'"{key}": ""', text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=30000)
    parser.add_argument("--dsn", help="an admin DSN (default: a private server)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        server = None
        admin = args.dsn
        if not admin:
            Path(work).chmod(0o711)
            server = LocalServer(Path(work) / "pg")
            server.start()
            admin = server.dsn()
        try:
            figures = {}
            for label, upto in (("before 0017", BEFORE), ("now", None)):
                with workspace(admin, upto, args.documents) as (dsn, readers):
                    figures[label] = {who: measure(dsn, user) for who, user in readers.items()}
        finally:
            if server:
                server.stop()
    print(f"{args.documents} documents in 50 sessions; seconds per call as a signed-in reader")
    print(f"{'reader':17s} {'call':16s} {'before 0017':>11s} {'now':>7s} {'ratio':>7s}")
    same = True
    for who in figures["now"]:
        for function in CALLS:
            (old, old_answer), (new, new_answer) = figures["before 0017"][who][function], figures["now"][who][function]
            same &= old_answer == new_answer
            print(f"{who:17s} {function:16s} {old:11.2f} {new:7.2f} {old / max(new, 1e-3):6.0f}x"
                  + ("" if old_answer == new_answer else "  DIFFERENT ANSWER"))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
