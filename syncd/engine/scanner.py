"""Walk the root and hash only what changed since the last look.

A file whose size, mtime, inode and ctime match its stat-cache entry keeps its cached hash
without being read, which is what makes a quiet rescan cost about what `git status` costs.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from syncd.content import FilePolicy, Unsupported, check_size
from syncd.engine.entries import LocalFile, Stat, denied, open_source, read_entry, stat_of
from syncd.engine.ignore import IgnoreRules

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
         now_ns: int | None = None, temp_prefix: str | None = None) -> ScanResult:
    """`temp_prefix`: how this copy names its temporary files (handed back in `temp_files`,
    never synced); None when the caller writes none."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    result = ScanResult()
    pending = [("", os.fspath(root))]
    while pending:
        prefix, directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (PermissionError, FileNotFoundError, NotADirectoryError) as exc:
            # what is under it is unknown, not deleted
            result.unlisted.append(prefix.rstrip("/"))
            result.unsupported[prefix or "./"] = f"{prefix or './'}: cannot list the directory: {exc.strerror}"
            result.problems[prefix or "./"] = "a directory cannot be listed"
            continue
        for entry in entries:
            rel = prefix + entry.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                result.unsupported[rel] = f"{shown}: file name is not valid UTF-8; rename it to sync it"
                result.problems[rel] = "a file name is not UTF-8"
                continue
            if temp_prefix and entry.name.startswith(temp_prefix) and entry.is_file(follow_symlinks=False):
                result.temp_files.append(rel)
                continue
            if entry.is_dir(follow_symlinks=False):
                if not rules.ignores(rel, is_dir=True):
                    pending.append((rel + "/", entry.path))
                continue
            if not (entry.is_file(follow_symlinks=False) or entry.is_symlink()) or rules.ignores(rel):
                continue  # fifos, sockets, devices; ignored files
            try:
                local = _scan_file(root, entry, rel, cache, policy, now_ns, result)
            except Unsupported as exc:
                result.unsupported[rel] = str(exc)
                if exc.cause:
                    result.problems[rel] = exc.cause
                continue
            except FileNotFoundError:
                continue  # gone since the directory was listed
            if local is not None:
                result.files[rel] = local
    return result


def _scan_file(root: Path, entry: os.DirEntry, rel: str, cache: StatCache, policy: FilePolicy,
               now_ns: int, result: ScanResult) -> LocalFile | None:
    try:
        st = stat_of(entry.stat(follow_symlinks=False))  # a link's own (lstat): its changes are seen
    except PermissionError:  # a directory we may list but not enter
        raise denied(rel) from None
    if not entry.is_symlink():
        check_size(rel, st.size, policy)
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
