"""Log lines: journald's format under systemd, a rotating file otherwise, and never a secret."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from supabase_standin import StandIn, token
from syncd import logs
from test_login import ANON, copy_for, login

pytestmark = pytest.mark.usefixtures("private_xdg")


@pytest.fixture
def run_daemon():
    """`syncd run` with its stderr in the copy's log; killed at the end if still running."""
    started: list[subprocess.Popen] = []

    def run(copy: WorkingCopy, *options: str, env: dict | None = None) -> subprocess.Popen:
        started.append(subprocess.Popen(
            [sys.executable, "-m", "syncd", *options, "--config", str(copy.config), "run"],
            env=env or copy.env, stdout=subprocess.DEVNULL, stderr=copy.log.open("ab")))
        return started[-1]
    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_full_run_at_debug_level_logs_no_key_or_token(tmp_path, dsn, run_daemon):
    standin = StandIn(dsn)
    with standin as url:
        standin.access_ttl = 2  # tokens refreshed again and again during the run
        b = copy_for(tmp_path, "b", url)
        login(b, standin, {"login": "bob", "name": "Bob", "email": "bob@example.com"})
        b.root.mkdir(parents=True, exist_ok=True)
        (b.root / "spec.md").write_text("by bob\n")
        with b.config.open("a") as f:
            f.write("daemon: {debounce: 0.1, poll_interval: 1}\n")
        daemon = run_daemon(b, "--log-level", "debug")
        wait_for(lambda: b.status()["daemon"]["state"] == "running", timeout=30)
        time.sleep(4.5)  # two refreshes at least
        (b.root / "more.md").write_text("more\n")
        wait_for(lambda: "more.md" in b.cli("log", "more.md", check=False).stdout, timeout=30)
        daemon.terminate()
        assert daemon.wait(timeout=60) == 0
        assert standin.refreshes >= 2
        # a server's daemon with a service key, over the same store
        service_key = token("service_role")
        c = copy_for(tmp_path, "c", url)
        c.env["SYNCD_SUPABASE_SERVICE_KEY"] = service_key
        c.root.mkdir(parents=True, exist_ok=True)
        sync = c.cli("-vv", "sync")
        secrets = [ANON, service_key, *standin.issued]
    written = [b.log.read_text(), sync.stderr,
               *(p.read_text() for p in (tmp_path / "b").rglob("syncd.log*"))]
    assert len(written) >= 3 and "syncd.daemon: running" in written[2]  # the rotating file is there
    assert sum(len(w) for w in written) > 10_000  # debug lines, not silence
    leaked = [(i, s[:12]) for s in secrets for i, w in enumerate(written) if s in w or s[-16:] in w]
    assert leaked == []


def test_under_journald_lines_carry_a_priority_and_no_time(tmp_path, dsn, run_daemon):
    env = isolated_env(tmp_path)
    a = WorkingCopy(tmp_path, "a", env)
    a.init("team", dsn)
    a.root.mkdir(parents=True, exist_ok=True)
    a.log.touch()
    st = os.stat(a.log)  # what systemd puts in JOURNAL_STREAM: the stderr it connected
    daemon = run_daemon(a, env={**env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    wait_for(lambda: "running" in a.log.read_text())
    (a.root / "x.md").write_text("x\n")
    wait_for(lambda: "pushed 1" in a.log.read_text())
    daemon.terminate()
    daemon.wait(timeout=60)
    lines = a.log.read_text().splitlines()
    assert "<6>syncd.daemon: running" in lines and "<6>syncd.daemon: stopped" in lines
    assert all(line.startswith("<") for line in lines), lines
    assert not list((tmp_path / "a").rglob("syncd.log"))  # the journal keeps it instead


def test_the_mask_covers_registered_secrets_jwts_and_passwords(caplog):
    logs.secret("a-refresh-token-123")
    record = logging.LogRecord("syncd.x", logging.INFO, __file__, 1, "got %s and %s from %s",
                               ("a-refresh-token-123", token("anon"), "postgresql://u:hunter2@db/x"), None)
    logs.Redact().filter(record)
    assert record.getMessage() == "got *** and *** from postgresql://***@db/x"
    assert logs.mask("host=db password=hunter2 dbname=x") == "host=db password=*** dbname=x"
