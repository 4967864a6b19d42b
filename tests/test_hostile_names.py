"""Names that are not what they seem: `.git` files from the store, names that are not
UTF-8, and a user's files that look like syncd's own temporary files."""
from __future__ import annotations

import os
from pathlib import Path
import subprocess
import time

import pytest

from syncd.daemon.watcher import ChangeQueue, Watcher
from syncd.engine.ignore import TEMP_PREFIX, IgnoreRules
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

from copies import Copy
from legacy_repo import git
from test_bounded_contract import _plant


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


@pytest.fixture
def pair(tmp_path, dsn, private_xdg):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init(), b.init()
    return a, b


PAYLOAD = "[core]\n\tfsmonitor = \"touch {marker}; false\"\n"


def test_a_git_file_planted_by_a_teammate_never_reaches_a_tree_nor_runs(pair, dsn, tmp_path):
    """`tools/.git` = "gitdir: payload" makes `git status` in tools/ read tools/payload/config,
    whose core.fsmonitor is a command. Neither a copy's push nor the store's head may put it
    on disk, under any spelling Git accepts."""
    a, b = pair
    marker = tmp_path / "ran"
    (a.root / "tools/payload").mkdir(parents=True)
    (a.root / "tools/.git").write_text("gitdir: payload\n")
    (a.root / "tools/payload/config").write_text(PAYLOAD.format(marker=marker))
    (a.root / "tools/payload/HEAD").write_text("ref: refs/heads/main\n")
    for keep in ("objects", "refs"):  # all Git needs to take payload/ for a repository
        (a.root / f"tools/payload/{keep}").mkdir()
        (a.root / f"tools/payload/{keep}/.keep").write_text("")
    (a.root / "tools/README.md").write_text("tools\n")
    a.sync()
    spellings = ("t2/.GIT", "t3/.git.", "t4/.git ", "t5/git~1", "t6/.g\u200cit")
    store = PostgresStore(dsn, "team")  # a writer that is not syncd: the contract directly
    try:
        results = store.commit([Change(p, None, text("gitdir: payload\n")) for p in spellings])
        assert [r.status for r in results] == ["invalid"] * 4 + ["accepted"]  # (HFS+'s: the clients')
        assert "tools/.git" not in {d["path"] for d in store.documents()}
    finally:
        store.close()
    for path in spellings[:4]:  # as a store written before the contract refused them holds them
        _plant(dsn, path, text("gitdir: payload\n"), b"gitdir: payload\n")
    report = b.sync(expect=5)  # refused: said, and the exit status says so
    assert (b.root / "tools/README.md").exists() and (b.root / "tools/payload/config").exists()
    for name in ("tools/.git", "t2/.GIT", "t3/.git.", "t4/.git ", "t5/git~1", "t6/.g\u200cit"):
        assert not os.path.lexists(b.root / name), name
    assert {"t2/.GIT", "t3/.git.", "t4/.git ", "t5/git~1", "t6/.g\u200cit"} <= set(report["skipped"])
    git(b.root / "tools", "status", check=False)
    assert not marker.exists()


