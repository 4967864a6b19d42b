"""`syncd import` of a generated Git history. Prints numbers; asserts nothing.

    python bench/import_bench.py --commits 3000 [--dsn URL]

The history: IDSE-like markdown files across sessions, five authors, one commit an hour,
each commit editing one to three files, every 50th renaming one. Reported: reading the
history alone (commits and blobs), and the whole import into a fresh database through the
PostgreSQL transport (versions written, rate), then a second, idempotent run.
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from scratch import scratch_database
from syncd.content import FilePolicy
from syncd.engine.ignore import IgnoreRules
from syncd.git.history import History
from syncd.engine.journal import Journal
from syncd.git.importer import Importer
from syncd.store.postgres import PostgresStore

AUTHORS = ["Alice", "Bob", "Carol", "Dan", "Eve"]
STAGES = ["intents", "specs", "plans", "tasks", "feedback"]


def fast_import_stream(commits: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    files = [f"projects/P{i % 7}/sessions/s{i:04d}/{STAGES[i % 5]}/{STAGES[i % 5]}.md"
             for i in range(max(10, commits // 5))]
    live: list[str] = []
    out: list[bytes] = []
    start = 1_600_000_000
    for n in range(commits):
        who = AUTHORS[n % len(AUTHORS)]
        ops: list[bytes] = []
        if n % 50 == 49 and live:
            old = rng.choice(live)
            new = old.replace(".md", f"-r{n}.md")
            live[live.index(old)] = new
            ops.append(f"R {old} {new}\n".encode())
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(files if len(live) < len(files) // 2 else live)
            if path not in live:
                live.append(path)
            body = f"# {path}\n\nrevision {n} by {who}\n" + "lorem ipsum dolor " * rng.randint(5, 40) + "\n"
            data = body.encode()
            ops.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        message = f"commit {n}\n".encode()
        header = (f"commit refs/heads/main\nmark :{n + 1}\n"
                  f"author {who} <{who.lower()}@example.com> {start + n * 3600} +0000\n"
                  f"committer {who} <{who.lower()}@example.com> {start + n * 3600} +0000\n"
                  f"data {len(message)}\n").encode() + message
        if n:
            header += f"from :{n}\n".encode()
        out.append(header + b"".join(ops) + b"\n")
    return b"".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--dsn", help="a server to create a scratch database on")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="syncd-import-bench-"))
    work.chmod(0o711)
    try:
        root = work / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "fast-import", "--quiet"], input=fast_import_stream(args.commits),
                       check=True)
        subprocess.run(["git", "-C", str(root), "checkout", "-q", "-f", "main"], check=True)

        start = time.perf_counter()
        with History(root) as history:
            changes = 0
            for commit in history.commits():
                for change in commit.changes:
                    changes += 1
                    if change.blob:
                        history.blob(change.blob)
        t = time.perf_counter() - start
        print(f"history: {args.commits} commits, {changes} file changes")
        print(f"read history and blobs: {t:.2f} s ({args.commits / t:.0f} commits/s)")

        with scratch_database(work, args.dsn) as dsn:
            store = PostgresStore(dsn, "bench", str(uuid.uuid4()))
            store.open(create=True, device_name="bench")
            journal = Journal(work / "journal.sqlite3")
            for label in ("import", "second run"):
                importer = Importer(root, store, IgnoreRules(), FilePolicy(), "bench", journal)
                start = time.perf_counter()
                report = importer.run()
                t = time.perf_counter() - start
                importer.close()
                print(f"{label}: {t:.2f} s, {report.commits} commits ({report.commits / t:.0f}/s), "
                      f"{report.versions} new versions ({report.versions / t:.0f}/s), "
                      f"{report.already} already there, {len(report.documents)} documents")
            journal.close()
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
