"""A private PostgreSQL server run from local binaries.

Used by the embedded default (no remote configured) and by the test suite where no server
is given. The binaries come from the system (`pg_config --bindir`, the Debian layout) or,
failing that, from the pip-installed `pgserver` wheel. The server listens only on a Unix
socket inside its data directory, so it needs no free port and is reachable by no one else.
"""
from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from psycopg.conninfo import make_conninfo


class ServerError(RuntimeError):
    pass


def find_bindir() -> Path:
    """A directory holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServerError(
        "no PostgreSQL server binaries found: install PostgreSQL (initdb, pg_ctl) or "
        "`pip install pgserver`, or configure a database_url"
    )


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


class LocalServer:
    """One data directory, one server; start() is idempotent across processes."""

    superuser = "postgres"  # the role initdb makes (a Supabase-shaped cluster's is another)

    def __init__(self, datadir: Path, bindir: Path | None = None):
        self.datadir = Path(datadir)
        self.bindir = bindir or find_bindir()

    @property
    def socket_dir(self) -> Path:
        """The data directory, unless its path is too long for a Unix socket (about 107
        bytes): then a directory in /tmp named after it."""
        if len(os.fsencode(self.datadir)) <= 80:
            return self.datadir
        key = hashlib.sha256(os.fsencode(self.datadir.resolve())).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"syncd-pg-{key}"

    def dsn(self, dbname: str = "postgres") -> str:
        return make_conninfo(host=str(self.socket_dir), port=5432, user=self.superuser, dbname=dbname)

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        account = _unprivileged_account()
        as_account = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
        return subprocess.run(
            [str(self.bindir / tool), *args], capture_output=True, text=True, env=env,
            cwd=self.datadir, **as_account,
        )

    def _check_reachable(self, account: pwd.struct_passwd) -> None:
        for ancestor in reversed(self.datadir.absolute().parents):
            try:
                st = ancestor.stat()
            except FileNotFoundError:
                return  # created by us, traversable
            if not (st.st_mode & 0o001 or st.st_uid == account.pw_uid):
                raise ServerError(
                    f"PostgreSQL runs as '{account.pw_name}' (it refuses root) and cannot reach "
                    f"{self.datadir}: {ancestor} is closed to it. Set XDG_DATA_HOME to a directory "
                    f"it can reach, or `chmod o+x {ancestor}`")

    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").is_file()

    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.datadir)).returncode == 0

    def start(self) -> None:
        if not self.initialized():
            account = _unprivileged_account()
            if account:
                self._check_reachable(account)
            self.datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if account:
                os.chown(self.datadir, account.pw_uid, account.pw_gid)
            out = self._run(
                "initdb", "-D", str(self.datadir), "-U", self.superuser, "-A", "trust",
                "-E", "UTF8", "--no-instructions",
            )
            if out.returncode != 0:
                raise ServerError(f"initdb failed in {self.datadir}: {out.stderr.strip()}")
        if self.running():
            return
        if self.socket_dir != self.datadir:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            account = _unprivileged_account()
            if account:
                os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        # Unix socket only (listen_addresses=''), in the data directory.
        options = f"-c listen_addresses='' -k {shlex.quote(str(self.socket_dir))} -c port=5432"
        out = self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
            "-l", str(self.datadir / "server.log"), "-o", options,
        )
        if out.returncode != 0 and not self.running():
            log = (self.datadir / "server.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerError(f"PostgreSQL did not start in {self.datadir}: {out.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        if self.initialized() and self.running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir))
