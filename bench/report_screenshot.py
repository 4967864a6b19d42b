"""`syncd report --html` for a generated pipeline, rendered in headless Chromium to a PNG.

    python bench/report_screenshot.py [--dsn URL] [--out bench/figures/report.png]

The pipeline: three projects, ten sessions and five people over six weeks, as a Git history
imported with `syncd import`; one plan left an untouched template, a few conflicts
recorded. Everything runs through the real `syncd` command. Chromium is Debian's package,
installed by bench/install-chromium when missing. Prints what Chromium's DOM holds (charts
and bars) and where the screenshot is.
"""
from __future__ import annotations

import argparse
import datetime
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import scratch_database
from syncd.store.postgres import PostgresStore

HERE = Path(__file__).resolve().parent
PEOPLE = [("Alice Archer", "alice"), ("Bob Builder", "bob"), ("Carol Chen", "carol"), ("Dan Diaz", "dan"),
          ("Eve Evans", "eve")]
STAGES = [("intents", "Intent"), ("contexts", "Context"), ("specs", "Spec"), ("plans", "Plan"),
          ("tasks", "Tasks"), ("implementation", "Implementation"), ("feedback", "Feedback")]
SESSIONS = {"ingest": 4, "billing": 3, "search": 3}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def history(root: Path, seed: int = 11) -> int:
    """Each session walks the stages, a few hours to days apart, each stage edited a few times."""
    rng = random.Random(seed)
    start = datetime.datetime(2026, 10, 5, 9, tzinfo=datetime.timezone.utc)
    commits: list[tuple[datetime.datetime, tuple[str, str], str, str]] = []
    for project, count in SESSIONS.items():
        for n in range(count):
            when = start + datetime.timedelta(days=rng.uniform(0, 20))
            reach = rng.randint(3, len(STAGES)) if n else len(STAGES)
            for i, (folder, title) in enumerate(STAGES[:reach]):
                path = f"projects/{project}/sessions/s{n + 1}/{folder}/{folder}.md"
                template = project == "billing" and folder == "plans" and n == 0
                for edit in range(1 if template else rng.randint(1, 4)):
                    body = f"# {title}\n\n" + ("- [ ] \n\nTODO\n" if template else
                                               f"{title} of {project}/s{n + 1}, draft {edit + 1}.\n")
                    commits.append((when, rng.choice(PEOPLE), path, body))
                    when += datetime.timedelta(hours=rng.uniform(1, 30))
                when += datetime.timedelta(hours=rng.uniform(4, 60))
    git(root, "init", "-q", "-b", "main")
    for when, (name, login), path, body in sorted(commits):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
        git(root, "add", path)
        git(root, "commit", "-q", "-m", f"{path}: edit", env={
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": f"{login}@example.com", "GIT_AUTHOR_DATE": when.isoformat(),
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": f"{login}@example.com",
            "GIT_COMMITTER_DATE": when.isoformat()})
    return len(commits)


def git(root: Path, *args: str, env: dict | None = None) -> None:
    subprocess.run(["git", *args], cwd=root, check=True,
                   env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})})


def syncd(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "syncd", *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="an admin DSN to create the scratch database on (default: a private server)")
    parser.add_argument("--out", type=Path, default=HERE / "figures/report.png")
    parser.add_argument("--height", type=int, default=2300, help="the window's height in pixels")
    args = parser.parse_args()
    subprocess.run([str(HERE / "install-chromium")], check=True)
    work = Path(tempfile.mkdtemp(prefix="syncd-report-"))
    try:
        with scratch_database(work, args.dsn) as dsn:
            root = work / "tree"
            root.mkdir()
            commits = history(root)
            env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "XDG_STATE_HOME": str(work / "state"),
                   "XDG_DATA_HOME": str(work / "data")}
            syncd(env, "init", str(root), "--workspace", "demo", "--database-url", dsn)
            syncd(env, "import")
            store = PostgresStore(dsn, "demo")
            store.record([{"kind": "conflict", "path": f"projects/{p}/sessions/s1/specs/specs.md"}
                          for p in ("ingest", "ingest", "search")])
            store.close()
            page = work / "report.html"
            syncd(env, "report", "--html", str(page))
            dom = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium'}",
                                  "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True).stdout
            args.out.parent.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium'}",
                            f"--window-size=800,{args.height}", f"--screenshot={args.out}", page.as_uri()],
                           check=True, capture_output=True)
            print(f"pipeline: {commits} commits, {sum(SESSIONS.values())} sessions, {len(PEOPLE)} people")
            charts, bars = len(re.findall("<svg", dom)), len(re.findall('class="bar"', dom))
            print(f"report: {page.stat().st_size / 1024:.1f} KiB; Chromium's DOM holds {charts} charts "
                  f"and {bars} bars")
            print(f"screenshot: {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, "
                  f"{time.monotonic() - started:.1f} s in Chromium)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
