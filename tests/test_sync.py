"""Working copies syncing through a real PostgreSQL, driven through the real CLI."""
from __future__ import annotations

import os
import shutil

import psycopg
import pytest

from syncd.cli.main import EXIT_CONFLICTS
from syncd.content import FilePolicy, encode
from syncd.engine.executor import Executor
from syncd.engine.ignore import IgnoreRules
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

from copies import Copy
from test_bounded_contract import _plant
from legacy_tree import BINARY, SECRET_AND_JUNK, make_legacy_tree


pytestmark = pytest.mark.usefixtures("private_xdg")


def test_legacy_tree_reaches_the_second_copy_byte_exact(copies):
    a, b = copies
    expected = make_legacy_tree(a.root)
    assert len(expected) > 300
    expected |= BINARY  # all bytes sync by default (as blobs)
    report = a.sync()
    # and keys/, which holds only a key (never synced): an empty directory on the other copy
    assert report["pushed"] == len(expected) + 1 and report["skipped"] == {}
    report = b.sync()
    assert report["pulled"] == len(expected) + 1
    assert b.files() == expected  # byte-exact, and nothing secret or junk came along
    assert not os.listdir(b.root / "keys")
    assert not set(SECRET_AND_JUNK) & set(b.files())
    # a second pass on each is a no-op: the pulled files do not echo back
    assert a.sync()["pushed"] == 0 and b.sync()["pushed"] == 0


def test_edits_new_files_and_deletes_flow_both_ways(copies):
    a, b = copies
    (a.root / "projects/P/sessions/s1/specs").mkdir(parents=True)
    (a.root / "projects/P/sessions/s1/specs/spec.md").write_text("v1\n")
    (a.root / "projects/P/sessions/s1/plans").mkdir(parents=True)
    (a.root / "projects/P/sessions/s1/plans/plan.md").write_text("plan\n")
    a.sync()
    b.sync()
    # b edits one, adds one, deletes one
    (b.root / "projects/P/sessions/s1/specs/spec.md").write_text("v2 from b\n")
    (b.root / "projects/P/sessions/s1/tasks").mkdir()
    (b.root / "projects/P/sessions/s1/tasks/tasks.md").write_text("- [ ] task\n")
    (b.root / "projects/P/sessions/s1/plans/plan.md").unlink()
    report = b.sync()
    # plans/ stays on b, empty: an empty directory is an entry of its own
    assert (report["pushed"], report["deleted_remote"]) == (3, 1)
    report = a.sync()
    assert (report["pulled"], report["deleted_local"]) == (3, 1)
    assert a.files() == b.files() == {
        "projects/P/sessions/s1/specs/spec.md": b"v2 from b\n",
        "projects/P/sessions/s1/tasks/tasks.md": b"- [ ] task\n",
    }
    assert not os.listdir(a.root / "projects/P/sessions/s1/plans")  # as on b: empty
    (b.root / "projects/P/sessions/s1/plans").rmdir()
    b.sync()
    a.sync()
    assert not (a.root / "projects/P/sessions/s1/plans").exists()  # removed there: removed here
    # and back the other way
    (a.root / "projects/P/sessions/s1/tasks/tasks.md").write_text("- [x] task\n")
    a.sync()
    b.sync()
    assert (b.root / "projects/P/sessions/s1/tasks/tasks.md").read_text() == "- [x] task\n"


def test_a_conflict_is_held_with_both_sides_kept(copies, dsn):
    a, b = copies
    (a.root / "spec.md").write_text("base\n")
    a.sync()
    b.sync()
    (a.root / "spec.md").write_text("a's version\n")
    (b.root / "spec.md").write_text("b's version\n")
    a.sync()
    report = b.sync(expect=EXIT_CONFLICTS)
    assert report["conflicts"] == ["spec.md"]
    assert (b.root / "spec.md").read_text() == "b's version\n"  # untouched
    store = PostgresStore(dsn, "team")
    assert store.version("spec.md")["content"]["text"] == "a's version\n"  # kept
    store.close()
    status = b.status()
    assert [c["path"] for c in status["conflicts"]] == ["spec.md"]
    # held: further passes neither push nor pull it, on either side
    (b.root / "spec.md").write_text("b edits again\n")
    assert b.sync(expect=EXIT_CONFLICTS)["pushed"] == 0
    (a.root / "spec.md").write_text("a edits again\n")
    a.sync()
    assert b.sync(expect=EXIT_CONFLICTS)["pulled"] == 0
    assert (b.root / "spec.md").read_text() == "b edits again\n"
    # both sides agreeing ends the conflict by itself
    (b.root / "spec.md").write_text("a edits again\n")
    assert b.sync()["conflicts"] == []
    assert b.status()["conflicts"] == []


