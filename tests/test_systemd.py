"""`syncd run` under systemd's notification protocol: a real daemon, a fake NOTIFY_SOCKET."""
from __future__ import annotations

import json

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from copies import Copy
from daemons import WorkingCopy, isolated_env, wait_for
from relay import Relay

pytestmark = pytest.mark.usefixtures("private_xdg")
WATCHDOG_USEC = 1_000_000  # systemd would expect a ping every second; syncd pings every half


class NotifySocket:
    """What systemd's end of $NOTIFY_SOCKET receives, with arrival times."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def seen(self, field: str) -> list[float]:
        return [t for t, m in self.messages if field in m.split("\n")]

    def statuses(self) -> list[str]:
        return [line[7:] for _, m in self.messages for line in m.split("\n") if line.startswith("STATUS=")]

    def pings_between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in self.seen("WATCHDOG=1"))


@pytest.fixture
def notified(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    env = isolated_env(tmp_path) | {"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    yield sock, env
    sock.sock.close()


def test_ready_status_and_watchdog_and_a_wedged_loop_stops_pinging(notified, tmp_path, dsn):
    sock, env = notified
    a = WorkingCopy(tmp_path, "a", env)
    a.init("team", dsn, "device_name: a")
    a.root.mkdir(parents=True, exist_ok=True)
    a.start(wait=False)
    try:
        wait_for(lambda: sock.seen("READY=1"))
        [ready] = [m for _, m in sock.messages if "READY=1" in m]
        assert f"STATUS=watching {a.root}" in ready
        with psycopg.connect(dsn) as conn:  # by then the store has answered: the device is registered
            assert conn.execute("select name from devices").fetchall() == [("a",)]
        wait_for(lambda: "running" in sock.statuses())
        # idle and healthy: pings keep coming
        time.sleep(3)
        now = time.monotonic()
        assert sock.pings_between(now - 3, now) >= 4
        # wedge the sync loop: a commit waits forever on the workspace row a test transaction holds
        with psycopg.connect(dsn) as holder:
            holder.execute("select * from workspaces for update")
            (a.root / "stuck.md").write_text("this commit cannot finish\n")
            wait_for(lambda: any(q for (q,) in holder.execute(
                "select query from pg_stat_activity where wait_event_type = 'Lock'")))
            wedged = time.monotonic()
            time.sleep(3)
            assert sock.pings_between(wedged, time.monotonic()) == 0  # systemd would restart it now
            holder.rollback()
        wait_for(lambda: sock.pings_between(time.monotonic() - 1, time.monotonic()) >= 1)
        with psycopg.connect(dsn) as conn:
            wait_for(lambda: conn.execute("select count(*) from documents where path = 'stuck.md'").fetchone()[0])
    finally:
        assert a.stop() == 0
    assert sock.seen("STOPPING=1")


def test_a_daemon_started_offline_waits_for_the_store_before_ready(notified, tmp_path, dsn):
    sock, env = notified
    relay = Relay(dsn)  # the store's port, closed for now
    a = WorkingCopy(tmp_path, "a", env)
    relay.open()
    a.init("team", relay.dsn, "device_name: a")
    relay.close()
    a.root.mkdir(parents=True, exist_ok=True)
    (a.root / "written-offline.md").write_text("waits on disk\n")
    a.start(wait=False)
    try:
        wait_for(lambda: any("waiting for the store" in s for s in sock.statuses()))
        time.sleep(2)
        assert not sock.seen("READY=1") and a.process.poll() is None  # neither ready nor exited
        assert len(sock.seen("WATCHDOG=1")) >= 2  # alive while it waits
        relay.open()
        wait_for(lambda: sock.seen("READY=1"), timeout=45)  # its backoff is at most 30 s
        with psycopg.connect(dsn) as conn:
            wait_for(lambda: conn.execute("select count(*) from documents").fetchone()[0] == 1)
    finally:
        a.stop()
        relay.close()


UNITS = Path(__file__).resolve().parent.parent / "systemd"


def analyze(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """systemd-analyze, installed from Debian's packages when the machine lacks it."""
    if shutil.which("systemd-analyze") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True)
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def user_manager_env():
    """XDG_RUNTIME_DIR for systemd-analyze's user manager, on a short path: the sockets it
    names there must fit a socket address (108 bytes), and a test's tmp_path may not."""
    runtime = Path(tempfile.mkdtemp(prefix="run-"))
    runtime.chmod(0o700)
    yield {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    shutil.rmtree(runtime, ignore_errors=True)


def test_the_units_pass_systemd_analyze_verify(tmp_path, user_manager_env):
    system = analyze("verify", str(UNITS / "syncd.service"))
    assert (system.returncode, system.stdout + system.stderr) == (0, "")  # warnings count as failures
    instance = tmp_path / "syncd@work.service"  # a template is verified as one of its instances
    instance.write_text((UNITS / "syncd@.service").read_text())
    user = analyze("verify", "--user", str(instance), env=user_manager_env)
    assert (user.returncode, user.stdout + user.stderr) == (0, "")
    broken = tmp_path / "syncd@broken.service"
    broken.write_text(instance.read_text().replace("WatchdogSec=2min", "WatchdogSec=soon"))
    assert "Failed to parse sec value" in analyze("verify", "--user", str(broken), env=user_manager_env).stderr


def test_the_package_ships_the_template_unit_as_it_is_in_the_repository():
    shipped = resources.files("syncd.daemon").joinpath("units", "syncd@.service").read_text()
    assert shipped == (UNITS / "syncd@.service").read_text()


@pytest.fixture
def fake_systemctl(tmp_path, monkeypatch):
    """No user service manager runs in a test machine: a systemctl that records what it is
    asked and answers `show` as systemd would for a running instance."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    script = bin_dir / "systemctl"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
[ -n "$SYSTEMCTL_FAILS" ] && {{ echo "Failed to connect to bus: No medium found" >&2; exit 1; }}
case "$*" in *show*) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=4242\\n'
  printf 'StatusText=running\\nNRestarts=0\\n';; esac
exit 0
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return lambda: calls.read_text().splitlines() if calls.exists() else []


def test_service_install_writes_a_unit_that_verifies_and_enables_the_instance(tmp_path, dsn, fake_systemctl,
                                                                             monkeypatch, user_manager_env):
    config_home = Path(os.environ["XDG_CONFIG_HOME"])
    copy = Copy(tmp_path, "work", dsn)
    copy.config = config_home / "syncd" / "work.yaml"
    copy.root = tmp_path / "a dir with spaces & 100%" / "tree"
    copy.init()
    out = copy.cli("service", "install").output
    assert "enabled and started syncd@work" in out
    units = config_home / "systemd" / "user"
    conf = (units / "syncd@work.service.d" / "syncd.conf").read_text()
    assert f'ExecStart="{sys.executable}" -m syncd --config %E/syncd/%i.yaml run' in conf
    assert 'ReadWritePaths="' + str(copy.root).replace("%", "%%") + '"' in conf
    assert fake_systemctl() == ["--user daemon-reload", "--user enable --now --no-block syncd@work.service"]
    verified = analyze("verify", "--user", "syncd@work.service", env=user_manager_env)
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")
    assert copy.cli("service", "status").output == "syncd@work: active (running), pid 4242: running\n"
    assert json.loads(copy.cli("service", "status", "--json").output) == {
        "unit": "syncd@work.service", "installed": True, "active": "active", "sub": "running", "pid": 4242,
        "status": "running", "restarts": 0}
    assert "removed syncd@work" in copy.cli("service", "uninstall").output
    assert not (units / "syncd@work.service.d").exists() and not (units / "syncd@.service").exists()
    # no user manager to talk to (an SSH session, a container): the files, and what to do
    monkeypatch.setenv("SYSTEMCTL_FAILS", "1")
    out = copy.cli("service", "install", expect=1).output
    assert "Failed to connect to bus" in out and "loginctl enable-linger" in out
    assert (units / "syncd@.service").exists()


def test_service_install_names_where_the_config_must_be(tmp_path, dsn, fake_systemctl):
    copy = Copy(tmp_path, "elsewhere", dsn)
    copy.init()
    out = copy.cli("service", "install", expect=1).output
    assert "the service reads its config from" in out and "/syncd/syncd.yaml) and pass that path" in out
    assert fake_systemctl() == []
