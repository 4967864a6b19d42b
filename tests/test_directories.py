"""Empty directories sync as directories (issue 18): a new session's empty stage folders
reach the other copies, and a directory removed on one side goes on the others when it
holds nothing unsynced. Real copies, real PostgreSQL, over each transport."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from syncd.content import DIRECTORY, FilePolicy
from syncd.engine.entries import read_entry
from syncd.engine.ignore import IgnoreRules
from syncd.engine.scanner import MemoryStatCache, scan
from syncd.engine.writer import HoldsUnsynced, LocalChanged, delete_checked, make_directory

pytestmark = pytest.mark.usefixtures("private_xdg")

SESSION = "projects/P/sessions/s2"
STAGES = ["01-intent", "02-spec", "03-plan"]


def dirs(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def test_only_a_directory_that_holds_nothing_that_syncs_is_an_entry(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)  # a holds b: only b is an entry
    (tmp_path / "c").mkdir()
    (tmp_path / "c/.DS_Store").write_bytes(b"\0\0\0\1Bud1")  # the Finder's, ignored: c is still empty
    (tmp_path / "d/build").mkdir(parents=True)  # ignored by the config: d holds nothing that syncs
    (tmp_path / "e").mkdir()
    (tmp_path / "e/x.md").write_text("x")
    result = scan(tmp_path, IgnoreRules(["build/"]), MemoryStatCache(), FilePolicy())
    assert {p: f.sha256 for p, f in result.files.items() if f.sha256 == DIRECTORY} == {
        "a/b": DIRECTORY, "c": DIRECTORY, "d": DIRECTORY}
    assert read_entry(tmp_path, "c", FilePolicy(), IgnoreRules().ignores)[1].sha256 == DIRECTORY
    assert read_entry(tmp_path, "a", FilePolicy(), IgnoreRules().ignores) is None  # a parent, no entry
    assert read_entry(tmp_path, "c", FilePolicy()) is None  # with no rules, .DS_Store is something


def test_a_directory_entry_is_made_and_removed_only_as_last_seen(tmp_path):
    make_directory(tmp_path, "s/01-intent", None)
    assert (tmp_path / "s/01-intent").is_dir()
    make_directory(tmp_path, "s/01-intent", None)  # already there: done
    (tmp_path / "f").write_text("mine")
    with pytest.raises(LocalChanged):
        make_directory(tmp_path, "f", None)  # a file the scan did not see
    assert (tmp_path / "f").read_text() == "mine"
    (tmp_path / "s/01-intent/.DS_Store").write_bytes(b"junk")
    with pytest.raises(HoldsUnsynced, match="s/01-intent: deleted in the store.*remove them to finish"):
        delete_checked(tmp_path, "s/01-intent", DIRECTORY, ignored=IgnoreRules().ignores)
    (tmp_path / "s/01-intent/new.md").write_text("new")
    with pytest.raises(LocalChanged):  # something that syncs arrived since the scan
        delete_checked(tmp_path, "s/01-intent", DIRECTORY, ignored=IgnoreRules().ignores)
    os.unlink(tmp_path / "s/01-intent/new.md")
    os.unlink(tmp_path / "s/01-intent/.DS_Store")
    delete_checked(tmp_path, "s/01-intent", DIRECTORY)
    assert not (tmp_path / "s").exists()  # emptied parents go, as for files


def test_a_new_sessions_empty_stage_folders_reach_the_other_copy_and_go_when_removed(copies):
    a, b = copies
    for stage in STAGES:
        (a.root / SESSION / stage).mkdir(parents=True)
    a.sync()
    b.sync()
    assert {f"{SESSION}/{s}" for s in STAGES} <= dirs(b.root)
    log = json.loads(b.cli("log", f"{SESSION}/01-intent", "--json").stdout)
    assert [v["mode"] for v in log["versions"]] == ["040000"]
    assert "040000 directory" in b.cli("log", f"{SESSION}/01-intent").output

    # a file arrives in one of them: the folder is its parent now, on both sides, and stays
    (a.root / SESSION / "02-spec/spec.md").write_text("# Spec\n")
    a.sync()
    b.sync()
    a.sync()
    assert (b.root / SESSION / "02-spec/spec.md").read_text() == "# Spec\n"
    # a file deleted from a synced folder leaves the folder, an entry again
    os.unlink(a.root / SESSION / "02-spec/spec.md")
    a.sync()
    b.sync()
    assert (b.root / SESSION / "02-spec").is_dir() and not os.listdir(b.root / SESSION / "02-spec")

    # removed on one side: removed on the other; one holding only ignored files is left, said once
    (b.root / SESSION / "03-plan/.DS_Store").write_bytes(b"junk")
    for stage in ("01-intent", "03-plan"):
        os.rmdir(a.root / SESSION / stage)
    a.sync()
    report = b.sync(expect=5)
    assert not (b.root / SESSION / "01-intent").exists()
    assert (b.root / SESSION / "03-plan/.DS_Store").exists()
    assert list(report["skipped"]) == [f"{SESSION}/03-plan"]
    assert "holds files that are not synced" in report["skipped"][f"{SESSION}/03-plan"]
    os.unlink(b.root / SESSION / "03-plan/.DS_Store")
    b.sync()
    assert not (b.root / SESSION / "03-plan").exists()
    assert dirs(a.root) == dirs(b.root)


def test_a_folder_removed_with_its_files_leaves_no_empty_folders_behind(copies):
    a, b = copies
    for rel in ("old/x.md", "old/deep/y.md"):
        (a.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (a.root / rel).write_text(rel)
    (a.root / "old/empty").mkdir()
    a.sync()
    b.sync()
    subprocess.run(["rm", "-rf", str(a.root / "old")], check=True)
    a.sync()
    b.sync()
    a.sync()
    assert not (b.root / "old").exists() and not (a.root / "old").exists()


def test_an_empty_directory_and_a_file_on_the_same_path_are_a_conflict_not_a_loss(copies):
    a, b = copies
    (a.root / "notes").mkdir()
    (b.root / "notes").write_text("b's notes\n")
    a.sync()
    b.sync(expect=3)
    assert (b.root / "notes").read_text() == "b's notes\n"
    assert (a.root / "notes").is_dir()


def test_the_git_mirror_leaves_empty_directories_out(tmp_path, dsn):
    """Git keeps no empty directories: the mirror records none, and no empty file for one."""
    from copies import Copy
    from test_kinds import git

    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.root.mkdir(parents=True)
    git(a.root, "init", "-q", "-b", "main")
    (a.root / "README.md").write_text("hello\n")
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "start")
    a.init()
    b.init()
    a.sync()
    b.sync()
    (b.root / SESSION / "01-intent").mkdir(parents=True)
    (b.root / "README.md").write_text("hello again\n")
    b.sync()
    a.sync()
    assert (a.root / SESSION / "01-intent").is_dir()
    assert git(a.root, "ls-tree", "-r", "--name-only", "syncd/mirror").split() == ["README.md"]
    os.rmdir(b.root / SESSION / "01-intent")
    b.sync()
    a.sync()
    assert not (a.root / SESSION / "01-intent").exists()
    assert {d for d in dirs(a.root) if d.split("/")[0] != ".git"} == dirs(b.root)  # the session folder, empty on b now, too
    assert git(a.root, "ls-tree", "-r", "--name-only", "syncd/mirror").split() == ["README.md"]
