"""Peak memory of the passes that move one big binary over the Supabase transport (issue
18: files stream, never held whole in memory twice): one copy pushes it to Storage, through
the loopback stand-in on a Supabase-shaped database, another pulls it. Each pass is its own
`syncd sync --once` process; its peak RSS is the kernel's (wait4). Prints numbers, checks
only that the pulled file is the pushed one. (bench/blob_bench.py: the same over the
PostgreSQL transport, the contract's blob table.)

    python bench/storage_bench.py [--mib 50]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from supabase_database import SupabaseCluster  # noqa: E402
from supabase_standin import StandIn, token  # noqa: E402
from syncd.store.migrate import migrate  # noqa: E402


# A child's peak RSS counts what it was forked from (the kernel keeps the larger of the
# pre-exec and the new image's): each pass is started by this small process, not the bench.
LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "_, status, usage = os.wait4(child.pid, 0); print(status, usage.ru_maxrss)")


def run(env: dict, *args: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one syncd process."""
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "syncd", *args], env=env,
                         capture_output=True, text=True)
    status, peak = out.stdout.split()
    if status != "0":
        raise SystemExit(f"syncd {' '.join(args)} failed: {out.stderr}")
    return time.monotonic() - started, int(peak) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=50)
    size = int(parser.parse_args().mib) << 20
    work = Path(tempfile.mkdtemp(prefix="syncd-storage-bench-"))
    work.chmod(0o711)
    cluster = SupabaseCluster(work / "data")
    cluster.start()
    try:
        cluster.create_project("bench")
        dsn = make_conninfo(cluster.dsn("bench"), user="postgres")
        migrate(dsn)
        data = os.urandom(1 << 20)  # the file: 1 MiB of random bytes again and again
        digest = hashlib.sha256()
        for _ in range(size >> 20):
            digest.update(data)
        print(f"one binary of {size / 1048576:.0f} MiB; peak RSS of each pass (MiB), seconds")
        print("| push: RSS | push: s | pull: RSS | pull: s | a pass with nothing to do: RSS |")
        print("|---:|---:|---:|---:|---:|")
        standin = StandIn(dsn)
        standin.file_size_limit = max(size, standin.file_size_limit)  # over 50 MiB: a paid plan's
        with standin as url:
            env = {**os.environ, "SYNCD_SUPABASE_SERVICE_KEY": token("service_role")}
            for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
                env[var] = str(work / var.lower())
            figures = []
            for copy in ("a", "b"):
                root, config = work / copy, work / f"{copy}.yaml"
                run(env, "--config", str(config), "init", str(root), "--workspace", "bench", "--supabase-url", url)
                if copy == "a":
                    with (root / "big.bin").open("wb") as out:
                        for _ in range(size >> 20):
                            out.write(data)
                figures += run(env, "--config", str(config), "sync", "--once")
            with (work / "b" / "big.bin").open("rb") as got:
                assert hashlib.file_digest(got, "sha256").hexdigest() == digest.hexdigest()
            idle = run(env, "--config", str(work / "b.yaml"), "sync", "--once")[1]
            print(f"| {figures[1]:.0f} | {figures[0]:.1f} | {figures[3]:.0f} | {figures[2]:.1f} | {idle:.0f} |")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
