"""Scan, rescan and sync costs on a generated IDSE-like tree. Prints numbers; asserts nothing.

    python bench/sync_bench.py [--files 10000 | --large] [--dsn URL]

(`--large`: 100,000 files.)

* first scan: every file read and hashed (cold stat cache);
* quiet rescan: nothing changed, so nothing is read; compared with `git status` on the
  same tree (after `git add -A && git commit`, so git's index is warm too);
* rescan after touching 1% of the files;
* first push of the whole tree, and the pull of it into an empty second copy, through
  the real PostgreSQL transport (a private server is started unless --dsn is given);
* when `unison` is installed (`apt-get install unison`), Unison's initial sync of the
  same tree into an empty directory in the same run, and syncd's push and pull files/s
  as a ratio of Unison's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from scratch import scratch_database
from syncd.content import FilePolicy
from syncd.engine.executor import Executor
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal
from syncd.engine.scanner import scan
from syncd.store.postgres import PostgresStore

STAGES = ["intents", "contexts", "specs", "plans", "tasks", "implementation", "feedback"]


def make_tree(root: Path, files: int) -> None:
    n = 0
    session = 0
    while n < files:
        base = root / f"projects/P{session % 20}/sessions/s{session:05d}"
        for stage in STAGES:
            if n >= files:
                break
            (base / stage).mkdir(parents=True, exist_ok=True)
            (base / stage / f"{stage}.md").write_text(f"# {stage} {session}\n\n" + "lorem ipsum " * 40 + "\n")
            n += 1
        session += 1
    past = time.time() - 60  # not "racy": old enough for the stat cache to trust
    for path in root.rglob("*.md"):
        os.utime(path, (past, past))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def unison_files_per_second(tree: Path, work: Path, files: int) -> float | None:
    """Unison's initial sync of `tree` into an empty directory, files/s; None without Unison."""
    if shutil.which("unison") is None:
        return None
    target = work / "unison-copy"
    target.mkdir()
    env = {**os.environ, "UNISON": str(work / "unison-state")}
    start = time.perf_counter()
    subprocess.run(["unison", str(tree), str(target), "-batch", "-auto", "-silent", "-confirmbigdeletes=false",
                    "-ignore", "Name .git", "-ignore", "Name .syncd*"], env=env, check=True, capture_output=True)
    t = time.perf_counter() - start
    return files / t


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="100,000 files")
    parser.add_argument("--dsn", help="a server to create a scratch database on")
    parser.add_argument("--skip-sync", action="store_true", help="scan figures only")
    args = parser.parse_args()
    if args.large:
        args.files = 100_000

    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    work.chmod(0o711)
    try:
        root = work / "a"
        root.mkdir()
        make_tree(root, args.files)
        rules, policy = IgnoreRules(), FilePolicy()
        journal = Journal(work / "a.journal")
        t, first = timed(lambda: scan(root, rules, journal, policy))
        journal.flush_stats()
        print(f"files: {len(first.files)}")
        print(f"first scan (hash all): {t:.3f} s ({first.hashed} read)")
        t, quiet = timed(lambda: scan(root, rules, journal, policy))
        print(f"quiet rescan:          {t:.3f} s ({quiet.hashed} read)")

        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "tree")
        git(root, "status", "--porcelain")  # warm git's index like ours is warm
        t, _ = timed(lambda: git(root, "status", "--porcelain"))
        print(f"git status:            {t:.3f} s")

        touched = [root / rel for rel in sorted(first.files)[:: 100]]
        for path in touched:
            path.write_text(path.read_text() + "edit\n")
        t, after = timed(lambda: scan(root, rules, journal, policy))
        print(f"rescan, {len(touched)} edited:    {t:.3f} s ({after.hashed} read)")
        journal.close()

        if args.skip_sync:
            return
        rates = {}
        with scratch_database(work, args.dsn) as dsn:
            PostgresStore(dsn, "bench").open(create=True)
            for label, tree in (("push all (copy a)", root), ("pull all (copy b)", work / "b")):
                tree.mkdir(exist_ok=True)
                journal = Journal(work / f"{tree.name}.sync-journal")
                store = PostgresStore(dsn, "bench", str(uuid.uuid4()))
                store.open(device_name=label)
                t, report = timed(lambda: Executor(tree, journal, store, rules, policy).sync_once())
                moved = len(report.pushed) + len(report.pulled)
                print(f"{label}: {t:.2f} s, {moved} files, {moved / t:.0f} files/s")
                rates[label] = moved / t
                store.close()
                journal.close()
        unison = unison_files_per_second(root, work, len(first.files))
        if unison is None:
            print("unison: not installed (apt-get install unison)")
        else:
            print(f"unison, initial sync into an empty directory: {unison:.0f} files/s")
            for label, rate in rates.items():
                print(f"{label}: {rate / unison:.2f}x unison")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
