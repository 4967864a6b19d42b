"""Apply the SQL contract: the versioned migrations shipped inside the package.

Each file `NNNN_name.sql` runs once, in its own transaction, together with the row that
records it in `syncd.schema_migrations`; an advisory lock keeps two migrators (two daemons
starting at once) from racing.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from syncd.store.rpc import StoreError

LOCK_KEY = 0x73796E6364  # "syncd"
# Where each applied migration is recorded (written so that it can run again).
BOOKKEEPING = ("create schema if not exists syncd;\n"
               "create table if not exists syncd.schema_migrations (version integer primary key, name text not null,"
               " checksum text not null, applied_at timestamptz not null default now());")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(StoreError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def differs(self) -> str:
        """What is wrong with a database that applied another text under this version."""
        return (f"migration {self.version:04d}_{self.name} differs from the one this database applied; "
                "migrations are forward-only: a change to the schema is a new migration")


def bundled() -> list[Migration]:
    found = []
    for entry in resources.files("syncd.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    return bundled()[-1].version


def applied(conn: psycopg.Connection) -> dict[int, str]:
    """Version → checksum of what this database has; empty when it was never migrated."""
    exists = conn.execute("select to_regclass('syncd.schema_migrations')").fetchone()[0]
    if exists is None:
        return {}
    return dict(conn.execute("select version, checksum from syncd.schema_migrations").fetchall())


def migrate(dsn: str, upto: int | None = None) -> list[Migration]:
    """Bring the database at `dsn` up to date (or to version `upto`, for the upgrade
    tests); returns the migrations it applied."""
    done: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(BOOKKEEPING)
            have = applied(conn)
            changed = [m for m in bundled() if have.get(m.version, m.checksum) != m.checksum]
            if changed:
                raise MigrationError(changed[0].differs)
            for migration in bundled():
                if migration.version in have or (upto is not None and migration.version > upto):
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "insert into syncd.schema_migrations (version, name, checksum)"
                        " values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                done.append(migration)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done
