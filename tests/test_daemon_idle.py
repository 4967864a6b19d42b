"""An idle `syncd run` asks the store before it scans: a quiet poll costs two small calls,
not a pass over the whole tree, and a change whose notification never came still arrives."""
from __future__ import annotations

import time

import psycopg

from daemons import WorkingCopy, isolated_env, wait_for

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
