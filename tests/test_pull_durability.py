"""Pulled files that are new at their path are made durable together, once per pass, and
the journal records no base before that: a pass stopped between the writes and the
durability round leaves files without bases, which the next pass adopts or writes again."""
from __future__ import annotations

import os
import traceback
import uuid
from pathlib import Path

import pytest

from syncd.engine.durability import Durability
from syncd.engine.executor import Executor, Paused
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

FILES = {f"projects/P/sessions/s{i}/specs/spec.md": f"spec {i}\n" for i in range(20)}


class StopsAtFlush(Durability):
    """The process ends where a crash would hurt: files written, not yet made durable."""

    def flush(self) -> None:
        os._exit(9)


def pull_in_child(root, journal_path, dsn, stop: bool) -> int:
    """A pass of a copy that pulls everything, in a process of its own; its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            journal = Journal(journal_path)
            store = PostgresStore(dsn, "ws", journal.device_id)
            store.open(device_name="b")
            executor = Executor(root, journal, store)
            if stop:
                executor.durability = StopsAtFlush(root)
            executor.sync_once()
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_no_base_is_recorded_for_a_new_file_before_the_durability_round(tmp_path, store, dsn):
    assert [r.status for r in store.commit([Change(p, None, {"encoding": "utf-8", "format": "markdown", "text": t})
                                            for p, t in FILES.items()])] == ["accepted"] * len(FILES)
    root = tmp_path / "b"
    root.mkdir()
    journal_path = tmp_path / "b.journal"

    assert pull_in_child(root, journal_path, dsn, stop=True) == 9
    journal = Journal(journal_path)
    assert journal.bases() == {}  # the files may be on disk; their bases are not in the journal
    journal.close()

    assert pull_in_child(root, journal_path, dsn, stop=False) == 0
    journal = Journal(journal_path)
    assert set(journal.bases()) == set(FILES)
    assert journal.conflicts() == []
    journal.close()
    assert {p: (root / p).read_text() for p in FILES} == FILES


def test_a_pass_makes_its_new_files_durable_before_recording_them(tmp_path, store):
    """One flush for the pass's new files, and after it nothing waits."""
    store.commit([Change(p, None, {"encoding": "utf-8", "format": "markdown", "text": t}) for p, t in FILES.items()])
    seen: list[int] = []

    class Counting(Durability):
        def flush(self) -> None:
            seen.append(self.written)
            super().flush()

    journal = Journal(tmp_path / "j")
    other = PostgresStore(store.dsn, "ws", str(uuid.uuid4()))
    other.open(device_name="c")
    executor = Executor(tmp_path / "c", journal, other)
    (tmp_path / "c").mkdir()
    executor.durability = Counting(tmp_path / "c")
    report = executor.sync_once()
    assert len(report.pulled) == len(FILES) and seen and seen[0] == len(FILES)
    assert executor.durability.written == 0 and not executor.durability.directories
    journal.close()
    other.close()


def test_a_root_gone_before_the_durability_round_pauses_and_records_no_base(tmp_path, store):
    """The sync root unmounted or moved away while a pass pulls: its new files cannot be made
    durable, so none of their bases is recorded and the pass pauses (as a root that vanished
    during the scan does), rather than failing with the OSError of the round."""
    store.commit([Change(p, None, {"encoding": "utf-8", "format": "markdown", "text": t}) for p, t in FILES.items()])
    root = tmp_path / "c"
    root.mkdir()
    journal = Journal(tmp_path / "j")
    other = PostgresStore(store.dsn, "ws", str(uuid.uuid4()))
    other.open(device_name="c")

    def unmounted() -> None:  # (progress is called as each pull lands)
        if root.exists() and any(root.rglob("spec.md")):
            os.rename(root, tmp_path / "away")

    with pytest.raises(Paused):
        Executor(root, journal, other, progress=unmounted).sync_once()
    assert journal.bases() == {}
    journal.close()
    other.close()


def test_a_mount_point_inside_the_root_is_flushed_too(tmp_path):
    """`syncfs` flushes one filesystem: a pull into a directory that is another filesystem's
    mount point needs that filesystem's own."""
    from syncd.engine.durability import one_per_filesystem
    # the tests' own files are on a tmpfs where there is one (tests/conftest.py), else on the disk
    here = os.stat(tmp_path).st_dev
    other = next((d for d in (Path("/dev/shm"), Path(__file__).parent) if d.is_dir() and os.stat(d).st_dev != here),
                 None)
    if other is None:
        pytest.skip("no second filesystem here")
    (tmp_path / "a").mkdir()
    chosen = one_per_filesystem(tmp_path, [tmp_path / "a", other, tmp_path / "gone"])
    assert chosen == [tmp_path, other]
    with pytest.raises(FileNotFoundError):
        one_per_filesystem(tmp_path / "gone", [other])


def test_without_syncfs_every_new_directory_is_flushed_in_its_parent(tmp_path):
    from syncd.engine.durability import with_parents
    assert with_parents({tmp_path / "p/s/specs", tmp_path / "p/t"}, tmp_path) == {
        tmp_path, tmp_path / "p", tmp_path / "p/s", tmp_path / "p/s/specs", tmp_path / "p/t"}


def test_without_syncfs_each_new_file_and_directory_is_fsynced(tmp_path, monkeypatch):
    """Where there is no syncfs (not Linux), the files a pass wrote are each fsynced, with
    their new directories, at the flush; on Linux only their directories are kept."""
    from syncd.engine import durability as module
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(module.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    for libc in (module._libc, None):
        monkeypatch.setattr(module, "_libc", libc)
        synced.clear()
        kept = Durability(tmp_path)
        for name in ("p/s/a.md", "p/s/b.md", "p/t/c.md"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(name)
            kept.add(tmp_path / name)
        assert kept.directories == {str(tmp_path / "p/s"), str(tmp_path / "p/t")}
        assert len(kept.files) == (3 if libc is None else 0)
        kept.flush()
        assert kept.written == 0 and not kept.directories and not kept.files
        if libc is None:
            assert sorted(synced) == sorted(str(tmp_path / p) for p in ("p/s/a.md", "p/s/b.md", "p/t/c.md", "p/s",
                                                                         "p/t", "p", ""))  # ("" : the root)
        else:
            assert synced == []
