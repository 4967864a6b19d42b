"""The initial sync, syncd against Unison, in alternating rounds on one tree: issue 20's
initial-sync goal (≥ 1.5× Unison's files/s, push and pull each) as a median of per-round
ratios. This machine's disk goes through slow and fast phases minutes long (creating a
file's inode costs 0.3-0.8 ms of kernel time in a slow one; the cause is below), so a
ratio of two runs minutes apart, as `peers.py` takes them, says as much about the phase as
about the tools; here each round's syncd and Unison runs are back to back, and their order
alternates.

    apt-get install -y unison time
    python bench/initial_rounds.py [--files 10000] [--rounds 5] [--dir DIR] [--database-url URL]
                                   [--json-out PATH]

Each round: a fresh copy A of the tree and an empty B for each tool; syncd `sync --once`
in A (push) then in B (pull), on a fresh scratch database; Unison's one run A → B.

No tree is deleted before the last round is done. On an ext4 without a journal (this
machine's root), the inode allocator skips, one by one, the inodes freed in the last
minutes (`recently_deleted` leads a kernel profile of a create then): each file made after
a tree was deleted costs up to 0.3 ms more, for both tools, and the ratio goes towards 1.
`--dir /dev/shm` measures the tools with no disk at all.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peers import Skip, count_files, initial_sync, make_tree, syncd_copies, syncd_env, timed_run  # noqa: E402
from scratch import scratch_database  # noqa: E402


def syncd_round(seed: Path, work: Path, args) -> dict:
    env = syncd_env(work)
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    with scratch_database(work, args.database_url) as dsn:
        copies = syncd_copies(work, dsn, env)
        push, _ = timed_run([*copies["a"], "sync", "--once"], env, args.timeout)
        pull, _ = timed_run([*copies["b"], "sync", "--once"], env, args.timeout)
    if count_files(b) != args.files:
        raise Skip(f"B has {count_files(b)} files of {args.files}")
    return {"push_files_per_s": args.files / push, "pull_files_per_s": args.files / pull}


def unison_round(seed: Path, work: Path, args) -> dict:
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    b.mkdir()
    env = {**os.environ, "UNISON": str(work / "unison"), "HOME": str(work)}
    command = ["unison", str(a), str(b), "-batch", "-auto", "-ui", "text", "-confirmbigdel=false"]
    return initial_sync(command, env, b, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--database-url", help="a server to make syncd's scratch databases on (default: a private one)")
    parser.add_argument("--dir", type=Path, help="where the trees are made (default: the temporary directory)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if not shutil.which("unison"):
        sys.exit("unison is not installed (apt-get install unison)")
    stamp = datetime.datetime.now(datetime.timezone.utc)
    rounds = []
    base = Path(tempfile.mkdtemp(prefix="syncd-rounds-", dir=args.dir))
    try:
        make_tree(base / "seed", args.files)
        for r in range(args.rounds):
            got = {}
            order = [("syncd", syncd_round), ("unison", unison_round)]
            for tool, measure in order if r % 2 == 0 else order[::-1]:
                work = base / f"{tool}-{r}"
                work.mkdir()
                got[tool] = measure(base / "seed", work, args)  # (kept: see the docstring)
            peer = got["unison"]["files_per_s"]
            got["push_ratio"] = got["syncd"]["push_files_per_s"] / peer
            got["pull_ratio"] = got["syncd"]["pull_files_per_s"] / peer
            rounds.append(got)
            print(f"round {r + 1}: syncd push {got['syncd']['push_files_per_s']:,.0f} files/s, "
                  f"pull {got['syncd']['pull_files_per_s']:,.0f}; unison {peer:,.0f} "
                  f"(push {got['push_ratio']:.2f}×, pull {got['pull_ratio']:.2f}×)", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    push = statistics.median(r["push_ratio"] for r in rounds)
    pull = statistics.median(r["pull_ratio"] for r in rounds)
    print(f"\n{args.files:,} files, {args.rounds} rounds, {stamp:%Y-%m-%d %H:%M} UTC: median of the rounds' "
          f"ratios syncd/Unison: push {push:.2f}×, pull {pull:.2f}×")
    if args.json_out:
        args.json_out.write_text(json.dumps({"date": stamp.isoformat(), "files": args.files, "rounds": rounds,
                                             "dir": str(args.dir or tempfile.gettempdir()),
                                             "median_push_ratio": push, "median_pull_ratio": pull}, indent=2) + "\n")
        print(f"written: {args.json_out}")


if __name__ == "__main__":
    main()
