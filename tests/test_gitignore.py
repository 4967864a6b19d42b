"""The repository's own ignore rules, compared with what real Git says on real repositories."""
from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from watchdog.events import DirModifiedEvent, FileModifiedEvent

from legacy_repo import git, write

from syncd import config as configuration
from syncd.content import DIRECTORY, FilePolicy
from syncd.daemon.watcher import _Handler
from syncd.engine import gitignore
from syncd.engine.gitignore import GitIgnores
from syncd.engine.ignore import DEFAULT_IGNORES, IgnoreRules
from syncd.engine.scanner import MemoryStatCache, scan
from test_ignore import entries, keys_of, lines, prefixes


@pytest.fixture(autouse=True)
def only_this_repositorys_config(tmp_path, monkeypatch):
    """syncd's own `git` calls see the same configuration as the test's."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def make_repo(root):
    """Nested .gitignores with anchored, directory-only and negated lines, info/exclude,
    core.excludesFile, a directory whose file cannot be re-included, and tracked files the
    rules match (Git shows them: they sync)."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, ".gitignore", "*.log\n!keep.log\n/out/\nbuild/\n!build/rescued.md\ngenerated/\n!generated/\n"
                              "generated/*\n!generated/index.md\ndocs/*.html\n*.draft\n")
    write(root, "projects/P/.gitignore", "scratch/\n!important.log\n*.tmp\n!keep/\n")
    write(root, "projects/P/sessions/s/.gitignore", "!*.tmp\n/local.md\n")
    write(root, ".git/info/exclude", "private-notes.md\n")
    write(root, "../global-ignore", "*.bak\n")
    git(root, "config", "core.excludesFile", str(root.parent / "global-ignore"))
    for path in ["README.md", "app.log", "keep.log", "out/a.md", "sub/out/b.md", "build/x.md",
                 "build/rescued.md", "web/build/y.md", "generated/index.md", "generated/other.md",
                 "docs/a.html", "docs/deep/b.html", "projects/P/important.log", "projects/P/other.log",
                 "projects/P/scratch/n.md", "projects/P/x.tmp", "projects/P/sessions/s/y.tmp",
                 "projects/P/sessions/s/local.md", "projects/P/sessions/s/deeper/local.md",
                 "private-notes.md", "sub/private-notes.md", "old.bak", "spec.md",
                 "projects/P/keep/a.draft"]:  # a directory re-included, not its files
        write(root, path, path + "\n")
    git(root, "add", ".gitignore", "projects", "README.md", "spec.md")
    git(root, "add", "-f", "build/x.md", "old.bak")  # committed though ignored
    git(root, "commit", "-q", "-m", "start")


