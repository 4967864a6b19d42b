"""Two running daemons: edit-to-other-copy latency, then idle CPU and RSS. Prints numbers.

    python bench/daemon_bench.py [--edits 50] [--idle 60] [--files 1000]

Both working copies use the embedded default (a private PostgreSQL), as a new user would.
Latency: from writing a file in copy A to the same bytes appearing in copy B.
Idle: CPU seconds and RSS of daemon A (tree of --files files) over --idle seconds with
nothing changing, read from /proc.
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
from daemons import WorkingCopy, isolated_env, wait_for  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    work.chmod(0o711)
    env = isolated_env(work)
    env["XDG_DATA_HOME"] = str(work / "data")
    a, b = WorkingCopy(work, "a", env), WorkingCopy(work, "b", env)
    try:
        for copy in (a, b):
            copy.init("bench", None)
        for i in range(args.files):
            path = a.root / f"projects/P/sessions/s{i // 7:04d}/specs/f{i}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"file {i}\n")
        a.cli("sync", "--once")
        b.cli("sync", "--once")
        a.start()
        b.start()
        latencies = []
        target, other = a.root / "latency.md", b.root / "latency.md"
        for i in range(args.edits):
            data = f"edit {i}\n".encode()
            start = time.monotonic()
            target.write_bytes(data)
            wait_for(lambda: other.exists() and other.read_bytes() == data, timeout=30, interval=0.002)
            latencies.append(time.monotonic() - start)
            time.sleep(0.2)
        latencies.sort()
        p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
        print(f"edit-to-other-copy latency over {len(latencies)} edits (default debounce 0.3 s): "
              f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")

        time.sleep(2)
        pid = a.process.pid
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle)
        cpu = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - t0
        print(f"idle daemon ({args.files} files) over {elapsed:.0f} s: CPU {cpu:.2f} s "
              f"({100 * cpu / elapsed:.2f}% of a core), RSS {rss_mib(pid):.0f} MiB")
        a.stop()
        b.stop()
    finally:
        a.kill()
        b.kill()
        subprocess.run(["pkill", "-f", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
