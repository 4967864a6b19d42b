"""Walk the root and hash only what changed since the last look.

A file whose size, mtime, inode and ctime match its stat-cache entry keeps its cached hash
without being read, which is what makes a quiet rescan cost about what `git status` costs.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from syncd.content import DIRECTORY, FilePolicy, Unsupported, check_size
from syncd.engine.entries import (UNREAD, LocalFile, Stat, denied, lstat_at, open_source, packed_stat,
                                  read_entry, stat_of)
from syncd.engine.ignore import IgnoreRules
from syncd.engine.touched import Touched, ancestors

# Like git's "racily clean" entries: a file modified within this long before it was hashed
# may be modified again within the same timestamp tick without its stat changing, so such
# an entry is not cached and the file is read again on the next scan.
RACY_NS = 2_000_000_000


class StatCache(Protocol):
    """Read and added to by a scan, never pruned by it: forgetting a vanished file is the
    caller's, who knows which paths are gone (cached, but in neither `files` nor
    `unsupported`, and not under an `unlisted` directory) and so can also preview a scan
    with a cache that keeps nothing."""

    def get(self, path: str) -> tuple[Stat, str] | None: ...
    def put(self, path: str, stat: Stat, sha256: str) -> None: ...


class MemoryStatCache:
    """A stat cache that lasts as long as the object: for tests and one-off scans."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Stat, str]] = {}

    def get(self, path: str) -> tuple[Stat, str] | None:
        return self.entries.get(path)

    def put(self, path: str, stat: Stat, sha256: str) -> None:
        self.entries[path] = (stat, sha256)


@dataclass
class ScanResult:
    files: dict[str, LocalFile] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)  # left alone, never "deleted"
    problems: dict[str, str] = field(default_factory=dict)  # those of them with a problem to fix: its cause
    temp_files: list[str] = field(default_factory=list)  # this copy's, left by an interrupted write
    unlisted: list[str] = field(default_factory=list)  # directories that could not be read ("" = root)
    ignored: dict[str, str] = field(default_factory=dict)  # never synced, and why (a directory once)
    clean: int = 0  # files found as `clean` has them (taken out of it), or read as `synced` has them
    settled: list[str] = field(default_factory=list)  # those read as `synced` has them
    hashed: int = 0


