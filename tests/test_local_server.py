"""The private server starts from each source of binaries and runs the contract."""
from __future__ import annotations

import glob
import importlib.util
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from syncd.store.local_server import LocalServer, find_bindir
from syncd.store.migrate import bundled, migrate
from syncd.store.schema import dump

from test_schema_file import shipped


def _sources() -> list:
    sources = [pytest.param(None, id="found")]
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        sources.append(pytest.param(wheel, id="pgserver-wheel"))
    for system in glob.glob("/usr/lib/postgresql/*/bin"):
        sources.append(pytest.param(Path(system), id=f"system-{Path(system).parent.name}"))
    return sources


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
