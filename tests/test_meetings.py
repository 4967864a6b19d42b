"""Where the pieces of issue 18 meet (ignore rules, every kind of file, blobs, moves, empty
directories): each test here failed on the integrated branch before its fix. Real copies
through the CLI, real PostgreSQL, over each transport."""
from __future__ import annotations

import json
import os
import shutil

import psycopg
import uuid

from syncd.content import FilePolicy, encode_entry, link_entry
from syncd.engine.executor import Executor
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

import pytest

pytestmark = pytest.mark.usefixtures("private_xdg")


def write(root, rel: str, data: bytes) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)


def dirs(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def test_a_file_moved_out_of_its_folder_leaves_that_folder_on_both_copies(copies):
    a, b = copies
    write(a.root, "d/f.md", b"# f\n")
    (a.root / "e").mkdir()
    a.sync()
    b.sync()
    os.rename(a.root / "d/f.md", a.root / "e/f.md")  # d is an empty directory now, on a
    a.sync()
    b.sync()
    a.sync()
    b.sync()
    assert (a.root / "d").is_dir() and (b.root / "d").is_dir()
    assert a.files() == b.files() and dirs(a.root) == dirs(b.root)


def test_a_link_moved_where_it_would_leave_the_root_is_refused(tmp_path, dsn):
    """A writer who moves a link, in the store, to a path where its target leaves the root:
    the store refuses it, and a copy never renames a link there (checked at write time)."""
    writer = PostgresStore(dsn, "ws")
    writer.open(create=True)
    path = "a/b/l"
    [made] = writer.commit([Change(path, None, encode_entry(path, link_entry("../../x"), FilePolicy()))])
    assert made.status == "accepted"
    [moved] = writer.commit([Change("l", 1, None, moved_from=path)])
    assert moved.status == "invalid" and "root" in moved.message
    writer.close()


def test_a_copy_never_renames_a_link_to_where_it_leaves_the_root(tmp_path):
    """Checked at write time too, whatever the store (an older one) let through."""
    from syncd.engine.writer import UnsafePath, move_checked

    (tmp_path / "a/b").mkdir(parents=True)
    os.symlink("../../x", tmp_path / "a/b/l")
    with pytest.raises(UnsafePath, match="outside the sync root"):
        move_checked(tmp_path, "a/b/l", "l", link_entry("../../x").identity)
    assert os.readlink(tmp_path / "a/b/l") == "../../x" and not os.path.lexists(tmp_path / "l")


@pytest.mark.parametrize("keep", ["local", "remote", "both"])
def test_a_directory_against_a_file_settles_by_resolve(copies, keep):
    """An empty directory here, a file there on the same path: each resolution settles it
    and the copies agree afterwards."""
    a, b = copies
    (a.root / "notes").mkdir()
    (b.root / "notes").write_text("b's notes\n")
    a.sync()
    b.sync(expect=3)
    out = b.cli("resolve", "notes", "--keep", keep, "--json", expect=None)
    assert out.exit_code == 0, out.output
    b.sync()
    a.sync()
    b.sync()
    assert b.status()["conflicts"] == [] and a.status()["conflicts"] == []
    assert a.files() == b.files() and dirs(a.root) == dirs(b.root)
    if keep == "remote":
        assert (b.root / "notes").is_dir()
    elif keep == "local":
        assert (a.root / "notes").read_text() == "b's notes\n"
    else:
        assert (b.root / "notes").is_dir() and "b's notes\n" in [v.decode() for v in b.files().values()]


def test_a_file_replaced_by_a_folder_and_back_arrives_in_one_pass(copies):
    a, b = copies
    write(a.root, "notes", b"v1\n")
    a.sync()
    b.sync()
    os.unlink(a.root / "notes")
    write(a.root, "notes/a.md", b"inside\n")
    a.sync()
    b.sync()
    assert b.files() == {"notes/a.md": b"inside\n"}
    shutil.rmtree(a.root / "notes")
    write(a.root, "notes", b"a file again\n")
    a.sync()
    got = b.sync()  # the folder's file goes first, then the file takes the folder's name
    assert (got["deleted_local"], got["pulled"], got["failed"]) == (1, 1, {})
    assert b.files() == a.files() == {"notes": b"a file again\n"}


def test_a_folder_of_every_kind_moves_as_a_rename(copies):
    """An executable, a link, a blob and an empty directory in a folder that moves: the
    other copy renames the files (inodes kept) with their modes and targets."""
    from test_kinds import PNG, link, put, tree

    a, b = copies
    put(a.root, "s1/run.sh", b"#!/bin/sh\necho ok\n", 0o755)
    put(a.root, "s1/img.png", PNG)
    put(a.root, "s1/plan.md", b"# Plan\n")
    link(a.root, "s1/current/plan.md", "../plan.md")
    (a.root / "s1/empty").mkdir()
    a.sync()
    b.sync()
    inodes = {rel: os.lstat(b.root / "s1" / rel).st_ino for rel in ("run.sh", "img.png", "current/plan.md")}
    os.rename(a.root / "s1", a.root / "s2")
    sent = a.sync()
    assert set(sent["moved"]) == {f"s2/{rel}" for rel in ("run.sh", "img.png", "plan.md", "current/plan.md")}
    got = b.sync()
    assert got["moved"] == sent["moved"] and got["failed"] == {}
    assert {rel: os.lstat(b.root / "s2" / rel).st_ino for rel in inodes} == inodes
    assert tree(b.root) == tree(a.root) and dirs(b.root) == dirs(a.root) == {"s2", "s2/current", "s2/empty"}
    assert a.sync()["moved"] == {} and b.sync()["moved"] == {}


def test_the_copy_that_moved_does_not_take_its_own_move_for_a_rewound_store(copies):
    """The change a move's commit answers with is the change at the seq it names: the
    journal's mark of the newest change is checked against the store on the next pass."""
    a, b = copies
    write(a.root, "s1/spec.md", b"# Spec\n")
    a.sync()
    os.rename(a.root / "s1", a.root / "s2")
    assert a.sync()["moved"] == {"s2/spec.md": "s1/spec.md"}
    out = a.cli("sync", "--once").output
    assert "rewound" not in out and "rebuilt" not in out, out
    mark = a.journal().mark
    with psycopg.connect(a.dsn) as conn:  # the store's own record of that change
        assert conn.execute("select path, version, deleted from document_versions where seq = %s",
                            (mark.seq,)).fetchone() == (mark.path, mark.version, mark.sha256 is None)


@pytest.mark.parametrize("how", ["moved", "written"])
def test_an_empty_folder_that_gets_a_file_is_its_parent_on_the_other_copy_not_a_delete(copies, how):
    """A synced empty folder gets a file (moved in or new) on one copy; on the other, which
    keeps a Finder's .DS_Store in it, the folder is the file's parent: no delete to refuse."""
    a, b = copies
    write(a.root, "x.md", b"# x\n")
    (a.root / "e").mkdir()
    a.sync()
    b.sync()
    write(b.root, "e/.DS_Store", b"\0\0\0\1Bud1")
    if how == "moved":
        os.rename(a.root / "x.md", a.root / "e/x.md")
    else:
        write(a.root, "e/x.md", b"# x\n")
    a.sync()
    got = b.sync()
    assert (got["skipped"], got["failed"]) == ({}, {})
    assert (b.root / "e/x.md").read_bytes() == b"# x\n" and (b.root / "e/.DS_Store").exists()
    assert a.files() == {k: v for k, v in b.files().items() if not k.endswith(".DS_Store")}


def test_a_blob_begun_with_a_wrong_size_does_not_keep_its_file_from_syncing(tmp_path, dsn):
    """Anyone who may write somewhere in the workspace may begin a blob: one begun under a
    file's digest with another size (and never finished) gives way to the real upload."""
    import io

    from syncd.content import sha256_hex
    from syncd.store.blobs import BlobMismatch, TableBlobStore

    data = b"\x89PNG\r\n\x1a\n\x00" * 1000
    squatter = PostgresStore(dsn, "ws")
    squatter.open(create=True)
    with pytest.raises(BlobMismatch):  # one part stored under the digest, with size 1
        TableBlobStore(squatter).put(sha256_hex(data), 1, io.BytesIO(data))
    store = PostgresStore(dsn, "ws", str(uuid.uuid4()))
    store.open(device_name="b")
    root = tmp_path / "tree"
    write(root, "img.png", data)
    report = Executor(root, Journal(tmp_path / "journal.sqlite3"), store).sync_once()
    assert (report.pushed, report.failed) == (["img.png"], {})
    out = io.BytesIO()
    TableBlobStore(squatter).get(sha256_hex(data), len(data), out)
    assert out.getvalue() == data
    for s in (squatter, store):
        s.close()


def test_a_dry_run_says_an_emptied_folder_that_gets_a_file_stays(copies):
    a, b = copies
    (a.root / "e").mkdir(parents=True)
    a.sync()
    b.sync()
    write(b.root, "e/.DS_Store", b"\0\0\0\1Bud1")
    write(a.root, "e/x.md", b"# x\n")
    a.sync()
    preview = json.loads(b.cli("sync", "--dry-run", "--json").stdout)
    assert (preview["pulled"], preview["deleted_upstream"], preview["in_sync"]) == (["e/x.md"], [], ["e"])


def test_keep_parents_keeps_only_an_empty_directory_above_what_arrives():
    from syncd.content import DIRECTORY
    from syncd.engine.reconcile import Action, Base, Facts, Remote, keep_parents

    gone = Facts(DIRECTORY, Base(1, DIRECTORY), Remote(2, None))
    plan = {"e": Action.DELETE_LOCAL, "e/x.md": Action.PULL, "f": Action.DELETE_LOCAL, "g": Action.DELETE_LOCAL,
            "g/y.md": Action.PULL, "ex": Action.DELETE_LOCAL}
    facts = {"e": gone, "f": gone, "g": Facts("ab" * 32, Base(1, "ab" * 32), Remote(2, None)), "ex": gone}
    assert keep_parents(plan, facts) == {**plan, "e": Action.ADOPT}  # f: nothing under it; g: a file; ex: a sibling


def test_an_empty_directory_over_what_the_store_holds_is_a_parent_not_an_entry():
    """Found by the randomized harness: a version under `d` that one copy cannot write (a
    damaged one) left `d` empty there, while another copy had files in it. The first pushed
    `d` as an empty directory, the second deleted it again, for ever."""
    from syncd.content import DIRECTORY
    from syncd.engine.reconcile import Action, Base, Facts, Remote, keep_parents

    damaged = Facts(None, None, Remote(2, "cd" * 32))  # the store's d/a.md, never written here
    plan = {"d": Action.PUSH, "d/a.md": Action.PULL, "e": Action.DELETE_LOCAL, "e/b.md": Action.NOTHING,
            "f": Action.PUSH}
    facts = {"d": Facts(DIRECTORY, None, None), "d/a.md": damaged,
             "e": Facts(DIRECTORY, Base(1, DIRECTORY), Remote(2, None)), "e/b.md": damaged,
             "f": Facts(DIRECTORY, None, None)}
    assert keep_parents(dict(plan), facts) == {**plan, "d": Action.NOTHING, "e": Action.ADOPT}  # f: nothing under it


def test_a_project_moved_with_its_sessions_empty_stage_folders_is_no_mass_delete(copies):
    """Empty directories are never moves (deletes and creates): fifty-six of them, gone from
    their paths, are no mass delete to hold back: they hold nothing to lose."""
    a, b = copies
    stages = ["intents", "contexts", "specs", "plans", "tasks", "implementation", "feedback"]
    for s in range(8):
        write(a.root, f"projects/P/sessions/s{s}/README.md", f"# s{s}\n".encode())
        for stage in stages:
            (a.root / f"projects/P/sessions/s{s}/{stage}").mkdir()
    a.sync()
    b.sync()
    os.rename(a.root / "projects/P", a.root / "projects/Q")
    sent = a.sync()
    assert (len(sent["moved"]), sent["held_deletes"]) == (8, [])
    got = b.sync()
    assert (len(got["moved"]), got["held_deletes"]) == (8, [])
    assert os.listdir(b.root / "projects") == ["Q"] and dirs(a.root) == dirs(b.root)
    assert a.files() == b.files()


def test_a_project_of_sessions_made_from_one_template_moves_file_by_file(copies):
    """Every session holds the same template files: each one moves to its own new path (as
    Git pairs identical files by name), and fifty-six of them are no mass delete."""
    a, b = copies
    stages = ["intents/intent.md", "contexts/context.md", "specs/spec.md", "plans/plan.md", "tasks/tasks.md",
              "implementation/README.md", "feedback/feedback.md"]
    for s in range(8):
        for stage in stages:
            write(a.root, f"projects/P/sessions/s{s}/{stage}", b"# TODO\n")
    a.sync()
    b.sync()
    os.rename(a.root / "projects/P", a.root / "projects/Q")
    sent = a.sync()
    assert sent["moved"] == {f"projects/Q/sessions/s{s}/{st}": f"projects/P/sessions/s{s}/{st}"
                             for s in range(8) for st in stages}
    got = b.sync()
    assert (got["moved"], got["held_deletes"], got["pulled"]) == (sent["moved"], [], 0)
    assert a.files() == b.files()


def test_a_move_to_an_empty_path_is_refused_alone_not_the_whole_commit(dsn):
    writer = PostgresStore(dsn, "ws")
    writer.open(create=True)
    writer.commit([Change("a.md", None, encode_entry("a.md", link_entry("b.md"), FilePolicy()))])
    moved, other = writer.commit([Change("", 1, None, moved_from="a.md"),
                                  Change("c.md", None, encode_entry("c.md", link_entry("b.md"), FilePolicy()))])
    assert (moved.status, other.status) == ("invalid", "accepted")
    writer.close()


def test_a_store_from_before_issue_18_moves_its_old_documents_and_takes_directories_and_blobs(empty_dsn):
    """Rows written under 0017, migrated: an old document moves with its history, and an
    empty directory and a blob commit beside it (held when tried on the integrated branch)."""
    import io

    from syncd.content import directory_entry, file_entry
    from syncd.store.blobs import TableBlobStore
    from syncd.store.migrate import migrate
    from test_upgrades import SPEC, populate

    migrate(empty_dsn, upto=17)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        populate(conn, 17)
    migrate(empty_dsn)
    store = PostgresStore(empty_dsn, "ws", str(uuid.uuid4()))
    store.open(device_name="new")
    head = store.version(SPEC)["version"]
    moved = SPEC.replace("/s1/", "/s2/")
    png = file_entry(b"\x89PNG\r\n\x1a\n\x00" * 10)
    TableBlobStore(store).put(png.digest, png.size, io.BytesIO(png.data))
    results = store.commit([Change(moved, head, None, moved_from=SPEC),
                            Change("projects/P/sessions/s2/plans", None, encode_entry("d", directory_entry(), FilePolicy())),
                            Change("projects/P/img.png", None, encode_entry("projects/P/img.png", png, FilePolicy()))])
    assert [r.status for r in results] == ["accepted"] * 3
    assert [v["version"] for v in store.history(moved)] == list(range(head + 1, 0, -1))
    [s2] = [s for s in store.progress() if s["session"] == "s2"]
    assert s2["stages"]["spec"]["documents"] == 1
    store.close()


def test_a_folder_emptied_on_the_other_copy_is_never_removed_and_made_again(copies):
    """Local deletes go first in a pass; the folder the store now holds as an empty
    directory stays through the delete of its last file (same inode: never removed)."""
    a, b = copies
    write(a.root, "s/specs/spec.md", b"# Spec\n")
    a.sync()
    b.sync()
    inode = os.stat(b.root / "s/specs").st_ino
    os.unlink(a.root / "s/specs/spec.md")
    a.sync()
    got = b.sync()
    assert (got["deleted_local"], got["pulled"]) == (1, 1)
    assert os.stat(b.root / "s/specs").st_ino == inode


def test_a_file_made_in_a_folder_another_copy_synced_empty_settles_in_one_pass(copies):
    """Found by the randomized harness (seed 2425...5348980): the store held `d` as an empty
    directory, this copy made `d/e/A.md`. The pass pulled `d` (a no-op: it is there) and
    recorded it as synced; only the next full pass deleted the store's entry."""
    a, b = copies
    (b.root / "d").mkdir()
    b.sync()
    write(a.root, "d/e/A.md", b"# A\n")  # a never synced d: its folder holds a file
    a.sync()
    again = a.sync()
    assert [again[k] for k in ("pushed", "deleted_remote", "pulled")] == [0, 0, 0]
    b.sync()
    assert a.files() == b.files() == {"d/e/A.md": b"# A\n"} and dirs(a.root) == dirs(b.root)


def test_the_stores_empty_directory_over_a_folder_of_synced_files_here_is_deleted_in_one_pass(copies, dsn):
    """The same, with the folder's files synced and unchanged here (a pass does not read
    them again, so its plan has no fact about them): found by review of the fix above."""
    from aged_files import put
    from syncd.content import directory_entry

    a, _ = copies
    put(a.root, "d/e/A.md", b"# A\n")
    a.sync()
    other = PostgresStore(dsn, "team")
    other.open(device_name="other")
    [made] = other.commit([Change("d", None, encode_entry("d", directory_entry(), FilePolicy()))])
    assert made.status == "accepted"
    got = a.sync()
    again = a.sync()
    assert (got["deleted_remote"], again["deleted_remote"], again["pulled"]) == (1, 0, 0)
    assert other.version("d", 2)["deleted"] and a.files() == {"d/e/A.md": b"# A\n"}
    other.close()


def test_a_dry_run_says_the_stores_empty_directory_over_a_folder_with_files_goes_from_the_store(copies):
    """The store's empty directory where a folder here holds files is their parent: the pass
    takes it out of the store (pushes), and the dry run says so, not that it would pull it."""
    a, b = copies
    (a.root / "e").mkdir(parents=True)
    a.sync()
    write(b.root, "e/x.md", b"# b's\n")
    preview = json.loads(b.cli("sync", "--dry-run", "--json").stdout)
    assert (preview["pulled"], sorted(preview["pushed"])) == ([], ["e", "e/x.md"])
    report = b.sync()
    assert (report["pushed"], report["deleted_remote"]) == (1, 1)  # e/x.md, and the entry e
    assert (b.root / "e/x.md").read_bytes() == b"# b's\n"
