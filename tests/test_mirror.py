"""The Git mirror on its own: branch mode, grouping by author, pushes; real repositories."""
from __future__ import annotations

import datetime

import pytest

from syncd.git.mirror import Author, Mirror, MirrorEntry, MirrorError, UnsafeToCommit

from legacy_repo import git, show, write

ALICE, BOB = Author("Alice", "alice@example.com"), Author("Bob", "bob@example.com")
TZ = datetime.timezone(datetime.timedelta(hours=5, minutes=30))


def entry(path: str, data: bytes | None, who: Author = ALICE, version: int = 1, hour: int = 9,
          mode: str = "100644") -> MirrorEntry:
    return MirrorEntry(path, data, who, datetime.datetime(2026, 11, 20, hour, 0, tzinfo=TZ), version, mode)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, "a.md", "a\n")
    write(root, "tool.sh", "#!/bin/sh\n")
    (root / "tool.sh").chmod(0o755)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def test_one_commit_per_author_with_dates_trailers_and_no_empty_commits(repo):
    mirror = Mirror(repo, prefix="ws")
    batch = [entry("x/new file é.md", b"one\r\n", ALICE, 3, 9), entry("b.md", b"b\n", BOB, 1, 10),
             entry("x/new file é.md", b"two\r\n", ALICE, 4, 11)]
    made = mirror.record(batch)
    assert len(made) == 2
    log = git(repo, "log", "--format=%an|%ad|%cn|%s|%b", "--date=iso-strict", "syncd/mirror", "-2")
    assert "Bob|2026-11-20T10:00:00+05:30|syncd|syncd: update b.md|Syncd-Version: b.md@1" in log
    assert "Alice|2026-11-20T11:00:00+05:30|syncd|syncd: update x/new file é.md|" \
           "Syncd-Version: x/new file é.md@3\nSyncd-Version: x/new file é.md@4" in log
    assert show(repo, "syncd/mirror:ws/x/new file é.md") == b"two\r\n"
    assert mirror.record(batch) == []  # the same batch again: nothing new
    assert mirror.record([entry("b.md", None, BOB, 2)]) != []
    assert "ws/b.md" not in git(repo, "ls-tree", "-r", "--name-only", "syncd/mirror")


def test_branch_mode_commits_only_synced_paths_and_keeps_the_users_staging(repo):
    write(repo, "a.md", "synced content\n")  # the daemon already wrote it
    write(repo, "mine.md", "my staged work\n")
    git(repo, "add", "mine.md")
    write(repo, "tool.sh", "#!/bin/sh\necho staged by me\n")
    git(repo, "add", "tool.sh")
    [commit] = Mirror(repo, mode="branch").record([entry("a.md", b"synced content\n"),
                                                   entry("tool.sh", b"#!/bin/sh\necho synced\n", mode="100755")])
    assert git(repo, "rev-parse", "main") == commit
    assert git(repo, "ls-tree", "-r", "--name-only", "main").split() == ["a.md", "tool.sh"]
    assert git(repo, "ls-tree", "main", "tool.sh").startswith("100755")
    status = git(repo, "status", "--porcelain")
    assert "A  mine.md" in status  # still staged, not committed
    assert "a.md" not in status  # index refreshed: clean
    assert show(repo, ":tool.sh") == b"#!/bin/sh\necho staged by me\n"  # the user's staging wins


def test_branch_mode_waits_while_a_rebase_is_in_progress_or_head_is_detached(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "a.md", "topic\n")
    git(repo, "commit", "-qam", "topic")
    git(repo, "checkout", "-q", "main")
    write(repo, "a.md", "main\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "checkout", "-q", "topic")
    git(repo, "rebase", "main", check=False)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(UnsafeToCommit, match="rebase"):
        Mirror(repo, mode="branch").record([entry("b.md", b"b\n")])
    assert git(repo, "rev-parse", "HEAD") == head
    git(repo, "rebase", "--abort")
    git(repo, "checkout", "-q", "--detach", "main")
    with pytest.raises(UnsafeToCommit, match="detached"):
        Mirror(repo, mode="branch").record([entry("b.md", b"b\n")])


def test_a_moved_branch_is_detected_not_overwritten(repo, monkeypatch):
    mirror = Mirror(repo)
    mirror.record([entry("a.md", b"1\n")])
    other = git(repo, "commit-tree", "-m", "someone else", git(repo, "rev-parse", "HEAD^{tree}"))
    real = Mirror._commit

    def meanwhile(self, *args):
        git(repo, "update-ref", "refs/heads/syncd/mirror", other)
        return real(self, *args)
    monkeypatch.setattr(Mirror, "_commit", meanwhile)
    with pytest.raises(MirrorError, match="update-ref"):
        mirror.record([entry("a.md", b"2\n")])
    assert git(repo, "rev-parse", "syncd/mirror") == other


def test_push_to_a_remote_and_a_clear_error_when_it_fails(repo, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    mirror = Mirror(repo)
    [tip] = mirror.record([entry("a.md", b"pushed\n")])
    mirror.push("origin")
    assert git(bare, "rev-parse", "refs/heads/syncd/mirror") == tip
    with pytest.raises(MirrorError, match="nowhere"):
        mirror.push("nowhere")


def test_an_empty_repository_gets_a_root_commit(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    [commit] = Mirror(root).record([entry("a.md", b"a\n")])
    assert git(root, "rev-list", "--parents", commit) == commit  # no parent
