"""The scanner and read_local on real trees: what is left alone, and what can never hang or
escape. (Finding files, ignores, rescans and racy entries are in test_local_tree.py.)
"""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import time
import traceback
from pathlib import Path

import pytest

from aged_files import put

from syncd.content import FilePolicy, Unsupported, identity, sha256_hex
from syncd.engine.ignore import TEMP_PREFIX, IgnoreRules
from syncd.engine.entries import packed_stat
from syncd.engine.scanner import MemoryStatCache, read_local, scan, stat_of

NOBODY = 65534


def scan_tree(root: Path, cache=None, policy: FilePolicy = FilePolicy(), rules: IgnoreRules = IgnoreRules()):
    return scan(root, rules, MemoryStatCache() if cache is None else cache, policy)


def unprivileged(root: Path, fn):
    """fn(Path(".")) run with root as the working directory, by a user who cannot read past
    file permissions: in a child dropped to nobody when the tests run as root."""
    if os.geteuid() != 0:
        cwd = os.getcwd()
        os.chdir(root)
        try:
            return fn(Path("."))
        finally:
            os.chdir(cwd)
    root.chmod(0o777)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.chdir(root)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, pickle.dumps(fn(Path("."))))
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read()
    assert os.waitpid(pid, 0)[1] == 0, "the unprivileged child failed"
    return pickle.loads(out)


def test_links_inside_the_root_are_entries_and_others_are_reported_with_the_reason(tmp_path):
    """Regression (issue 18): every symbolic link was reported and left out."""
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"not ours")
    root = tmp_path / "root"
    (root / "plans" / "current").mkdir(parents=True)
    (root / "link.md").symlink_to(outside)
    (root / "dangling.md").symlink_to(root / "nowhere")
    (root / "up.md").symlink_to("../outside.md")
    (root / "plans" / "current" / "test-plan.md").symlink_to("../test-plan.md")  # dangling is fine: a link is a link
    (root / ".env").symlink_to(outside)  # ignored: not even reported
    result = scan_tree(root)
    assert set(result.files) == {"plans/current/test-plan.md"} and result.hashed == 1
    assert result.files["plans/current/test-plan.md"].sha256 == identity(sha256_hex(b"../test-plan.md"), link=True)
    assert result.unsupported == {
        "link.md": f"link.md: a symbolic link to an absolute path ({outside}); not synced "
                   "(only relative links that stay inside the root are)",
        "dangling.md": f"dangling.md: a symbolic link to an absolute path ({root / 'nowhere'}); not synced "
                       "(only relative links that stay inside the root are)",
        "up.md": "up.md: a symbolic link pointing outside the sync root (../outside.md); not synced "
                 "(only relative links that stay inside the root are)"}


def test_a_link_retargeted_or_a_mode_changed_is_seen_through_the_stat_cache(tmp_path):
    cache = MemoryStatCache()
    put(tmp_path, "run.sh", b"#!/bin/sh\n")
    (tmp_path / "l").symlink_to("run.sh")
    first = scan(tmp_path, IgnoreRules(), cache, FilePolicy(), now_ns=time.time_ns() + 10**10)
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "l").unlink()
    (tmp_path / "l").symlink_to("./run.sh")
    second = scan(tmp_path, IgnoreRules(), cache, FilePolicy(), now_ns=time.time_ns() + 10**10)
    assert second.hashed == 2
    assert second.files["run.sh"].sha256 == identity(first.files["run.sh"].sha256, executable=True)
    assert second.files["l"].sha256 == identity(sha256_hex(b"./run.sh"), link=True) != first.files["l"].sha256


def test_ignored_directories_are_not_entered(tmp_path):
    os.makedirs(os.path.join(os.fsencode(tmp_path), b"node_modules/pkg"))
    # an unreadable name would be reported if the walk went in
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"node_modules/pkg/\xff.js"), os.O_CREAT))
    put(tmp_path, "app.md", b"app")
    result = scan_tree(tmp_path, rules=IgnoreRules(["node_modules/"]))
    assert set(result.files) == {"app.md"} and result.unsupported == {}


def test_files_over_the_policy_are_left_alone(tmp_path):
    put(tmp_path, "big.md", b"x" * 2048)
    put(tmp_path, "logo.png", b"\x89PNG\xff\x00")
    put(tmp_path, "ok.md", b"ok")
    result = scan_tree(tmp_path, policy=FilePolicy(max_size=1024, binary="skip"))
    assert set(result.files) == {"ok.md"} and set(result.unsupported) == {"big.md", "logo.png"}
    assert "big.md: 0.0 MiB is over files.max_size" in result.unsupported["big.md"]
    assert result.unsupported["logo.png"].startswith("logo.png: contains NUL bytes; skipped because files.binary: skip")
    binary = scan_tree(tmp_path)
    assert binary.files["logo.png"].sha256 == sha256_hex(b"\x89PNG\xff\x00")


