"""Everything that changes the user's tree: atomic, checked, and only inside the root.

Paths come from the store, which other people's machines write to: each one is checked
before it can name a file here. A write goes to a temporary file beside the target, is
fsynced, and replaces the target only if the target still holds what the caller last saw.
Every name is taken relative to its directory, opened from the one above without following
a link (`Directories`): checking a path, then writing to it, would follow a link that
replaced one of its directories in between, out of the root.
"""
from __future__ import annotations

import errno
import itertools
import os
import secrets
import stat as statmod
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

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


_TEMP_TOKEN = secrets.token_hex(4)  # this process's, then a count: 16 hex digits, as ignore.py expects
_temp_serial = itertools.count()


def _temp_name(temp_prefix: str) -> str:
    """A temporary file's name: unique in this process, and made with O_EXCL (no random
    bytes asked of the kernel a file)."""
    return f"{temp_prefix}{_TEMP_TOKEN}{next(_temp_serial) & 0xFFFFFFFF:08x}"


class Directories:
    """The root's directories as the writer found them, each opened by name from the one
    above and never through a link: what is written goes into the directory that was
    checked, even if a link replaces it in between. An executor keeps one for a pass, so a
    directory stays open from one file to the next (`KEPT` of them). Before each use, each
    open directory is checked to be still the one at its name in the directory above, up to
    the root: one fstatat a level, and no realpath. A directory moved away, replaced or
    covered by a mount since then is opened anew. A call given none opens its own for
    itself."""

    KEPT = 32

    def __init__(self, root: Path):
        self.root = root
        self.real = ""  # the root's real path, looked up when the root is opened
        self.path_max = 4096  # the longest path the scan can list there, read then too
        # a directory's path in the root ("": the root) → (fd, st_dev, st_ino)
        self._open: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self._held: set[str] = set()  # those the current call was given: kept open until the next one
        self._retired: list[int] = []  # held ones found replaced: closed when the call is over

    def close(self) -> None:
        self.begin()
        while self._open:
            os.close(self._open.popitem()[1][0])

    def begin(self) -> None:
        """A call begins: what the one before held may be closed."""
        while self._retired:
            os.close(self._retired.pop())
        self._held.clear()
        self._trim()

    def path(self, relpath: str) -> str:
        return f"{self.real}/{relpath}" if relpath else self.real

    def fd(self, relpath: str, make: bool, asked: str, hold: bool = True, checked: bool = True) -> int | None:
        """The directory at `relpath` in the root, open; None when it (or one above, or the
        root) is missing and not `make`. UnsafePath, naming `asked`, where a link or a file
        is on the way. It stays open until the next call begins (not `hold`: until the
        next look-up, which may close it). Not `checked`: one open already is taken as it
        is, not asked again, for a caller that asks `still` before anything it does there
        can be seen."""
        known = None if checked else self._open.get(relpath)
        if known is not None:
            self._open.move_to_end(relpath)
            if hold:
                self._held.add(relpath)
            return known[0]
        up = self._root(make)
        here = ""
        for name in relpath.split("/") if relpath else ():
            if up is None:
                return None
            here = f"{here}/{name}" if here else name
            up = self._child(up, here, name, make, asked)
        if up is not None and hold:
            self._held.add(here)
        return up

    def still(self, relpath: str, dir_fd: int) -> None:
        """LocalChanged unless the directory open as `dir_fd` is still the folder of
        `relpath` in the root: asked again just before the file there is replaced, removed,
        linked or made (a folder moved out of the root while its file was read would take
        the change with it)."""
        if self.fd(relpath.rpartition("/")[0], False, relpath) != dir_fd:
            raise LocalChanged(f"{relpath}: its folder moved or was replaced since it was scanned; left as it is")

    def _root(self, make: bool) -> int | None:
        known = self._open.get("")
        if known is not None:
            if _same(known, self.real, None):
                self._open.move_to_end("")
                return known[0]
            self._drop("")
        self.real = os.path.realpath(self.root)
        try:
            fd = os.open(self.real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if make:
                raise
            return None
        self._keep("", fd)
        self.path_max = os.fpathconf(fd, "PC_PATH_MAX")
        return fd

    def _child(self, up: int, here: str, name: str, make: bool, asked: str) -> int | None:
        known = self._open.get(here)
        if known is not None:
            if _same(known, name, up):
                self._open.move_to_end(here)
                return known[0]
            self._drop(here)
        fd = self._opened(up, name, make, asked, here)
        if fd is not None:
            self._keep(here, fd)
        return fd

    def _opened(self, up: int, name: str, make: bool, asked: str, relpath: str) -> int | None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(name, flags, dir_fd=up)
        except FileNotFoundError:
            if not make:
                return None
        except NotADirectoryError:
            raise self._refused(up, name, asked, relpath) from None
        try:
            os.mkdir(name, dir_fd=up)
        except FileExistsError:
            pass
        try:
            return os.open(name, flags, dir_fd=up)
        except NotADirectoryError:  # raced with a link or a file of that name
            raise self._refused(up, name, asked, relpath) from None

    def _refused(self, up: int, name: str, asked: str, relpath: str) -> UnsafePath:
        if statmod.S_ISLNK(os.lstat(name, dir_fd=up).st_mode):
            return UnsafePath(f"{asked}: passes through the symbolic link {self.path(relpath)}; not written")
        return UnsafePath(f"{asked}: {self.path(relpath)} is a file, not a directory")

    def _keep(self, relpath: str, fd: int) -> None:
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._open[relpath] = (fd, st.st_dev, st.st_ino)
        self._trim()

    def _trim(self) -> None:
        """Close the least recently used past `KEPT`, never one the current call holds (a
        path deeper than that keeps only what it holds)."""
        if len(self._open) <= self.KEPT:
            return
        for relpath in list(self._open):
            if len(self._open) <= self.KEPT:
                return
            if relpath not in self._held:
                os.close(self._open.pop(relpath)[0])

    def _drop(self, relpath: str) -> None:
        fd = self._open.pop(relpath)[0]
        if relpath in self._held:
            self._retired.append(fd)
        else:
            os.close(fd)

    def forget(self, relpath: str) -> None:
        """The directory at `relpath` was removed: it and those under it are opened anew."""
        for known in [k for k in self._open if k == relpath or k.startswith(f"{relpath}/")]:
            self._drop(known)


def _same(known: tuple[int, int, int], name: str, dir_fd: int | None) -> bool:
    """Whether the directory open as `known` is still the one at `name`."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return statmod.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == known[1:]


@contextmanager
def _using(root: Path, dirs: Directories | None) -> Iterator[Directories]:
    if dirs is not None:
        dirs.begin()
        yield dirs
        return
    dirs = Directories(root)
    try:
        yield dirs
    finally:
        dirs.close()


_TEMP_ROOM = 64  # bytes a temporary file's name may take (`Journal.temp_prefix` and 16 hex digits: 36)


def _checked_name(relpath: str) -> list[str]:
    if not relpath or relpath.startswith("/") or "\x00" in relpath:
        raise UnsafePath(f"{relpath!r}: not a relative path")
    parts = relpath.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{relpath!r}: empty, '.' or '..' parts")
    if any(is_git_name(part) for part in parts):
        raise UnsafePath(f"{relpath}: a name Git keeps for itself (.git); refused, never written here")
    return parts


def _placed(dirs: Directories, relpath: str, directory_ok: bool = False,
            make_parents: bool = False, checked: bool = True) -> tuple[int | None, str, str]:
    """(its directory open, or None when that is missing; its name there; its absolute
    path) of a store path, or UnsafePath saying why it is refused (a directory there too,
    unless the caller expects one: an empty directory entry). Not `checked`: see
    `Directories.fd`."""
    parts = _checked_name(relpath)
    if dirs.fd("", make_parents, relpath, checked=checked) is not None:
        # Nothing is made for a path the scan could not list (by the root as configured, or
        # its real path); its temporary file's name beside it may be longer than its own.
        root = max(len(os.fsencode(dirs.root)), len(os.fsencode(dirs.real)))
        longest = root + 1 + len(os.fsencode(relpath)) + max(0, _TEMP_ROOM - len(os.fsencode(parts[-1])))
        if longest >= dirs.path_max:
            raise UnsafePath(f"{relpath}: {longest} bytes with the root's path, past the {dirs.path_max - 1} a "
                             "path may have here; not written (a shorter root, or a shorter path in the store, "
                             "fixes it)")
    dir_fd = dirs.fd("/".join(parts[:-1]), make_parents, relpath, checked=checked)
    target = dirs.path(relpath)
    if dir_fd is not None and not directory_ok and _is_directory(parts[-1], dir_fd):
        raise UnsafePath(f"{relpath}: {target} is a directory")
    return dir_fd, parts[-1], target


def safe_target(root: Path, relpath: str, directory_ok: bool = False, make_parents: bool = False, *,
                dirs: Directories | None = None) -> Path:
    """The absolute target of a store path, or UnsafePath saying why it is refused (a
    directory there too, unless the caller expects one: an empty directory entry). With
    `make_parents`, the directories above it that are missing are made as they are checked."""
    with _using(root, dirs) as dirs:
        return Path(_placed(dirs, relpath, directory_ok, make_parents)[2])


def _rmdir_entry(dirs: Directories, dir_fd: int, name: str, relpath: str, ignored: Ignored | None,
                 gone: str) -> None:
    """Remove the directory an empty-directory entry names; LocalChanged when something
    that syncs arrived in it since the scan, HoldsUnsynced when only ignored files hold it."""
    dirs.still(relpath, dir_fd)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not holds_nothing_synced(relpath, ignored, name, dir_fd):
            raise LocalChanged(f"{relpath}: changed since it was scanned; not {gone}") from None
        raise HoldsUnsynced(f"{relpath}: {gone} in the store, but this directory holds files that are not "
                            "synced (ignored here); left in place: remove them to finish") from None
    dirs.forget(relpath)


def _set_mode(fd: int, dir_fd: int, name: str, executable: bool, replacing: bool) -> os.stat_result:
    """The new file's mode: the one it `replaces` (else the umask's), with the executable
    bits set where it is readable, or none; its stat then. (Most new files have theirs
    already: no chmod, which would change the inode once more.)"""
    made = os.fstat(fd)
    mode = statmod.S_IMODE(made.st_mode)
    if replacing:
        try:
            st = os.lstat(name, dir_fd=dir_fd)
            if statmod.S_ISREG(st.st_mode):
                mode = statmod.S_IMODE(st.st_mode)
        except FileNotFoundError:
            pass
    mode = mode | (mode & 0o444) >> 2 if executable else mode & ~0o111
    if mode == statmod.S_IMODE(made.st_mode):
        return made
    os.fchmod(fd, mode)
    return os.fstat(fd)


def _replace(dirs: Directories, dir_fd: int, tmp: str, name: str, relpath: str, expect: str | None,
             ignored: Ignored | None) -> None:
    if identity_now(name, dir_fd) != expect:
        raise LocalChanged(f"{relpath}: changed since it was scanned; not written")
    dirs.still(relpath, dir_fd)
    if expect == DIRECTORY:  # an empty directory gives way (not atomically: it held nothing)
        _rmdir_entry(dirs, dir_fd, name, relpath, ignored, "replaced by a file")
    if expect is None:
        # Nothing was there: a link fails where the user has since saved a file of that
        # name, where a rename would overwrite it (a filesystem without hard links: rename).
        try:
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise LocalChanged(f"{relpath}: appeared since it was scanned; not written") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
        else:
            os.unlink(tmp, dir_fd=dir_fd)
            return
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _unlink_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def remove_leftover(root: Path, relpath: str, *, dirs: Directories | None = None) -> None:
    """Remove a temporary file an interrupted write of this copy left (the scan found it),
    in its directory as the writer opens it: never one a link leads to."""
    with _using(root, dirs) as dirs:
        dir_fd, name, _ = _placed(dirs, relpath)
        if dir_fd is not None:
            _unlink_quietly(name, dir_fd)


def write_atomic(root: Path, relpath: str, data: bytes | Callable[[BinaryIO], None], expect_sha256: str | None, *,
                 temp_prefix: str, executable: bool = False, ignored: Ignored | None = None,
                 durability: Durability | None = None, dirs: Directories | None = None) -> Stat:
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
    with _using(root, dirs) as dirs:
        # A new file's folder, if open already, is asked again only right before the file is
        # put in place (`_replace`): the temporary file is removed if the folder moved
        # meanwhile, a few microseconds after it was made. Not so for bytes streamed or
        # fsynced there (seconds): those ask before the temporary file is made too.
        directory_ok = expect_sha256 == DIRECTORY
        quick = deferred and not callable(data)
        dir_fd, name, target = _placed(dirs, relpath, directory_ok, make_parents=True, checked=not quick)
        tmp = _temp_name(temp_prefix)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
        except FileNotFoundError:  # the folder open was removed since (and maybe made again)
            dir_fd, name, target = _placed(dirs, relpath, directory_ok, make_parents=True)
            fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
        try:
            try:
                if callable(data):
                    with os.fdopen(fd, "wb", closefd=False) as out:
                        data(out)
                else:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                st = _set_mode(fd, dir_fd, name, executable, replacing=expect_sha256 is not None)
                if not deferred:
                    os.fsync(fd)
                written = stat_of(st)
            finally:
                os.close(fd)
            _replace(dirs, dir_fd, tmp, name, relpath, expect_sha256, ignored)
        except BaseException:
            _unlink_quietly(tmp, dir_fd)
            raise
        if deferred:
            durability.add(target)
        else:
            os.fsync(dir_fd)
        return written


def write_link(root: Path, relpath: str, link_target: str, expect_sha256: str | None, *, temp_prefix: str,
               ignored: Ignored | None = None, dirs: Directories | None = None) -> Stat:
    """Replace what is at the path with a symbolic link to `link_target`, as write_atomic
    does a file: made under a temporary name, renamed into place if the path still holds
    what was last seen. The target is checked here again, whatever the store said: only a
    relative link that stays inside the root is made."""
    with _using(root, dirs) as dirs:
        _placed(dirs, relpath, directory_ok=expect_sha256 == DIRECTORY)
        problem = link_problem(relpath, link_target)
        if problem is not None:
            raise UnsafePath(f"{relpath}: {problem}; not written")
        dir_fd, name, _ = _placed(dirs, relpath, directory_ok=expect_sha256 == DIRECTORY, make_parents=True)
        tmp = _temp_name(temp_prefix)
        os.symlink(link_target, tmp, dir_fd=dir_fd)
        try:
            written = stat_of(os.lstat(tmp, dir_fd=dir_fd))
            _replace(dirs, dir_fd, tmp, name, relpath, expect_sha256, ignored)
        except BaseException:
            _unlink_quietly(tmp, dir_fd)
            raise
        os.fsync(dir_fd)
        return written


def make_directory(root: Path, relpath: str, expect_sha256: str | None, *, dirs: Directories | None = None) -> Stat:
    """Make the path an (empty) directory if it still holds `expect_sha256` (None: absent);
    a directory already there, empty or not, is what was asked for."""
    with _using(root, dirs) as dirs:
        dir_fd, name, _ = _placed(dirs, relpath, directory_ok=True)
        if dir_fd is None or not _is_directory(name, dir_fd):
            if (None if dir_fd is None else identity_now(name, dir_fd)) != expect_sha256:
                raise LocalChanged(f"{relpath}: changed since it was scanned; not made a directory")
            if expect_sha256 is not None:  # the file or link it replaces, as last seen
                dirs.still(relpath, dir_fd)
                os.unlink(name, dir_fd=dir_fd)
            dir_fd = _placed(dirs, relpath, directory_ok=True, make_parents=True)[0]
            try:
                os.mkdir(name, dir_fd=dir_fd)
            except FileExistsError:
                pass
            if not _is_directory(name, dir_fd):  # raced with a file or a link
                raise LocalChanged(f"{relpath}: changed since it was scanned; not made a directory")
            os.fsync(dir_fd)
        return stat_of(os.lstat(name, dir_fd=dir_fd))


def _is_directory(name: str, dir_fd: int) -> bool:
    try:
        return statmod.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False


def delete_checked(root: Path, relpath: str, expect_sha256: str,
                   keep: Callable[[str], bool] = lambda path: False, ignored: Ignored | None = None, *,
                   dirs: Directories | None = None) -> None:
    """Remove the file, link or empty directory if it still is that entry, then any
    directories that emptied, except those `keep` names (synced empty directories). A
    directory holding what `ignored` names is left, with HoldsUnsynced."""
    with _using(root, dirs) as dirs:
        dir_fd, name, _ = _placed(dirs, relpath, directory_ok=expect_sha256 == DIRECTORY)
        if dir_fd is None:
            raise LocalChanged(f"{relpath}: changed since it was scanned; not deleted")
        if expect_sha256 == DIRECTORY and _is_directory(name, dir_fd):
            _rmdir_entry(dirs, dir_fd, name, relpath, ignored, "deleted")
        else:
            if identity_now(name, dir_fd) != expect_sha256:
                raise LocalChanged(f"{relpath}: changed since it was scanned; not deleted")
            dirs.still(relpath, dir_fd)
            os.unlink(name, dir_fd=dir_fd)
        os.fsync(dir_fd)
        _remove_emptied(dirs, relpath.rpartition("/")[0], keep)


def _remove_emptied(dirs: Directories, parent: str, keep: Callable[[str], bool] = lambda path: False) -> None:
    """Remove the directory at `parent` and those above it that are now empty, up to the
    root, but for those `keep` names."""
    while parent and not keep(parent):
        above, _, name = parent.rpartition("/")
        try:
            up = dirs.fd(above, False, parent, hold=False)  # (a thousand levels emptied: not a thousand open)
            if up is None:
                break
            os.rmdir(name, dir_fd=up)
        except (OSError, UnsafePath):
            break  # not empty: someone's files are still there (or what was above it is no more)
        dirs.forget(parent)
        parent = above


def move_checked(root: Path, old: str, new: str, expect_sha256: str,
                 keep: Callable[[str], bool] = lambda path: False, *, dirs: Directories | None = None) -> Stat:
    """Rename the file at `old` to `new`, keeping its inode, if `old` still has that content
    and nothing is at `new`; then remove directories the move emptied, except those `keep`
    names (synced empty directories). A link is moved only where its target still stays
    inside the root (it is relative to where the link is). Returns the stat of the file at
    `new`.

    A hard link then an unlink: the link never replaces anything at `new` (it fails if
    something appeared there), and a crash in between leaves the same file at both paths,
    which the next pass settles as a synced file and a delete."""
    with _using(root, dirs) as dirs:
        old_fd, old_name, source = _placed(dirs, old)
        _placed(dirs, new)
        if old_fd is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(source))
        before = os.lstat(old_name, dir_fd=old_fd)
        if identity_now(old_name, old_fd) != expect_sha256:
            raise LocalChanged(f"{old}: changed since it was scanned; not moved")
        if statmod.S_ISLNK(before.st_mode):
            problem = link_problem(new, os.fsdecode(os.readlink(old_name, dir_fd=old_fd)))
            if problem is not None:
                raise UnsafePath(f"{new}: {problem}; {old} not moved there")
        new_fd, new_name, _ = _placed(dirs, new, make_parents=True)
        dirs.still(old, old_fd)
        try:
            os.link(old_name, new_name, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
        except FileExistsError:
            raise LocalChanged(f"{new}: appeared since the scan; {old} not moved there") from None
        linked = os.lstat(new_name, dir_fd=new_fd)
        if (linked.st_ino, linked.st_dev) != (before.st_ino, before.st_dev):  # replaced after the check
            os.unlink(new_name, dir_fd=new_fd)
            raise LocalChanged(f"{old}: replaced since it was scanned; not moved")
        os.unlink(old_name, dir_fd=old_fd)
        os.fsync(new_fd)
        moved = stat_of(os.lstat(new_name, dir_fd=new_fd))  # (its ctime is the unlink's)
        _remove_emptied(dirs, old.rpartition("/")[0], keep)
        return moved
