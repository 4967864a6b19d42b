"""bench/scale_bench.py at a small size in every run (it exits non-zero when anything did
not arrive); SYNCD_SCALE=full runs it at full size (100,000 files in 10,000 directories,
10 working copies), which takes minutes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale_bench.py"
SMALL = ["--files", "1000", "--dirs", "100", "--copies", "3", "--copy-files", "100"]


def test_a_big_copy_and_many_copies_converge(pg_server_dsn):
    size = [] if os.environ.get("SYNCD_SCALE") == "full" else SMALL
    run = subprocess.run([sys.executable, str(BENCH), *size, "--dsn", pg_server_dsn],
                         capture_output=True, text=True, timeout=3600)
    print(run.stdout)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == (
        ["one working copy: 1,000 files in 100 directories", "3 working copies of 100 files on one database"]
        if size else ["one working copy: 100,000 files in 10,000 directories",
                      "10 working copies of 1,000 files on one database"])
    assert sum(line.startswith("  ") for line in lines) == 7