def test_our_own_temp_files_are_handed_back_not_synced_and_look_alikes_are_files(tmp_path):
    ours = f"{TEMP_PREFIX}0a1b2c3d-"
    put(tmp_path, f"a/{ours}0123abcd", b"half written")
    put(tmp_path, f"a/{TEMP_PREFIX}0123abcd", b"a user's file, or another copy's")
    result = scan(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy(), temp_prefix=ours)
    assert result.temp_files == [f"a/{ours}0123abcd"] and set(result.files) == {f"a/{TEMP_PREFIX}0123abcd"}


def test_the_scan_never_drops_cache_entries_the_caller_does(tmp_path):
    put(tmp_path, "gone.md", b"soon gone")
    put(tmp_path, "kept.md", b"kept")
    cache = MemoryStatCache()
    scan_tree(tmp_path, cache)
    (tmp_path / "gone.md").unlink()
    result = scan_tree(tmp_path, cache)
    vanished = set(cache.entries) - set(result.files) - set(result.unsupported)
    assert vanished == {"gone.md"} and result.hashed == 0


def test_a_cached_entry_is_trusted_only_with_the_same_inode(tmp_path):
    put(tmp_path, "a.md", b"same size 1")
    cache = MemoryStatCache()
    scan_tree(tmp_path, cache)
    replacement = put(tmp_path, "new.md", b"same size 2")
    os.replace(replacement, tmp_path / "a.md")  # what an editor's atomic save does
    st = (tmp_path / "a.md").stat()
    cached_stat, _ = cache.entries["a.md"]
    assert st.st_size == cached_stat.size
    result = scan_tree(tmp_path, cache)
    assert result.hashed == 1 and result.files["a.md"].sha256 == sha256_hex(b"same size 2")


def test_an_unreadable_file_is_left_alone_and_the_scan_goes_on(tmp_path):
    put(tmp_path, "secret.md", b"private").chmod(0)
    put(tmp_path, "open.md", b"open").chmod(0o644)
    locked = tmp_path / "locked"
    put(tmp_path, "locked/inside.md", b"x").chmod(0o644)
    locked.chmod(0o444)  # listable, not enterable

    def look(root):
        result = scan_tree(root)
        try:
            read_local(root, "secret.md", FilePolicy())
        except Unsupported as exc:
            refused = str(exc)
        return sorted(result.files), result.unsupported, refused

    try:
        files, unsupported, refused = unprivileged(tmp_path, look)
    finally:
        locked.chmod(0o755)
    assert files == ["open.md"]
    assert unsupported == {
        "secret.md": "secret.md: permission denied; not synced (make it readable to sync it)",
        "locked/inside.md": "locked/inside.md: permission denied; not synced (make it readable to sync it)"}
    assert refused == unsupported["secret.md"]


def test_read_local_gives_the_bytes_and_what_a_scan_would_record(tmp_path):
    put(tmp_path, "d/é f.md", "ünï\r\n".encode())
    data, local = read_local(tmp_path, "d/é f.md", FilePolicy())
    assert data == "ünï\r\n".encode() and local.sha256 == sha256_hex(data)
    assert local.stat == stat_of(os.lstat(tmp_path / "d/é f.md"))
    assert read_local(tmp_path, "d/absent.md", FilePolicy()) is None
    assert read_local(tmp_path, "d/é f.md/under-a-file.md", FilePolicy()) is None


def test_read_local_does_not_follow_a_directory_swapped_for_a_symlink(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    put(outside, "spec.md", b"someone else's file")
    root.mkdir()
    (root / "notes").symlink_to(outside, target_is_directory=True)
    with pytest.raises(Unsupported, match=r"^notes/spec.md: inside the symbolic link 'notes'; not synced"):
        read_local(root, "notes/spec.md", FilePolicy())
    (root / "link.md").symlink_to(outside / "spec.md")
    with pytest.raises(Unsupported, match=r"^link.md: a symbolic link to an absolute path"):
        read_local(root, "link.md", FilePolicy())


@pytest.mark.timeout(10)
def test_read_local_never_blocks_on_a_fifo_or_opens_a_socket(tmp_path):
    os.mkfifo(tmp_path / "spec.md")
    with pytest.raises(Unsupported, match=r"^spec.md: not a regular file"):
        read_local(tmp_path, "spec.md", FilePolicy())
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.fspath(tmp_path / "sock.md"))
        with pytest.raises(Unsupported, match=r"^sock.md: not a regular file"):
            read_local(tmp_path, "sock.md", FilePolicy())
        assert scan_tree(tmp_path).unsupported == {}  # a walk passes such things by silently


