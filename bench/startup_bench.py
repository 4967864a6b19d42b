"""How long the CLI takes to answer, whole command, process start included, beside `python
-c pass` and `git status` on the same tree. Prints numbers, times nothing against a limit.

    python bench/startup_bench.py [--files 10000] [--runs 5] [--database-url URL] [--instructions]

--instructions also counts the instructions of the start-up commands under valgrind's
callgrind (Debian's `valgrind`): the same count whatever else the machine is doing, so the
ratios hold on a loaded machine where the medians wander.

Makes a working copy of that many files in a Git repository, syncs it once (a private
PostgreSQL unless --database-url names a server to make a scratch database on), then takes
the median of --runs runs of each command.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from scratch import scratch_database  # noqa: E402

SYNCD = [sys.executable, "-m", "syncd"]


def timed(argv: list[str], runs: int, env: dict, cwd: Path | None = None) -> float:
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)  # bytecode written, caches warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def instructions(argv: list[str], env: dict, cwd: Path | None = None) -> int:
    with tempfile.NamedTemporaryFile() as out:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", *argv],
                             check=True, capture_output=True, text=True, env=env, cwd=cwd)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))


def make_tree(root: Path, files: int) -> None:
    for d in range(files // 10):
        specs = root / f"projects/P{d % 20}/sessions/s{d}/specs"
        specs.mkdir(parents=True)
        for f in range(10):
            (specs / f"f{f}.md").write_text(f"# {d}.{f}\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--database-url", help="a server to make a scratch database on (default: a private one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "XDG_STATE_HOME": str(work / "state"),
               "XDG_DATA_HOME": str(work / "data")}
        env.pop("SYNCD_CONFIG", None)
        # as an installed syncd runs: its bytecode cached (some CI images set this, and then
        # every command compiles syncd's sources again, about 0.2 s)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        root = work / "tree"
        make_tree(root, args.files)
        with scratch_database(work, args.database_url) as dsn:
            config = work / "syncd.yaml"
            copy = [*SYNCD, "--config", str(config)]
            subprocess.run([*copy, "init", str(root), "--workspace", "bench", "--database-url", dsn],
                           check=True, capture_output=True, env=env)
            subprocess.run([*copy, "sync", "--once"], check=True, capture_output=True, env=env)
            commands = [
                ("python -c pass", [sys.executable, "-c", "pass"], None),
                # the floor for any click CLI: the import alone, before syncd runs a line
                ("python -c 'import click'", [sys.executable, "-c", "import click"], None),
                ("syncd --version", [*SYNCD, "--version"], None),
                ("syncd --help", [*SYNCD, "--help"], None),
                (f"syncd status ({args.files:,} files)", [*copy, "status"], None),
                (f"git status ({args.files:,} files)", [shutil.which("git"), "status", "--short"], root),
            ]
            rows = [(name, timed(argv, args.runs, env, cwd)) for name, argv, cwd in commands]
            counted = [(name, instructions(argv, env, cwd)) for name, argv, cwd in commands] if args.instructions else []
    base = rows[0][1]
    print(f"median of {args.runs} runs, whole command:")
    for name, seconds in rows:
        print(f"  {name:<32} {seconds:6.3f} s  {seconds / base:5.1f}x python -c pass")
    if counted:
        print("instructions (callgrind):")
        for name, count in counted:
            print(f"  {name:<32} {count / 1e6:6.0f} M  {count / counted[0][1]:5.2f}x python -c pass")


if __name__ == "__main__":
    main()
