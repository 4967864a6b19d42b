"""Device heartbeats, `syncd stats` and `syncd report --html`, on a real PostgreSQL."""
from __future__ import annotations

import datetime
import json
import re
from html.parser import HTMLParser

import psycopg
import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from syncd import __version__
from syncd.report.page import render
from syncd.report.units import duration

pytestmark = pytest.mark.usefixtures("private_xdg")


def devices(copy) -> dict[str, dict]:
    return {d["device"]: d for d in json.loads(copy.cli("stats", "--json").stdout)["devices"]}


@pytest.fixture
def daemons(tmp_path):
    """Working copies whose daemons are killed at the end, whatever the test's fate."""
    env, made = isolated_env(tmp_path), []

    def make(name: str) -> WorkingCopy:
        made.append(WorkingCopy(tmp_path, name, env))
        return made[-1]
    yield make
    for copy in made:
        copy.kill()


def test_daemons_report_their_state_and_how_far_behind_they_are(daemons, dsn):
    a, b = daemons("a"), daemons("b")
    for copy in (a, b):
        copy.init("team", dsn, "device_name: " + copy.root.parent.name)
        copy.root.mkdir(parents=True, exist_ok=True)
    a.start()
    b.start()
    wait_for(lambda: {d["status"] for d in devices(a).values()} == {"running"})
    assert {d["version"] for d in devices(a).values()} == {__version__}
    assert b.stop() == 0
    assert devices(a)["b"]["status"] == "stopped"
    (a.root / "notes.md").write_text("while b is away\n")
    wait_for(lambda: devices(a)["b"]["behind"] == 1)
    seen = devices(a)
    assert seen["a"]["behind"] == 0 and seen["b"]["lag_seconds"] > 0
    line = next(l for l in a.cli("stats").stdout.splitlines() if l.startswith("  b:"))
    assert re.match(r"  b: stopped, syncd \S+, last heartbeat \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, "
                    r"1 version behind \(\d", line), line
    # a daemon that stops beating without saying so (killed, asleep, cut off) is silent once
    # two minutes have passed, however recently a command from its working copy ran
    a.kill()
    assert devices(a)["a"]["status"] == "running"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update public.devices set heartbeat_at = heartbeat_at - interval '3 minutes' where name = 'a'")
    assert devices(a)["a"]["status"] == "silent"


def test_an_outage_is_recorded_once_the_store_is_back(daemons, tmp_path, dsn):
    a = daemons("a")
    a.init("team", dsn, "device_name: a")
    a.root.mkdir(parents=True, exist_ok=True)
    a.start()
    wait_for(lambda: a.status()["daemon"]["state"] == "running")
    a.root.rename(tmp_path / "moved")  # the root vanishes: the daemon pauses at its next pass
    (tmp_path / "moved/x.md").write_text("wakes the watcher, still watching the moved directory\n")
    wait_for(lambda: a.status()["daemon"]["state"] == "paused")
    (tmp_path / "moved").rename(a.root)
    wait_for(lambda: a.status()["daemon"]["state"] == "running")
    a.stop()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select kind, details from activity_log where kind like 'daemon%' order by id").fetchall()
    assert [k for k, _ in rows] == ["daemon_started", "daemon_paused", "daemon_running", "daemon_stopped"]
    recovered = rows[2][1]["after"]
    assert recovered["state"] == "paused" and "root" in recovered["reason"]


class Page(HTMLParser):
    """What a browser would build from the report: elements, and any outside reference."""

    def __init__(self, html: str):
        super().__init__()
        self.charts, self.bars, self.outside, self.headings = 0, [], [], []
        self._heading = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.charts += tag == "svg"
        if tag == "rect" and a.get("class") == "bar":
            self.bars.append((a["data-label"], float(a["data-value"])))
        for key in ("src", "href"):
            if a.get(key):
                self.outside.append(a[key])
        if tag == "script" or (tag == "link" and a.get("rel") == "stylesheet"):
            self.outside.append(tag)
        self._heading = tag == "h2"

    def handle_data(self, data):
        if self._heading:
            self.headings.append(data)
            self._heading = False


def test_the_report_is_one_page_with_charts_of_the_figures(copies, tmp_path):
    a, b = copies
    for session in ("s1", "s2"):
        (a.root / f"projects/P/sessions/{session}/intents").mkdir(parents=True)
        (a.root / f"projects/P/sessions/{session}/intents/intent.md").write_text(f"# Intent\n\n{session}\n")
    (a.root / "projects/P/sessions/s1/feedback").mkdir()
    (a.root / "projects/P/sessions/s1/feedback/f.md").write_text("Good.\n")
    a.sync()
    target = tmp_path / "report.html"
    assert "wrote" in b.cli("report", "--html", str(target)).output
    page = Page(target.read_text())
    assert page.outside == []  # nothing fetched: it opens offline, from a mail attachment
    assert page.headings == ["Stage completion per project", "Sessions", "Activity over time",
                             "Lead time, intent to feedback", "Time per stage (median)", "Concurrent edits",
                             "Devices"]
    assert page.charts == 4
    bars = dict(page.bars)
    assert bars["P/intent"] == 100 and bars["P/feedback"] == 50 and bars["P/context"] == 0
    assert bars[f"a/{datetime.date.today():%m-%d}"] == 3  # three edits by a today (UTC, close enough)
    assert "P/s1" in bars  # a lead time; s2 has no feedback yet
    assert "without feedback yet: P/s2" in target.read_text()
    # a place it cannot write is a clear error, and leaves nothing behind
    (tmp_path / "a-file").write_text("")
    out = b.cli("report", "--html", str(tmp_path / "a-file/r.html"), expect=1).output
    assert "cannot write" in out and "a-file/r.html: Not a directory" in out


def test_an_empty_workspace_reports_that_nothing_happened_yet():
    empty = {"stage_completion": [], "stage_times": [], "lead_times": [], "edits_per_day": [],
             "conflict_rates": [], "devices": []}
    page = render("team", empty, [], datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    assert Page(page).charts == 0
    assert page.count('class="empty"') == 7


def test_durations_read_like_a_person_would_say_them():
    assert [duration(s) for s in (None, 0, 59.6, 61, 3600, 3 * 3600 + 20 * 60, 2 * 86400 + 4 * 3600 + 59)] == \
        ["-", "0s", "1m", "1m 1s", "1h", "3h 20m", "2d 4h"]
