"""The embedded default: a private PostgreSQL for this user, started on demand.

With no database_url configured, every syncd process of the user (several working copies,
`sync --once` beside `run`) shares one server under the XDG data directory. Each process
holds a shared lock on `users.lock` while it uses the server; the last one to leave finds
the lock free and stops the server. Locks die with their process, so a crashed syncd
never keeps the server alive forever.
"""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import platformdirs

from syncd.store.local_server import LocalServer, ServerError, data_version
from syncd.store.upgrade import match_version

DATABASE = "syncd"
log = logging.getLogger("syncd")


def default_home() -> Path:
    """Where the server lives. As root (a system service) the home directory is closed to the
    unprivileged account PostgreSQL must run as, so root's server lives under /var/lib."""
    if os.geteuid() == 0 and not os.environ.get("XDG_DATA_HOME"):
        return Path("/var/lib/syncd")
    return platformdirs.user_data_path("syncd")


def describe(home: Path | None = None) -> dict:
    """Which binaries and which data directory the embedded default uses, or why it has none
    (for doctor and status: nothing is started)."""
    try:
        server = EmbeddedStore(home).server
        return {"binaries": str(server.bindir), "version": server.version, "data": str(server.datadir),
                "data_version": data_version(server.datadir)}
    except ServerError as exc:
        return {"error": str(exc)}


class EmbeddedStore:
    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else default_home()
        self.server = LocalServer(self.home / "postgres")
        self._users_fd: int | None = None

    def _flock(self, name: str, mode: int) -> int:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o711)
        fd = os.open(self.home / name, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, mode)
        return fd

    def start(self) -> str:
        """Start (or join) the server, migrated; returns the DSN of syncd's database."""
        import psycopg  # (not for `describe`: `syncd status` never loads it)
        from psycopg.conninfo import make_conninfo
        from syncd.store.migrate import migrate
        guard = self._flock("start.lock", fcntl.LOCK_EX)  # one starter at a time
        try:
            match_version(self.server)
            self.server.start()
            log.info("the embedded PostgreSQL %d from %s, data directory %s", self.server.version,
                     self.server.bindir, self.server.datadir)
            admin = self.server.dsn()
            with psycopg.connect(admin, autocommit=True) as conn:
                if conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is None:
                    conn.execute(f'create database "{DATABASE}"')
            dsn = make_conninfo(admin, dbname=DATABASE)
            migrate(dsn)
            self._users_fd = self._flock("users.lock", fcntl.LOCK_SH)
            return dsn
        finally:
            os.close(guard)

    def stop(self) -> None:
        """Leave; stop the server if no other syncd process is using it."""
        if self._users_fd is None:
            return
        guard = self._flock("start.lock", fcntl.LOCK_EX)
        try:
            try:
                fcntl.flock(self._users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # someone else still uses it
            self.server.stop()
        finally:
            os.close(self._users_fd)
            self._users_fd = None
            os.close(guard)
