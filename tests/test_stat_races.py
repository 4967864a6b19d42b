"""A save that lands right after syncd writes a file is never taken for syncd's own bytes.

File timestamps tick coarsely (a few milliseconds on Linux), so a save within the same
tick as syncd's write can leave size, mtime and ctime exactly as syncd's write left them.
Whatever the stat cache records for a file syncd wrote, the next scan must read it again.
"""
from __future__ import annotations

import os
import threading
import time
from unittest import mock

from hypothesis import given, settings, strategies as st

from syncd.content import sha256_hex
from syncd.engine import writer
from syncd.engine.ignore import IgnoreRules
from syncd.content import FilePolicy
from syncd.engine.scanner import MemoryStatCache, remember, scan

from copies import Copy


def test_a_save_right_after_a_pull_is_pushed(tmp_path, dsn, private_xdg, monkeypatch):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init(), b.init()
    (a.root / "notes.md").write_text("pulled\n")
    a.sync()
    real_link = os.link

    def the_user_saves_just_after(src, dst, *args, **kwargs):  # (a new file is linked into place)
        real_link(src, dst, *args, **kwargs)
        if str(dst).endswith("notes.md"):  # same size, same timestamp tick: only the bytes differ
            with open(b.root / "notes.md", "r+b") as f:
                f.write(b"edited")

    monkeypatch.setattr(writer.os, "link", the_user_saves_just_after)
    assert b.sync()["pulled"] == 1
    monkeypatch.setattr(writer.os, "link", real_link)
    assert (b.root / "notes.md").read_bytes() == b"edited\n"

    again = b.sync()
    assert again["pushed"] == 1, again
    a.sync()
    assert (a.root / "notes.md").read_bytes() == b"edited\n"


@settings(max_examples=100, deadline=None)
@given(delay_us=st.integers(min_value=0, max_value=500), in_place=st.booleans())
def test_a_write_at_any_moment_around_the_rename_is_seen_by_the_next_scan(tmp_path_factory, delay_us, in_place):
    """syncd writes a file and records what it wrote, as a pull does; the user's save starts
    as syncd renames its temporary file into place and lands some microseconds later; the
    next scan must report what is on disk."""
    root = tmp_path_factory.mktemp("race")
    (root / "f.md").write_bytes(b"old!\n")
    cache = MemoryStatCache()
    theirs = b"mine\n" if in_place else b"mine, longer\n"
    real_replace = os.replace

    def save():
        deadline = time.perf_counter() + delay_us / 1e6
        while time.perf_counter() < deadline:
            pass
        if in_place:  # same size: only the bytes differ
            with open(root / "f.md", "r+b") as f:
                f.write(theirs)
        else:  # an editor's atomic save
            (root / "f.md.save").write_bytes(theirs)
            real_replace(root / "f.md.save", root / "f.md")

    user = threading.Thread(target=save)

    def rename_as_the_user_saves(*args, **kwargs):
        user.start()
        real_replace(*args, **kwargs)

    with mock.patch.object(writer.os, "replace", rename_as_the_user_saves):
        written = writer.write_atomic(root, "f.md", b"ours\n", sha256_hex(b"old!\n"), temp_prefix=".syncd-tmp-0a1b2c3d-")
        remember(cache, "f.md", written, sha256_hex(b"ours\n"))
    user.join()
    result = scan(root, IgnoreRules(), cache, FilePolicy())
    assert result.files["f.md"].sha256 == sha256_hex((root / "f.md").read_bytes())
