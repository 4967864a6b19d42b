"""Everything that changes the user's tree: atomic, checked, and only inside the root.

Paths come from the store, which other people's machines write to: each one is checked
before it can name a file here. A write goes to a temporary file beside the target, is
fsynced, and replaces the target only if the target still holds what the caller last saw.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat as statmod
from pathlib import Path
from typing import BinaryIO, Callable

from syncd.content import DIRECTORY, link_problem
from syncd.engine.durability import Durability
from syncd.engine.entries import Ignored, Stat, holds_nothing_synced, identity_now, stat_of
from syncd.engine.ignore import is_git_name


class UnsafePath(Exception):
    pass


class LocalChanged(Exception):
    """The file is not what the caller last saw: the user got there first."""


class HoldsUnsynced(Exception):
    """An empty directory entry cannot go: it holds files this copy does not sync (ignored
    ones), which are not syncd's to remove."""

    cause = "a directory holds files that are not synced"


def _rmdir_entry(root: Path, relpath: str, target: Path, ignored: Ignored | None, gone: str) -> None:
    """Remove the directory an empty-directory entry names; LocalChanged when something
    that syncs arrived in it since the scan, HoldsUnsynced when only ignored files hold it."""
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not holds_nothing_synced(relpath, ignored, str(target)):
            raise LocalChanged(f"{relpath}: changed since it was scanned; not {gone}") from None
        raise HoldsUnsynced(f"{relpath}: {gone} in the store, but this directory holds files that are not "
                            "synced (ignored here); left in place: remove them to finish") from None


def safe_target(root: Path, relpath: str, directory_ok: bool = False, make_parents: bool = False) -> Path:
    """The absolute target of a store path, or UnsafePath saying why it is refused (a
    directory there too, unless the caller expects one: an empty directory entry). With
    `make_parents`, the directories above it that are missing are made as they are checked."""
    if not relpath or relpath.startswith("/") or "\x00" in relpath:
        raise UnsafePath(f"{relpath!r}: not a relative path")
    parts = relpath.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{relpath!r}: empty, '.' or '..' parts")
    if any(is_git_name(part) for part in parts):
        raise UnsafePath(f"{relpath}: a name Git keeps for itself (.git); refused, never written here")
    parent = _checked_parents(root, relpath, parts[:-1], make_parents)
    target = Path(parent, parts[-1])
    if not directory_ok:
        try:
            if statmod.S_ISDIR(os.lstat(target).st_mode):
                raise UnsafePath(f"{relpath}: {target} is a directory")
        except (FileNotFoundError, NotADirectoryError):
            pass
    return target


def _checked_parents(root: Path, relpath: str, parents: list[str], make: bool) -> str:
    """The directory a path's target goes in, each one on the way there a plain directory
    (not a link, not a file), each looked at once; those missing are made when `make`,
    else left for later (nothing below a missing one is there either)."""
    here = os.path.realpath(root)
    for i, part in enumerate(parents):
        here = f"{here}/{part}"
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            if not make:
                return os.path.join(here, *parents[i + 1:])
            try:
                os.mkdir(here)
            except FileExistsError:
                pass
            st = os.lstat(here)
        if statmod.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{relpath}: passes through the symbolic link {here}; not written")
        if not statmod.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{relpath}: {here} is a file, not a directory")
    return here


