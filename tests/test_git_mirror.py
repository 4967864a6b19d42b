"""The Git mirror against real repositories: what it commits, and everything it must leave alone."""
from __future__ import annotations

import datetime
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from syncd.git.mirror import Author, Mirror, MirrorEntry, MirrorError, UnsafeToCommit

ALICE = Author("Alice Archer", "alice@example.com")
BOB = Author("Bob Builder", "bob@example.com")
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
BRT = datetime.timezone(datetime.timedelta(hours=-3))
MIRROR = "refs/heads/syncd/mirror"


@pytest.fixture(autouse=True)
def no_identity(monkeypatch):
    """The mirror must not need user.name/user.email: no global or system config anywhere."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                 "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE", "GIT_INDEX_FILE", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)


def run(repo: Path, *args: str, check: bool = True) -> bytes:
    """git as the user runs it; GIT_OPTIONAL_LOCKS=0 so `git status` never rewrites the index
    a test is comparing."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0"}
    done = subprocess.run(["git", "-c", "user.name=U", "-c", "user.email=u@x", *args], cwd=repo, env=env,
                          capture_output=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode()}")
    return done.stdout


def git(repo: Path, *args: str, check: bool = True) -> str:
    return run(repo, *args, check=check).decode().strip()


def write(repo: Path, rel: str, data: bytes) -> None:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_bytes(data)


def entry(path: str, data: bytes | None, who: Author = ALICE, version: int = 1,
          at: datetime.datetime = datetime.datetime(2026, 11, 20, 9, 0, tzinfo=IST), mode: str = "100644") -> MirrorEntry:
    return MirrorEntry(path, data, who, at, version, mode)


def blob(repo: Path, rev: str, path: str) -> bytes:
    return run(repo, "cat-file", "blob", f"{rev}:{path}")


def files(repo: Path, rev: str) -> list[str]:
    return [p for p in run(repo, "ls-tree", "-r", "-z", "--name-only", rev).decode().split("\0") if p]


def untouched(repo: Path) -> dict:
    """Everything of the user's that the mirror must leave byte-identical: all of the git dir
    except the object store and the mirror's own ref and reflog, the refs, status and work tree."""
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir"))
    common = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    state = {"HEAD": git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False),
             "status": run(repo, "status", "--porcelain=v2", "-z", "--branch"),
             "refs": [r for r in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
                      if not r.startswith(MIRROR + " ")]}
    for where in {git_dir, common}:
        for path in sorted(where.rglob("*")):
            rel = path.relative_to(where).as_posix()
            if path.is_file() and not rel.startswith(("objects/", "refs/heads/syncd/", "logs/refs/heads/syncd/")):
                state[f"{where}:{rel}"] = path.read_bytes()
    for path in sorted(repo.rglob("*")):
        if ".git" not in path.relative_to(repo).parts and path.is_file():
            state[path.relative_to(repo).as_posix()] = (path.stat().st_mode, path.read_bytes())
    return state


