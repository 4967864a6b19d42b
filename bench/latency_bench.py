"""Edit → other copy with two daemons at their default settings, and a quiet rescan beside
`git status`, on one tree. Prints figures and ratios; times nothing against a limit.

    python bench/latency_bench.py [--files 10000] [--edits 30] [--dsn ADMIN_DSN] [--runs 5]
    python bench/latency_bench.py --files 100000      # the 100k-file tree (minutes to sync first)

Copy A gets --files files of IDSE-like markdown, ten per directory; A pushes them and B
pulls them with `syncd sync --once`; then both run `syncd run` (no daemon setting given).
Latency: from writing a file of A to the same bytes in B's file, over --edits edits of
files spread over the tree. Quiet rescan: `syncd sync --once` on A with nothing changed,
whole command, median of --runs, beside `git status` on a Git repository of the same tree.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
from daemons import WorkingCopy, isolated_env, wait_for  # noqa: E402
from scratch import scratch_database  # noqa: E402


def make_tree(root: Path, files: int) -> list[str]:
    paths = []
    for i in range(files):
        d = i // 10
        rel = f"projects/P{d % 20:02d}/sessions/s{d:05d}/specs/f{i:06d}.md"
        paths.append(rel)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# Spec {i}\n\n" + "Some words of the session's spec. " * 14 + "\n")
    return paths


def run(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dsn", help="an admin DSN to make the scratch database on (default: a private server)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="syncd-latency-"))
    work.chmod(0o711)
    env = isolated_env(work)
    a, b = WorkingCopy(work, "a", env), WorkingCopy(work, "b", env)
    syncd = [sys.executable, "-m", "syncd"]
    try:
        with scratch_database(work, args.dsn) as dsn:
            for copy in (a, b):
                copy.init("bench", dsn)
            paths = make_tree(a.root, args.files)
            print(f"{args.files:,} files in {args.files // 10:,} directories")
            push = run([*syncd, "--config", str(a.config), "sync", "--once"], env)
            pull = run([*syncd, "--config", str(b.config), "sync", "--once"], env)
            print(f"  first sync: push {push:.1f} s, pull {pull:.1f} s")

            repo = work / "git"
            shutil.copytree(a.root, repo)
            for step in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "t"]):
                subprocess.run(["git", *step], cwd=repo, check=True, capture_output=True)
            run(["git", "status", "--porcelain"], cwd=repo)  # warm, as syncd's run below is
            git = statistics.median(run(["git", "status", "--porcelain"], cwd=repo) for _ in range(args.runs))
            rescan = statistics.median(run([*syncd, "--config", str(a.config), "sync", "--once"], env)
                                       for _ in range(args.runs))
            print(f"  quiet rescan (sync --once, whole command): {rescan:.2f} s; git status: {git:.2f} s; "
                  f"ratio {rescan / git:.1f}x")

            a.start()
            b.start()
            time.sleep(1)
            latencies = []
            for n in range(args.edits):
                rel = paths[(n * 7919) % len(paths)]
                data = f"edit {n}\n".encode()
                started = time.perf_counter()
                (a.root / rel).write_bytes(data)
                wait_for(lambda: (b.root / rel).read_bytes() == data, timeout=60, interval=0.002)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.3)
            print(f"  edit -> other copy over {len(latencies)} edits (two daemons, default settings): "
                  f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
                  f"max {max(latencies) * 1000:.0f} ms; goal 250 ms median: "
                  f"{statistics.median(latencies) / 0.25:.2f}x of it")
            a.stop()
            b.stop()
    finally:
        a.kill()
        b.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
