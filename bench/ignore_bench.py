"""What the repository's .gitignore rules add to a quiet rescan. Prints numbers, times
nothing against a limit.

    python bench/ignore_bench.py [--files 50000]

Builds an IDSE-like tree of that many files (10 per directory) in a new Git repository with
a root .gitignore and one in every 50th session, then times quiet rescans (every file in
the stat cache) with and without the repository's rules, and `git status` on the same tree.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from syncd.content import FilePolicy
from syncd.engine.gitignore import GitIgnores
from syncd.engine.ignore import IgnoreRules
from syncd.engine.scanner import MemoryStatCache, scan


def make_tree(root: Path, files: int) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("*.log\nbuild/\n/out/\n!keep.log\n")
    for d in range(files // 10):
        session = root / f"projects/P{d % 20}/sessions/s{d}"
        (session / "specs").mkdir(parents=True)
        if d % 50 == 0:
            (session / ".gitignore").write_text("*.tmp\n")
        for f in range(10):
            (session / f"specs/f{f}.md").write_text("x\n")


def quiet_rescan(root: Path, rules: IgnoreRules) -> float:
    cache, later = MemoryStatCache(), time.time_ns() + 10**12  # every file old enough to cache
    scan(root, rules, cache, FilePolicy(), now_ns=later)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        scan(root, rules, cache, FilePolicy(), now_ns=later)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        make_tree(root, args.files)
        plain = quiet_rescan(root, IgnoreRules())
        with_git = quiet_rescan(root, IgnoreRules(git=GitIgnores.of(root)))
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
        start = time.perf_counter()
        subprocess.run(["git", "-C", str(root), "status", "--short"], check=True, capture_output=True)
        status = time.perf_counter() - start
    print(f"{args.files} files: quiet rescan {plain:.2f} s without the repository's rules, "
          f"{with_git:.2f} s with them ({(with_git - plain) / args.files * 1e6:.0f} us per file); "
          f"git status {status:.2f} s")


if __name__ == "__main__":
    main()
