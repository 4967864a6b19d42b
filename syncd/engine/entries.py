"""What is at a path now: a file (its bytes and executable bit), a symbolic link or an
empty directory.

Everything that compares "what is there" (the scanner, the writer's check before it
replaces or removes, a pass re-reading a file before it pushes) reads it here, and
compares entry identities (`syncd.content.identity`): the executable bit and a link's
target are part of what a version is. Nothing here follows a link: paths are walked one
directory at a time with O_NOFOLLOW, so a directory swapped for a link cannot lead a read
(and a push) outside the root, and a link is read as a link.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat as statmod
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from syncd.content import DIRECTORY, TEXT_MAX, Entry, directory_entry, FilePolicy, TextCheck, Unsupported, check_kind, link_entry, link_problem

READ = 1 << 20


@dataclass(frozen=True, slots=True)  # (slots: a pass holds one a path)
class Stat:
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int  # a chmod changes it: a mode change is seen like an edit


# The identity of a file found but not read: one the journal knows nothing of, in a first
# sync (nothing to compare it with; the push reads it). No content has it.
UNREAD = "(not read)"


@dataclass(frozen=True, slots=True)  # (slots: a pass holds one a path)
class LocalFile:
    path: str
    sha256: str  # the entry identity
    stat: Stat


def stat_of(st: os.stat_result) -> Stat:
    return Stat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


# A stat as bytes (size, mtime_ns, ino, ctime_ns): 72 bytes a file held, not a tuple's 170,
# and a quiet rescan compares one with a file's without a Python call (ino is unsigned)
packed_stat = struct.Struct("<qqQq").pack


def is_executable(mode: int) -> bool:
    """Executable as Git sees it: by its owner."""
    return bool(mode & statmod.S_IXUSR)


def denied(relpath: str) -> Unsupported:
    return Unsupported(relpath, "permission denied; not synced (make it readable to sync it)", "permission denied")


def _parent(root: Path, relpath: str) -> int | None:
    """A descriptor of the path's directory, reached without following links; None when a
    file stands where a directory would be (nothing can be under it) or it is absent."""
    *parents, _ = relpath.split("/")
    try:
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):  # the root went: the pass finds out, and pauses
        return None
    try:
        for part in parents:
            try:
                fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except NotADirectoryError:
                if statmod.S_ISLNK(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    raise Unsupported(relpath, f"inside the symbolic link {part!r}; not synced") from None
                os.close(dir_fd)
                return None
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENAMETOOLONG):
                    raise
                os.close(dir_fd)  # (a name past NAME_MAX: no such folder can be here)
                return None
            os.close(dir_fd)
            dir_fd = fd
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def lstat_at(root: Path, relpath: str) -> os.stat_result | None:
    """The path's own stat, reached as `read_entry` reaches it (no link followed on the
    way), or None when nothing is there; Unsupported inside a link."""
    dir_fd = _parent(root, relpath)
    if dir_fd is None:
        return None
    try:
        return os.stat(relpath.rsplit("/", 1)[-1], dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENAMETOOLONG):
            raise
        return None  # (absent; a name past NAME_MAX: no such file can be here)
    finally:
        os.close(dir_fd)


Ignored = Callable[[str, bool], bool]  # IgnoreRules.ignores: (path, is_dir) → never synced


def holds_nothing_synced(relpath: str, ignored: Ignored | None, name: str | None = None,
                         dir_fd: int | None = None) -> bool:
    """Whether the directory holds nothing that syncs (a `.DS_Store` the Finder left in an
    empty folder does not make it a parent; with no rules, only an empty one is)."""
    try:
        fd = os.open(relpath if name is None else name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                     dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        with os.scandir(fd) as listing:
            return all(ignored is not None and ignored(f"{relpath}/{e.name}", e.is_dir(follow_symlinks=False))
                       for e in listing)
    finally:
        os.close(fd)


def _hash_file(fd: int, size: int) -> tuple[str, bytes | None, str | None]:
    """(sha256, the bytes when text-sized, why they are no text or None), read once."""
    digest, check, held = hashlib.sha256(), TextCheck(), []
    while chunk := os.read(fd, READ):
        digest.update(chunk)
        check.feed(chunk)
        if size <= TEXT_MAX:
            held.append(chunk)
    check.feed(b"", final=True)
    return digest.hexdigest(), b"".join(held) if size <= TEXT_MAX else None, check.reason


def read_entry(root: Path, relpath: str, policy: FilePolicy,
               ignored: Ignored | None = None) -> tuple[Entry, LocalFile] | None:
    """The entry at the path now, or None when nothing is there; Unsupported when it is not
    synced (a link leaving the root, a fifo, a file over files.max_size, a binary under
    files.binary: skip). A file's bytes are held only up to text size; a larger one is
    hashed as it streams by (its `source` says where to read it again). A directory is an
    entry while it holds nothing that syncs by `ignored`."""
    try:
        dir_fd = _parent(root, relpath)
    except PermissionError:
        raise denied(relpath) from None
    if dir_fd is None:
        return None
    name = relpath.rsplit("/", 1)[-1]
    try:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if statmod.S_ISDIR(st.st_mode):
            # an entry only while empty: one that holds anything is its files' parent
            if not holds_nothing_synced(relpath, ignored, name, dir_fd):
                return None
            return directory_entry(), LocalFile(relpath, DIRECTORY, stat_of(st))
        if statmod.S_ISLNK(st.st_mode):
            target = os.fsdecode(os.readlink(name, dir_fd=dir_fd))
            problem = link_problem(relpath, target)
            if problem is not None:
                raise Unsupported(relpath, f"{problem}; not synced (only relative links that stay inside the "
                                           "root are)")
            entry = link_entry(target)
            return entry, LocalFile(relpath, entry.identity, stat_of(st))
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except PermissionError:
            raise denied(relpath) from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # became a link since; a socket
                raise Unsupported(relpath, "not a regular file; not synced") from None
            raise
        try:
            st = os.fstat(fd)
            if not statmod.S_ISREG(st.st_mode):
                raise Unsupported(relpath, "not a regular file; not synced")
            probe = Entry("", st.st_size, is_executable(st.st_mode))
            check_kind(relpath, probe, policy)  # over the size limit: not even read
            digest, data, reason = _hash_file(fd, st.st_size)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
    entry = Entry(digest, st.st_size if data is None else len(data), is_executable(st.st_mode), data=data,
                  not_text=reason, source=relpath)
    check_kind(relpath, entry, policy)
    return entry, LocalFile(relpath, entry.identity, stat_of(st))


def open_source(root: Path, relpath: str) -> BinaryIO:
    """The file at the path, opened for reading its bytes again (to upload them), without
    following links; FileNotFoundError when it is gone."""
    dir_fd = _parent(root, relpath)
    if dir_fd is None:
        raise FileNotFoundError(relpath)
    try:
        fd = os.open(relpath.rsplit("/", 1)[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return os.fdopen(fd, "rb")


# what identity_now says of a fifo or a socket: it equals no identity, so such a
# thing is never replaced or removed (and a fifo is never opened for a blocking read)
NOT_AN_ENTRY = "not a regular file"


def identity_now(path: str, dir_fd: int) -> str | None:
    """The entry identity of what is at the name `path` in the directory `dir_fd` (which
    the caller checked), None when nothing is; the name is not followed."""
    try:
        st = os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if statmod.S_ISLNK(st.st_mode):
        return link_entry(os.fsdecode(os.readlink(path, dir_fd=dir_fd))).identity
    if statmod.S_ISDIR(st.st_mode):  # whether it is an entry (empty) is the scan's to say
        return DIRECTORY
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # became a link since; a socket
            return NOT_AN_ENTRY
        raise
    try:
        st = os.fstat(fd)
        if not statmod.S_ISREG(st.st_mode):
            return NOT_AN_ENTRY
        digest = hashlib.sha256()
        while chunk := os.read(fd, READ):
            digest.update(chunk)
        return Entry(digest.hexdigest(), st.st_size, is_executable(st.st_mode)).identity
    finally:
        os.close(fd)
