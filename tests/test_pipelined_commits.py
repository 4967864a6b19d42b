"""A push of several commit calls' worth commits each batch while the next is read (issue 20:
a first sync at Unison's pace or better): the calls still reach the store one at a time and
in order, and a call that fails in flight fails the pass as a call in the pass's own thread
would, its answer recorded when the store gave one."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from syncd.engine import executor as executor_module
from syncd.engine.executor import Executor
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import COMMIT_MAX_CHANGES, StoreUnavailable

FILES = 2 * COMMIT_MAX_CHANGES + 300  # two calls in flight in turn, then the last in the pass's thread


class Store(PostgresStore):
    """The postgres transport, with a hook on each commit call (`on_commit(n, changes)`)."""

    on_commit = None

    def __init__(self, *args):
        super().__init__(*args)
        self.calls = 0

    def commit(self, changes, *args, **kwargs):
        self.calls += 1
        if self.on_commit:
            self.on_commit(self.calls, changes)
        return super().commit(changes, *args, **kwargs)


@pytest.fixture
def side(tmp_path, dsn):
    root = tmp_path / "tree"
    files = {f"projects/P{i % 3}/sessions/s{i // 10}/specs/f{i % 10}.md": f"# {i}\n".encode() for i in range(FILES)}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    journal = Journal(tmp_path / "journal.sqlite3")
    store = Store(dsn, "ws", str(uuid.uuid4()))
    store.open(create=True, device_name="a")
    yield root, journal, store, files
    journal.close()
    store.close()


def versions(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select path, version from document_versions order by seq").fetchall()


def test_each_batch_commits_while_the_next_is_read_and_the_calls_land_in_order(side, dsn, monkeypatch):
    root, journal, store, files = side
    read_next = threading.Event()
    overlapped = []
    threads = []

    def on_commit(n, changes):
        threads.append(threading.current_thread().name)
        if n == 1:  # held until the pass has read a file of the next batch (10 s: it never did)
            overlapped.append(read_next.wait(10))

    real_read = executor_module.read_entry
    read = []

    def reading(root, path, *args):
        read.append(path)
        if len(read) == COMMIT_MAX_CHANGES + 1:
            read_next.set()
        return real_read(root, path, *args)

    store.on_commit = on_commit
    monkeypatch.setattr(executor_module, "read_entry", reading)
    report = Executor(root, journal, store).sync_once()
    assert sorted(report.pushed) == sorted(files)
    assert overlapped == [True]
    assert threads[:2] == ["syncd-store_0"] * 2 and threads[2] == threading.current_thread().name
    landed = versions(dsn)
    assert [path for path, _ in landed] == read and {v for _, v in landed} == {1}  # one call after another
    assert Executor(root, journal, store).sync_once().pushed == []


@pytest.mark.parametrize("lost", ["before it reached the store", "after it landed"])
def test_a_call_that_fails_in_flight_fails_the_pass_and_the_next_pass_sends_the_rest_once(side, dsn, lost):
    root, journal, store, files = side
    real_commit = PostgresStore.commit

    def failing(n, changes):
        if n == 2:
            if lost == "after it landed":
                real_commit(store, changes)
            raise StoreUnavailable("the connection dropped")

    store.on_commit = failing
    with pytest.raises(StoreUnavailable):
        Executor(root, journal, store).sync_once()
    assert len(journal.bases_of(files)) == COMMIT_MAX_CHANGES  # the first call's answer was recorded
    store.on_commit = None
    report = Executor(root, journal, store).sync_once()
    assert len(report.pushed) + len(report.adopted) == FILES - COMMIT_MAX_CHANGES
    assert len(journal.bases_of(files)) == FILES
    landed = versions(dsn)
    assert len(landed) == FILES and {v for _, v in landed} == {1}  # nothing sent twice as a new version
    assert Executor(root, journal, store).sync_once().pushed == []
