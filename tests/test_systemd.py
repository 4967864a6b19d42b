"""`syncd run` under systemd's notification protocol: a real daemon, a fake NOTIFY_SOCKET."""
from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest

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
