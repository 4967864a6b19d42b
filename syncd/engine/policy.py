"""What to do with a path both sides changed, by glob: the config's `merge` section; and
how many deletes one pass may carry out (the config's `deletes` section).

The first pattern that matches a path wins (gitignore syntax); a path no pattern matches is
merged. The choice between two whole versions (`prefer-*`, `newest`) is made here, purely.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping

import pathspec


class Policy(Enum):
    MERGE = "merge"  # three-way merge; a conflict is held when it is not clean
    MANUAL = "manual"  # always hold: a person decides
    PREFER_LOCAL = "prefer-local"
    PREFER_REMOTE = "prefer-remote"
    NEWEST = "newest"  # the side written last, by the file's mtime and the version's time


class MergePolicies:
    def __init__(self, patterns: Mapping[str, str] | None = None):
        self._rules = [(pathspec.GitIgnoreSpec.from_lines([glob]), Policy(name))
                       for glob, name in (patterns or {}).items()]

    def for_path(self, path: str) -> Policy:
        for spec, policy in self._rules:
            if spec.match_file(path):
                return policy
        return Policy.MERGE


def keep_local(policy: Policy, local_mtime: float, remote_time: float) -> bool | None:
    """For a whole-version policy: True keeps the local side, False the remote one; None
    for the policies that do not pick a side."""
    if policy is Policy.PREFER_LOCAL:
        return True
    if policy is Policy.PREFER_REMOTE:
        return False
    if policy is Policy.NEWEST:
        return local_mtime >= remote_time
    return None


@dataclass(frozen=True)
class DeleteLimits:
    """Deletes in one pass beyond both limits wait for `syncd resume --allow-deletes`."""
    max_count: int = 50
    max_share: float = 0.25

    def exceeded(self, deletes: int, tree: int) -> bool:
        return deletes > self.max_count and deletes > self.max_share * tree


RECENT_DELETES = 60.0  # seconds: deletes sent this recently count with a pass's own


def still_recent(sent: list[list[float]], now: float) -> list[list[float]]:
    """The (time, files) of the deletes sent within RECENT_DELETES of `now`: one `rm`
    whose unlinks reached two passes (a pause under load, a tool deleting in batches) is
    still one mass delete."""
    return [[t, n] for t, n in sent if now - RECENT_DELETES < t <= now]
