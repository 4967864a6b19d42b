"""Ignores, the scanner and the writer, on real files."""
from __future__ import annotations

import os
import time

import pytest

from aged_files import put

from syncd.content import FilePolicy, identity, sha256_hex
from syncd.engine.ignore import TEMP_PREFIX, IgnoreRules
from syncd.engine.journal import Journal, JournalLocked
from syncd.engine.scanner import RACY_NS, MemoryStatCache, scan
from syncd.engine.writer import (LocalChanged, UnsafePath, delete_checked, safe_target,
                                 write_atomic)

T = f"{TEMP_PREFIX}0a1b2c3d-"  # a copy's own prefix


@pytest.mark.parametrize("path,ignored", [
    (".git/config", True), ("sub/.git/HEAD", True), (".env", True), ("app/.env.local", True),
    ("keys/server.pem", True), ("tls.key", True), ("home/.ssh/id_ed25519", True), ("id_rsa.pub", True),
    (".spec.md.swp", True), ("spec.md~", True), (".#spec.md", True), ("#spec.md#", True), ("4913", True),
    (f"{TEMP_PREFIX}abc", False),  # a user's file: only a copy's own temp files are its own
    ("tools/.git", True), ("a/.GIT/x", True), (".git. /config", True), ("git~1/config", True),
    (".g\u200cit", True), (".gitignore", False), (".github/ci.yml", False),
    ("spec.md", False), ("identity.md", False), ("environment.md", False), ("keynote.md", False),
])
def test_default_ignores(path, ignored):
    assert IgnoreRules().ignores(path) is ignored


def test_config_patterns_add_and_can_re_include():
    rules = IgnoreRules(["*.log", "build/", "!.env.example"])
    assert rules.ignores("x/debug.log") and rules.ignores("build", is_dir=True)
    assert not rules.ignores(".env.example") and rules.ignores(".env")


def test_scan_finds_files_and_skips_what_it_must(tmp_path):
    put(tmp_path, "projects/P/sessions/s/specs/spec.md", b"spec")
    put(tmp_path, "name with spaces ü.md", b"x")
    put(tmp_path, ".git/objects/ab", b"git")
    put(tmp_path, ".env", b"SECRET=1")
    put(tmp_path, "a/.b.md.swp", b"swap")
    put(tmp_path, "logo.png", b"\x89PNG\xff")
    (tmp_path / "linked").symlink_to(tmp_path / "projects", target_is_directory=True)
    os.mkfifo(tmp_path / "fifo")
    result = scan(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy())
    assert set(result.files) == {"projects/P/sessions/s/specs/spec.md", "name with spaces ü.md", "logo.png"}
    assert result.files["name with spaces ü.md"].sha256 == sha256_hex(b"x")
    assert set(result.unsupported) == {"linked"}
    assert "a symbolic link to an absolute path" in result.unsupported["linked"]


def test_undecodable_file_names_are_reported_not_fatal(tmp_path):
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.md"), os.O_CREAT | os.O_WRONLY))
    result = scan(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy())
    [(path, message)] = result.unsupported.items()
    assert "not valid UTF-8" in message and result.files == {}


def test_rescan_reads_only_what_changed(tmp_path):
    for i in range(20):
        put(tmp_path, f"d/f{i}.md", f"content {i}".encode())
    cache = MemoryStatCache()
    assert scan(tmp_path, IgnoreRules(), cache, FilePolicy()).hashed == 20
    assert scan(tmp_path, IgnoreRules(), cache, FilePolicy()).hashed == 0
    # same size, new content, new mtime: read again
    put(tmp_path, "d/f3.md", b"content X", age_s=5)
    result = scan(tmp_path, IgnoreRules(), cache, FilePolicy())
    assert result.hashed == 1 and result.files["d/f3.md"].sha256 == sha256_hex(b"content X")