def what_git_shows(top, under: str = "") -> set[str]:
    """Files `git status` counts: tracked ones, and untracked ones that are not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=top, check=True, capture_output=True, text=True).stdout
    return {p[len(under):] for p in listed.split("\0") if p and p.startswith(under)}


def files_of(result) -> set[str]:
    """The files a scan found (not the directories that hold nothing that syncs, which are
    entries of their own: Git has no word for them)."""
    return {p for p, f in result.files.items() if f.sha256 != DIRECTORY}


def test_a_scan_syncs_what_git_status_shows(tmp_path):
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo"
    result = scan(root, IgnoreRules(git=GitIgnores.of(root)), MemoryStatCache(), FilePolicy())
    assert files_of(result) == what_git_shows(root)
    assert "build/x.md" in result.files and "old.bak" in result.files  # tracked
    assert "build/rescued.md" not in result.files  # under an excluded directory, as in Git
    # a directory that holds only what Git ignores is an empty directory here, as Syncthing has it
    assert {p for p, f in result.files.items() if f.sha256 == DIRECTORY} == {"web", "projects/P/keep"}


def test_every_caller_gets_the_answer_git_check_ignore_gives(tmp_path):
    """A path asked about on its own (an event, a path from the store), in any order and
    without a walk first, is answered as the walk answers it."""
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo"
    paths = sorted(what_git_shows(root) | set(
        subprocess.run(["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard"], cwd=root,
                       check=True, capture_output=True, text=True).stdout.split("\0")) - {""})
    random.Random(7).shuffle(paths)
    rules = IgnoreRules(git=GitIgnores.of(root))
    checked = subprocess.run(["git", "check-ignore", "-z", "--stdin"], cwd=root, input="\0".join(paths),
                             capture_output=True, text=True).stdout
    assert {p for p in paths if rules.ignores(p)} == set(checked.split("\0")) - {""}
    assert {p for p in paths if not rules.ignores(p)} == what_git_shows(root)


def test_a_root_inside_a_repository_uses_the_rules_above_it(tmp_path):
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo" / "projects" / "P"
    result = scan(root, IgnoreRules(git=GitIgnores.of(root)), MemoryStatCache(), FilePolicy())
    assert files_of(result) == what_git_shows(tmp_path / "repo", "projects/P/")


def test_a_gitignore_edited_between_scans_applies_at_the_next(tmp_path):
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo"
    rules = IgnoreRules(git=GitIgnores.of(root))
    assert "spec.md" in scan(root, rules, MemoryStatCache(), FilePolicy()).files
    write(root, "notes/.gitignore", "*\n")
    write(root, "notes/n.md", "n\n")
    with (root / ".gitignore").open("a") as f:
        f.write("spec.md\n")  # tracked: still shown by Git, still synced
    write(root, "draft.md", "d\n")
    with (root / ".gitignore").open("a") as f:
        f.write("draft.md\n")
    files = files_of(scan(root, rules, MemoryStatCache(), FilePolicy()))
    assert files == what_git_shows(root)
    assert "spec.md" in files and "draft.md" not in files and "notes/n.md" not in files


def test_outside_a_repository_nothing_is_run_and_nothing_more_is_ignored(tmp_path):
    write(tmp_path / "plain", ".gitignore", "*.md\n")
    write(tmp_path / "plain", "a.md", "a\n")
    assert GitIgnores.of(tmp_path / "plain") is None
    assert set(scan(tmp_path / "plain", IgnoreRules(), MemoryStatCache(), FilePolicy()).files) == {".gitignore", "a.md"}


def test_a_copy_in_a_repository_syncs_what_git_shows_and_pulls_nothing_git_ignores(copies):
    a, b = copies
    git(a.root, "init", "-q", "-b", "main")
    write(a.root, ".gitignore", "*.log\nlocal/\n")
    for path in ["notes.md", "debug.log", "local/x.md", ".env", ".env.example", "__pycache__/m.cpython-311.pyc"]:
        write(a.root, path, path + "\n")
    assert a.sync()["pushed"] == 3  # .gitignore, notes.md, .env.example
    write(b.root, "trace.log", "from a copy without those rules\n")
    b.sync()
    assert set(b.files()) == {".gitignore", "notes.md", ".env.example", "trace.log"}
    a.sync()
    assert not (a.root / "trace.log").exists()  # ignored here: never written, as a config pattern
    a.config.write_text(a.config.read_text().replace("ignore: []", "ignore: {patterns: [notes.md], gitignore: false}"))
    report = a.sync()
    assert (a.root / "trace.log").read_text() == "from a copy without those rules\n"
    assert report["pushed"] == 2  # debug.log, local/x.md: the defaults still keep .env and the .pyc
    b.sync()
    assert set(b.files()) == {".gitignore", "notes.md", ".env.example", "trace.log", "debug.log", "local/x.md"}


@pytest.mark.parametrize("ignore, patterns, gitignore", [
    ("['*.log']", ("*.log",), True), ("{patterns: ['*.log'], gitignore: false}", ("*.log",), False),
    ("{gitignore: false}", (), False), ("", (), True),
])
def test_the_config_takes_a_list_or_a_mapping(tmp_path, ignore, patterns, gitignore):
    path = tmp_path / "syncd.yaml"
    path.write_text(f"root: tree\nworkspace: team\nignore: {ignore}\n")
    cfg = configuration.load(path)
    assert (cfg.ignore, cfg.gitignore) == (patterns, gitignore)


@pytest.mark.parametrize("ignore, says", [
    ("{gitignore: no-thanks}", "key 'ignore.gitignore' must be true or false"),
    ("{patterns: '*.log'}", "key 'ignore.patterns' must be a list"),
    ("{git: false}", "unknown key 'ignore.git' (known: gitignore, patterns)"),
    ("'*.log'", "key 'ignore' must be a list"),
])
def test_a_bad_ignore_setting_is_one_line_naming_the_file_and_key(tmp_path, ignore, says):
    path = tmp_path / "syncd.yaml"
    path.write_text(f"root: tree\nworkspace: team\nignore: {ignore}\n")
    with pytest.raises(configuration.ConfigError, match=re.escape(f"{path}: {says}")):
        configuration.load(path)


def test_the_example_config_loads():
    cfg = configuration.load(Path(__file__).parents[1] / "config" / "syncd.example.yaml")
    assert cfg.ignore == ("*.log", "build/") and cfg.gitignore


def test_the_watcher_wakes_for_what_git_shows_and_hears_a_gitignore_change(tmp_path):
    root = tmp_path / "repo"
    make_repo(root)
    woken = []
    handler = _Handler(root, IgnoreRules(git=GitIgnores.of(root)), lambda touched: woken.append(touched), lambda: None)

    def wakes(rel: str, directory: bool = False) -> bool:
        woken.clear()
        event = (DirModifiedEvent if directory else FileModifiedEvent)(os.fspath(root / rel))
        handler.on_any_event(event)
        return bool(woken)

    assert wakes("spec.md") and wakes("keep.log") and wakes("build/x.md")
    assert not wakes("app.log") and not wakes("out", directory=True) and not wakes("web/build/y.md")
    with (root / ".gitignore").open("a") as f:
        f.write("later.md\n")
    assert wakes(".gitignore")  # the file syncs; and the rules are read again
    assert not wakes("later.md")


def test_a_walk_reads_the_gitignore_files_its_listings_hold_and_looks_for_no_other(tmp_path, monkeypatch):
    """A folder whose listing holds no `.gitignore` file has none to read: a quiet rescan of
    a work tree of 10k folders made 10k opens that failed. A `.gitignore` folder holds no
    rules (as in Git), and the answer is still the one Git gives."""
    root = tmp_path / "repo"
    git(root.parent, "init", "-q", "-b", "main", str(root))
    write(root, ".gitignore", "*.log\n")
    write(root, "a/b/.gitignore", "!keep.log\n")
    write(root, "a/b/keep.log", "re-included\n")
    write(root, "a/x.log", "ignored\n")
    write(root, "c/d/e.md", "e\n")
    write(root, "c/.gitignore/f.md", "a folder named .gitignore\n")
    read = []
    real_read = gitignore._read
    monkeypatch.setattr(gitignore, "_read", lambda path: read.append(os.fspath(path)) or real_read(path))
    result = scan(root, IgnoreRules(git=GitIgnores.of(root)), MemoryStatCache(), FilePolicy())
    assert files_of(result) == what_git_shows(root) == {".gitignore", "a/b/.gitignore", "a/b/keep.log", "c/d/e.md",
                                                          "c/.gitignore/f.md"}
    assert sorted(p for p in read if p.endswith(".gitignore")) == [str(root / ".gitignore"),
                                                                   str(root / "a/b/.gitignore")]


def test_a_root_in_a_directory_its_repository_ignores_uses_none_of_its_rules(tmp_path):
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo" / "out" / "workspace"  # /out/ is ignored at the top
    write(root, "notes.md", "n\n")
    write(root, "app.log", "a log, ignored nowhere else\n")
    assert GitIgnores.of(root) is None
    assert GitIgnores.of(tmp_path / "repo" / "projects") is not None


def test_a_linked_work_tree_reads_its_own_index(tmp_path):
    make_repo(tmp_path / "repo")
    git(tmp_path / "repo", "worktree", "add", "-q", str(tmp_path / "linked"))
    root = tmp_path / "linked"
    write(root, "app.log", "ignored\n")
    write(root, "private-notes.md", "info/exclude is the repository's\n")
    result = scan(root, IgnoreRules(git=GitIgnores.of(root)), MemoryStatCache(), FilePolicy())
    assert files_of(result) == what_git_shows(root)
    assert "build/x.md" in result.files and "app.log" not in result.files  # tracked; ignored


def git_rules(root, config=()):
    return IgnoreRules(config, git=GitIgnores.of(root))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines, st.lists(lines, max_size=3), prefixes, entries)
def test_a_directory_asked_at_once_is_answered_as_each_of_its_entries(config, levels, prefix, listed):
    """`IgnoreRules.ignored_in` with a repository's rules: the .gitignore files at the top
    and in `a/` and `a/b/` (deepest deciding, a directory excluded above), info/exclude, a
    tracked file and the config's lines; the answer is `ignores`' for each entry."""
    with tempfile.TemporaryDirectory() as top:
        root = Path(top) / "repo"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        for directory, rules in zip(["", "a/", "a/b/"], levels):
            write(root, directory + ".gitignore", "".join(line + "\n" for line in rules))
        write(root, ".git/info/exclude", "*.x\n")
        write(root, "a/b.md", "tracked\n")
        git(root, "add", "-f", "a/b.md")
        listed = [(name, is_dir) for name, is_dir in listed if name != ".gitignore"]  # as the walk lists it:
        if (root / prefix / ".gitignore").is_file():
            listed.append((".gitignore", False))
        keys = keys_of(listed)
        expected = {key for key, (name, is_dir) in zip(keys, listed)
                    if git_rules(root, config).ignores(prefix + name, is_dir)}
        assert git_rules(root, config).ignored_in(prefix, keys) == expected


def test_a_directory_git_excludes_that_the_config_re_includes_is_asked_at_once_as_git_would(tmp_path):
    """The config brings back `out/`, which Git excludes: Git's answer for what is in it is
    still the directory's (so the walk enters it, and leaves out what Git ignores)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, ".gitignore", "out/\n")
    write(root, "out/b.md", "tracked\n")
    git(root, "add", "-f", "out/b.md")
    assert git_rules(root, ["!out/"]).ignored_in("", [".gitignore", "out/"]) == set()
    assert git_rules(root, ["!out/"]).ignored_in("out/", ["a.md", "b.md", "c/"]) == {"a.md", "c/"}