def _make_parents(root: Path, relpath: str) -> None:
    _checked_parents(root, relpath, relpath.split("/")[:-1], make=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_mode(fd: int, target: Path, executable: bool) -> None:
    """The new file's mode: the one it replaces (else the umask's), with the executable bits
    set where it is readable, or none. (Most new files have theirs already: no chmod, which
    would change the inode once more.)"""
    made = mode = statmod.S_IMODE(os.fstat(fd).st_mode)
    try:
        st = os.lstat(target)
        if statmod.S_ISREG(st.st_mode):
            mode = statmod.S_IMODE(st.st_mode)
    except FileNotFoundError:
        pass
    mode = mode | (mode & 0o444) >> 2 if executable else mode & ~0o111
    if mode != made:
        os.fchmod(fd, mode)


def _replace(root: Path, tmp: Path, target: Path, relpath: str, expect: str | None,
             ignored: Ignored | None) -> None:
    if identity_now(target) != expect:
        raise LocalChanged(f"{relpath}: changed since it was scanned; not written")
    if expect == DIRECTORY:  # an empty directory gives way (not atomically: it held nothing)
        _rmdir_entry(root, relpath, target, ignored, "replaced by a file")
    if expect is None:
        # Nothing was there: a link fails where the user has since saved a file of that
        # name, where a rename would overwrite it (a filesystem without hard links: rename).
        try:
            os.link(tmp, target, follow_symlinks=False)
        except FileExistsError:
            raise LocalChanged(f"{relpath}: appeared since it was scanned; not written") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
        else:
            os.unlink(tmp)
            return
    os.replace(tmp, target)


def write_atomic(root: Path, relpath: str, data: bytes | Callable[[BinaryIO], None], expect_sha256: str | None, *,
                 temp_prefix: str, executable: bool = False, ignored: Ignored | None = None,
                 durability: Durability | None = None) -> Stat:
    """Replace what is at the path with a file of `data` (or what `data` writes into the
    file it is given, such as a blob streamed from the store, which raises when the bytes
    are wrong) and that mode, if it still has the entry identity `expect_sha256` (None:
    still absent).

    The temporary file beside the target is named with `temp_prefix`, this copy's own
    (`Journal.temp_prefix`): a scan removes only those, never a user's look-alike. It has
    its bytes and its mode before the rename: no one sees the file half-written, or with
    the old mode.

    Returns the stat of the bytes written, taken from the temporary file before the rename:
    a stat of the target afterwards could already be of the user's next save.

    With `durability`, a new file (`expect_sha256` None: nothing there to protect) is not
    fsynced here but added to it, to be made durable with the rest of its batch; a file that
    replaces another always is, before the rename."""
    deferred = durability is not None and expect_sha256 is None
    target = safe_target(root, relpath, directory_ok=expect_sha256 == DIRECTORY, make_parents=True)
    tmp = target.parent / f"{temp_prefix}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        try:
            if callable(data):
                with os.fdopen(fd, "wb", closefd=False) as out:
                    data(out)
            else:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            _set_mode(fd, target, executable)
            if not deferred:
                os.fsync(fd)
            written = stat_of(os.fstat(fd))
        finally:
            os.close(fd)
        _replace(root, tmp, target, relpath, expect_sha256, ignored)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if deferred:
        durability.add(target)
    else:
        _fsync_dir(target.parent)
    return written


def write_link(root: Path, relpath: str, link_target: str, expect_sha256: str | None, *, temp_prefix: str,
               ignored: Ignored | None = None) -> Stat:
    """Replace what is at the path with a symbolic link to `link_target`, as write_atomic
    does a file: made under a temporary name, renamed into place if the path still holds
    what was last seen. The target is checked here again, whatever the store said: only a
    relative link that stays inside the root is made."""
    target = safe_target(root, relpath, directory_ok=expect_sha256 == DIRECTORY)
    problem = link_problem(relpath, link_target)
    if problem is not None:
        raise UnsafePath(f"{relpath}: {problem}; not written")
    _make_parents(root, relpath)
    tmp = target.parent / f"{temp_prefix}{secrets.token_hex(8)}"
    os.symlink(link_target, tmp)
    try:
        written = stat_of(os.lstat(tmp))
        _replace(root, tmp, target, relpath, expect_sha256, ignored)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return written


def make_directory(root: Path, relpath: str, expect_sha256: str | None) -> Stat:
    """Make the path an (empty) directory if it still holds `expect_sha256` (None: absent);
    a directory already there, empty or not, is what was asked for."""
    target = safe_target(root, relpath, directory_ok=True)
    if not (target.is_dir() and not target.is_symlink()):
        if identity_now(target) != expect_sha256:
            raise LocalChanged(f"{relpath}: changed since it was scanned; not made a directory")
        if expect_sha256 is not None:  # the file or link it replaces, as last seen
            target.unlink()
        _make_parents(root, relpath)
        try:
            os.mkdir(target)
        except FileExistsError:
            pass
        if not statmod.S_ISDIR(os.lstat(target).st_mode):  # raced with a file or a link
            raise LocalChanged(f"{relpath}: changed since it was scanned; not made a directory")
        _fsync_dir(target.parent)
    return stat_of(os.lstat(target))


def delete_checked(root: Path, relpath: str, expect_sha256: str,
                   keep: Callable[[str], bool] = lambda path: False, ignored: Ignored | None = None) -> None:
    """Remove the file, link or empty directory if it still is that entry, then any
    directories that emptied, except those `keep` names (synced empty directories). A
    directory holding what `ignored` names is left, with HoldsUnsynced."""
    target = safe_target(root, relpath, directory_ok=expect_sha256 == DIRECTORY)
    if expect_sha256 == DIRECTORY and target.is_dir() and not target.is_symlink():
        _rmdir_entry(root, relpath, target, ignored, "deleted")
    else:
        if identity_now(target) != expect_sha256:
            raise LocalChanged(f"{relpath}: changed since it was scanned; not deleted")
        target.unlink()
    _fsync_dir(target.parent)
    _remove_emptied(root, target.parent, keep)


def _remove_emptied(root: Path, parent: Path, keep: Callable[[str], bool] = lambda path: False) -> None:
    """Remove `parent` and the directories above it that are now empty, up to the root,
    but for those `keep` names."""
    top = Path(root).resolve()
    while parent != top and not keep(parent.relative_to(top).as_posix()):
        try:
            parent.rmdir()
        except OSError:
            break  # not empty: someone's files are still there
        parent = parent.parent


def move_checked(root: Path, old: str, new: str, expect_sha256: str,
                 keep: Callable[[str], bool] = lambda path: False) -> Stat:
    """Rename the file at `old` to `new`, keeping its inode, if `old` still has that content
    and nothing is at `new`; then remove directories the move emptied, except those `keep`
    names (synced empty directories). A link is moved only where its target still stays
    inside the root (it is relative to where the link is). Returns the stat of the file at
    `new`.

    A hard link then an unlink: the link never replaces anything at `new` (it fails if
    something appeared there), and a crash in between leaves the same file at both paths,
    which the next pass settles as a synced file and a delete."""
    source, target = safe_target(root, old), safe_target(root, new)
    before = os.lstat(source)
    if identity_now(source) != expect_sha256:
        raise LocalChanged(f"{old}: changed since it was scanned; not moved")
    if statmod.S_ISLNK(before.st_mode):
        problem = link_problem(new, os.fsdecode(os.readlink(source)))
        if problem is not None:
            raise UnsafePath(f"{new}: {problem}; {old} not moved there")
    _make_parents(root, new)
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        raise LocalChanged(f"{new}: appeared since the scan; {old} not moved there") from None
    linked = os.lstat(target)
    if (linked.st_ino, linked.st_dev) != (before.st_ino, before.st_dev):  # replaced after the check
        os.unlink(target)
        raise LocalChanged(f"{old}: replaced since it was scanned; not moved")
    os.unlink(source)
    _fsync_dir(target.parent)
    _remove_emptied(root, source.parent, keep)
    return stat_of(os.lstat(target))