def test_racy_entries_are_hashed_again(tmp_path):
    put(tmp_path, "fresh.md", b"just written", age_s=0)
    cache = MemoryStatCache()
    scan(tmp_path, IgnoreRules(), cache, FilePolicy())
    assert "fresh.md" not in cache.entries
    assert scan(tmp_path, IgnoreRules(), cache, FilePolicy()).hashed == 1
    later = time.time_ns() + RACY_NS
    scan(tmp_path, IgnoreRules(), cache, FilePolicy(), now_ns=later)
    assert scan(tmp_path, IgnoreRules(), cache, FilePolicy(), now_ns=later).hashed == 0


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "./a", "a//b", "a/", "a\x00b"])
def test_hostile_paths_are_refused(tmp_path, path):
    with pytest.raises(UnsafePath):
        write_atomic(tmp_path, path, b"x", None, temp_prefix=T)
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_directory_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symbolic link"):
        write_atomic(root, "escape/x.md", b"x", None, temp_prefix=T)
    with pytest.raises(UnsafePath):
        safe_target(root, "escape/deeper/x.md")
    assert list(outside.iterdir()) == []


def test_write_is_atomic_keeps_mode_and_leaves_no_temp_file(tmp_path):
    target = put(tmp_path, "a/b.sh", b"old")
    target.chmod(0o750)
    st = write_atomic(tmp_path, "a/b.sh", b"new", identity(sha256_hex(b"old"), executable=True), temp_prefix=T,
                      executable=True)
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o750
    assert st.size == 3
    # the executable bit is the version's: taken off (and put back) with the write, nothing else changes
    write_atomic(tmp_path, "a/b.sh", b"new", identity(sha256_hex(b"new"), executable=True), temp_prefix=T)
    assert (target.stat().st_mode & 0o777) == 0o640
    write_atomic(tmp_path, "new/dirs/c.md", b"c", None, temp_prefix=T)
    assert (tmp_path / "new/dirs/c.md").read_bytes() == b"c"
    assert not [p for p in tmp_path.rglob(f"{TEMP_PREFIX}*")]


def test_a_file_edited_since_the_scan_is_not_overwritten(tmp_path):
    target = put(tmp_path, "spec.md", b"the user's new words")
    with pytest.raises(LocalChanged):
        write_atomic(tmp_path, "spec.md", b"remote", sha256_hex(b"what the scan saw"), temp_prefix=T)
    with pytest.raises(LocalChanged):
        write_atomic(tmp_path, "other.md", b"remote", sha256_hex(b"expected to exist"), temp_prefix=T)
    put(tmp_path, "created.md", b"created meanwhile")
    with pytest.raises(LocalChanged):
        write_atomic(tmp_path, "created.md", b"remote", None, temp_prefix=T)
    assert target.read_bytes() == b"the user's new words"
    assert (tmp_path / "created.md").read_bytes() == b"created meanwhile"
    assert not [p for p in tmp_path.rglob(f"{TEMP_PREFIX}*")]


def test_delete_checked_removes_emptied_directories_but_not_the_root(tmp_path):
    put(tmp_path, "p/s/specs/spec.md", b"x")
    put(tmp_path, "p/keep.md", b"k")
    with pytest.raises(LocalChanged):
        delete_checked(tmp_path, "p/s/specs/spec.md", sha256_hex(b"other"))
    delete_checked(tmp_path, "p/s/specs/spec.md", sha256_hex(b"x"))
    assert not (tmp_path / "p/s").exists() and (tmp_path / "p/keep.md").exists()
    delete_checked(tmp_path, "p/keep.md", sha256_hex(b"k"))
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_one_syncd_per_working_copy(tmp_path):
    first = Journal(tmp_path / "journal.sqlite3")
    first.lock()
    second = Journal(tmp_path / "journal.sqlite3")
    with pytest.raises(JournalLocked, match=f"pid {os.getpid()}"):
        second.lock()
    first.close()
    second.lock()  # free again once the first is gone
    second.close()


def test_a_daemon_starting_while_status_looks_waits_for_the_look(tmp_path):
    """`syncd status` takes the lock for an instant to see whether a daemon runs; a daemon
    starting in that instant once gave up with "another syncd is already syncing"."""
    import fcntl
    import threading
    journal = Journal(tmp_path / "journal.sqlite3")
    looking = os.open(tmp_path / "journal.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(looking, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what status's look does
    threading.Timer(0.2, os.close, [looking]).start()
    journal.lock()
    assert Journal(tmp_path / "journal.sqlite3").locked_by() == os.getpid()
    journal.close()
