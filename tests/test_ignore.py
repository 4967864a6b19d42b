"""Ignore rules: the built-in families, directory-only patterns, and re-including a default.

(The common cases of each family are in test_local_tree.py.)
"""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from syncd.engine.gitignore import Patterns
from syncd.engine.ignore import DEFAULT_IGNORES, IgnoreRules


@pytest.mark.parametrize("path", [
    "deep/er/.git/refs/heads/main", "a/.syncd-tmp-0123456789abcdef", "a/.syncd-tmp-0a1b2c3d-0123456789abcdef",
    "notes.md.swo", "notes.md.swx", ".notes.md.swn", "a/.DS_Store", "a/#draft.md#",
    "deploy/.env.production", "ssh/id_dsa", "ssh/id_ecdsa.pub", "certs/chain.pem",
    "id_rsa/a", "x/id_rsa/a/b.md", "x/.ssh/a/b",  # under a directory of such a name
])
def test_every_default_family_applies_at_any_depth(path):
    assert IgnoreRules().ignores(path)


@pytest.mark.parametrize("path", [
    "spec.md", "spec.conflict.md", "swap.md", "env.md", ".environment", "keys/README.md",
    "pem.md", "id.md", "git/notes.md", ".github/workflows/ci.yml", "draft#1.md", "49130",
    "a/b/.syncd-tmp-0f3a",  # a user's file: a copy cleans up only its own temp files
])
def test_near_misses_are_synced(path):
    assert not IgnoreRules().ignores(path)


def test_git_directories_are_pruned_wherever_they_are():
    assert IgnoreRules().ignores(".git", is_dir=True) and IgnoreRules().ignores("sub/.git", is_dir=True)


def test_a_directory_pattern_prunes_the_directory_not_a_file_of_that_name():
    rules = IgnoreRules(["node_modules/", "/build"])
    assert rules.ignores("web/node_modules", is_dir=True)
    assert rules.ignores("web/node_modules/left-pad/index.js")
    assert not rules.ignores("web/node_modules")  # a file called node_modules
    assert rules.ignores("build", is_dir=True) and not rules.ignores("src/build", is_dir=True)


def test_the_config_can_re_include_a_default_and_ignore_more():
    rules = IgnoreRules(["!*.pem", "*.tmp"])
    assert not rules.ignores("certs/public.pem")
    assert rules.ignores("scratch.tmp") and rules.ignores(".env")



@given(st.lists(st.sampled_from(["a", ".", "~", "#", "env", "git", "sw", "p", "id_rsa", "/", "x.md", "!", "*"]),
                min_size=1, max_size=6), st.booleans())
def test_the_one_regex_in_front_answers_as_every_line_would(parts, is_dir):
    """Patterns answers "no line matches" from one combined regex before asking each line:
    whatever the name or path, the answer is pathspec's own. (For a path under a directory
    some line matches, pathspec's answer is the directory's, which its callers asked for
    first: Git never looks inside an excluded directory, and `!` cannot bring its files back.)"""
    import pathspec
    path = "".join(parts).strip("/") or "a"
    for lines in (DEFAULT_IGNORES, ["docs/*.md", "!keep.md", "build/", "*.log"]):
        active = [p for p in pathspec.GitIgnoreSpec.from_lines(lines).patterns if p.include is not None]
        files = [p for p in active if not p.pattern.rstrip(" ").endswith("/")]
        above = path.split("/")[:-1]
        if any(pathspec.GitIgnoreSpec(active).check_file("/".join(above[:n]) + "/").include is not None
               for n in range(1, len(above) + 1)):
            continue
        if is_dir:
            expected = pathspec.GitIgnoreSpec(active).check_file(path + "/").include
        elif all("/" not in p.pattern.removeprefix("!") for p in files):
            expected = pathspec.GitIgnoreSpec(files).check_file(path.rpartition("/")[2]).include
        else:
            expected = pathspec.GitIgnoreSpec(files).check_file(path).include
        assert Patterns(lines).decide(path, is_dir) == expected


# Pieces of names a walk may meet: the built-in families' and Git's own names in several
# spellings, temporary files, a newline, a non-UTF-8 byte (surrogate-escaped), HFS+'s
# ignored characters, `!`, wildcards' characters
NAME_PARTS = ["a", "b.md", ".", "*", "~", "#", "env", ".env", "git", ".GIT", "Git~1", "\u200c", "sw", "pem",
              "id_rsa", "node_modules", "build", "\n", " ", "é", "\udcff", ".syncd-tmp-", "0123456789abcdef", "!"]
LINE_PARTS = ["a", "b", "*", "**", "/", "!", ".md", "?", "[ab]", "\\", " ", "é", "build", "env", "node_modules"]
names = st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4).map("".join).filter(
    lambda n: n not in (".", ".."))
lines = st.lists(st.lists(st.sampled_from(LINE_PARTS), min_size=1, max_size=4).map("".join).filter(
    lambda line: _parses(line)), max_size=6)
entries = st.lists(st.tuples(names, st.booleans()), max_size=12, unique_by=lambda e: e[0])
prefixes = st.sampled_from(["", "a/", "a/b/", "build/", "node_modules/x/", "é/", "\udcff/", "a\nb/"])


def _parses(line: str) -> bool:
    import pathspec
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except pathspec.patterns.gitignore.GitIgnorePatternError:
        return False
    return True


def keys_of(listed):
    return [name + "/" if is_dir else name for name, is_dir in listed]


@given(lines, prefixes, entries)
def test_a_directory_asked_at_once_is_answered_as_each_of_its_entries(config, prefix, listed):
    """`ignored_in` answers a whole directory from the lines that may decide its entries:
    its answer is `ignores`' for each entry, whatever the names (not UTF-8, with a newline,
    Git's own, temporary) and the config's lines (`!`, directory-only, anchored)."""
    expected = {key for key, (name, is_dir) in zip(keys_of(listed), listed)
                if IgnoreRules(config).ignores(prefix + name, is_dir)}
    assert IgnoreRules(config).ignored_in(prefix, keys_of(listed)) == expected


def test_a_directory_asked_at_once_has_the_answers_of_its_examples():
    rules = IgnoreRules(["!*.pem", "docs/*.tmp", "cache/"])
    keys = ["x.pem", ".env", "a.md", "cache", "cache/", ".git/", ".Git ", "b.tmp", "line\n.env", "n.swp",
            ".syncd-tmp-0123456789abcdef", "caf\udce9.pyc"]
    assert rules.ignored_in("docs/", keys) == {".env", "cache/", ".git/", ".Git ", "b.tmp", "n.swp",
                                               ".syncd-tmp-0123456789abcdef", "caf\udce9.pyc"}
    assert rules.ignored_in("node_modules/", ["a.md"]) == {"a.md"}  # under an ignored directory
