"""Moves are moves, end to end on two copies over both transports: the other copy renames
(inodes survive), the document keeps its id and history, the mirror records a rename, and a
move on one side with an edit on the other keeps both."""
from __future__ import annotations

import json
import os
import uuid

import psycopg

from legacy_repo import git
from syncd.content import FilePolicy, encode
from syncd.engine.executor import Executor
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

OLD, NEW = "projects/P/sessions/s1", "projects/P/sessions/s2"
FILES = {"specs/spec.md": b"# Spec\n", "plans/plan.md": b"# Plan\n", "intents/intent.md": b"# Intent\n",
         "metadata/session.json": b'{"id": "s1"}\n'}


def write(root, rel: str, data: bytes) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


def ids(dsn: str, paths: list[str]) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("select path, id::text from documents where path = any(%s)", (paths,)).fetchall())


def synced_session(a, b) -> None:
    for rel, data in FILES.items():
        write(a.root, f"{OLD}/{rel}", data)
    write(a.root, "projects/P/README.md", b"# P\n")
    a.sync()
    b.sync()
    write(a.root, f"{OLD}/specs/spec.md", b"# Spec\n\nv2\n")
    a.sync()
    b.sync()


def test_a_moved_session_folder_is_renamed_on_the_other_copy_with_its_history(copies, dsn):
    a, b = copies
    for c in copies:  # each copy's mirror records what its passes move
        c.root.mkdir(parents=True, exist_ok=True)
        git(c.root, "init", "-q")
    synced_session(a, b)
    inodes = {rel: os.stat(b.root / OLD / rel).st_ino for rel in FILES}
    before = ids(dsn, [f"{OLD}/{rel}" for rel in FILES])

    os.rename(a.root / OLD, a.root / NEW)
    sent = a.sync()
    assert (sent["pushed"], sent["deleted_remote"]) == (0, 0)
    assert sent["moved"] == {f"{NEW}/{rel}": f"{OLD}/{rel}" for rel in FILES}
    got = b.sync()
    assert (got["pulled"], got["deleted_local"], got["pushed"]) == (0, 0, 0)
    assert got["moved"] == sent["moved"]

    assert not (b.root / OLD).exists()  # its directories went with the files
    assert {rel: os.stat(b.root / NEW / rel).st_ino for rel in FILES} == inodes  # renamed, not re-created
    assert b.files() == a.files()
    after = ids(dsn, [f"{NEW}/{rel}" for rel in FILES])
    assert {p.replace(NEW, OLD): i for p, i in after.items()} == before  # the same documents
    assert a.sync()["moved"] == {} and b.sync()["moved"] == {}  # settled: nothing moves again

    log = b.cli("log", f"{NEW}/specs/spec.md").output.splitlines()
    assert [line.split()[0] for line in log[1:]] == ["v3", "v2", "v1"]
    assert f"moved from {OLD}/specs/spec.md" in log[1] and "moved" not in log[2]
    assert "moved to" in b.cli("log", f"{OLD}/specs/spec.md").output

    for c in copies:  # the one that moved and the one that renamed
        renames = git(c.root, "show", "-M", "--name-status", "--format=", "syncd/mirror")
        assert sorted(renames.splitlines()) == sorted(f"R100\t{OLD}/{rel}\t{NEW}/{rel}" for rel in FILES)
        follow = git(c.root, "log", "--follow", "--name-only", "--format=", "syncd/mirror", "--",
                     f"{NEW}/specs/spec.md")
        assert [p for p in follow.splitlines() if p] == [f"{NEW}/specs/spec.md", f"{OLD}/specs/spec.md",
                                                         f"{OLD}/specs/spec.md"]


def test_a_move_here_and_an_edit_there_both_survive_the_edit_at_the_new_path(copies):
    a, b = copies
    synced_session(a, b)
    os.rename(a.root / OLD, a.root / NEW)
    write(b.root, f"{OLD}/plans/plan.md", b"# Plan\n\nedited on b\n")
    inode = os.stat(b.root / OLD / "specs/spec.md").st_ino
    assert len(a.sync()["moved"]) == len(FILES)
    got = b.sync()
    assert len(got["moved"]) == len(FILES) and got["pushed"] == 1  # renamed, then the edit went on top
    assert os.stat(b.root / NEW / "specs/spec.md").st_ino == inode
    assert not (b.root / OLD).exists()
    assert a.sync()["pulled"] == 1
    assert a.files() == b.files()
    assert a.files()[f"{NEW}/plans/plan.md"] == b"# Plan\n\nedited on b\n"
    log = a.cli("log", f"{NEW}/plans/plan.md").output.splitlines()
    assert [line.split()[0] for line in log[1:]] == ["v3", "v2", "v1"]