NEWLINED = ["a\nb/node_modules/x.js", "x\ny/.config/gcloud/c.json", "a\nb/.aws/credentials", "p\nq/docs/deep/n.md",
            "p\nq/docs/n.md", "line\n/ok.md", "a\nb/c\nd/spec.md", "w\nv/cache/x.md"]


def test_a_directory_named_with_a_newline_is_ignored_as_git_ignores_it(tmp_path):
    """`**` and the "any directories" part of a pattern match across a newline in a name, in
    Git as in any other name: the built-in rules (credentials' directories among them), the
    config's and the repository's decide such paths as `git check-ignore` does, in a walk
    and asked one by one."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    config = ["docs/**/*.md", "cache/"]
    write(root, ".gitignore", "\n".join([*DEFAULT_IGNORES, *config]) + "\n")
    for path in NEWLINED:
        write(root, path, "x\n")
    checked = subprocess.run(["git", "check-ignore", "-z", "--stdin"], cwd=root, input="\0".join(NEWLINED),
                             capture_output=True, text=True).stdout
    git_ignores = set(checked.split("\0")) - {""}
    assert {"a\nb/node_modules/x.js", "x\ny/.config/gcloud/c.json", "a\nb/.aws/credentials"} <= git_ignores
    write(root, ".gitignore", "\n".join(config) + "\n")  # the built-in lines are syncd's own
    for rules in (IgnoreRules(config), IgnoreRules(git=GitIgnores.of(root))):
        assert {p for p in NEWLINED if rules.ignores(p)} == git_ignores
        found = set(scan(root, rules, MemoryStatCache(), FilePolicy()).files)
        assert found & set(NEWLINED) == set(NEWLINED) - git_ignores
