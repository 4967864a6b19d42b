"""An idle `syncd run` asks the store before it scans: a quiet poll costs two small calls,
not a pass over the whole tree, and a change whose notification never came still arrives.
Without passes on every poll, a notification must never be lost to a pass in flight."""
from __future__ import annotations

import random
import time

import psycopg

from daemons import WorkingCopy, isolated_env, wait_for
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

POLL = 0.5  # seconds: many polls within the test, none of them a pass


def test_a_quiet_poll_is_no_pass_and_an_unannounced_change_still_arrives(tmp_path, dsn):
    env = isolated_env(tmp_path)
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    for copy in (a, b):
        copy.init("team", dsn, f"daemon: {{debounce: 0.1, poll_interval: {POLL}, rescan_interval: 600}}")
    (a.root / "spec.md").write_text("first\n")
    a.cli("sync", "--once")
    try:
        b.start()
        wait_for(lambda: (b.root / "spec.md").exists())

        def settled():  # the last pass stays the last over several polls that found nothing
            before = b.status()["last_sync"]
            time.sleep(POLL * 6)
            return before is not None and b.status()["last_sync"] == before

        wait_for(settled, timeout=20)  # (polling passes would move it every POLL seconds)

        with psycopg.connect(dsn, autocommit=True) as conn:  # commits announce nothing from now on
            conn.execute("alter table public.document_versions disable trigger document_versions_notify")
        (a.root / "spec.md").write_text("second\n")
        a.cli("sync", "--once")
        wait_for(lambda: (b.root / "spec.md").read_text() == "second\n", timeout=30)
        assert b.stop() == 0
    finally:
        b.kill()
        print(b.log.read_text(errors="replace")[-4000:] if b.log.exists() else "")


def test_a_change_announced_during_a_pass_is_pulled_after_it(tmp_path, dsn):
    env = isolated_env(tmp_path)
    b = WorkingCopy(tmp_path, "b", env)
    b.init("team", dsn, "daemon: {debounce: 0.1, poll_interval: 600, rescan_interval: 600}")
    for i in range(2000):  # passes long enough for commits to land during them
        path = b.root / f"projects/P/sessions/s{i // 10}/specs/f{i % 10}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{i}\n")
    b.cli("sync", "--once")
    other = PostgresStore(dsn, "team")
    try:
        b.start()
        version = None
        for i in range(8):
            (b.root / "local.md").write_text(f"local {i}\n")  # starts a pass (which pushes it)
            time.sleep(random.uniform(0.1, 0.5))
            [result] = other.commit([Change("remote.md", version, {"encoding": "utf-8", "text": f"remote {i}\n",
                                                                    "format": "text"})])
            version = result.version
            wait_for(lambda: (b.root / "remote.md").exists()
                     and (b.root / "remote.md").read_text() == f"remote {i}\n", timeout=30)
        assert b.stop() == 0
    finally:
        other.close()
        b.kill()
        print(b.log.read_text(errors="replace")[-4000:] if b.log.exists() else "")