@pytest.fixture
def repo(tmp_path):
    """A repository with some history: a plain file, an executable, a nested file."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "a.md", b"a\n")
    write(root, "tool.sh", b"#!/bin/sh\n")
    (root / "tool.sh").chmod(0o755)
    write(root, "docs/old.md", b"old\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@pytest.fixture
def diverged(repo):
    """main and topic changed a.md differently, so rebasing, merging or picking one onto the
    other stops on a conflict; topic is checked out."""
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "a.md", b"topic\n")
    git(repo, "commit", "-qam", "topic 1")
    write(repo, "a.md", b"topic 2\n")
    git(repo, "commit", "-qam", "topic 2")
    git(repo, "checkout", "-q", "main")
    write(repo, "a.md", b"main\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "checkout", "-q", "topic")
    return repo


def rebase_stopped_with_staged_work(repo: Path) -> None:
    git(repo, "rebase", "main", check=False)
    assert (repo / ".git/rebase-merge").is_dir()
    write(repo, "staged.md", b"the user's staged work\n")
    git(repo, "add", "staged.md")


def test_ref_mode_commits_one_commit_per_author_and_leaves_the_user_alone(repo):
    write(repo, "mine.md", b"untracked\n")
    before = untouched(repo)
    head = git(repo, "rev-parse", "HEAD")
    nested = "projects/P/sessions/s1/specs/spec.md"
    odd = "notes/ma note été.md"
    batch = [entry("crlf.md", b"one\r\ntwo\r\n", ALICE, 3, datetime.datetime(2026, 11, 20, 9, 0, tzinfo=IST)),
             entry(nested, b"# Spec\n", BOB, 7, datetime.datetime(2026, 11, 20, 8, 0, tzinfo=BRT)),
             entry(odd, b"caf\xc3\xa9\n", ALICE, 1, datetime.datetime(2026, 11, 20, 11, 15, tzinfo=IST)),
             entry("docs/old.md", None, ALICE, 4, datetime.datetime(2026, 11, 20, 10, 0, tzinfo=IST))]
    started = time.time()
    first, second = Mirror(repo).record(batch)

    assert git(repo, "rev-parse", MIRROR) == second
    assert git(repo, "rev-list", "--parents", "-n1", first).split() == [first, head]
    assert git(repo, "rev-list", "--parents", "-n1", second).split() == [second, first]
    assert git(repo, "log", "-1", "--format=%an|%ae|%aI|%cn|%ce", first) == \
        "Alice Archer|alice@example.com|2026-11-20T11:15:00+05:30|syncd|syncd@localhost"
    assert git(repo, "log", "-1", "--format=%an|%ae|%aI|%cn|%ce", second) == \
        "Bob Builder|bob@example.com|2026-11-20T08:00:00-03:00|syncd|syncd@localhost"
    assert started - 5 <= int(git(repo, "log", "-1", "--format=%ct", first)) <= time.time() + 5
    assert git(repo, "log", "-1", "--format=%B", first) == (
        "syncd: 3 documents by Alice Archer\n\n"
        f"Syncd-Version: crlf.md@3\nSyncd-Version: {odd}@1\nSyncd-Version: docs/old.md@4 (deleted)")
    assert git(repo, "log", "-1", "--format=%B", second) == f"syncd: update {nested}\n\nSyncd-Version: {nested}@7"
    assert files(repo, first) == ["a.md", "crlf.md", odd, "tool.sh"]
    assert files(repo, second) == ["a.md", "crlf.md", odd, nested, "tool.sh"]
    assert blob(repo, second, "crlf.md") == b"one\r\ntwo\r\n"
    assert blob(repo, second, odd) == b"caf\xc3\xa9\n"
    assert blob(repo, second, nested) == b"# Spec\n"
    assert untouched(repo) == before


def test_the_same_batch_again_makes_no_commit(repo):
    mirror = Mirror(repo)
    batch = [entry("a.md", b"synced\n"), entry("b.md", b"b\n", BOB)]
    assert len(mirror.record(batch)) == 2
    tip = git(repo, "rev-parse", MIRROR)
    assert mirror.record(batch) == []
    assert mirror.record([entry("a.md", b"synced\n", BOB, 2)]) == []  # same bytes by someone else: no change
    assert mirror.record([]) == []
    assert git(repo, "rev-parse", MIRROR) == tip


def test_within_a_batch_the_last_version_of_a_path_wins(repo):
    [commit] = Mirror(repo).record([entry("a.md", b"v2\n", version=2), entry("a.md", b"v3\n", version=3)])
    assert blob(repo, commit, "a.md") == b"v3\n"
    assert git(repo, "log", "-1", "--format=%B", commit) == \
        "syncd: update a.md\n\nSyncd-Version: a.md@2\nSyncd-Version: a.md@3"


def test_ref_mode_records_during_a_rebase_with_staged_changes_and_changes_nothing(diverged):
    rebase_stopped_with_staged_work(diverged)
    before = untouched(diverged)
    assert any("rebase-merge/" in key for key in before)
    [commit] = Mirror(diverged).record([entry("a.md", b"synced\n"), entry("new.md", b"new\n")])
    assert blob(diverged, commit, "a.md") == b"synced\n"
    assert "staged.md" not in files(diverged, commit)
    assert untouched(diverged) == before


def test_a_prefix_places_entries_under_it_and_a_subdirectory_finds_the_top(repo):
    (repo / "ws").mkdir()
    [commit] = Mirror(repo / "ws", prefix="ws").record([entry("specs/spec.md", b"spec\n"), entry("a.md", b"x\n")])
    assert files(repo, commit) == ["a.md", "docs/old.md", "tool.sh", "ws/a.md", "ws/specs/spec.md"]
    assert blob(repo, commit, "a.md") == b"a\n"
    assert blob(repo, commit, "ws/a.md") == b"x\n"


def test_each_version_has_its_own_mode_executable_or_link(repo):
    """Regression (issue 18): the mirror kept the index's mode, so a version made executable
    (or not) elsewhere was committed with the old one, and a link became a file."""
    write(repo, ":run me.sh", b"#!/bin/sh\n")  # a leading colon is pathspec magic to git
    (repo / ":run me.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "run me")
    [commit] = Mirror(repo).record([entry("tool.sh", b"#!/bin/sh\necho new\n", mode="100755"),
                                    entry(":run me.sh", b"#!/bin/sh\necho too\n"), entry("new.sh", b"#!/bin/sh\n"),
                                    entry("plans/current", b"../plans/v2", mode="120000")])
    listing = git(repo, "ls-tree", "-r", commit)
    assert "100755 blob" in listing.split("\ttool.sh")[0].splitlines()[-1]
    assert "100644 blob" in listing.split("\t:run me.sh")[0].splitlines()[-1]
    assert "100644 blob" in listing.split("\tnew.sh")[0].splitlines()[-1]
    assert "120000 blob" in listing.split("\tplans/current")[0].splitlines()[-1]
    assert blob(repo, commit, "plans/current") == b"../plans/v2"


def test_an_empty_repository_gets_a_root_commit(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    before = untouched(root)
    assert Mirror(root).record([entry("gone.md", None)]) == []  # nothing to record: not even an empty root
    [commit] = Mirror(root).record([entry("a.md", b"a\n")])
    assert git(root, "rev-list", "--parents", "-n1", commit) == commit
    assert files(root, commit) == ["a.md"]
    assert untouched(root) == before


def test_branch_mode_commits_only_synced_paths_and_keeps_what_the_user_staged(repo):
    write(repo, "a.md", b"synced\n")  # the daemon has written the synced content already
    write(repo, "mine.md", b"my staged work\n")
    git(repo, "add", "mine.md")
    write(repo, "tool.sh", b"#!/bin/sh\necho staged by me\n")
    git(repo, "add", "tool.sh")
    staged_tool = git(repo, "rev-parse", ":tool.sh")
    staged_mine = git(repo, "rev-parse", ":mine.md")
    head = git(repo, "rev-parse", "HEAD")
    head_file = (repo / ".git/HEAD").read_bytes()

    [commit] = Mirror(repo, mode="branch").record([entry("a.md", b"synced\n"),
                                                   entry("tool.sh", b"#!/bin/sh\necho synced\n")])
    assert git(repo, "rev-parse", "refs/heads/main") == commit
    assert git(repo, "rev-list", "--parents", "-n1", commit).split() == [commit, head]
    assert (repo / ".git/HEAD").read_bytes() == head_file
    assert files(repo, commit) == ["a.md", "docs/old.md", "tool.sh"]  # mine.md is not committed
    assert blob(repo, commit, "tool.sh") == b"#!/bin/sh\necho synced\n"
    assert git(repo, "rev-parse", ":mine.md") == staged_mine
    assert git(repo, "rev-parse", ":tool.sh") == staged_tool  # the user's staging wins
    assert git(repo, "rev-parse", ":a.md") == git(repo, "rev-parse", f"{commit}:a.md")
    status = git(repo, "status", "--porcelain")
    assert "A  mine.md" in status
    assert "a.md" not in status  # clean: the index follows the commit there
    assert (repo / "tool.sh").read_bytes() == b"#!/bin/sh\necho staged by me\n"  # the work tree is not written


def test_branch_mode_leaves_a_locked_index_alone_and_says_so(repo, caplog):
    write(repo, "a.md", b"synced\n")
    index = (repo / ".git/index").read_bytes()
    (repo / ".git/index.lock").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="syncd.git"):
        [commit] = Mirror(repo, mode="branch").record([entry("a.md", b"synced\n")])
    assert git(repo, "rev-parse", "main") == commit
    assert (repo / ".git/index").read_bytes() == index
    assert (repo / ".git/index.lock").read_bytes() == b""
    assert "index" in caplog.text


@pytest.mark.parametrize("steps", [
    [("rebase", "main")], [("checkout", "-q", "main"), ("merge", "topic")],
    [("checkout", "-q", "main"), ("cherry-pick", "topic")], [("revert", "--no-edit", "HEAD~1")],
    [("bisect", "start")]], ids=["rebase", "merge", "cherry-pick", "revert", "bisect"])
def test_branch_mode_refuses_while_an_operation_is_in_progress(diverged, steps, request):
    for step in steps:
        git(diverged, *step, check=False)  # stops on the conflict
    before = untouched(diverged)
    with pytest.raises(UnsafeToCommit, match=request.node.callspec.id):
        Mirror(diverged, mode="branch").record([entry("b.md", b"b\n")])
    assert untouched(diverged) == before
    assert git(diverged, "rev-parse", "-q", "--verify", MIRROR, check=False) == ""


def test_branch_mode_refuses_a_detached_or_unborn_head(repo, tmp_path):
    git(repo, "checkout", "-q", "--detach", "main")
    before = untouched(repo)
    with pytest.raises(UnsafeToCommit, match="detached"):
        Mirror(repo, mode="branch").record([entry("b.md", b"b\n")])
    assert untouched(repo) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(UnsafeToCommit):
        Mirror(empty, mode="branch").record([entry("b.md", b"b\n")])


def test_branch_mode_in_a_linked_worktree_sees_that_worktrees_rebase(diverged, tmp_path):
    git(diverged, "checkout", "-q", "main")
    wt = tmp_path / "wt"
    git(diverged, "worktree", "add", "-q", "-b", "side", str(wt), "topic")
    git(wt, "rebase", "main", check=False)
    with pytest.raises(UnsafeToCommit, match="rebase"):
        Mirror(wt, mode="branch").record([entry("b.md", b"b\n")])
    [commit] = Mirror(diverged, mode="branch").record([entry("b.md", b"b\n")])  # main's worktree is not rebasing
    assert git(diverged, "rev-parse", "main") == commit


def test_a_mirror_ref_moved_by_someone_else_is_detected_not_overwritten(repo):
    tree = git(repo, "rev-parse", "HEAD^{tree}")

    class Raced(Mirror):
        def _commit(self, *args):
            self.other = git(repo, "commit-tree", "-m", f"someone else {time.time_ns()}", tree)
            git(repo, "update-ref", MIRROR, self.other)  # another writer gets in between
            return super()._commit(*args)
    for batch in ([entry("a.md", b"1\n"), entry("b.md", b"2\n", BOB)],  # the ref did not exist yet
                  [entry("a.md", b"3\n")]):  # it did
        mirror = Raced(repo)
        with pytest.raises(MirrorError, match="update-ref"):
            mirror.record(batch)
        assert git(repo, "rev-parse", MIRROR) == mirror.other


def test_push_to_a_bare_remote_never_forces_and_reports_gits_message(repo, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    mirror = Mirror(repo)
    mirror.record([entry("a.md", b"pushed\n")])
    mirror.push("origin")
    assert git(bare, "rev-parse", MIRROR) == git(repo, "rev-parse", MIRROR)
    with pytest.raises(MirrorError, match="'nowhere' does not appear to be a git repository"):
        mirror.push("nowhere")

    elsewhere = git(repo, "commit-tree", "-m", "pushed by someone else", git(repo, "rev-parse", "HEAD^{tree}"))
    git(repo, "push", "-q", "origin", f"+{elsewhere}:{MIRROR}")
    mirror.record([entry("a.md", b"again\n")])
    with pytest.raises(MirrorError, match="rejected"):
        mirror.push("origin")
    assert git(bare, "rev-parse", MIRROR) == elsewhere

    branch = Mirror(repo, mode="branch")
    [commit] = branch.record([entry("b.md", b"b\n")])
    branch.push("origin")
    assert git(bare, "rev-parse", "refs/heads/main") == commit
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(MirrorError, match="not a symbolic ref"):
        branch.push("origin")


def test_a_mode_other_than_ref_or_branch_is_refused(repo, tmp_path):
    with pytest.raises(ValueError):
        Mirror(repo, mode="off")
    with pytest.raises(MirrorError):
        Mirror(tmp_path / "nowhere")
