"""Realtime wake-ups over the Supabase transport: real daemons, supabase-py's async
Realtime client, the loopback Realtime stand-in fed by the database's notifications."""
from __future__ import annotations

import time

import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from supabase_standin import StandIn, token

pytestmark = pytest.mark.on_both_databases

POLL = 4.0  # seconds: the safety net when Realtime is gone


@pytest.fixture
def standin(dsn):
    server = StandIn(dsn)
    with server:
        yield server


def test_realtime_wakes_the_daemon_and_without_it_polling_misses_nothing(standin, tmp_path):
    env = {**isolated_env(tmp_path), "SYNCD_SUPABASE_SERVICE_KEY": token("service_role")}
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    for copy in (a, b):
        copy.cli("init", str(copy.root), "--workspace", "team", "--supabase-url", standin.url)
    with b.config.open("a") as f:
        f.write(f"daemon: {{debounce: 0.1, poll_interval: {POLL}}}\n")
    a.root.mkdir(parents=True, exist_ok=True)
    b.start()
    wait_for(lambda: "Realtime connected" in b.log.read_text(), timeout=30)

    def propagate(content: str, timeout: float) -> float:
        start = time.monotonic()
        (a.root / "spec.md").write_text(content)
        a.cli("sync")
        wait_for(lambda: (b.root / "spec.md").exists() and (b.root / "spec.md").read_text() == content,
                 timeout=timeout)
        return time.monotonic() - start

    with_realtime = [propagate(f"edit {i}\n", POLL * 3) for i in range(3)]
    assert b.log.read_text().count("remote change announced by Realtime") >= 3
    standin.realtime_on = False  # the Realtime service goes away
    wait_for(lambda: "Realtime unavailable" in b.log.read_text(), timeout=30)
    without = [propagate(f"no realtime {i}\n", POLL * 3) for i in range(2)]
    print(f"propagation with Realtime: {[round(t, 2) for t in with_realtime]} s; "
          f"without (poll every {POLL} s): {[round(t, 2) for t in without]} s")
    assert b.stop() == 0
