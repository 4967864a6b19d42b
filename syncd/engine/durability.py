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
    """The files written since the last flush, and their directories."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[Path] = []
        self.directories: set[Path] = set()

    def add(self, target: Path) -> None:
        self.files.append(target)
        self.directories.add(target.parent)

    def flush(self) -> None:
        """Every file added is on disk, with its name, when this returns."""
        if not self.files:
            return
        if _libc is not None:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if _libc.syncfs(fd) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), str(self.root))
            finally:
                os.close(fd)
        else:  # no syncfs: one fsync each, still after all the writes
            for path in [*self.files, *self.directories]:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:  # replaced or removed since: nothing of ours to keep
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self.files.clear()
        self.directories.clear()