def test_a_name_that_is_not_utf8_leaves_the_watcher_running(tmp_path):
    queue = ChangeQueue(debounce=0.05, max_delay=0.5)
    watcher = Watcher(tmp_path, IgnoreRules(["*.log"]), queue, wake=lambda: None)
    assert watcher.start()
    try:
        with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.md"), "wb") as f:
            f.write(b"latin-1 name\n")
        deadline = time.monotonic() + 10
        while queue.due_in(time.monotonic()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queue.due_in(time.monotonic()) is not None
        time.sleep(0.3)
        assert watcher.healthy()
        queue.take()
        (tmp_path / "after.md").write_text("still watched\n")
        deadline = time.monotonic() + 10
        while queue.due_in(time.monotonic()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queue.due_in(time.monotonic()) is not None and watcher.healthy()
    finally:
        watcher.close()


def test_the_ignore_rules_match_any_name_bytes():
    rules = IgnoreRules(["*.log", "build/"])
    assert rules.ignores(os.fsdecode(b"caf\xe9.log"))
    assert rules.ignores(os.fsdecode(b"build\xff"), is_dir=False) is False
    assert rules.ignores(os.fsdecode(b"x/\xff\xfe/build"), is_dir=True)
    assert not rules.ignores(os.fsdecode(b"caf\xe9.md"))


def test_a_users_file_named_like_a_temp_file_is_synced_not_deleted(pair):
    a, b = pair
    for name in (f"{TEMP_PREFIX}notes.md", f"drafts/{TEMP_PREFIX}draft-2.md"):
        (a.root / name).parent.mkdir(parents=True, exist_ok=True)
        (a.root / name).write_text(f"mine: {name}\n")
    report = a.sync()
    assert report["pushed"] == 2
    a.sync()
    assert (a.root / f"{TEMP_PREFIX}notes.md").read_text() == f"mine: {TEMP_PREFIX}notes.md\n"
    b.sync()
    assert (b.root / f"drafts/{TEMP_PREFIX}draft-2.md").exists()


def test_half_written_files_of_another_copy_or_an_older_syncd_are_neither_synced_nor_removed(pair):
    a, b = pair
    (a.root / "s").mkdir()
    leftovers = [f"s/{TEMP_PREFIX}0123456789abcdef", f"s/{TEMP_PREFIX}0a1b2c3d-0123456789abcdef"]
    for name in leftovers:
        (a.root / name).write_bytes(b"half writ")
    (a.root / "s/real.md").write_text("real\n")
    assert a.sync()["pushed"] == 1
    assert all((a.root / name).exists() for name in leftovers)


def test_a_copys_own_leftover_temp_file_is_still_cleaned_up(pair):
    a, _ = pair
    a.sync()
    own = a.journal()
    try:
        prefix = own.temp_prefix
    finally:
        own.close()
    (a.root / "s").mkdir()
    (a.root / f"s/{prefix}0123456789abcdef").write_bytes(b"half written")
    assert a.sync()["pushed"] == 0
    assert not (a.root / f"s/{prefix}0123456789abcdef").exists()


def _deep_file(root: Path, depth: int, data: bytes) -> str:
    """A file `depth` folders deep, made a level at a time (os.makedirs recurses a level a call)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    out = os.open("f.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(out, data)
    os.close(out)
    os.close(fd)
    return "/".join(["d"] * depth) + "/f.md"


def _remove_deep(root: Path, depth: int) -> None:
    """(pytest's clean-up of tmp_path recurses a level a frame too)"""
    os.unlink(root / ("/".join(["d"] * depth) + "/f.md"))
    for level in range(depth, 0, -1):
        os.rmdir(root / "/".join(["d"] * level))


def test_a_file_a_thousand_folders_deep_syncs_and_stops_no_other_path(pair):
    """A path of 1,001 parts (2 kB, within PATH_MAX) from a teammate's tree: pushed, pulled,
    and the other files with it. Each folder level was a call in the ignore rules and in
    the writer: past about 940 of them RecursionError ended every pass."""
    a, b = pair
    deep = _deep_file(a.root, 1000, b"deep\n")
    (a.root / "other.md").write_text("other\n")
    try:
        assert a.sync()["pushed"] == 2
        assert b.sync()["pulled"] == 2
        assert (b.root / deep).read_bytes() == b"deep\n" and (b.root / "other.md").read_text() == "other\n"
    finally:
        for copy in (a, b):
            if (copy.root / deep).exists():
                _remove_deep(copy.root, 1000)


def test_a_name_longer_than_this_filesystem_takes_is_skipped_and_the_rest_arrives(pair, dsn):
    """A Mac's names may be 255 UTF-16 units (765 bytes of UTF-8); Linux's are 255 bytes. A
    teammate's file named so cannot be written here: it is skipped with one line, the other
    files arrive, and a pass on what the watcher named (the daemon's) does not fail on it."""
    from syncd.engine.executor import Executor
    from syncd.engine.touched import Touched
    a, b = pair
    long_name = "projects/P/" + "\u4f1a" * 100 + ".md"  # 300 bytes
    store = PostgresStore(dsn, "team")
    try:
        [result] = store.commit([Change(long_name, None, text("# 会\n"))])
        assert result.status == "accepted"
    finally:
        store.close()
    (a.root / "other.md").write_text("other\n")
    a.sync(expect=5)  # (a cannot have it either: said, and the exit status says so)
    report = b.sync(expect=5)
    assert (b.root / "other.md").read_text() == "other\n" and long_name in report["skipped"]
    assert "File name too long" in report["skipped"][long_name]
    (a.root / "second.md").write_text("second\n")
    a.sync(expect=5)
    journal, store = b.journal(), PostgresStore(dsn, "team")
    try:
        passed = Executor(b.root, journal, store).sync_once(Touched(paths={long_name}))
    finally:
        store.close()
        journal.close()
    assert (b.root / "second.md").read_text() == "second\n" and long_name in passed.skipped
