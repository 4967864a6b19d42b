"""What a pass triggered by events looks at: the paths the events named, and the trees under
directories that appeared, instead of the whole root.

Events are hints, so what they name is only where to look; a pass still decides by content.
A lost event only delays a change until the periodic full rescan, a duplicated one costs a
stat, and their order does not matter (sets). What a partial pass must also look at to
decide as a full pass would (each path's directories, for empty-directory entries and
`keep_parents`; what the journal knows under a directory that went away) is added by the
scan (`syncd.engine.scanner.scan_touched`), not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Touched:
    paths: set[str] = field(default_factory=set)  # look at each one itself (a directory: whether it is empty)
    trees: set[str] = field(default_factory=set)  # look at everything under each (created or moved here)

    def __bool__(self) -> bool:
        return bool(self.paths or self.trees)

    def update(self, other: "Touched") -> None:
        self.paths |= other.paths
        self.trees |= other.trees


def ancestors(path: str):
    """The directories above a path, nearest first ("" not included: the root is no entry)."""
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path


def under(path: str, directory: str) -> bool:
    return path.startswith(directory + "/")
