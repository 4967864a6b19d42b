"""Trouble is reported, not swallowed: `sync --once` exits 5 naming each path it could not
sync, and a daemon that cannot write some paths is `degraded` and says each problem once."""
from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from syncd.cli.errors import EXIT_NOT_SYNCED
from syncd.cli.main import main
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

from copies import Copy
from daemons import WorkingCopy, isolated_env, wait_for
from test_bounded_contract import _plant


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a real filesystem with 1 MiB of room at the path it is given."""
    mounted = []

    def mount(path):
        path.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True,
                              text=True)
        if done.returncode:
            pytest.skip(f"a full disk needs a filesystem of its own, and mounting one is not allowed here: "
                        f"{done.stderr.strip()}")
        mounted.append(path)
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=True)


def commit(dsn: str, changes: list[Change]) -> None:
    store = PostgresStore(dsn, "team")
    try:
        store.commit(changes)
    finally:
        store.close()


def test_sync_once_exits_5_and_names_each_path_it_could_not_sync(tmp_path, dsn, private_xdg, small_disk):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    small_disk(b.root)
    a.init(), b.init()
    (a.root / "big.md").write_text("x" * 1_500_000)  # more than b's disk holds
    (a.root / "small.md").write_text("fits\n")
    a.sync()
    commit(dsn, [Change("n" * 300 + ".md", None, text("a name longer than a file name may be\n"))])
    _plant(dsn, "tools/.git", text("gitdir: elsewhere\n"), b"gitdir: elsewhere\n")  # stored before 0015
    result = b.cli("sync", "--once", expect=EXIT_NOT_SYNCED)
    assert "3 paths cannot be synced" in result.output, result.output
    assert "big.md: cannot change the local file (No space left on device)" in result.output
    assert "File name too long" in result.output and "tools/.git" in result.output
    report = b.sync(expect=EXIT_NOT_SYNCED)
    assert set(report["failed"]) == {"big.md", "n" * 300 + ".md", "tools/.git"}
    assert report["failed"]["big.md"] == "No space left on device"
    assert (b.root / "small.md").read_text() == "fits\n"


def test_policy_skips_are_not_failures(tmp_path, dsn, private_xdg):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    with a.config.open("a") as f:
        f.write("files:\n  binary: skip\n")
    (a.root / "logo.png").write_bytes(b"\x89PNG\x00\xff")  # binary: skip is the setting
    (a.root / "notes.md").write_text("notes\n")
    report = a.sync()
    assert "logo.png" in report["skipped"] and report["failed"] == {}


def test_a_daemon_that_cannot_write_is_degraded_and_says_so_once(tmp_path, dsn, small_disk):
    env = isolated_env(tmp_path)
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    small_disk(b.root)
    for copy in (a, b):
        copy.init("team", dsn, "daemon: {debounce: 0.1, poll_interval: 0.5, rescan_interval: 0.5}")
    (b.root / "filler.md").write_text("f" * 600_000)
    b.start()
    try:
        (a.root / "big.md").write_text("x" * 600_000)  # fits only once the filler is gone
        a.cli("sync", "--once")
        status = wait_for(lambda: (s := b.status())["daemon"]["state"] == "degraded" and s, timeout=30)
        assert status["daemon"]["reason"] == "1 path cannot be synced (No space left on device)", status
        said = CliRunner().invoke(main, ["status", "--config", str(b.config)], env=b.env)
        assert said.exit_code == EXIT_NOT_SYNCED and "daemon: degraded" in said.output  # as `sync --once` exits
        # several more passes (one each 0.5 s) fail the same way
        wait_for(lambda: b.status()["last_sync"] > status["last_sync"] + 3, timeout=30)
        log = b.log.read_text()
        assert log.count("No space left on device") == 2, log[-3000:]  # the file's line, the state's line
        (b.root / "filler.md").unlink()
        wait_for(lambda: (b.root / "big.md").exists() and b.status()["daemon"]["state"] == "running", timeout=30)
    finally:
        b.kill()


def test_an_error_the_server_answers_with_is_not_a_lost_connection(dsn):
    """A limit the server hits (jsonb's 256 MB, SQLSTATE 54000) is an OperationalError to
    psycopg; taken for a lost connection, it made daemons say "offline: ... go out on
    reconnect" for ever. It is the call's failure, said as such; a lost connection is still one."""
    import psycopg
    from syncd.store.rpc import StoreError, StoreUnavailable
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("""create function public.syncd_too_big(jsonb) returns jsonb language plpgsql as $$
                        begin raise exception 'total size of jsonb array elements exceeds the maximum'
                              using errcode = '54000'; end $$""")
    store = PostgresStore(dsn, "team")
    try:
        with pytest.raises(StoreError, match="exceeds the maximum") as raised:
            store._call("syncd_too_big", {})
        assert not isinstance(raised.value, StoreUnavailable)
        with psycopg.connect(dsn, autocommit=True) as admin:  # the server ends the connection
            admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                          "where datname = current_database() and pid <> pg_backend_pid()")
        assert store._call("syncd_clock", {})["now"]  # reconnected once, as before
    finally:
        store.close()


def test_a_journal_on_a_full_disk_degrades_the_daemon_and_stops_nothing(tmp_path, dsn, small_disk):
    """The usual case of a full disk: the root and the state directory on the same one. The
    daemon died with a traceback (sqlite3: database or disk is full); now it says why, in its
    heartbeat and log, and syncs again once there is room."""
    import psycopg
    env = isolated_env(tmp_path)
    small_disk(tmp_path / "disk")
    a = WorkingCopy(tmp_path, "a", env)
    b = WorkingCopy(tmp_path / "disk", "b", dict(env, XDG_STATE_HOME=str(tmp_path / "disk/state")))
    for copy in (a, b):
        copy.init("team", dsn, "daemon: {debounce: 0.1, poll_interval: 0.5, rescan_interval: 0.5}")
    b.start()
    try:
        with open(b.root / "filler.md", "wb") as f:  # every byte of the disk
            try:
                f.write(b"f" * 2_000_000)
            except OSError:
                pass
        for n in range(4):
            (a.root / f"big{n}.md").write_text(f"{n}" * 100_000)
        a.cli("sync", "--once")

        def degraded():
            with psycopg.connect(dsn) as conn:
                return conn.execute("select state, reason from devices where state = 'degraded'").fetchone()
        state, reason = wait_for(degraded, timeout=30)
        assert b.process.poll() is None, b.log.read_text()[-2000:]
        (b.root / "filler.md").unlink()
        wait_for(lambda: all((b.root / f"big{n}.md").exists() for n in range(4)), timeout=30)
        assert "Traceback" not in b.log.read_text()
    finally:
        b.kill()
