"""What a Git clone around the sync root says its files were: the merge base of a
teammate's uncommitted edits, for a copy joining with the clone it already has.

Plumbing only, and nothing written: `rev-list` for the clone's history, `ls-tree` for a
commit's blobs, one `cat-file --batch` for their bytes (hashed, not kept).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from syncd.content import identity

KINDS = (b"100644", b"100755", b"120000")  # files, executables, symbolic links
HISTORY_LIMIT = 5000  # commits of the clone looked at for one the store knows


class Clone:
    def __init__(self, top: Path, prefix: str):
        self.top = top
        self.prefix = prefix  # the sync root inside the work tree ("" at its top)

    @classmethod
    def around(cls, root: Path) -> "Clone | None":
        """The Git work tree the root is in, or None (not in one, or git is missing)."""
        try:
            done = subprocess.run(["git", "-C", os.fspath(root), "rev-parse", "--show-toplevel", "--show-prefix"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        top, _, prefix = done.stdout.partition("\n")
        return cls(Path(top), prefix.strip().strip("/"))

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes | None:
        done = subprocess.run(["git", "-C", os.fspath(self.top), *args], input=stdin, capture_output=True)
        return done.stdout if done.returncode == 0 else None

    def history(self, limit: int = HISTORY_LIMIT) -> list[str]:
        """The commits reachable from HEAD, newest first ([] in a repository without any)."""
        out = self._git("rev-list", f"--max-count={limit}", "HEAD")
        return out.decode().split() if out else []

    def hashes_at(self, rev: str, paths: set[str]) -> dict[str, str]:
        """The entry identity of each of `paths` (relative to the root) as commit `rev` has
        it; paths that are no file or link there are left out."""
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", rev, "--", *([self.prefix] if self.prefix else []))
        cut = len(self.prefix) + 1 if self.prefix else 0
        wanted: dict[str, tuple[str, bytes]] = {}  # path → (blob id, mode)
        for entry in (listing or b"").split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            fields = meta.split(b" ")
            if len(fields) != 3 or fields[1] != b"blob" or fields[0] not in KINDS:
                continue
            path = name.decode(errors="surrogateescape")[cut:]
            if path in paths:
                wanted[path] = fields[2].decode(), fields[0]
        blobs = list(dict.fromkeys(blob for blob, _ in wanted.values()))
        out = self._git("cat-file", "--batch", stdin="".join(f"{b}\n" for b in blobs).encode()) if blobs else None
        if out is None:
            return {}
        hashes: dict[str, str] = {}
        at = 0
        for blob in blobs:  # answered in the order asked: "<id> blob <size>\n<bytes>\n"
            end = out.index(b"\n", at)
            size = int(out[at:end].split()[2])
            hashes[blob] = hashlib.sha256(out[end + 1:end + 1 + size]).hexdigest()
            at = end + 1 + size + 1
        return {path: identity(hashes[blob], executable=mode == b"100755", link=mode == b"120000")
                for path, (blob, mode) in wanted.items()}
