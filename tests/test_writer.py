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

    def then_the_user_saves(name, dir_fd):
        seen = checked(name, dir_fd)
        (tmp_path / name).write_bytes(b"the user's own\n")
        return seen
    monkeypatch.setattr(writer, "identity_now", then_the_user_saves)
    with pytest.raises(LocalChanged):
        if kind == "file":
            write_atomic(tmp_path, "new.md", b"pulled\n", None, temp_prefix=T)
        else:
            writer.write_link(tmp_path, "new.md", "elsewhere.md", None, temp_prefix=T)
    assert (tmp_path / "new.md").read_bytes() == b"the user's own\n" and no_temp_files(tmp_path)


def _swap_for_a_link(root: Path, directory: str, outside: Path) -> None:
    """What a user (or a program) can do at any moment: the folder moved aside, a link to
    somewhere outside the root in its place."""
    os.rename(root / directory, root / f"{directory}.old")
    os.symlink(outside, root / directory)


def test_a_folder_swapped_for_a_link_after_its_check_takes_no_new_file_out_of_the_root(tmp_path, monkeypatch):
    """The folder a pulled file goes in is checked, then the file is made in it: a link put
    in the folder's place in between must not lead the file out of the root."""
    import syncd.engine.writer as writer
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    real_open = os.open

    def swapped_before_the_create(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and not (root / "a").is_symlink():
            _swap_for_a_link(root, "a", outside)
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(writer.os, "open", swapped_before_the_create)
    try:
        write_atomic(root, "a/new.md", b"pulled\n", None, temp_prefix=T)
    except (LocalChanged, UnsafePath, OSError):
        pass  # refused is fine too: what matters is where nothing went
    assert list(outside.iterdir()) == []
    assert list((root / "a.old").iterdir()) == []  # (its folder moved: the pull waits for the next pass)


def test_a_folder_swapped_for_a_link_after_its_check_loses_no_file_outside_the_root(tmp_path, monkeypatch):
    """A delete checks the file is what was synced, then removes it: a link put in its
    folder's place in between, to a folder outside holding a file of the same bytes, must
    not have that file removed."""
    import syncd.engine.writer as writer
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    (root / "a/x.md").write_bytes(b"same\n")
    outside.mkdir()
    (outside / "x.md").write_bytes(b"same\n")
    checked = writer.identity_now

    def swapped_before_the_check(*args, **kwargs):
        if not (root / "a").is_symlink():
            _swap_for_a_link(root, "a", outside)
        return checked(*args, **kwargs)
    monkeypatch.setattr(writer, "identity_now", swapped_before_the_check)
    try:
        delete_checked(root, "a/x.md", sha256_hex(b"same\n"))
    except (LocalChanged, UnsafePath, OSError):
        pass
    assert (outside / "x.md").read_bytes() == b"same\n"


def test_a_pass_writing_in_many_folders_keeps_few_of_them_open(tmp_path):
    """The directories a pass writes in stay open for the next write, a bounded number of
    them: a pull of a tree of ten thousand folders must not run out of file descriptors."""
    from syncd.engine.writer import Directories
    open_now = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_now()
    dirs = Directories(tmp_path)
    most = 0
    for i in range(300):
        write_atomic(tmp_path, f"p{i % 7}/s{i}/specs/f.md", b"x", None, temp_prefix=T, dirs=dirs)
        most = max(most, open_now())
    dirs.close()
    assert most - before <= Directories.KEPT + 4 and open_now() == before
    assert sum(1 for _ in tmp_path.rglob("f.md")) == 300


def test_a_folder_removed_by_the_pass_is_made_anew_for_a_file_after_it(tmp_path):
    """A delete empties a folder and removes it; a file the same pass then pulls into that
    folder's path goes into a new folder there, not into the removed one."""
    from syncd.engine.writer import Directories
    (tmp_path / "s/specs").mkdir(parents=True)
    (tmp_path / "s/specs/old.md").write_bytes(b"old\n")
    dirs = Directories(tmp_path)
    write_atomic(tmp_path, "s/specs/seen.md", b"seen\n", None, temp_prefix=T, dirs=dirs)  # (opens s/specs)
    delete_checked(tmp_path, "s/specs/seen.md", sha256_hex(b"seen\n"), dirs=dirs)
    delete_checked(tmp_path, "s/specs/old.md", sha256_hex(b"old\n"), dirs=dirs)
    assert not (tmp_path / "s").exists()
    write_atomic(tmp_path, "s/specs/new.md", b"new\n", None, temp_prefix=T, dirs=dirs)
    dirs.close()
    assert (tmp_path / "s/specs/new.md").read_bytes() == b"new\n"


def test_a_leftover_temporary_file_is_removed_in_its_folder_and_never_through_a_link(tmp_path):
    """A scan hands back this copy's leftover temporary files, and the pass removes them.
    If the folder has become a link since the scan, nothing the link leads to is removed."""
    from syncd.engine.writer import remove_leftover
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    leftover = f"{T}0123456789abcdef"
    (root / "a" / leftover).write_bytes(b"half")
    remove_leftover(root, f"a/{leftover}")
    assert not (root / "a" / leftover).exists()
    (outside / leftover).write_bytes(b"not ours to remove")
    os.rmdir(root / "a")
    os.symlink(outside, root / "a")
    with pytest.raises(UnsafePath):
        remove_leftover(root, f"a/{leftover}")
    assert (outside / leftover).read_bytes() == b"not ours to remove"


def test_a_folder_moved_out_of_the_root_mid_pass_is_not_followed_by_the_rest_of_the_pass(tmp_path):
    """The pass keeps the folders it writes in open. The user moves one out of the root (to
    an archive) after the pass wrote in it: the pass's next delete there must not remove the
    user's file in the archive, and its next pull must land in the root, not in the archive."""
    from syncd.engine.writer import Directories
    root, archive = tmp_path / "root", tmp_path / "archive"
    (root / "a").mkdir(parents=True)
    archive.mkdir()
    (root / "a/f.md").write_bytes(b"keep me\n")
    dirs = Directories(root)
    write_atomic(root, "a/first.md", b"1\n", None, temp_prefix=T, dirs=dirs)
    os.rename(root / "a", archive / "a")
    with pytest.raises(LocalChanged):
        delete_checked(root, "a/f.md", sha256_hex(b"keep me\n"), dirs=dirs)
    write_atomic(root, "a/new.md", b"pulled\n", None, temp_prefix=T, dirs=dirs)
    dirs.close()
    assert sorted(p.name for p in (archive / "a").iterdir()) == ["f.md", "first.md"]
    assert (root / "a/new.md").read_bytes() == b"pulled\n"


def test_a_folder_moved_out_of_the_root_after_a_write_takes_no_file_of_the_next_write(tmp_path):
    """A new file of a pull's batch, written in a folder the pass holds open, has its folder
    asked again only right before it is put in place: moved out of the root meanwhile, the
    folder gets neither the file nor its temporary one, and a second try writes in the root.
    A write that streams or fsyncs (seconds) asks before its temporary file is made too."""
    from syncd.engine.durability import Durability
    from syncd.engine.writer import Directories
    root, archive = tmp_path / "root", tmp_path / "archive"
    (root / "a").mkdir(parents=True)
    archive.mkdir()
    dirs, batch = Directories(root), Durability(root)
    write_atomic(root, "a/first.md", b"1\n", None, temp_prefix=T, dirs=dirs, durability=batch)
    os.rename(root / "a", archive / "a")
    with pytest.raises(LocalChanged):
        write_atomic(root, "a/new.md", b"pulled\n", None, temp_prefix=T, dirs=dirs, durability=batch)
    assert sorted(p.name for p in (archive / "a").iterdir()) == ["first.md"]
    write_atomic(root, "a/new.md", b"pulled\n", None, temp_prefix=T, dirs=dirs, durability=batch)
    os.rename(root / "a", archive / "b")
    write_atomic(root, "a/fsynced.md", b"fsynced\n", None, temp_prefix=T, dirs=dirs)
    dirs.close()
    assert (root / "a/fsynced.md").read_bytes() == b"fsynced\n" and no_temp_files(root)
    assert sorted(p.name for p in (archive / "a").iterdir()) == ["first.md"]
    assert sorted(p.name for p in (archive / "b").iterdir()) == ["new.md"]


def test_a_folder_removed_and_made_again_mid_pass_is_written_in_anew(tmp_path):
    """A branch switch removes a folder the pass wrote in and makes it again: the rest of the
    pass writes into the new one (its old, deleted one would refuse every file)."""
    from syncd.engine.writer import Directories, make_directory
    (tmp_path / "a").mkdir()
    dirs = Directories(tmp_path)
    write_atomic(tmp_path, "a/first.md", b"1\n", None, temp_prefix=T, dirs=dirs)
    for name in os.listdir(tmp_path / "a"):
        os.unlink(tmp_path / "a" / name)
    os.rmdir(tmp_path / "a")
    (tmp_path / "a").mkdir()
    write_atomic(tmp_path, "a/second.md", b"2\n", None, temp_prefix=T, dirs=dirs)
    make_directory(tmp_path, "a/sub", None, dirs=dirs)
    dirs.close()
    assert (tmp_path / "a/second.md").read_bytes() == b"2\n" and (tmp_path / "a/sub").is_dir()


def test_a_path_a_thousand_folders_deep_is_written_with_few_folders_open(tmp_path):
    """A hostile path from the store, 1,001 parts in 2 kB: written as before (no
    RecursionError, which no per-path handler catches), without an open folder a part."""
    from syncd.engine.writer import Directories
    deep = "/".join(["d"] * 1000) + "/f.md"
    open_now = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_now()
    dirs = Directories(tmp_path)
    write_atomic(tmp_path, deep, b"x", None, temp_prefix=T, dirs=dirs)
    assert open_now() - before <= Directories.KEPT + 4
    dirs.close()
    assert open_now() == before and (tmp_path / deep).read_bytes() == b"x"
    os.unlink(tmp_path / deep)
    for depth in range(1000, 0, -1):  # (pytest's clean-up of tmp_path recurses a level a frame)
        os.rmdir(tmp_path / "/".join(["d"] * depth))


def test_a_delete_with_the_root_gone_is_a_change_not_a_failure(tmp_path):
    """The root unmounted mid-pass: what the pass deletes is not there, and says so as a
    change since the scan (the next pass decides again), as before."""
    with pytest.raises(LocalChanged):
        delete_checked(tmp_path / "gone", "a/b.md", sha256_hex(b"x"))


def test_a_store_path_too_long_for_this_root_is_refused_before_any_folder_is_made(tmp_path):
    """The store takes paths of up to 4,096 bytes; under a root, such a path is past
    PATH_MAX. Written through open folders it would land where no scan can list it: it is
    refused, with the fix, and no folder is left behind for it."""
    long_path = "/".join(["n" * 200] * 20) + "/f.md"  # 4,025 bytes, and the root's path before it
    with pytest.raises(UnsafePath, match="past the 4095 a path may have here; not written"):
        write_atomic(tmp_path, long_path, b"x", None, temp_prefix=T)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["delete", "replace", "move"])
