"""A migrated scratch database for a benchmark: on the server given, else a private one."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.conninfo import make_conninfo

from syncd.store.local_server import LocalServer
from syncd.store.migrate import migrate


@contextmanager
def scratch_database(work: Path, admin_dsn: str | None) -> Iterator[str]:
    server = None
    if admin_dsn is None:
        server = LocalServer(work / "pg")
        server.start()
        admin_dsn = server.dsn()
    name = f"syncd_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        dsn = make_conninfo(admin_dsn, dbname=name)
        migrate(dsn)
        yield dsn
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'drop database "{name}" with (force)')
    finally:
        if server:
            server.stop()
