"""The activity log: a row for every version and event, read and followed from the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from daemons import WorkingCopy, isolated_env, wait_for

pytestmark = pytest.mark.usefixtures("private_xdg")


def kinds(dsn: str) -> list[tuple[str, str | None, int | None]]:
    with psycopg.connect(dsn) as conn:
        return [(k, d.get("path"), d.get("version")) for k, d in
                conn.execute("select kind, details from activity_log order by id")]


def test_every_version_and_settlement_is_one_activity_row(copies, dsn):
    a, b = copies
    (a.root / "projects/P/sessions/s1/specs").mkdir(parents=True)
    spec = "projects/P/sessions/s1/specs/spec.md"
    (a.root / spec).write_text("one\n")
    a.sync()
    b.sync()
    (a.root / spec).write_text("a\n")
    (b.root / spec).write_text("b\n")
    a.sync()
    b.sync(expect=3)
    b.cli("resolve", spec, "--keep", "local")
    b.cli("restore", spec, "--version", "1")
    rows = [r for r in kinds(dsn) if r[1] == spec]
    assert rows == [("sync", spec, 1), ("sync", spec, 2), ("conflict", spec, None), ("resolve", spec, 3),
                    ("restore", spec, 4)]
    out = b.cli("activity", "--session", "s1").stdout.splitlines()
    assert [line.split("  ")[2] for line in out] == ["sync", "sync", "conflict", "resolve", "restore"]
    assert "  a  sync  " in out[1] and f"{spec} v2" in out[1] and "keep=local" in out[3]
    latest = [json.loads(line) for line in b.cli("activity", "--limit", "2", "--json").stdout.splitlines()]
    assert [(r["kind"], r["project"], r["session"], r["device"]) for r in latest] == \
        [("resolve", "P", "s1", "b"), ("restore", "P", "s1", "b")]
    assert b.cli("activity", "--project", "Q").stdout == ""
    assert b.cli("activity", "--since", "1h").stdout.count("\n") == 5
    assert "give a time like" in b.cli("activity", "--since", "yesterday-ish", expect=2).output


def test_follow_prints_an_edit_from_another_copy_at_once(tmp_path, dsn):
    env = isolated_env(tmp_path)
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    for copy in (a, b):
        copy.init("team", dsn, "device_name: " + copy.root.parent.name)
    b.root.mkdir(parents=True, exist_ok=True)
    follow = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(a.config), "activity", "--follow", "--json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, dict]] = []

    def read() -> None:
        for line in follow.stdout:
            lines.append((time.monotonic(), json.loads(line)))
    threading.Thread(target=read, daemon=True).start()
    try:
        time.sleep(2)  # following (its start-up is not what is measured)
        (b.root / "notes.md").write_text("from b\n")
        started = time.monotonic()
        b.cli("sync")
        synced = time.monotonic()
        wait_for(lambda: any(row["path"] == "notes.md" for _, row in lines), timeout=15)
        seen, row = next((t, r) for t, r in lines if r["path"] == "notes.md")
        print(f"activity --follow showed b's edit {seen - started:.3f} s after `syncd sync` started "
              f"(which took {synced - started:.3f} s as a process)")
        assert (row["kind"], row["device"]) == ("sync", "b")
        assert seen - started < 5  # generous: a process start, a commit, a NOTIFY, one query
    finally:
        follow.terminate()
        follow.wait(timeout=10)


def test_a_daemon_records_its_start_and_stop(tmp_path, dsn):
    env = isolated_env(tmp_path)
    a = WorkingCopy(tmp_path, "a", env)
    a.init("team", dsn)
    a.root.mkdir(parents=True, exist_ok=True)
    a.start()
    assert a.stop() == 0
    assert [k for k, _, _ in kinds(dsn)] == ["daemon_started", "daemon_stopped"]
