"""The writer against what a user's tree can hold where a file is expected: links, fifos,
directories. (Hostile paths, atomicity, modes and LocalChanged basics are in
test_local_tree.py.)
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.content import FilePolicy, sha256_hex
from syncd.engine.ignore import TEMP_PREFIX
from syncd.engine.scanner import read_local, stat_of
from syncd.engine.writer import LocalChanged, UnsafePath, delete_checked, safe_target, write_atomic

T = f"{TEMP_PREFIX}0a1b2c3d-"  # a copy's own prefix


def no_temp_files(root: Path) -> bool:
    return not list(root.rglob(f"{TEMP_PREFIX}*"))


def test_the_returned_stat_is_of_the_bytes_written_not_of_whatever_is_there_after(tmp_path):
    stat = write_atomic(tmp_path, "p/s/spec.md", b"# spec\n", None, temp_prefix=T)
    after = stat_of(os.lstat(tmp_path / "p/s/spec.md"))
    assert (stat.ino, stat.size, stat.mtime_ns) == (after.ino, after.size, after.mtime_ns)
    (tmp_path / "p/s/spec.md").write_bytes(b"# edit\n")  # the user's save, same size
    assert stat_of(os.lstat(tmp_path / "p/s/spec.md")) != stat


def test_a_read_only_file_is_replaced_and_stays_read_only(tmp_path):
    target = tmp_path / "frozen.md"
    target.write_bytes(b"old")
    target.chmod(0o444)
    write_atomic(tmp_path, "frozen.md", b"new", sha256_hex(b"old"), temp_prefix=T)
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o444


def test_a_symlink_where_the_file_was_is_never_replaced_or_removed(tmp_path):
    real = tmp_path / "real.md"
    real.write_bytes(b"real")
    (tmp_path / "spec.md").symlink_to(real)
    for expect in (None, sha256_hex(b"real")):
        with pytest.raises(LocalChanged, match=r"^spec.md: changed since it was scanned; not written"):
            write_atomic(tmp_path, "spec.md", b"remote", expect, temp_prefix=T)
    with pytest.raises(LocalChanged, match=r"^spec.md: changed since it was scanned; not deleted"):
        delete_checked(tmp_path, "spec.md", sha256_hex(b"real"))
    assert (tmp_path / "spec.md").is_symlink() and real.read_bytes() == b"real"
    assert no_temp_files(tmp_path)


@pytest.mark.timeout(10)
def test_a_fifo_where_the_file_was_blocks_nothing_and_stays(tmp_path):
    os.mkfifo(tmp_path / "spec.md")
    with pytest.raises(LocalChanged):
        write_atomic(tmp_path, "spec.md", b"remote", sha256_hex(b"old"), temp_prefix=T)
    with pytest.raises(LocalChanged):
        delete_checked(tmp_path, "spec.md", sha256_hex(b"old"))
    assert (tmp_path / "spec.md").is_fifo() and no_temp_files(tmp_path)


def test_a_directory_or_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "notes.md").write_bytes(b"a file")
    with pytest.raises(UnsafePath, match=r"^specs: .* is a directory"):
        write_atomic(tmp_path, "specs", b"x", None, temp_prefix=T)
    with pytest.raises(UnsafePath, match=r"^notes.md/a.md: .* is a file, not a directory"):
        write_atomic(tmp_path, "notes.md/a.md", b"x", None, temp_prefix=T)
    assert (tmp_path / "notes.md").read_bytes() == b"a file"


def test_any_symlink_on_the_way_is_refused_even_one_inside_the_root(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(UnsafePath, match="symbolic link"):
        safe_target(tmp_path, "alias/spec.md")
    assert list((tmp_path / "real").iterdir()) == []


def test_a_root_reached_through_a_symlink_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real", target_is_directory=True)
    write_atomic(tmp_path / "home", "a/b.md", b"x", None, temp_prefix=T)
    assert (tmp_path / "real/a/b.md").read_bytes() == b"x"
    delete_checked(tmp_path / "home", "a/b.md", sha256_hex(b"x"))
    assert list((tmp_path / "real").iterdir()) == []


def test_deleting_an_absent_file_is_a_change_not_a_success(tmp_path):
    with pytest.raises(LocalChanged, match="not deleted"):
        delete_checked(tmp_path, "gone.md", sha256_hex(b"what we saw"))


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_file_the_user_creates_right_after_the_check_is_never_overwritten(tmp_path, monkeypatch, kind):
    """A pulled new file goes where nothing was; a user's file made between that check and
    the rename (the editor saving a new file of the same name) stays, and the pull is
    LocalChanged, not a silent overwrite."""
    import syncd.engine.writer as writer
    checked = writer.identity_now

    def then_the_user_saves(path):
        seen = checked(path)
        path.write_bytes(b"the user's own\n")
        return seen
    monkeypatch.setattr(writer, "identity_now", then_the_user_saves)
    with pytest.raises(LocalChanged):
        if kind == "file":
            write_atomic(tmp_path, "new.md", b"pulled\n", None, temp_prefix=T)
        else:
            writer.write_link(tmp_path, "new.md", "elsewhere.md", None, temp_prefix=T)
    assert (tmp_path / "new.md").read_bytes() == b"the user's own\n" and no_temp_files(tmp_path)
