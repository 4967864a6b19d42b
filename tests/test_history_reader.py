"""Reading a repository's history for `syncd import`: order, merges, renames, prefixes,
odd entries, entries that change type, the user's git configuration, revs that look like
paths, and a long history; real repositories."""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.git.history import FileChange, History, HistoryError

from legacy_repo import ALICE, BOB, CAROL, PLAN, PLAN_V2, SPEC, git, make_legacy_repo, show, write

TZ = datetime.timezone
H = datetime.timedelta(hours=1)


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


def test_links_are_changes_and_submodules_and_non_utf8_names_are_left_out_with_a_note(repo):
    write(repo, "a.md", "a\n")
    os.symlink("a.md", repo / "link.md")
    (repo / os.fsdecode(b"bad\xff.md")).write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    git(repo, "commit", "-qm", "odd entries")
    with History(repo) as history:
        assert changes(history) == [("odd entries", [("a.md", True, None), ("link.md", True, None)])]
        assert {c.path: c.mode for c in next(history.commits()).changes} == {"a.md": "100644", "link.md": "120000"}
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


def commit(root: Path, message: str, **kw) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, **kw)


def paths(history: History, rev: str = "HEAD") -> list[tuple[str, list[tuple[str, bool, str | None]]]]:
    return [(c.summary, [(f.path, f.blob is not None, f.renamed_from) for f in c.changes])
            for c in history.commits(rev)]


def test_three_people_over_days_oldest_first_with_their_names_dates_and_changes(tmp_path):
    root = tmp_path / "ws"
    make_legacy_repo(root)
    shas = git(root, "rev-list", "--reverse", "HEAD").split()
    with History(root) as history:
        commits = list(history.commits())
        assert history.count() == len(commits) == 3
        first, second, third = commits
        assert [c.sha for c in commits] == shas
        assert [(c.author.name, c.author.email) for c in commits] == [ALICE, BOB, CAROL]
        assert [c.authored_at for c in commits] == [
            datetime.datetime(2024, 3, 1, 9, 0, tzinfo=TZ(H)),
            datetime.datetime(2024, 3, 2, 14, 30, tzinfo=TZ(5.5 * H)),
            datetime.datetime(2024, 3, 4, 8, 15, tzinfo=TZ(-5 * H))]
        assert first.authored_at.utcoffset() == H  # the original offset, not just the instant
        assert second.authored_at.isoformat() == "2024-03-02T14:30:00+05:30"
        assert [c.summary for c in commits] == ["start the session", "spec: second draft", "plan v2"]
        assert [c.path for c in first.changes] == sorted(c.path for c in first.changes)
        assert len(first.changes) == 8 and all(c.blob and c.renamed_from is None for c in first.changes)
        assert second.changes == (FileChange(SPEC, second.changes[0].blob),)
        assert history.blob(second.changes[0].blob) == show(root, f"{shas[1]}:{SPEC}")
        assert [(c.path, c.blob is not None, c.renamed_from) for c in third.changes] == [
            (PLAN_V2, True, PLAN), (PLAN, False, None), ("projects/P/sessions/s1/tasks/old.md", False, None)]
        assert history.blob(third.changes[0].blob) == b"# Plan\n\nStep one.\nStep two.\n"


def test_the_summary_is_the_first_line_even_of_a_paragraph(repo):
    write(repo, "a.md", "a\n")
    commit(repo, "first line\nsecond line of the same paragraph\n\nbody")
    with History(repo) as history:
        assert [c.summary for c in history.commits()] == ["first line"]


