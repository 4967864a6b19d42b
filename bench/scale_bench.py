"""Scale: one big working copy, then many working copies on one database. Prints numbers;
checks only that everything arrived (a wrong result exits non-zero), times nothing against
a limit.

    python bench/scale_bench.py [--files 100000] [--dirs 10000] [--copies 10] [--dsn ADMIN_DSN]

One copy: --files files in --dirs directories (IDSE-like markdown of ~500 bytes): the first
`syncd sync --once` (scan, hash and push everything), a quiet rescan, then `syncd run`:
its RSS once settled, and the latency of one edit (written to disk → its version in the
store), median of 5. Many copies: --copies working copies of the same workspace each pull
the tree with `sync --once`; then all run daemons and one edit's fan-out latency (written
in copy 0 → the bytes on every other copy's disk) is measured.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from daemons import WorkingCopy, isolated_env, wait_for  # noqa: E402
from scratch import scratch_database  # noqa: E402

SETTINGS = ("daemon: {debounce: 0.1, poll_interval: 10}",)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_tree(root: Path, files: int, dirs: int) -> list[str]:
    paths = []
    for i in range(files):
        d = i % dirs
        rel = f"projects/P{d % 20:02d}/sessions/s{d:05d}/specs/f{i:06d}.md"
        paths.append(rel)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# Spec {i}\n\n" + "Some words of the session's spec. " * 14 + "\n")
    return paths


def sync(copy: WorkingCopy) -> None:
    """`syncd sync --once` without the test helper's time limit: a first sync of 100k files
    takes minutes."""
    subprocess.run([sys.executable, "-m", "syncd", "--config", str(copy.config), "sync"], env=copy.env,
                   check=True, capture_output=True)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


_connections: dict[str, psycopg.Connection] = {}


def stored(dsn: str, path: str) -> bytes | None:
    """The head's text; polled every few milliseconds, over one connection (a new one per
    poll cost the machine more than the daemon being measured)."""
    if dsn not in _connections:
        _connections[dsn] = psycopg.connect(dsn, autocommit=True)
    row = _connections[dsn].execute("select content ->> 'text' from documents where path = %s", (path,)).fetchone()
    return row[0].encode() if row and row[0] is not None else None


def one_big_copy(work: Path, dsn: str, files: int, dirs: int) -> dict:
    env = isolated_env(work / "one")
    a = WorkingCopy(work / "one", "a", env)
    a.init("big", dsn, *SETTINGS)
    paths = make_tree(a.root, files, dirs)
    out = {"first sync": timed(lambda: sync(a)), "quiet rescan": timed(lambda: sync(a))}
    with psycopg.connect(dsn) as conn:
        count = conn.execute("select count(*) from documents where not deleted").fetchone()[0]
    assert count == files, f"{count} documents in the store, {files} files on disk"
    a.start()
    try:
        latencies = []
        for n in range(5):
            rel = paths[(n * 7919) % len(paths)]
            data = f"edit {n}\n"
            started = time.perf_counter()
            (a.root / rel).write_text(data)
            wait_for(lambda: stored(dsn, rel) == data.encode(), timeout=120, interval=0.005)
            latencies.append(time.perf_counter() - started)
        out["edit latency (median of 5)"] = statistics.median(latencies)
        out["daemon RSS (MiB)"] = rss_mib(a.process.pid)
    finally:
        a.stop()
    return out


def many_copies(work: Path, dsn: str, copies: int, files: int) -> dict:
    env = isolated_env(work / "many")
    team = [WorkingCopy(work / "many", f"c{i:02d}", env) for i in range(copies)]
    for copy in team:
        copy.init("team", dsn, *SETTINGS)
    make_tree(team[0].root, files, max(1, files // 10))
    sync(team[0])
    pulls = []
    for copy in team[1:]:
        copy.root.mkdir(parents=True, exist_ok=True)
        pulls.append(timed(lambda: sync(copy)))
        got = sum(1 for _ in copy.root.rglob("*.md"))
        assert got == files, f"{copy.root}: {got} files, {files} expected"
    for copy in team:
        copy.start()
    try:
        rel = "projects/P00/sessions/s00000/specs/f000000.md"
        latencies = []
        for n in range(3):
            data = f"fan-out {n}\n"
            started = time.perf_counter()
            (team[0].root / rel).write_text(data)
            wait_for(lambda: all((c.root / rel).read_text() == data for c in team[1:]), timeout=120, interval=0.01)
            latencies.append(time.perf_counter() - started)
        rss = [rss_mib(c.process.pid) for c in team]
    finally:
        for copy in team:
            copy.stop()
    return {"pull (sync --once), median over copies": statistics.median(pulls),
            f"edit reaching all {copies - 1} other copies (median of 3)": statistics.median(latencies),
            "daemon RSS, median (MiB)": statistics.median(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dirs", type=int, default=10_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--copy-files", type=int, default=1000, help="the tree the many copies share")
    parser.add_argument("--dsn", help="an admin DSN to create the scratch database on (default: a private server)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="syncd-scale-"))
    try:
        with scratch_database(work, args.dsn) as dsn:
            print(f"one working copy: {args.files:,} files in {args.dirs:,} directories")
            for name, value in one_big_copy(work, dsn, args.files, args.dirs).items():
                print(f"  {name}: {value:.2f}" + ("" if "MiB" in name else " s"))
        with scratch_database(work, args.dsn) as dsn:
            print(f"{args.copies} working copies of {args.copy_files:,} files on one database")
            for name, value in many_copies(work, dsn, args.copies, args.copy_files).items():
                print(f"  {name}: {value:.2f}" + ("" if "MiB" in name else " s"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
