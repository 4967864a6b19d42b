"""syncd beside its peers, on the same trees in one run: prints issue 20's table with the
ratio syncd/peer in each cell, and writes it as JSON. Installs nothing; a peer that is not
installed (or fails) is a column of "—" with the reason. The peers, from Debian:

    apt-get install -y syncthing unison rclone time

    python bench/peers.py [--files 10000] [--figures latency,rescan,initial,idle]
                          [--peers syncthing,unison,rclone,git] [--dir DIR] [--json-out PATH]

Every tool starts from its own copy of one tree (IDSE-like: --files files, 10 per session
directory), two copies on this machine:
- initial: A → empty B, files/s and peak RSS (/usr/bin/time -v; Syncthing: both
  daemons' VmHWM). syncd: `sync --once` in A (push), then in B (pull), one private
  PostgreSQL (or --database-url's server); Unison: one run; rclone: `bisync --resync`;
  Syncthing: two instances on localhost, from both configured until B has every file.
- rescan: the whole quiet command, process start included, median of --runs: syncd
  `sync --once` and `status`, Unison's run, `rclone bisync`, Syncthing's /rest/db/scan,
  `git status` in a repository of the tree.
- latency: edit in A → same bytes in B, daemons at their defaults: `syncd run` ×2,
  Syncthing (fsWatcherDelayS 10), `unison -repeat 1` (no unison-fsmonitor in Debian).
- idle: CPU % of a core and RSS of a daemon of A over --idle seconds with nothing
  changing; syncd also paused (`syncd pause`).
Each measurement is bounded by --timeout seconds (latency: --edits edits or --budget
seconds, whichever ends first). The machine may be loaded: read the ratios.

No tool's trees are deleted before the last tool is done (`--dir`: where they are made).
On an ext4 without a journal, a file created within minutes of a big delete costs up to
0.3 ms more (the inode allocator skips the inodes freed recently, one at a time), and the
next tool's initial sync would pay for the trees of the one before (`initial_rounds.py`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))
from scratch import scratch_database  # noqa: E402

SYNCD = [sys.executable, "-m", "syncd"]
FIGURES = ("initial", "rescan", "latency", "idle")
PEERS = ("syncthing", "unison", "rclone", "git")
TIME = "/usr/bin/time"


class Skip(Exception):
    """A figure this tool cannot give here: the reason is its cell."""


# the tree and the processes


def make_tree(root: Path, files: int) -> None:
    """startup_bench's layout: sessions of 10 spec files, across 20 projects."""
    for d in range(max(1, files // 10)):
        specs = root / f"projects/P{d % 20}/sessions/s{d}/specs"
        specs.mkdir(parents=True)
        for f in range(min(10, files - 10 * d)):
            (specs / f"f{f}.md").write_text(f"# {d}.{f}\n")


def count_files(root: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(root))


def timed_run(argv: list[str], env: dict, timeout: float, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one command, under /usr/bin/time when it is there."""
    out = tempfile.NamedTemporaryFile(prefix="peers-time-", delete=False)
    out.close()
    wrapped = [TIME, "-f", "%M", "-o", out.name, *argv] if os.access(TIME, os.X_OK) else argv
    start = time.perf_counter()
    try:
        done = subprocess.run(wrapped, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Skip(f"timed out after {timeout:.0f} s") from None
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise Skip(f"{Path(argv[0]).name} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    text = Path(out.name).read_text().strip().splitlines()
    os.unlink(out.name)
    rss = int(text[-1]) / 1024 if text and text[-1].isdigit() else float("nan")
    return wall, rss


def median_run(argv: list[str], env: dict, runs: int, timeout: float, cwd: Path | None = None) -> float:
    return statistics.median(timed_run(argv, env, timeout, cwd)[0] for _ in range(runs))


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Skip(f"not within {timeout:.0f} s")
        time.sleep(interval)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_figures(pids: list[int], seconds: float) -> dict:
    """CPU % of one core and RSS of these processes, summed, over `seconds` of nothing."""
    time.sleep(2)  # whatever the last edit started has settled
    cpu0, t0 = sum(proc_cpu(p) for p in pids), time.monotonic()
    time.sleep(seconds)
    cpu, elapsed = sum(proc_cpu(p) for p in pids) - cpu0, time.monotonic() - t0
    return {"cpu_percent": 100 * cpu / elapsed, "rss_mib": sum(proc_mib(p, "VmRSS") for p in pids),
            "peak_rss_mib": max(proc_mib(p, "VmHWM") for p in pids), "seconds": elapsed}


def latencies(a: Path, b: Path, edits: int, budget: float, timeout: float) -> dict:
    """Write a file in A, wait for its bytes in B; edits until `edits` or `budget` seconds."""
    samples, source, target = [], a / "latency.md", b / "latency.md"
    end = time.monotonic() + budget
    for i in range(edits):
        if samples and time.monotonic() > end:
            break
        data = f"edit {i} at {time.time()}\n".encode()
        start = time.monotonic()
        source.write_bytes(data)

        def arrived():
            try:
                return target.read_bytes() == data
            except OSError:
                return False

        wait_for(arrived, timeout)
        samples.append(time.monotonic() - start)
        time.sleep(0.3)
    samples.sort()
    return {"median_s": statistics.median(samples), "p95_s": samples[max(0, round(0.95 * len(samples)) - 1)],
            "max_s": samples[-1], "edits": len(samples)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# the tools: each returns {figure: value dict}, a failed figure as {"missing": reason}


def attempt(results: dict, figure: str, measure: Callable[[], dict]) -> None:
    try:
        results[figure] = measure()
    except Skip as exc:
        results[figure] = {"missing": str(exc)}
    except Exception as exc:  # a peer's odd failure is its cell, not the end of the run
        results[figure] = {"missing": f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(f"  {figure}: {results[figure]}", flush=True)


def syncd_env(work: Path) -> dict:
    """syncd's environment for a run in `work`: its own config and state directories (and
    its bytecode cached, as an installed syncd runs: some CI images turn that off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "XDG_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(XDG_CONFIG_HOME=str(work / "config"), XDG_STATE_HOME=str(work / "state"),
               XDG_DATA_HOME=str(work / "data"))
    return env


def syncd_copies(work: Path, dsn: str, env: dict) -> dict[str, list[str]]:
    """Working copies `a` and `b` in `work` of one workspace at `dsn`: each one's command."""
    copies = {}
    for name in ("a", "b"):
        config = work / f"{name}.yaml"
        subprocess.run([*SYNCD, "--config", str(config), "init", str(work / name), "--workspace", "bench",
                        "--database-url", dsn], check=True, capture_output=True, env=env)
        copies[name] = [*SYNCD, "--config", str(config)]
    return copies


def run_syncd(seed: Path, work: Path, args) -> dict:
    results: dict = {}
    env = syncd_env(work)
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    with scratch_database(work, args.database_url) as dsn:
        copies = syncd_copies(work, dsn, env)

        def initial() -> dict:
            push, push_rss = timed_run([*copies["a"], "sync", "--once"], env, args.timeout)
            pull, pull_rss = timed_run([*copies["b"], "sync", "--once"], env, args.timeout)
            if count_files(b) != args.files:
                raise Skip(f"B has {count_files(b)} files of {args.files}")
            return {"push_s": push, "pull_s": pull, "push_files_per_s": args.files / push,
                    "pull_files_per_s": args.files / pull, "push_peak_rss_mib": push_rss,
                    "pull_peak_rss_mib": pull_rss}

        if "initial" in args.figures or {"latency", "idle"} & set(args.figures):
            attempt(results, "initial", initial)  # (the daemons start from synced copies)
        if "rescan" in args.figures:
            attempt(results, "rescan", lambda: {
                "sync_once_s": median_run([*copies["a"], "sync", "--once"], env, args.runs, args.timeout),
                "status_s": median_run([*copies["a"], "status"], env, args.runs, args.timeout)})
        if {"latency", "idle"} & set(args.figures):
            daemons = []
            try:
                for name in ("a", "b"):
                    log = (work / f"{name}.log").open("ab")
                    daemons.append(subprocess.Popen([*copies[name], "run"], env=env, stdout=log, stderr=log))
                for name, daemon in zip("ab", daemons):
                    wait_for(lambda: daemon.poll() is not None or '"state": "running"' in subprocess.run(
                        [*copies[name], "status", "--json"], env=env, capture_output=True, text=True).stdout,
                        timeout=args.timeout, interval=0.5)
                    if daemon.poll() is not None:
                        raise Skip(f"syncd run exited {daemon.returncode}")
                if "latency" in args.figures:
                    attempt(results, "latency", lambda: latencies(a, b, args.edits, args.budget, args.edit_timeout))
                if "idle" in args.figures:
                    attempt(results, "idle", lambda: idle_figures([daemons[0].pid], args.idle))

                    def paused() -> dict:
                        subprocess.run([*copies["a"], "pause"], env=env, check=True, capture_output=True)
                        return idle_figures([daemons[0].pid], args.idle)

                    attempt(results, "idle_paused", paused)
            finally:
                for daemon in daemons:
                    stop(daemon)
    return results


def initial_sync(command: list[str], env: dict, b: Path, args) -> dict:
    """A peer's one command that syncs A into the empty B: its files/s and peak RSS."""
    wall, rss = timed_run(command, env, args.timeout)
    if count_files(b) != args.files:
        raise Skip(f"B has {count_files(b)} files of {args.files}")
    return {"s": wall, "files_per_s": args.files / wall, "peak_rss_mib": rss}


def run_unison(seed: Path, work: Path, args) -> dict:
    if not shutil.which("unison"):
        raise Skip("not installed (apt-get install unison)")
    results: dict = {}
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    b.mkdir()
    env = {**os.environ, "UNISON": str(work / "unison"), "HOME": str(work)}
    command = ["unison", str(a), str(b), "-batch", "-auto", "-ui", "text", "-confirmbigdel=false"]

    attempt(results, "initial", lambda: initial_sync(command, env, b, args))
    if "rescan" in args.figures:
        attempt(results, "rescan", lambda: {"s": median_run(command, env, args.runs, args.timeout)})
    if {"latency", "idle"} & set(args.figures):
        daemon = subprocess.Popen([*command, "-repeat", "1"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            if "latency" in args.figures:
                attempt(results, "latency", lambda: {**latencies(a, b, args.edits, args.budget, args.edit_timeout),
                                                     "mode": "-repeat 1"})
            if "idle" in args.figures:
                attempt(results, "idle", lambda: {**idle_figures([daemon.pid], args.idle), "mode": "-repeat 1"})
        finally:
            stop(daemon)
    return results


def run_rclone(seed: Path, work: Path, args) -> dict:
    if not shutil.which("rclone"):
        raise Skip("not installed (apt-get install rclone)")
    results: dict = {}
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    b.mkdir()
    (work / "rclone.conf").write_text("")
    env = {**os.environ, "RCLONE_CONFIG": str(work / "rclone.conf")}
    command = ["rclone", "bisync", str(a), str(b), "--workdir", str(work / "bisync")]

    attempt(results, "initial", lambda: initial_sync([*command, "--resync"], env, b, args))
    if "rescan" in args.figures:
        attempt(results, "rescan", lambda: {"s": median_run(command, env, args.runs, args.timeout)})
    return results


def run_git(seed: Path, work: Path, args) -> dict:
    if not shutil.which("git"):
        raise Skip("not installed")
    results: dict = {}
    root = work / "a"
    shutil.copytree(seed, root, symlinks=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    if "rescan" in args.figures:
        attempt(results, "rescan", lambda: {"s": median_run(["git", "status", "--short"], dict(os.environ),
                                                           args.runs, args.timeout, cwd=root)})
    return results


class Syncthing:
    """One instance: its own home, GUI/API and sync ports on localhost, nothing global."""

    def __init__(self, home: Path):
        self.home = home
        self.gui, self.listen = free_port(), free_port()
        subprocess.run(["syncthing", "generate", f"--home={home}", "--no-default-folder", "--skip-port-probing"],
                       check=True, capture_output=True)
        config = ET.parse(home / "config.xml")
        self.key = config.find("gui/apikey").text
        self.process: subprocess.Popen | None = None

    def api(self, method: str, path: str, body=None, timeout: float = 30):
        request = urllib.request.Request(f"http://127.0.0.1:{self.gui}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"X-API-Key": self.key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def start(self) -> None:
        env = {**os.environ, "STNORESTART": "1", "STNOUPGRADE": "1", "HOME": str(self.home)}
        self.process = subprocess.Popen(
            ["syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart", "--no-upgrade",
             f"--gui-address=127.0.0.1:{self.gui}", f"--logfile={self.home / 'syncthing.log'}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                return self.api("GET", "/rest/system/status", timeout=2)
            except OSError:
                return None

        self.id = wait_for(up, 60, 0.2)["myID"]
        self.api("PATCH", "/rest/config/options", {
            "listenAddresses": [f"tcp://127.0.0.1:{self.listen}"], "globalAnnounceEnabled": False,
            "localAnnounceEnabled": False, "relaysEnabled": False, "natEnabled": False, "urAccepted": -1,
            "crashReportingEnabled": False, "autoUpgradeIntervalH": 0, "startBrowser": False})

    def pair(self, other: "Syncthing") -> None:
        self.api("POST", "/rest/config/devices", {"deviceID": other.id, "name": other.home.name,
                                                  "addresses": [f"tcp://127.0.0.1:{other.listen}"]})

    def share(self, root: Path, other: "Syncthing") -> None:
        self.api("POST", "/rest/config/folders", {"id": "bench", "label": "bench", "path": str(root),
                                                  "devices": [{"deviceID": self.id}, {"deviceID": other.id}]})

    def folder(self) -> dict:
        return self.api("GET", "/rest/db/status?folder=bench")


def run_syncthing(seed: Path, work: Path, args) -> dict:
    if not shutil.which("syncthing"):
        raise Skip("not installed (apt-get install syncthing)")
    results: dict = {}
    a, b = work / "a", work / "b"
    shutil.copytree(seed, a, symlinks=True)
    b.mkdir()
    one, two = Syncthing(work / "st-a"), Syncthing(work / "st-b")
    try:
        one.start()
        two.start()
        one.pair(two)
        two.pair(one)

        def complete() -> bool:
            status = two.folder()
            return status["localFiles"] >= args.files and status["needTotalItems"] == 0 and status["state"] == "idle"

        def initial() -> dict:
            start = time.monotonic()
            one.share(a, two)
            two.share(b, one)
            wait_for(complete, args.timeout, 0.2)
            wall = time.monotonic() - start
            if count_files(b) < args.files:
                raise Skip(f"B has {count_files(b)} files of {args.files}")
            return {"s": wall, "files_per_s": args.files / wall,
                    "peak_rss_mib": max(proc_mib(p.process.pid, "VmHWM") for p in (one, two))}

        attempt(results, "initial", initial)
        if results["initial"].get("missing"):
            return results
        if "rescan" in args.figures:
            attempt(results, "rescan", lambda: {"s": statistics.median(
                _timed(lambda: one.api("POST", "/rest/db/scan?folder=bench", timeout=args.timeout))
                for _ in range(args.runs)), "what": "POST /rest/db/scan"})
        if "latency" in args.figures:
            attempt(results, "latency", lambda: {**latencies(a, b, args.edits, args.budget, args.edit_timeout),
                                                 "mode": "defaults (fsWatcherDelayS 10)"})
        if "idle" in args.figures:
            attempt(results, "idle", lambda: idle_figures([one.process.pid], args.idle))
    finally:
        stop(one.process)
        stop(two.process)
    return results


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


TOOLS = {"syncd": run_syncd, "syncthing": run_syncthing, "unison": run_unison, "rclone": run_rclone, "git": run_git}


# the table


def rows() -> list[tuple[str, Callable[[dict], float | None], Callable[[dict], float | None], str]]:
    """(label, syncd's value, a peer's value, unit)."""

    def get(figure: str, key: str):
        return lambda tool: (tool.get(figure) or {}).get(key)

    return [
        ("edit → other copy, median", get("latency", "median_s"), get("latency", "median_s"), "s"),
        ("edit → other copy, p95", get("latency", "p95_s"), get("latency", "p95_s"), "s"),
        ("quiet rescan, whole command (syncd: sync --once)", get("rescan", "sync_once_s"), get("rescan", "s"),
         "s"),
        ("quiet rescan, whole command (syncd: status)", get("rescan", "status_s"), get("rescan", "s"), "s"),
        ("initial sync A → empty B (syncd: push)", get("initial", "push_files_per_s"),
         get("initial", "files_per_s"), "files/s"),
        ("initial sync A → empty B (syncd: pull)", get("initial", "pull_files_per_s"),
         get("initial", "files_per_s"), "files/s"),
        ("peak RSS, initial sync (syncd: push)", get("initial", "push_peak_rss_mib"),
         get("initial", "peak_rss_mib"), "MiB"),
        ("peak RSS, initial sync (syncd: pull)", get("initial", "pull_peak_rss_mib"),
         get("initial", "peak_rss_mib"), "MiB"),
        ("idle daemon, CPU of a core", get("idle", "cpu_percent"), get("idle", "cpu_percent"), "%"),
        ("idle daemon, RSS", get("idle", "rss_mib"), get("idle", "rss_mib"), "MiB"),
        ("idle daemon, peak RSS since start", get("idle", "peak_rss_mib"), get("idle", "peak_rss_mib"), "MiB"),
        ("paused daemon, CPU of a core", get("idle_paused", "cpu_percent"), lambda tool: None, "%"),
    ]


def fmt(value: float, unit: str) -> str:
    if unit == "files/s":
        return f"{value:,.0f} files/s"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def table(results: dict, tools: list[str]) -> str:
    """Markdown: one row per figure, a cell per tool, each peer's with syncd/peer."""
    lines = ["| figure | " + " | ".join(tools) + " |", "|---" * (len(tools) + 1) + "|"]
    syncd = results.get("syncd", {})
    for label, ours, theirs, unit in rows():
        mine = ours(syncd) if isinstance(syncd, dict) and "missing" not in syncd else None
        cells = [fmt(mine, unit) if mine is not None else "—"]
        for tool in tools[1:]:
            found = results.get(tool, {})
            value = theirs(found) if "missing" not in found else None
            if value is None:
                cells.append("—")
            elif mine is not None and value:
                cells.append(f"{fmt(value, unit)} ({mine / value:.2f}×)")
            else:
                cells.append(fmt(value, unit))
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    missing = []
    for tool in tools:
        found = results.get(tool, {})
        if "missing" in found:
            missing.append(f"- {tool}: {found['missing']}")
        else:
            missing += [f"- {tool}, {figure}: {value['missing']}" for figure, value in found.items()
                        if isinstance(value, dict) and "missing" in value]
    return "\n".join(lines + ([""] + missing if missing else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="files in the tree (100000 for the scale run)")
    parser.add_argument("--figures", default=",".join(FIGURES), help=f"any of {','.join(FIGURES)}")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"any of {','.join(PEERS)} (or none)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each quiet rescan (median)")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--budget", type=float, default=90, help="seconds of edits per tool, at most")
    parser.add_argument("--edit-timeout", type=float, default=60, help="seconds one edit may take to arrive")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle measured")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one command or sync may take")
    parser.add_argument("--database-url", help="a server to make syncd's scratch database on (default: a private one)")
    parser.add_argument("--dir", type=Path, help="where the trees are made (default: the temporary directory)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    args.figures = [f for f in args.figures.split(",") if f]
    unknown = set(args.figures) - set(FIGURES) | {p for p in args.peers.split(",") if p} - set(PEERS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    tools = ["syncd", *[p for p in PEERS if p in args.peers.split(",")]]
    stamp = datetime.datetime.now(datetime.timezone.utc)
    json_out = args.json_out or Path(__file__).parent / "figures" / f"peers-{stamp:%Y-%m-%d}-{args.files}.json"

    results: dict = {}
    base = Path(tempfile.mkdtemp(prefix="syncd-peers-", dir=args.dir))
    base.chmod(0o711)
    try:
        seed = base / "seed"
        make_tree(seed, args.files)
        for tool in tools:
            print(f"{tool}:", flush=True)
            work = base / tool
            work.mkdir()
            try:
                results[tool] = TOOLS[tool](seed, work, args)
            except Skip as exc:
                results[tool] = {"missing": str(exc)}
                print(f"  {results[tool]}", flush=True)
            except Exception as exc:  # a tool that cannot even start is its column, not the end of the run
                said = getattr(exc, "stderr", None)
                said = said.decode(errors="replace") if isinstance(said, bytes) else said or ""
                results[tool] = {"missing": f"{type(exc).__name__}: {str(exc)[:200]} {said.strip()[-300:]}".strip()}
                print(f"  {results[tool]}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    dirs = max(1, args.files // 10)
    heading = (f"{args.files:,} files in {dirs:,} session directories, two copies on one machine "
               f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end), {stamp:%Y-%m-%d %H:%M} UTC; "
               "cells of peers: value (syncd/peer)")
    print("\n" + heading + "\n\n" + table(results, tools))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps({"date": stamp.isoformat(), "files": args.files, "directories": dirs,
                                    "cores": os.cpu_count(), "figures": args.figures, "results": results},
                                   indent=2) + "\n")
    print(f"\nwritten: {json_out}")


if __name__ == "__main__":
    main()