def test_a_file_dated_past_2262_is_found_and_read_each_scan_beside_clean_ones(tmp_path):
    """A nanosecond mtime past 2^63 (year 2262: ext4 and XFS take dates to 2446) fits no
    signed 64-bit integer, as the stat cache keeps them: the file is read again each scan
    (it is never cached: it looks modified "now or later"), and the clean file beside it is
    still found clean."""
    put(tmp_path, "ok.md", b"ok\n")
    put(tmp_path, "future.md", b"later\n")
    os.utime(tmp_path / "future.md", ns=(10_413_792_000_000_000_000,) * 2)
    st = os.lstat(tmp_path / "ok.md")
    clean = {"ok.md": packed_stat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
             "future.md": packed_stat(0, 0, 0, 0)}
    cache = MemoryStatCache()
    for _ in range(2):
        result = scan(tmp_path, IgnoreRules(), cache, FilePolicy(), clean=dict(clean))
        assert set(result.files) == {"future.md"} and result.clean == 1
        assert result.files["future.md"].sha256 == identity(sha256_hex(b"later\n"))
    assert cache.entries == {}


def test_a_folder_whose_path_is_past_path_max_is_left_unlisted_and_the_rest_is_scanned(tmp_path):
    """A folder nested so deep that its path is past PATH_MAX (made a level at a time, as
    `cd` then `mkdir` does) cannot be listed by its path: it is unknown, said once with the
    fix, and every other file is scanned (the scan raised ENAMETOOLONG, and every pass failed)."""
    (tmp_path / "ok.md").write_text("ok\n")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(21):  # 21 × 201 bytes
        os.mkdir("n" * 200, dir_fd=fd)
        below = os.open("n" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(os.open("f.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    try:
        result = scan(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy())
        assert set(result.files) == {"ok.md"} and len(result.unlisted) == 1
        [why] = result.unsupported.values()
        assert "longer than this system allows (move it up, or rename it shorter" in why
    finally:
        subprocess.run(["rm", "-rf", str(tmp_path / ("n" * 200))], check=True)  # (pytest's clean-up would fail too)


def test_a_named_path_with_a_name_past_name_max_is_absent_not_an_error(tmp_path):
    """An event pass looks at each path the feed brings. The store takes a path whose folder
    or file name is longer than a name may be here (255 bytes), and no such file can be
    here: it is absent, and the rest of the pass goes on (OSError 36 ended the pass)."""
    from syncd.engine.scanner import scan_touched
    from syncd.engine.touched import Touched
    (tmp_path / "ok.md").write_text("ok\n")
    long_dir, long_file = "d" * 300 + "/f.md", "s/" + "f" * 300 + ".md"
    (tmp_path / "s").mkdir()
    (tmp_path / "s/g.md").write_text("g\n")
    result, scope = scan_touched(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy(),
                                 Touched(paths={long_dir, long_file, "ok.md"}), lambda path: ())
    assert set(result.files) == {"ok.md"} and {long_dir, long_file, "ok.md"} <= scope


def test_an_event_pass_lists_each_folder_once_however_many_of_those_above_it_events_name(tmp_path, monkeypatch):
    """A daemon's first pull makes every folder of the tree, and the next event pass is
    given each of them as a tree to walk: 100k files in 10k folders were listed again for
    each folder above them, and their set copied for each tree (the daemon spent minutes at
    a full core after its first pull). Each folder is listed once, with the same result."""
    from collections import Counter

    from syncd.engine import scanner as scanner_module
    from syncd.engine.scanner import scan_touched
    from syncd.engine.touched import Touched, ancestors
    files = [f"p/P{i % 2}/s{i}/specs/f{j}.md" for i in range(6) for j in range(3)]
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
    (tmp_path / "q").mkdir()
    (tmp_path / "q/x.md").write_text("x\n")
    trees = {a for path in files for a in ancestors(path)} | {"q", "gone", "gone/deeper"}
    listed: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(scanner_module.os, "scandir", lambda d: listed.append(d) or scandir(d))
    known = {"gone/deeper/old.md", "p/P0/s0/specs/old.md"}
    result, scope = scan_touched(tmp_path, IgnoreRules(), MemoryStatCache(), FilePolicy(), Touched(trees=trees),
                                 lambda tree: {k for k in known if k.startswith(tree + "/")})
    assert sorted(result.files) == sorted([*files, "q/x.md"])
    times = Counter(os.path.relpath(d, tmp_path) for d in listed if isinstance(d, str))
    assert set(times) == trees - {"gone", "gone/deeper"}
    assert set(times.values()) == {1}
    assert len(listed) - len(times) <= 2  # (and the two walked asked whether they are empty, by their fd)
    assert set(files) | known | trees | {"q/x.md"} <= scope
