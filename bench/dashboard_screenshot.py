"""The dashboard of a working copy in a generated pipeline, rendered in headless Chromium.

    python bench/dashboard_screenshot.py [--dsn URL] [--out bench/figures/dashboard.png]

The pipeline is bench/report_screenshot.py's (three projects, ten sessions, five people over
six weeks, imported from Git history). A second working copy joins; both edit one spec, so
the first holds a conflict; the first's session_state.json disagrees with its documents.
The first copy runs `syncd run` with `daemon.dashboard: true`, and Chromium loads the URL
the daemon wrote (with its token). Prints what the page holds and where the screenshot is.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report_screenshot import CHROMIUM_FLAGS, history, syncd
from scratch import scratch_database

HERE = Path(__file__).resolve().parent
SPEC = "projects/ingest/sessions/s2/specs/specs.md"


def copy_env(work: Path, name: str) -> dict:
    return {**os.environ, **{var: str(work / name / var.lower()) for var in
                             ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")}}


def name_device(env: dict, name: str) -> None:
    with (Path(env["XDG_CONFIG_HOME"]) / "syncd/syncd.yaml").open("a") as f:
        f.write(f"device_name: {name}\n")


def wait_for(what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout} s: {what.__doc__}")
        time.sleep(0.2)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="an admin DSN to create the scratch database on (default: a private server)")
    parser.add_argument("--out", type=Path, default=HERE / "figures/dashboard.png")
    parser.add_argument("--height", type=int, default=3100, help="the window's height in pixels")
    args = parser.parse_args()
    subprocess.run([str(HERE / "install-chromium")], check=True)
    work = Path(tempfile.mkdtemp(prefix="syncd-dashboard-"))
    daemon = None
    try:
        with scratch_database(work, args.dsn) as dsn:
            laptop, desk = work / "laptop", work / "desk"
            laptop.mkdir()
            commits = history(laptop)
            env, other = copy_env(work, "laptop-xdg"), copy_env(work, "desk-xdg")
            syncd(env, "init", str(laptop), "--workspace", "demo", "--database-url", dsn)
            name_device(env, "laptop")
            syncd(env, "import")
            (laptop / "projects/ingest/CURRENT_SESSION").write_text("session_id: s2\n")
            (laptop / "projects/ingest/session_state.json").write_text(json.dumps(
                {"stages": {"intent": "completed", "context": "completed", "spec": "completed", "plan": "completed",
                            "tasks": "in_progress", "implementation": "completed", "feedback": "pending"}}))
            syncd(env, "sync")
            syncd(other, "init", str(desk), "--workspace", "demo", "--database-url", dsn)
            name_device(other, "desk")
            syncd(other, "sync")
            text = (laptop / SPEC).read_text()
            (desk / SPEC).write_text(text.replace("draft", "draft, reviewed at the desk"))
            syncd(other, "sync")
            (laptop / SPEC).write_text(text.replace("draft", "draft, rewritten on the laptop"))
            config = Path(env["XDG_CONFIG_HOME"]) / "syncd/syncd.yaml"
            with config.open("a") as f:
                f.write("daemon:\n  dashboard: true\n")
            daemon = subprocess.Popen([sys.executable, "-m", "syncd", "run"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=(work / "daemon.log").open("w"))
            state = Path(env["XDG_STATE_HOME"])
            url = wait_for(lambda: next((f.read_text().strip() for f in state.rglob("dashboard.url")), None))
            status = lambda: json.loads(subprocess.run(  # noqa: E731
                [sys.executable, "-m", "syncd", "status", "--json"], env=env, capture_output=True, text=True).stdout)
            wait_for(lambda: status()["daemon"]["state"] == "held")
            flags = [*CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium'}"]
            dom = subprocess.run(["chromium", *flags, "--dump-dom", url], check=True, capture_output=True,
                                 text=True).stdout
            args.out.parent.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            subprocess.run(["chromium", *flags, f"--window-size=1400,{args.height}", f"--screenshot={args.out}", url],
                           check=True, capture_output=True)
            held = {name: len(re.findall(pattern, dom)) for name, pattern in (
                ("sessions", '<tr data-session="'), ("activity rows", '<tr class="kind-'),
                ("held conflicts", 'class="conflict"'), ("charts", "<svg"), ("disagreements flagged", "class=\"flag\""))}
            print(f"pipeline: {commits} commits imported, two working copies, one conflict held")
            print(f"page: {len(dom) / 1024:.1f} KiB; Chromium's DOM holds "
                  + ", ".join(f"{n} {name}" for name, n in held.items()))
            print(f"screenshot: {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, "
                  f"{time.monotonic() - started:.1f} s in Chromium)")
    except SystemExit:
        if (work / "daemon.log").exists():
            print((work / "daemon.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