def test_same_new_path_created_on_both_sides_is_a_conflict_not_an_overwrite(copies):
    a, b = copies
    (a.root / "notes.md").write_text("from a\n")
    (b.root / "notes.md").write_text("from b\n")
    a.sync()
    assert b.sync(expect=EXIT_CONFLICTS)["conflicts"] == ["notes.md"]
    assert (b.root / "notes.md").read_text() == "from b\n"


def test_edit_beats_delete_so_nothing_is_lost(copies):
    a, b = copies
    (a.root / "doc.md").write_text("v1\n")
    a.sync()
    b.sync()
    (a.root / "doc.md").unlink()
    (b.root / "doc.md").write_text("edited in b\n")
    a.sync()
    b.sync()  # b's edit resurrects the document
    a.sync()
    assert (a.root / "doc.md").read_text() == "edited in b\n"


def test_a_path_through_a_symlink_out_of_the_root_is_never_written(copies, tmp_path):
    a, b = copies
    outside = tmp_path / "outside"
    outside.mkdir()
    (b.root / "projects").symlink_to(outside, target_is_directory=True)
    (a.root / "projects").mkdir()
    (a.root / "projects/evil.md").write_text("must not land outside\n")
    (a.root / "fine.md").write_text("fine\n")
    a.sync()
    report = b.sync(expect=5)
    assert list(outside.iterdir()) == []
    assert "projects/evil.md" in report["failed"]
    assert (b.root / "fine.md").read_text() == "fine\n"


def test_ignored_paths_in_the_store_are_never_written_here(copies, dsn):
    a, b = copies
    store = PostgresStore(dsn, "team")
    hook = encode("x", b"#!/bin/sh\nrm -rf ~\n", FilePolicy())
    results = store.commit([Change(".env", None, encode(".env", b"SECRET=1\n", FilePolicy())),
                            Change(".git/hooks/post-checkout", None, hook)])
    store.close()
    assert [r.status for r in results] == ["accepted", "invalid"]  # the contract refuses .git names
    _plant(dsn, ".git/hooks/post-checkout", hook, b"#!/bin/sh\nrm -rf ~\n")  # a store from before it did
    report = b.sync(expect=5)  # .env: this copy's setting; .git: refused, and said
    assert set(report["failed"]) == {".git/hooks/post-checkout"}
    assert not (b.root / ".env").exists()
    assert not (b.root / ".git").exists()


def test_a_crash_after_recording_the_feed_loses_nothing(copies, dsn):
    a, b = copies
    (a.root / "x.md").write_text("remote change\n")
    a.sync()
    # b reads the feed and records it, then "crashes" before applying anything
    journal = b.journal()
    store = PostgresStore(dsn, "team")
    Executor(b.root, journal, store)._pull_feed()
    assert journal.cursor > 0 and not (b.root / "x.md").exists()
    journal.close()
    store.close()
    b.sync()
    assert (b.root / "x.md").read_text() == "remote change\n"


def test_a_pass_keeps_no_content_of_versions_this_copy_already_synced(copies, dsn):
    """The feed brings back a copy's own pushes (the pass after a first sync of a big tree):
    holding their contents for the pass would hold the whole tree in memory."""
    a, b = copies
    for i in range(3):
        (a.root / f"f{i}.md").write_text(f"file {i}\n")
    a.sync()
    (a.root / "f0.md").write_text("edited\n")
    b.sync()
    (b.root / "f1.md").write_text("edited in b\n")
    b.sync()
    store = PostgresStore(dsn, "team")
    for copy, kept in ((a, {"f1.md"}), (b, set())):  # a: only b's edit is new to it
        journal = copy.journal()
        executor = Executor(copy.root, journal, store)
        executor._pull_feed()
        assert {path for path, _ in executor._contents} == kept
        journal.close()
    store.close()
    assert a.sync()["pulled"] == 1 and (a.root / "f1.md").read_text() == "edited in b\n"


def test_a_push_whose_answer_was_lost_is_not_repeated(copies, dsn):
    a, _ = copies
    (a.root / "x.md").write_text("once\n")
    # the commit reached the store, but the journal never heard back
    store = PostgresStore(dsn, "team")
    store.commit([Change("x.md", None, encode("x.md", b"once\n", FilePolicy()))])
    a.sync()
    assert len(store.history("x.md")) == 1
    store.close()


