"""Peak memory of a sync pass moving one big binary file (a blob). Prints numbers; asserts nothing.

    python bench/blob_bench.py [--mib 50] [--dsn URL]

Each pass is a `syncd sync --once` child process over the PostgreSQL transport; its peak
RSS comes from the kernel (wait4's rusage of that child). A first pass of a copy holding
one small file gives the process's own baseline: the big file's pass should cost a few
of its 4 MiB chunks on top of it, never the file (or twice the file).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import scratch_database

MIB = 1024 * 1024


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=50, help="size of the binary file")
    parser.add_argument("--dsn", help="a server to create a scratch database on")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="syncd-blob-bench-"))
    work.chmod(0o711)
    try:
        with scratch_database(work, args.dsn) as dsn:
            for copy in ("a", "b"):
                run(work, copy, "init", str(work / copy / "tree"), "--workspace", "bench", "--database-url", dsn)
            (work / "a/tree/small.md").write_text("# small\n")
            base_push = run(work, "a", "sync", "--once")
            base_pull = run(work, "b", "sync", "--once")
            size = int(args.mib * MIB)
            noise = random.Random(50)
            with open(work / "a/tree/big.bin", "wb") as out:  # a piece at a time: a child's peak RSS
                for at in range(0, size, MIB):                # counts what its parent held when it forked
                    out.write(noise.randbytes(min(MIB, size - at)))
            push = run(work, "a", "sync", "--once")
            pull = run(work, "b", "sync", "--once")
            same = digest(work / "a/tree/big.bin") == digest(work / "b/tree/big.bin")
        print(f"file: {size / MIB:.0f} MiB of random bytes (a blob, {-(-size // (4 * MIB))} chunks of 4 MiB)")
        print(f"pass pushing one small file:  peak RSS {base_push[0]:6.1f} MiB  ({base_push[1]:.1f} s)")
        print(f"pass pulling one small file:  peak RSS {base_pull[0]:6.1f} MiB  ({base_pull[1]:.1f} s)")
        print(f"pass pushing the big file:    peak RSS {push[0]:6.1f} MiB  ({push[1]:.1f} s)")
        print(f"pass pulling the big file:    peak RSS {pull[0]:6.1f} MiB  ({pull[1]:.1f} s)")
        print(f"byte-identical on the second copy: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, copy: str, *args: str) -> tuple[float, float]:
    """Run the CLI for a copy in a child process; (its peak RSS in MiB, seconds)."""
    env = {**os.environ, **{var: str(work / "xdg" / var.lower())
                            for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(work / copy / "syncd.yaml"), *args],
                                 env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"syncd {' '.join(args)} failed: {err.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start  # Linux: ru_maxrss in KiB


if __name__ == "__main__":
    main()
