"""A copy's journal is tied to the store it synced with: pointed at another workspace or
database, or at its store restored from an earlier dump, a copy notices at its next pass,
rebuilds what it knows of the store from the store, and keeps every local file."""
from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import create_database, drop_database
from copies import Copy
from syncd.store.local_server import bindirs, major_version


def activity_kinds(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [k for (k,) in conn.execute("select kind from public.activity_log order by id")]


def set_config(copy: Copy, key: str, value: str) -> None:
    lines = [l for l in copy.config.read_text().splitlines() if not l.startswith(f"{key}:")]
    copy.config.write_text("\n".join([*lines, f"{key}: {value}"]) + "\n")


@pytest.fixture
def team(tmp_path, dsn, private_xdg):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init(), b.init()
    for n in range(3):
        (a.root / f"f{n}.md").write_text(f"file {n}\n")
    a.sync(), b.sync()
    return a, b


def test_a_copy_moved_to_another_workspace_pushes_its_files_there(team, tmp_path, dsn):
    a, _ = team
    c = Copy(tmp_path, "c", dsn, workspace="other")
    c.init()
    (c.root / "theirs.md").write_text("in other\n")
    c.sync()
    set_config(a, "workspace", "other")
    report = a.sync()
    assert report["pushed"] == 3 and report["pulled"] == 1, report
    c.sync()
    assert c.files() == a.files() and set(c.files()) == {"f0.md", "f1.md", "f2.md", "theirs.md"}
    assert "copy_rebuilt" in activity_kinds(dsn)


def test_a_copy_moved_to_another_database_pushes_its_files_there(team, tmp_path, pg_server_dsn, template_db):
    a, _ = team
    name = create_database(pg_server_dsn, template=template_db)
    try:
        other = make_conninfo(pg_server_dsn, dbname=name)
        d = Copy(tmp_path, "d", other)
        d.init()
        (d.root / "f0.md").write_text("file 0\n")  # the same file already there: in sync, not a conflict
        d.sync()
        set_config(a, "database_url", other)
        report = a.sync()
        assert report["pushed"] == 2 and not report["conflicts"], report
        d.sync()
        assert d.files() == a.files()
    finally:
        drop_database(pg_server_dsn, name)


def tool(name: str, dsn: str) -> str:
    """pg_dump or pg_restore of the server's own major version (one of another refuses it,
    or writes settings it does not know), else PATH's."""
    with psycopg.connect(dsn) as conn:
        version = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
    bindir = next((b for b in bindirs() if major_version(b) == version), None)
    return str(bindir / name) if bindir else name


def dump(dsn: str, path) -> None:
    subprocess.run([tool("pg_dump", dsn), "--format=custom", "--file", str(path), "--dbname", dsn], check=True)


def restore(dsn: str, server_dsn: str, path) -> None:
    """The database as it was at the dump: dropped, made again, restored."""
    name = conninfo_to_dict(dsn)["dbname"]
    drop_database(server_dsn, name)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    subprocess.run([tool("pg_restore", dsn), "--exit-on-error", "--dbname", dsn, str(path)], check=True,
                   capture_output=True)


def test_after_a_restore_from_an_earlier_dump_every_copy_syncs_again(team, tmp_path, dsn, pg_server_dsn):
    """The store loses what came after the dump; the copies still hold it. B's cursor is
    ahead of the restored store, and another copy's changes then reuse those sequence
    numbers: B must still receive them, and push what the store lost."""
    a, b = team
    dump(dsn, tmp_path / "before.dump")
    (a.root / "f0.md").write_text("file 0, edited after the dump\n")
    (a.root / "late.md").write_text("made after the dump\n")
    a.sync(), b.sync()
    assert b.files()["late.md"] == b"made after the dump\n"

    restore(dsn, pg_server_dsn, tmp_path / "before.dump")
    c = Copy(tmp_path, "c", dsn)
    c.init()
    c.sync()
    for n in range(6):  # past B's cursor: the sequence numbers B saw now name other changes
        (c.root / f"new{n}.md").write_text(f"new {n}\n")
    c.sync()

    report = b.sync(expect=None)
    assert {f"new{n}.md" for n in range(6)} <= set(b.files()), report
    assert "late.md" in b.files() and report["pushed"] >= 1  # what the store lost goes back
    (b.root / "f1.md").write_text("file 1, edited after the restore\n")
    assert b.sync(expect=None)["pushed"] == 1
    a.sync(expect=None)
    c.sync(expect=None)
    for copy in (a, c):
        assert copy.files()["f1.md"] == b"file 1, edited after the restore\n"
        assert copy.files()["late.md"] == b"made after the dump\n"
        assert {f"new{n}.md" for n in range(6)} <= set(copy.files())
    # f0.md: edited after the dump; its edit is in no version the store still has, so
    # both copies hold it as a conflict and nobody's bytes are lost
    assert a.files()["f0.md"] == b.files()["f0.md"] == b"file 0, edited after the dump\n"
    assert "copy_rebuilt" in activity_kinds(dsn)


def test_a_copy_that_pushed_after_the_dump_notices_before_its_cursor_does(team, tmp_path, dsn, pg_server_dsn):
    """A's own pushes after the dump were its newest knowledge: its cursor still points at a
    change the restored store has, but the store no longer has A's file."""
    a, b = team
    dump(dsn, tmp_path / "before.dump")
    (a.root / "only-in-a.md").write_text("pushed after the dump\n")
    assert a.sync()["pushed"] == 1
    restore(dsn, pg_server_dsn, tmp_path / "before.dump")
    report = a.sync(expect=None)
    assert report["pushed"] == 1, report
    b.sync()
    assert b.files()["only-in-a.md"] == b"pushed after the dump\n"


def test_a_change_repeated_at_the_same_seq_by_a_regrown_history_is_not_the_one_seen():
    """After a restore, a copy pushing its files again can make the very change another copy
    saw at that seq (path, version, content); only its moment differs."""
    from syncd.engine.identity import Mark, rewound
    seen = Mark(3, "a.md", 1, "ab" * 32, "2026-12-01T10:00:00.123456+00:00")
    again = {"seq": 3, "path": "a.md", "version": 1, "sha256": "ab" * 32, "deleted": False}
    assert rewound(seen, {**again, "created_at": "2026-12-01T10:05:00.654321+00:00"})
    assert rewound(seen, {**again, "created_at": "2026-12-01T11:00:00.123456+01:00"}) is None  # the same moment
    assert rewound(seen, {**again, "version": 2, "created_at": seen.at}) and rewound(seen, None)


def test_a_running_daemon_notices_its_store_restored_and_receives_what_comes_after(tmp_path, dsn, pg_server_dsn):
    from daemons import WorkingCopy, isolated_env, wait_for
    env = isolated_env(tmp_path)
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    for copy in (a, b):
        copy.init("team", dsn, "daemon: {debounce: 0.1, poll_interval: 0.5, rescan_interval: 0.5}")
    (a.root / "f0.md").write_text("file 0\n")
    a.cli("sync", "--once")
    b.start()
    try:
        wait_for(lambda: (b.root / "f0.md").exists(), timeout=30)
        dump(dsn, tmp_path / "before.dump")
        (a.root / "late.md").write_text("after the dump\n")
        a.cli("sync", "--once")
        wait_for(lambda: (b.root / "late.md").exists(), timeout=30)
        restore(dsn, pg_server_dsn, tmp_path / "before.dump")  # b's cursor is now ahead of the store
        for n in range(4):
            (a.root / f"new{n}.md").write_text(f"new {n}\n")
        a.cli("sync", "--once", check=False)
        wait_for(lambda: all((b.root / f"new{n}.md").exists() for n in range(4)), timeout=45)
        assert "rebuilt from the store" in b.log.read_text()
        assert b.process.poll() is None
    finally:
        b.kill()


def test_a_copy_rebuilt_while_its_volume_is_away_writes_nothing_onto_the_mount_point(team, tmp_path, dsn,
                                                                                     pg_server_dsn):
    """Found by the harness (unmount, then the store restored): the rebuilt journal knows
    no synced file, so the empty mount point passed for a new copy's root. What was pulled
    onto it was hidden when the volume came back, and then deleted from the store as the
    user's deletes: here a teammate's new file."""
    a, b = team
    dump(dsn, tmp_path / "before.dump")
    (a.root / "after-dump.md").write_text("made after the dump\n")
    a.sync(), b.sync()
    away = b.root.with_name("tree.away")
    b.root.rename(away)  # the volume goes; its mount point stays, empty
    b.root.mkdir()
    restore(dsn, pg_server_dsn, tmp_path / "before.dump")
    (a.root / "teammate.md").write_text("a teammate's new file\n")
    a.sync(expect=None)
    paused = b.cli("sync", "--once", expect=None)
    assert "is empty and is not the directory it was" in paused.output, paused.output
    assert list(b.root.iterdir()) == []
    b.root.rmdir()
    away.rename(b.root)  # the volume is back
    b.sync(expect=None)
    a.sync(expect=None)
    for copy in (a, b):
        assert copy.files()["teammate.md"] == b"a teammate's new file\n"
        assert {f"f{n}.md" for n in range(3)} | {"after-dump.md"} <= set(copy.files())
