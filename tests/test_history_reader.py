"""Reading a repository's history for `syncd import`: order, merges, renames, prefixes,
odd entries; real repositories."""
from __future__ import annotations

import os

import pytest

from syncd.git.history import FileChange, History, HistoryError

from legacy_repo import BOB, git, write


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def changes(history: History) -> list[tuple[str, list[tuple[str, bool, str | None]]]]:
    return [(c.summary, [(f.path, f.blob is not None, f.renamed_from) for f in c.changes])
            for c in history.commits()]


def test_side_branches_come_in_topological_order_and_merges_against_their_first_parent(repo):
    write(repo, "a.md", "a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "root", when="2024-01-01T00:00:00Z")
    git(repo, "checkout", "-q", "-b", "side")
    write(repo, "side.md", "side\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "on side", author=BOB, when="2024-01-02T00:00:00Z")
    git(repo, "checkout", "-q", "main")
    write(repo, "a.md", "a2\n")
    git(repo, "commit", "-qam", "on main", when="2024-01-03T00:00:00Z")
    git(repo, "merge", "-q", "--no-edit", "side", when="2024-01-04T00:00:00Z")
    with History(repo) as history:
        got = changes(history)
        assert history.count() == 4
    assert got[0] == ("root", [("a.md", True, None)])
    assert sorted(got[1:3]) == [("on main", [("a.md", True, None)]), ("on side", [("side.md", True, None)])]
    assert got[3][0].startswith("Merge branch 'side'") and got[3][1] == [("side.md", True, None)]


def test_authors_dates_renames_and_deletes(repo):
    write(repo, "old.md", "line one\nline two\nline three\n")
    write(repo, "gone.md", "x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first", when="2024-03-02T14:30:00+05:30")
    git(repo, "mv", "old.md", "new.md")
    git(repo, "rm", "-q", "gone.md")
    git(repo, "commit", "-qm", "second", author=BOB, when="2024-03-03T08:00:00-05:00")
    with History(repo) as history:
        first, second = history.commits()
        assert (first.author.name, first.authored_at.isoformat()) == ("Alice Archer", "2024-03-02T14:30:00+05:30")
        assert (second.author.email, second.summary) == ("bob@example.com", "second")
        assert second.changes == (FileChange("gone.md", None), FileChange("new.md", second.changes[1].blob, "old.md"),
                                  FileChange("old.md", None))
        assert history.blob(second.changes[1].blob) == b"line one\nline two\nline three\n"


def test_a_prefix_keeps_its_own_paths_and_renames_across_it_are_adds_and_deletes(repo):
    write(repo, "ws/in.md", "in\n" * 5)
    write(repo, "outside.md", "out\n" * 5)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    git(repo, "mv", "outside.md", "ws/moved-in.md")
    git(repo, "mv", "ws/in.md", "moved-out.md")
    git(repo, "commit", "-qm", "two")
    with History(repo, prefix="ws") as history:
        assert changes(history) == [("one", [("in.md", True, None)]),
                                    ("two", [("in.md", False, None), ("moved-in.md", True, None)])]


def test_symlinks_submodules_and_non_utf8_names_are_left_out_with_a_note(repo):
    write(repo, "a.md", "a\n")
    os.symlink("a.md", repo / "link.md")
    (repo / os.fsdecode(b"bad\xff.md")).write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    git(repo, "commit", "-qm", "odd entries")
    with History(repo) as history:
        assert changes(history) == [("odd entries", [("a.md", True, None)])]
        assert len(history.skipped) == 1 and "not UTF-8" in history.skipped[0]


def test_bytes_come_back_exact(repo):
    data = {"crlf.md": b"a\r\nb\r\n", "bom.md": "\ufeffx".encode(), "none.md": b"no newline",
            "bin.dat": b"\x00\xff\x01"}
    for name, content in data.items():
        write(repo, name, content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bytes")
    with History(repo) as history:
        [commit] = history.commits()
        assert {c.path: history.blob(c.blob) for c in commit.changes} == data


def test_errors_and_an_empty_repository(repo, tmp_path):
    with History(repo) as history:
        assert history.count() == 0 and list(history.commits()) == []
    write(repo, "a.md", "a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    with History(repo) as history, pytest.raises(HistoryError, match="names no commit"):
        list(history.commits("nope"))
    with pytest.raises(HistoryError, match="not a Git repository"):
        History(tmp_path / "nowhere")
