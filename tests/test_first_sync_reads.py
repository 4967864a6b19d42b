"""A first sync reads each new file once (issue 20: initial sync ahead of Unison): the push
reads it, the scan does not, since with no base nothing is decided by what it holds. A file
the store already has is still read by the scan: its content decides (adopted or held)."""
from __future__ import annotations

import uuid

import pytest

from syncd.engine import executor as executor_module
from syncd.engine import scanner as scanner_module
from syncd.engine.executor import Executor
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore

from aged_files import put


def copy(tmp_path, dsn, name: str, files: dict[str, bytes]):
    root = tmp_path / name
    for path, data in files.items():
        put(root, path, data)  # (old enough that their stats are cached)
    store = PostgresStore(dsn, "ws", str(uuid.uuid4()))
    store.open(create=True, device_name=name)
    return root, Journal(tmp_path / f"{name}.sqlite3"), store


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every path whose bytes were read, by the scan or by the push."""
    read: list[str] = []
    for module in (scanner_module, executor_module):
        real = module.read_entry

        def reading(root, path, *args, real=real):
            read.append(path)
            return real(root, path, *args)

        monkeypatch.setattr(module, "read_entry", reading)
    return read


def test_a_first_sync_reads_each_file_once(tmp_path, dsn, reads):
    files = {f"projects/P/sessions/s{i // 10}/specs/f{i}.md": f"# {i}\n".encode() for i in range(300)}
    root, journal, store = copy(tmp_path, dsn, "a", files)
    report = Executor(root, journal, store).sync_once()
    assert sorted(report.pushed) == sorted(files)
    assert sorted(reads) == sorted(files)  # before: twice each, by the scan and by the push
    reads.clear()
    assert Executor(root, journal, store).sync_once().pushed == []
    assert reads == []  # (the push recorded their stats)


def test_a_copy_joining_a_store_that_has_some_of_its_files_reads_those_to_decide(tmp_path, dsn, reads):
    shared = {f"shared/f{i}.md": f"same {i}\n".encode() for i in range(5)}
    root, journal, store = copy(tmp_path, dsn, "a", {**shared, "mine/edited.md": b"a's\n"})
    Executor(root, journal, store).sync_once()
    mine = {f"mine/f{i}.md": f"b's {i}\n".encode() for i in range(5)}
    root_b, journal_b, store_b = copy(tmp_path, dsn, "b", {**shared, **mine, "mine/edited.md": b"b's\n"})
    reads.clear()
    report = Executor(root_b, journal_b, store_b).sync_once()
    assert sorted(report.adopted) == sorted(shared)
    assert report.conflicts == ["mine/edited.md"]  # both made it, differently: held, b's file kept
    assert sorted(report.pushed) == sorted(mine)
    assert sorted(set(reads)) == sorted([*shared, *mine, "mine/edited.md"])
    assert all(reads.count(p) == 1 for p in mine)
    assert (root_b / "mine/edited.md").read_bytes() == b"b's\n"
