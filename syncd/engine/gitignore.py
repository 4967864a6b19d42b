"""The ignore rules of the Git repository the root is in, applied as `git status` applies them.

Every `.gitignore` from the work tree's top down (each relative to its own directory, the
deepest deciding, the last matching line of a file winning, `!` re-including), then
`.git/info/exclude`, then core.excludesFile. A directory Git excludes excludes what is
under it, and a tracked file is never ignored (Git shows it, so it syncs). Each directory's
`.gitignore` is read once, when a lookup first reaches that directory; `refresh` (at every
scan) starts over, re-parsing only the files whose bytes changed.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pathspec

Spec = pathspec.GitIgnoreSpec
_UNKNOWN = object()
_NAMES_KEPT = 65_536  # decisions by name a Patterns remembers (memory stays flat in the tree)


def matchable(path: str) -> str:
    """A path the matchers take: a name that is not UTF-8 (surrogate-escaped bytes) with
    those bytes replaced, and a newline with a NUL (pathspec's regexes are compiled without
    DOTALL: their `.` would not cross a newline, where Git's `**` does; no line holds either)."""
    if not path.isascii():
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return path.replace("\n", "\0") if "\n" in path else path


class Patterns:
    """One list of gitignore lines, matched as Git matches it: a directory against every
    line; a file against the lines that are not directory-only (its directories were asked
    about on their own), by its name alone when none of those has a slash (Git's rule for
    such lines, and then one regex per distinct name, not per file), else by its path."""

    def __init__(self, lines):
        active = [p for p in Spec.from_lines(lines).patterns if p.include is not None]
        self.empty = not active
        self._dirs = Spec(active)
        self._any_dir = _AnyOf(active)
        files = [p for p in active if not p.pattern.rstrip(" ").endswith("/")]
        self._files = Spec(files) if files else None
        self._by_name = all("/" not in p.pattern.removeprefix("!") for p in files)
        self._any_file = _AnyOf(files)
        self._names: dict[str, bool | None] = {}

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included (a `!` line); None: no line matches."""
        if is_dir:
            path += "/"
            return self._dirs.check_file(path).include if self._any_dir.match(path) else None
        if self._files is None:
            return None
        if not self._by_name:
            return self._files.check_file(path).include if self._any_file.match(path) else None
        return self._by_name_decision(path.rpartition("/")[2])

    def _by_name_decision(self, name: str) -> bool | None:
        decided = self._names.get(name, _UNKNOWN)
        if decided is _UNKNOWN:
            decided = self._files.check_file(name).include if self._any_file.match(name) else None
            if len(self._names) < _NAMES_KEPT:
                self._names[name] = decided
        return decided

    def deciding(self, base: str, keys: list[str]) -> list[str]:
        """Those of one directory's entries that some line may decide (`decide` answers None
        for every other one), through decide's own gates: `base` is the directory's path as
        `decide` takes paths, with its "/" ("" at the top), a key an entry's name with a "/"
        after a directory's. A directory costs one regex match per entry (a look-up for a
        name met before), not a call per entry."""
        hits = [k for k in keys if k[-1] == "/" and self._any_dir.match(base + k)]
        if self._files is None:
            return hits
        if not self._by_name:
            return hits + [k for k in keys if k[-1] != "/" and self._any_file.match(base + k)]
        known = self._names
        return hits + [k for k in keys if k[-1] != "/" and (decided := known.get(k, _UNKNOWN)) is not None
                       and (decided is not _UNKNOWN or self._by_name_decision(k) is not None)]


class _AnyOf:
    """Whether any of the patterns matches a path: most paths match none, and are then
    answered in one or two regex matches instead of one per line (which line wins, when one
    does, is still the spec's to say). A line with no slash but a trailing one matches by
    name at any depth: it is tried on the last component alone, without its "any
    directories" part (trying that on a long path costs four times the rest)."""

    def __init__(self, patterns):
        by_name, by_path = [], []
        for p in patterns:
            regex = p.regex.pattern.replace("(?P<ps_d>", "(?:")
            if "/" not in p.pattern.removeprefix("!").rstrip(" ").rstrip("/") and regex.startswith("^(?:.+/)?"):
                by_name.append("^" + regex.removeprefix("^(?:.+/)?"))
            else:
                by_path.append(regex)
        self._name = re.compile("|".join(f"(?:{r})" for r in by_name)) if by_name else None
        self._path = re.compile("|".join(f"(?:{r})" for r in by_path)) if by_path else None
        self._names: dict[str, bool] = {}  # (a walk meets the same names in many directories)

    def match(self, path: str) -> bool:
        """`path` as pathspec is given it (a directory's with its trailing slash)."""
        if self._name is not None:
            name = path[path.rstrip("/").rfind("/") + 1:]
            hit = self._names.get(name)
            if hit is None:
                hit = self._name.match(name) is not None
                if len(self._names) < _NAMES_KEPT:
                    self._names[name] = hit
            if hit:
                return True
        return self._path is not None and self._path.match(path) is not None


_Levels = tuple[tuple[str, Patterns], ...]  # (directory, relative to the top, with "/"; its rules)


def _git(top: Path, *args: str) -> str | None:
    try:
        run = subprocess.run(["git", "-C", os.fspath(top), *args], capture_output=True, check=False)
    except OSError:
        return None
    return os.fsdecode(run.stdout) if run.returncode == 0 else None


def _read(path: Path | str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError):  # absent, a directory, unreadable: no rules, as in Git
        return None


def _signature(path: Path | None) -> tuple | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return st and (st.st_mtime_ns, st.st_size, st.st_ino)


def work_tree(root: Path) -> Path | None:
    """The top of the Git work tree holding `root` (a `.git` directory or file found going
    up), or None: no `git` is run for a root outside any repository."""
    for directory in (root, *root.parents):
        if os.path.lexists(directory / ".git"):
            return directory
    return None


class GitIgnores:
    def __init__(self, root: Path, top: Path, index: Path, common_dir: Path, excludes_file: Path | None):
        """`index`: the work tree's own (a linked work tree has one of its own); info/exclude
        is in the repository's common directory."""
        self.top, self.index = top, index
        self.prefix = "" if root == top else root.relative_to(top).as_posix() + "/"
        self.excludes = [p for p in (common_dir / "info" / "exclude", excludes_file) if p]
        self._parsed_now: dict[bytes, Patterns | None] = {}  # this round's, by the file's bytes
        self._tracked_sig: tuple | None = None
        self._tracked: frozenset[str] = frozenset()  # tracked files that match the rules
        self._tracked_dirs: frozenset[str] = frozenset()
        self.refresh()

    @classmethod
    def of(cls, root: Path) -> "GitIgnores | None":
        """The rules of the repository `root` is in; None outside one, or when the root
        itself is a directory the repository ignores (then Git would show nothing in it)."""
        root = Path(os.path.abspath(root))
        top = work_tree(root)
        dirs = top and _git(root, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir")
        if not dirs:  # not a work tree after all (a bare repository, a broken .git, no git)
            return None
        git_dir, common_dir = dirs.splitlines()[:2]
        excludes = _git(root, "config", "--path", "--get", "core.excludesFile")
        if excludes is None:
            xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
            excludes = os.path.join(xdg, "git", "ignore")
        rules = cls(root, top, Path(git_dir) / "index", Path(common_dir),
                    Path(excludes.strip()) if excludes.strip() else None)
        above = rules.prefix.rstrip("/").split("/") if rules.prefix else []
        if any(rules._matches("/".join(above[:n]), True) for n in range(1, len(above) + 1)):
            return None
        return rules

    def refresh(self) -> None:
        """Forget what was read: the next lookups read the tree's `.gitignore` files again
        (parsing again only those whose bytes changed). The tracked files that match are
        listed again when the index, an exclude file or a `.gitignore` read changed."""
        self._parsed, self._parsed_now = self._parsed_now, {}
        self._levels: dict[str, _Levels] = {}
        self._excluded_dirs: dict[str, bool] = {}
        self._base = tuple(spec for path in reversed(self.excludes)  # lowest precedence first
                           if (data := _read(path)) is not None and (spec := self._spec(data)) is not None)
        sig = (frozenset(self._parsed), tuple(map(_signature, [self.index, *self.excludes])))
        if sig != self._tracked_sig:
            self._tracked_sig = sig
            listed = _git(self.top, "ls-files", "-z", "--cached", "--ignored", "--exclude-standard")
            tracked = [p[len(self.prefix):] for p in (listed or "").split("\0") if p.startswith(self.prefix) and p]
            self._tracked = frozenset(tracked)
            self._tracked_dirs = frozenset(d for p in tracked for d in _parents(p))

    def _spec(self, data: bytes) -> Patterns | None:
        """A file's rules (None: no line in it), parsed once per content."""
        if data in self._parsed_now or data in self._parsed:
            spec = self._parsed_now.get(data, self._parsed.get(data))
        else:
            spec = Patterns(data.decode("utf-8", "surrogateescape").splitlines())
            spec = None if spec.empty else spec
        self._parsed_now[data] = spec
        return spec

    def ignored(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether Git ignores this path of the root (a directory: all of it, nothing under
        it tracked)."""
        if is_dir and relpath in self._tracked_dirs or not is_dir and relpath in self._tracked:
            return False
        parent = relpath.rpartition("/")[0]
        return (bool(parent) and self._excluded(parent)) or self._matches(self.prefix + relpath, is_dir)

    def deciding(self, prefix: str, keys: list[str], has_own: bool) -> list[str]:
        """`Patterns.deciding` for a directory of the root (`prefix`: its path with "/", ""
        for the root): its entries some rule may decide, every one under a directory Git
        excludes. (A tracked entry is never ignored: that takes nothing from the answer.)
        `has_own`: the directory's whole listing holds a `.gitignore` that is not a folder (in
        any case: a case-blind disk opens it); when it does not, none is looked for (an open
        that fails, in each of a tree's folders, was a tenth of a quiet rescan)."""
        if prefix and self._excluded(prefix[:-1]):
            return keys
        shown = matchable(self.prefix + prefix)
        hits = set()
        for directory, spec in self._levels_of((self.prefix + prefix)[:-1], has_own):
            hits.update(spec.deciding(shown[len(directory):], keys))
        for spec in self._base:
            hits.update(spec.deciding(shown, keys))
        return list(hits)

    def _excluded(self, directory: str) -> bool:
        """A directory (of the root) that Git excludes, itself or through one above it."""
        known = self._excluded_dirs.get(directory)
        if known is None:
            parent = directory.rpartition("/")[0]
            known = (bool(parent) and self._excluded(parent)) or self._matches(self.prefix + directory, True)
            self._excluded_dirs[directory] = known
        return known

    def _matches(self, path: str, is_dir: bool) -> bool:
        """The deepest level with a matching line decides; then info/exclude, excludesFile."""
        shown = matchable(path)
        for directory, spec in reversed(self._levels_of(path.rpartition("/")[0])):
            decided = spec.decide(shown[len(directory):], is_dir)
            if decided is not None:
                return decided
        for spec in reversed(self._base):
            decided = spec.decide(shown, is_dir)
            if decided is not None:
                return decided
        return False

    def _levels_of(self, directory: str, has_own: bool = True) -> _Levels:
        """The `.gitignore` rules that apply in a directory (relative to the top; `has_own`
        False: its listing holds no `.gitignore` to read)."""
        levels = self._levels.get(directory)
        if levels is None:
            above = self._levels_of(directory.rpartition("/")[0]) if directory else ()
            data = _read(os.path.join(self.top, directory, ".gitignore")) if has_own else None
            spec = None if data is None else self._spec(data)
            levels = above if spec is None else (*above, (directory + "/" if directory else "", spec))
            self._levels[directory] = levels
        return levels


def _parents(path: str):
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path