def remember(cache: StatCache, path: str, stat: Stat, sha256: str, now_ns: int | None = None) -> None:
    """Cache what a file held, unless it changed too recently for its stat to tell a later
    write apart (see RACY_NS). A file syncd has just written is always that recent: a save
    landing a microsecond after syncd's rename would otherwise be taken for syncd's bytes."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if now_ns - stat.mtime_ns >= RACY_NS:
        cache.put(path, stat, sha256)


def read_local(root: Path, relpath: str, policy: FilePolicy) -> tuple[bytes, LocalFile] | None:
    """The bytes at the path now (a link's target), or None when nothing is there; for the
    commands that show or merge them (a pass reads entries: `syncd.engine.entries`)."""
    found = read_entry(root, relpath, policy)
    if found is None:
        return None
    entry, local = found
    if entry.data is not None:
        return entry.data, local
    with open_source(root, relpath) as source:
        return source.read(), local


def scan(root: Path, rules: IgnoreRules, cache: StatCache, policy: FilePolicy,
         now_ns: int | None = None, temp_prefix: str | None = None,
         clean: dict[str, bytes] | None = None,
         unread: Callable[[str], bool] | None = None, synced: dict[str, str] | None = None) -> ScanResult:
    """`temp_prefix`: how this copy names its temporary files (handed back in `temp_files`,
    never synced); None when the caller writes none. `clean`: paths known to be in sync
    while their stat is this one (`packed_stat`), each taken out of it when
    found (what is left was not found so): one found so is counted in `result.clean`, not
    put in `files`, and its stat is compared without an object made. `unread`: the paths
    whose content nothing is decided by (the caller reads them once, to push them): found,
    they are files of identity UNREAD. `synced`: paths with no cached stat that are in sync
    while they hold this content (sha256): one read so, its stat when opened the one the
    walk saw (as `remember` asks), is counted in `result.clean` and named in
    `result.settled`, not put in `files`: it decides what reconciling it would (nothing)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rules.refresh()  # .gitignore files may have changed since the last walk
    result = ScanResult()
    _Walk(root, rules, cache, policy, now_ns, temp_prefix, result, clean, unread, synced).tree("", os.fspath(root))
    return result


def scan_touched(root: Path, rules: IgnoreRules, cache: StatCache, policy: FilePolicy, touched: Touched,
                 known_under: Callable[[str], Iterable[str]], now_ns: int | None = None,
                 temp_prefix: str | None = None) -> tuple[ScanResult, set[str]]:
    """What a full scan would find at the paths `touched` names, and the scope: every path
    it answers for (one in the scope and not in `files` is absent here). Besides the named
    paths and the trees walked, the scope holds each path's directories (whether they are
    empty-directory entries or parents) and, under a path that is no directory with
    anything in it now, every path the journal knows there (`known_under`): those are gone."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rules.refresh()
    result = ScanResult()
    walk = _Walk(root, rules, cache, policy, now_ns, temp_prefix, result)
    scope: set[str] = set()
    trees: set[str] = set()
    covered: set[str] = set()  # walked with one above them (a first pull's events name each folder it made)
    for tree in sorted(touched.trees):
        if any(a in trees for a in ancestors(tree)):
            covered.add(tree)
            continue
        trees.add(tree)
        scope.update(known_under(tree))
        st = lstat_at(root, tree)
        if st is not None and stat.S_ISDIR(st.st_mode) and not rules.ignores(tree, True):
            walk.tree(tree + "/", os.path.join(root, tree))
    scope.update(result.files)  # (found in the trees: nothing else is in the result yet)
    scope.update(result.unsupported)
    scope.update(covered)
    walked = set(scope)
    named = set(touched.paths) | touched.trees | walked
    named |= {a for path in list(named) for a in ancestors(path)}
    for path in sorted(named - walked):
        if walk.path(path):
            scope.update(known_under(path))
        scope.add(path)
    return result, scope


def _is_dir(entry: os.DirEntry) -> bool:
    """(Where the filesystem gives no type with the name, this stats the entry by its path,
    which can be past PATH_MAX: then it is taken for a file, whose stat says why.)"""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


class _Walk:
    """One scan's reading of the tree, into `result`."""

    def __init__(self, root: Path, rules: IgnoreRules, cache: StatCache, policy: FilePolicy, now_ns: int,
                 temp_prefix: str | None, result: ScanResult, clean: dict | None = None,
                 unread: Callable[[str], bool] | None = None, synced: dict[str, str] | None = None):
        self.root, self.rules, self.cache, self.policy = root, rules, cache, policy
        self.now_ns, self.temp_prefix, self.result = now_ns, temp_prefix, result
        self.clean = {} if clean is None else clean
        self.unread = unread
        self.synced = {} if synced is None else synced

    def tree(self, prefix: str, top: str) -> None:
        """Everything under the directory `top` (its path relative to the root: `prefix`)."""
        result, rules, clean, temp_prefix = self.result, self.rules, self.clean, self.temp_prefix
        pending = [(prefix, top)]
        clean_stat = clean.get
        found_clean = 0
        while pending:
            prefix, directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError as exc:  # unreadable, gone, a file now, or its path past PATH_MAX
                self._unlisted(prefix, exc)
                continue
            keys = [e.name + "/" if _is_dir(e) else e.name for e in entries]
            ignoring = rules.ignored_in(prefix, keys)
            well_named = _utf8(prefix)
            ignored = 0
            for entry, key in zip(entries, keys):
                name = entry.name
                rel = prefix + name
                if not (well_named and name.isascii()) and not self._named_well(rel):
                    continue
                is_dir = key[-1] == "/"
                if temp_prefix and name.startswith(temp_prefix) and entry.is_file(follow_symlinks=False):
                    result.temp_files.append(rel)
                    continue
                if key in ignoring:
                    ignored += 1
                    if (why := rules.why(rel, is_dir)) is not None:
                        result.ignored[rel] = why
                    continue
                if is_dir:
                    pending.append((rel + "/", entry.path))
                    continue
                if not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                    continue  # fifos, sockets, devices
                try:
                    st = entry.stat(follow_symlinks=False)  # a link's own (lstat): its changes are seen
                except PermissionError:  # a directory we may list but not enter
                    self._unsupported(rel, denied(rel))
                    continue
                except FileNotFoundError:
                    continue  # gone since the directory was listed
                except OSError as exc:  # its path past PATH_MAX
                    self._unsupported(rel, Unsupported(rel, f"cannot be looked at ({exc.strerror}); not synced",
                                                       exc.strerror))
                    continue
                try:
                    if clean_stat(rel) == packed_stat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns):
                        del clean[rel]
                        found_clean += 1
                        continue
                except struct.error:  # a time past 2262: never cached (see remember), read
                    pass
                self._file(rel, st)
            if prefix and ignored == len(entries):  # holds nothing that syncs: an entry of its own
                try:
                    result.files[prefix[:-1]] = LocalFile(prefix[:-1], DIRECTORY, stat_of(os.lstat(directory)))
                except FileNotFoundError:
                    pass
        result.clean += found_clean

    def path(self, rel: str) -> bool:
        """The path on its own, as the walk of its directory would see it; True when what
        the journal knows under it is gone (nothing there, no directory, or an empty one)."""
        if not self._named_well(rel):
            return False
        try:
            st = lstat_at(self.root, rel)
        except Unsupported:  # inside a link: the walk never goes there
            return True
        except PermissionError as exc:
            self._unlisted(rel.rpartition("/")[0] + "/", exc)
            return False
        if st is None:
            return True
        is_dir = stat.S_ISDIR(st.st_mode)
        name = rel.rpartition("/")[2]
        if self.temp_prefix and name.startswith(self.temp_prefix) and stat.S_ISREG(st.st_mode):
            self.result.temp_files.append(rel)
            return True
        if self.rules.ignores(rel, is_dir):
            return False  # (said by the full walks)
        if is_dir:
            try:
                found = read_entry(self.root, rel, self.policy, self.rules.ignores)  # an entry while empty
            except PermissionError as exc:
                self._unlisted(rel + "/", exc)
                return False
            if found is not None:
                self.result.files[rel] = found[1]
            return found is not None
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self._file(rel, st)
        return True

    def _named_well(self, rel: str) -> bool:
        if not _utf8(rel):
            shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            self.result.unsupported[rel] = f"{shown}: file name is not valid UTF-8; rename it to sync it"
            self.result.problems[rel] = "a file name is not UTF-8"
            return False
        return True

    def _unlisted(self, prefix: str, exc: OSError) -> None:
        """What is under a directory that cannot be read is unknown, not deleted."""
        self.result.unlisted.append(prefix.rstrip("/"))
        why = ("its path is longer than this system allows (move it up, or rename it shorter, to sync it)"
               if exc.errno == errno.ENAMETOOLONG else exc.strerror)
        self.result.unsupported[prefix or "./"] = f"{prefix or './'}: cannot list the directory: {why}"
        self.result.problems[prefix or "./"] = "a directory cannot be listed"

    def _unsupported(self, rel: str, exc: Unsupported) -> None:
        self.result.unsupported[rel] = str(exc)
        if exc.cause:
            self.result.problems[rel] = exc.cause

    def _file(self, rel: str, st: os.stat_result) -> None:
        seen = stat_of(st)
        try:
            local = _scan_file(self.root, rel, seen, self.cache, self.policy, self.now_ns, self.result,
                               check=not stat.S_ISLNK(st.st_mode), unread=self.unread)
        except Unsupported as exc:
            self._unsupported(rel, exc)
            return
        except FileNotFoundError:
            return  # gone since the directory was listed
        if local is None:
            return
        if self.synced.get(rel) == local.sha256 and local.stat == seen:  # (a pass after a pull: see `scan`)
            del self.synced[rel]
            self.result.clean += 1
            self.result.settled.append(rel)
            return
        self.result.files[rel] = local


def _utf8(name: str) -> bool:
    """Not a name of surrogate-escaped bytes (one that is not UTF-8)."""
    try:
        return name.isascii() or bool(name.encode("utf-8"))
    except UnicodeEncodeError:
        return False


def _scan_file(root: Path, rel: str, st: Stat, cache: StatCache, policy: FilePolicy,
               now_ns: int, result: ScanResult, check: bool,
               unread: Callable[[str], bool] | None = None) -> LocalFile | None:
    """`check`: the size limit applies (not to a link)."""
    if check:
        check_size(rel, st.size, policy)
    if unread is not None and unread(rel):  # (nor in the stat cache)
        return LocalFile(rel, UNREAD, st)
    cached = cache.get(rel)
    if cached is not None and cached[0] == st:
        return LocalFile(rel, cached[1], st)
    read = read_entry(root, rel, policy)
    if read is None:
        return None
    result.hashed += 1
    _, local = read
    if local.stat == st:
        remember(cache, rel, st, local.sha256, now_ns)
    return local