def test_a_folder_moved_out_while_its_file_is_read_keeps_that_file(tmp_path, monkeypatch, what):
    """A delete, a replace or a move first reads the file through to check it is what was
    synced (seconds, for a big one); the user moves its folder out of the root meanwhile.
    The file, now outside the root, is neither removed, nor overwritten, nor moved."""
    import syncd.engine.writer as writer
    root, archive = tmp_path / "root", tmp_path / "archive"
    (root / "a").mkdir(parents=True)
    archive.mkdir()
    (root / "a/x.md").write_bytes(b"mine\n")
    checked = writer.identity_now

    def read_then_moved(*args, **kwargs):
        seen = checked(*args, **kwargs)
        if (root / "a").exists():
            os.rename(root / "a", archive / "a")
        return seen
    monkeypatch.setattr(writer, "identity_now", read_then_moved)
    with pytest.raises(LocalChanged):
        if what == "delete":
            delete_checked(root, "a/x.md", sha256_hex(b"mine\n"))
        elif what == "replace":
            write_atomic(root, "a/x.md", b"the store's\n", sha256_hex(b"mine\n"), temp_prefix=T)
        else:
            writer.move_checked(root, "a/x.md", "b/y.md", sha256_hex(b"mine\n"))
    assert sorted(p.name for p in (archive / "a").iterdir()) == ["x.md"]
    assert (archive / "a/x.md").read_bytes() == b"mine\n"


def test_emptying_a_thousand_folders_keeps_few_of_them_open(tmp_path):
    """A delete empties the folders above the file up to the root: a hostile path a
    thousand levels deep must not hold one open each (EMFILE left most of them behind)."""
    from syncd.engine.writer import Directories
    deep = "/".join(["d"] * 1000) + "/f.md"
    dirs = Directories(tmp_path)
    write_atomic(tmp_path, deep, b"x", None, temp_prefix=T, dirs=dirs)
    open_now = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_now()
    delete_checked(tmp_path, deep, sha256_hex(b"x"), dirs=dirs)
    assert open_now() - before <= Directories.KEPT + 4
    dirs.close()
    assert list(tmp_path.iterdir()) == []
