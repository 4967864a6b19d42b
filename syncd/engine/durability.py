"""New files made durable together: one `syncfs` for a pass's batch instead of an fsync of
each file and its directory.

A file written where nothing was (nothing there to protect) may reach the disk late; what
must not happen is the journal recording its base before it has. The executor writes such
files in the journal's transaction for the pass and calls `flush` before that transaction
commits: a crash before then loses the journal's records with the files' bytes, and the
next pass finds the files without a base and decides again (an equal file is adopted)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


class Durability:
    """How many files were written since the last flush, and their directories (the files
    themselves only where there is no syncfs: a first pull of a big tree holds no object a
    file for this)."""

    def __init__(self, root: Path):
        self.root = root
        self.written = 0
        self.directories: set[str] = set()
        self.files: list[str] = []

    def add(self, target: str) -> None:
        self.written += 1
        self.directories.add(os.path.dirname(target))
        if _libc is None:
            self.files.append(target)

    def flush(self) -> None:
        """Every file added is on disk, with its name, when this returns."""
        if not self.written:
            return
        if _libc is not None:
            for directory in one_per_filesystem(self.root, self.directories):
                _syncfs(directory)
        else:  # no syncfs: one fsync each, still after all the writes, and of every new directory's parent
            for path in [*self.files, *with_parents(map(Path, self.directories), self.root)]:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:  # replaced or removed since: nothing of ours to keep
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self.written = 0
        self.files.clear()
        self.directories.clear()


def one_per_filesystem(root: Path, directories) -> list[Path | str]:
    """The root, and a directory of each other filesystem among them: a directory inside the
    root can be another filesystem's mount point, which the root's `syncfs` does not flush.
    (The root must be there: its files cannot be made durable when it is gone.)"""
    found: dict[int, Path | str] = {os.stat(root).st_dev: root}
    for directory in directories:
        try:
            found.setdefault(os.stat(directory).st_dev, directory)
        except FileNotFoundError:  # removed since: nothing of ours in it to keep
            pass
    return list(found.values())


def with_parents(directories, root: Path) -> set[Path]:
    """The directories and those above them up to the root: a directory made for a new file
    is an entry of its parent, as durable as that parent is."""
    out: set[Path] = set()
    for directory in directories:
        while directory not in out and directory != root and root in directory.parents:
            out.add(directory)
            directory = directory.parent
    return out | {root}


def _syncfs(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(directory))
    finally:
        os.close(fd)