def test_a_local_edit_during_the_pull_is_never_overwritten(copies, dsn):
    a, b = copies
    (a.root / "x.md").write_text("v1\n")
    a.sync()
    b.sync()
    (a.root / "x.md").write_text("v2 from a\n")
    a.sync()

    class EditsDuringPull(Executor):
        def _content_of(self, path, remote):
            data = super()._content_of(path, remote)
            (self.root / path).write_text("typed while syncing\n")  # the user saves right now
            return data

    journal = b.journal()
    store = PostgresStore(dsn, "team")
    report = EditsDuringPull(b.root, journal, store, IgnoreRules()).sync_once()
    journal.close()
    store.close()
    assert (b.root / "x.md").read_text() == "typed while syncing\n"
    assert "x.md" not in report.pulled
    # the next pass sees both sides changed: a held conflict, both contents kept
    assert b.sync(expect=EXIT_CONFLICTS)["conflicts"] == ["x.md"]


def test_clear_errors(tmp_path, dsn):
    copy = Copy(tmp_path, "c", dsn)
    result = copy.cli("sync", "--once", expect=1)
    assert "no such config file" in result.output and str(copy.config) in result.output

    copy.config.parent.mkdir(parents=True)
    copy.config.write_text("root: /x\nworkspace: Not A Slug\n")
    assert "key 'workspace'" in copy.cli("status", expect=1).output

    copy.config.write_text("root: /nonexistent/root\nworkspace: team\n"
                           "database_url: postgresql://127.0.0.1:1/nothing\n")
    result = copy.cli("sync", expect=1)
    assert "cannot reach the database" in result.output
    assert len(result.output.strip().splitlines()) == 1

    copy.config.write_text(f"root: /nonexistent/root\nworkspace: team\ndatabase_url: '{dsn}'\n")
    PostgresStore(dsn, "team").open(create=True)
    assert "/nonexistent/root does not exist" in copy.cli("sync", expect=1).output

    copy.config.write_text("root: /x\nworkspace: team\nfiles: {binary: maybe}\n")
    assert "key 'files.binary'" in copy.cli("status", expect=1).output


def test_init_creates_the_workspace_once_and_two_copies_share_it(copies, dsn):
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select slug from workspaces").fetchall() == [("team",)]
        assert conn.execute("select count(*) from devices").fetchone()[0] == 2


def test_a_damaged_version_in_the_store_is_skipped_not_fatal(copies, dsn):
    a, b = copies
    (a.root / "good.md").write_text("good\n")
    (a.root / "bad.md").write_text("original\n")
    a.sync()
    with psycopg.connect(dsn) as conn:  # corruption (or a hostile writer) behind the contract's back
        conn.execute("""update documents set content = jsonb_set(content, '{text}', '"tampered"')
                        where path = 'bad.md'""")
        conn.execute("""update document_versions set content = jsonb_set(content, '{text}', '"tampered"')
                        where path = 'bad.md'""")
    report = b.sync(expect=5)
    assert "does not match its hash" in report["skipped"]["bad.md"] and "bad.md" in report["failed"]
    assert not (b.root / "bad.md").exists()
    assert (b.root / "good.md").read_text() == "good\n"


def test_init_with_a_bad_workspace_writes_nothing(tmp_path, dsn):
    copy = Copy(tmp_path, "c", dsn)
    result = copy.cli("init", str(copy.root), "--workspace", "Bad Slug", "--database-url", dsn, expect=1)
    assert "key 'workspace'" in result.output
    assert not copy.config.exists()


def test_a_root_removed_and_recreated_empty_deletes_nothing(copies, dsn):
    """Right after `rm -rf` the filesystem may give the new directory the same inode number
    (ext4 does; a tmpfs does not). The second round makes it so on any filesystem: the very
    directory it synced, emptied while it was away, comes back."""
    a, _ = copies
    for i in range(3):
        (a.root / f"f{i}.md").write_text(f"{i}\n")
    a.sync()
    aside = a.root.with_name("aside")
    os.rename(a.root, aside)
    assert "does not exist" in a.cli("sync", "--once", expect=1).output
    for f in aside.iterdir():
        f.unlink()
    os.rename(aside, a.root)  # the same inode, on the same filesystem
    assert "not the directory it was" in a.cli("sync", "--once", expect=1).output
    shutil.rmtree(a.root)
    assert "does not exist" in a.cli("sync", "--once", expect=1).output
    a.root.mkdir()
    assert "not the directory it was" in a.cli("sync", "--once", expect=1).output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from document_versions where deleted").fetchone()[0] == 0
    # once the files are back, syncing goes on
    (a.root / "f0.md").write_text("0\n")
    a.sync()