def test_every_commit_of_every_branch_once_after_its_parents_and_merges_against_the_first(repo):
    write(repo, "a.md", "a\n")
    commit(repo, "root")
    git(repo, "checkout", "-q", "-b", "side")
    for i in range(3):
        write(repo, f"side{i}.md", f"{i}\n")
        commit(repo, f"side {i}", author=BOB)
    git(repo, "checkout", "-q", "main")
    write(repo, "a.md", "a2\n")
    commit(repo, "main 1")
    git(repo, "merge", "-q", "--no-edit", "side")
    git(repo, "rm", "-q", "side0.md")
    commit(repo, "after the merge")
    parents = {line.split()[0]: line.split()[1:] for line in git(repo, "rev-list", "--parents", "HEAD").splitlines()}
    with History(repo) as history:
        commits = list(history.commits())
        assert history.count() == len(commits) == 7
    order = [c.sha for c in commits]
    assert sorted(order) == sorted(parents)
    assert all(order.index(p) < order.index(sha) for sha in order for p in parents[sha])
    merge = next(c for c in commits if len(parents[c.sha]) == 2)
    assert [(f.path, f.blob is not None) for f in merge.changes] == [(f"side{i}.md", True) for i in range(3)]
    assert [(f.path, f.blob) for f in commits[-1].changes] == [("side0.md", None)]


def test_a_rev_named_like_a_directory_of_the_workspace(repo):
    write(repo, "main/notes.md", "x\n")
    commit(repo, "a directory called main")
    with History(repo) as history:
        assert history.count("main") == 1 and [c.summary for c in history.commits("main")] == ["a directory called main"]
        with pytest.raises(HistoryError, match="names no commit"):
            history.count("--all")


def test_entries_that_become_links_or_submodules(repo):
    write(repo, "to-link.md", "was a file\n")
    write(repo, "to-sub", "was a file\n")
    os.symlink("to-link.md", repo / "from-link.md")
    commit(repo, "one")
    (repo / "to-link.md").unlink()
    os.symlink("elsewhere", repo / "to-link.md")
    (repo / "from-link.md").unlink()
    write(repo, "from-link.md", "now a file\n")
    git(repo, "rm", "-q", "--cached", "to-sub")
    (repo / "to-sub").unlink()
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},to-sub")
    git(repo, "commit", "-qm", "two")
    with History(repo) as history:
        assert paths(history) == [("one", [("from-link.md", True, None), ("to-link.md", True, None),
                                           ("to-sub", True, None)]),
                                  ("two", [("from-link.md", True, None), ("to-link.md", True, None),
                                           ("to-sub", False, None)])]
        modes = [{c.path: c.mode for c in commit.changes if c.blob} for commit in history.commits()]
        assert modes[1] == {"from-link.md": "100644", "to-link.md": "120000"}


def test_a_rename_from_a_non_utf8_name_is_an_add(repo):
    bad = os.fsdecode(b"bad\xff.md")
    write(repo, bad, "same content\n" * 5)
    commit(repo, "one")
    os.rename(repo / bad, repo / "good.md")
    commit(repo, "two")
    with History(repo) as history:
        assert paths(history) == [("one", []), ("two", [("good.md", True, None)])]
        assert len(history.skipped) == 1 and "bad\ufffd.md" in history.skipped[0]


def test_a_users_log_show_signature_does_not_get_into_the_reading(repo):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("no ssh-keygen to sign a commit")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(repo.parent / "key")], check=True)
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(repo.parent / "key"))
    write(repo, "a.md", "a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-S", "-qm", "signed")
    git(repo, "config", "log.showSignature", "true")
    with History(repo) as history:
        assert [(c.summary, c.author.name) for c in history.commits()] == [("signed", ALICE[0])]


def test_a_long_history_in_one_reading(repo):
    stream = []
    for i in range(1, 2001):
        message, data = f"edit {i}\n".encode(), f"version {i}\n".encode()
        stream.append(b"commit refs/heads/main\nauthor A <a@example.com> %d +0200\ncommitter A <a@example.com> %d +0200\n"
                      b"data %d\n%s" % (1700000000 + 60 * i, 1700000000 + 60 * i, len(message), message))
        stream.append(b"M 100644 inline doc.md\ndata %d\n%s\n" % (len(data), data))
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), env=env, check=True)
    with History(repo) as history:
        assert history.count() == 2000
        commits = list(history.commits())
        assert len(commits) == 2000 and [c.summary for c in commits[:2]] == ["edit 1", "edit 2"]
        last = commits[-1]
        assert last.summary == "edit 2000" and [c.path for c in last.changes] == ["doc.md"]
        assert history.blob(last.changes[0].blob) == b"version 2000\n"