def test_an_edit_here_and_a_move_there_both_survive_the_edit_at_the_new_path(copies):
    a, b = copies
    synced_session(a, b)
    write(a.root, f"{OLD}/plans/plan.md", b"# Plan\n\nedited on a\n")
    assert a.sync()["pushed"] == 1
    os.rename(b.root / OLD, b.root / NEW)
    got = b.sync()  # the move of plan.md meets a newer head: it goes on top, and b pulls the edit
    assert len(got["moved"]) == len(FILES) and got["pulled"] == 1 and got["deleted_remote"] == 0
    assert b.files()[f"{NEW}/plans/plan.md"] == b"# Plan\n\nedited on a\n"
    assert len(a.sync()["moved"]) == len(FILES)
    assert a.files() == b.files() and not (a.root / OLD).exists()


def test_a_folder_of_seventy_files_moves_in_one_pass_past_the_delete_limits(copies):
    a, b = copies
    for i in range(70):
        write(a.root, f"{OLD}/implementation/part-{i:02}.md", f"# part {i}\n".encode())
    a.sync()
    b.sync()
    os.rename(a.root / OLD, a.root / NEW)
    sent = a.sync()  # 70 of 70 files gone from their paths: a mass delete, were it not a move
    assert (len(sent["moved"]), sent["held_deletes"], sent["deleted_remote"]) == (70, [], 0)
    got = b.sync()
    assert (len(got["moved"]), got["held_deletes"], got["deleted_local"]) == (70, [], 0)
    assert a.files() == b.files()


def test_a_rename_interrupted_between_link_and_unlink_settles_on_the_next_pass(copies):
    a, b = copies
    synced_session(a, b)
    os.rename(a.root / OLD, a.root / NEW)
    a.sync()
    preview = json.loads(b.cli("sync", "--dry-run", "--json").stdout)
    assert set(preview["moved"]) == {f"{NEW}/{rel}" for rel in FILES} and preview["deleted_upstream"] == []
    for rel in FILES:  # where a crash inside move_checked leaves b: the same file at both paths
        (b.root / NEW / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(b.root / OLD / rel, b.root / NEW / rel)
    got = b.sync()
    assert (got["deleted_local"], got["pushed"], got["deleted_remote"]) == (len(FILES), 0, 0)
    assert a.files() == b.files() and not (b.root / OLD).exists()


def test_a_move_that_meets_a_newer_head_mid_pass_goes_on_top_and_the_edit_is_pulled(tmp_path, dsn):
    spec = f"{OLD}/specs/spec.md"
    other = PostgresStore(dsn, "ws")
    other.open(create=True)
    other.commit([Change(spec, None, encode(spec, b"# Spec\n", FilePolicy()))])
    store = PostgresStore(dsn, "ws", str(uuid.uuid4()))
    store.open(device_name="b")
    root, journal = tmp_path / "tree", Journal(tmp_path / "journal.sqlite3")
    root.mkdir()
    Executor(root, journal, store).sync_once()
    os.rename(root / OLD, root / NEW)

    def edit_there() -> None:  # after the feed is recorded: the move's base is stale when it lands
        if not edited:
            edited.extend(other.commit([Change(spec, 1, encode(spec, b"# Spec\n\nedited\n", FilePolicy()))]))
    edited: list = []
    report = Executor(root, journal, store, progress=edit_there).sync_once()
    assert edited[0].status == "accepted"
    assert report.moved == {f"{NEW}/specs/spec.md": spec} and report.deleted_remote == []
    assert [(v["version"], v["origin"]) for v in store.history(f"{NEW}/specs/spec.md")] == [
        (3, "move"), (2, "sync"), (1, "sync")]  # on top of the edit
    report = Executor(root, journal, store).sync_once()
    assert report.pulled == [f"{NEW}/specs/spec.md"]
    assert (root / NEW / "specs/spec.md").read_bytes() == b"# Spec\n\nedited\n" and not (root / OLD).exists()
    for s in (other, store):
        s.close()


class CountingStore(PostgresStore):
    """The real store, counting its commit calls."""

    def __init__(self, *args):
        super().__init__(*args)
        self.commits = 0

    def _call(self, function: str, payload: dict):
        self.commits += function == "syncd_commit"
        return super()._call(function, payload)


def test_seventy_moves_go_in_one_commit_call(tmp_path, dsn):
    store = CountingStore(dsn, "ws", str(uuid.uuid4()))
    store.open(create=True, device_name="a")
    root, journal = tmp_path / "tree", Journal(tmp_path / "journal.sqlite3")
    for i in range(70):
        write(root, f"{OLD}/implementation/part-{i:02}.md", f"# part {i}\n".encode())
    Executor(root, journal, store).sync_once()
    os.rename(root / OLD, root / NEW)
    store.commits = 0
    report = Executor(root, journal, store).sync_once()
    assert (len(report.moved), store.commits) == (70, 1)
    store.close()


def test_a_file_moved_out_of_a_folder_of_its_own_name_arrives(copies):
    a, b = copies
    write(a.root, "notes/notes", b"# notes\n")
    a.sync()
    b.sync()
    os.rename(a.root / "notes/notes", a.root / "n")
    os.rmdir(a.root / "notes")
    os.rename(a.root / "n", a.root / "notes")  # not a rename the other copy can make in one step
    a.sync()
    b.sync(expect=None)
    b.sync()
    assert b.files() == a.files() == {"notes": b"# notes\n"}
