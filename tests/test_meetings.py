"""Where the pieces of issue 18 meet (ignore rules, every kind of file, blobs, moves, empty
directories): each test here failed on the integrated branch before its fix. Real copies
through the CLI, real PostgreSQL, over each transport."""
from __future__ import annotations

import os
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
