"""Decide what to do with one path, from three facts and nothing else.

A three-way comparison, by content: `local` is the file's hash now, `base` what both sides
held when the path last synced, `remote` the store's head. A side "changed" when its
content differs from the base; a tombstone counts as absence. The rules, in order:

* both sides hold the same content → nothing to move (record it as the base if needed,
  which also releases a held path);
* a held conflict stays held until both sides agree;
* the store has never heard of the path → push it (a reset store never deletes files);
* only one side changed → carry that change to the other side;
* both changed, one of them by deleting → the edit wins (a delete is undone rather than an
  edit lost; the deleted version stays in the store's history);
* both changed to different contents → merge: the executor tries a three-way merge (or the
  path's configured policy) and holds a conflict, touching neither side, when it cannot.

No I/O here: the executor gathers the facts and carries out the answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Base:
    """What both sides held when the path last synced: as the journal recorded it, or as
    inferred from the store's history ("content": the file holds that version; "git": the
    clone's commit held it), for a copy whose journal cannot say."""
    version: int
    sha256: str | None  # None: the synced version was a tombstone
    source: str = "journal"  # journal | content | git


@dataclass(frozen=True)
class Remote:
    """The store's head."""
    version: int
    sha256: str | None  # None: the head is a tombstone


class Action(Enum):
    NOTHING = "nothing"
    PUSH = "push"  # commit the local content on top of the remote head
    PULL = "pull"  # write the remote content to disk
    ADOPT = "adopt"  # both sides agree already: record the remote head as the base
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"  # commit a tombstone
    MERGE = "merge"  # both sides changed: merge them, or else hold the path
    CONFLICT = "conflict"  # hold the path, touch neither side


def reconcile(local: str | None, base: Base | None, remote: Remote | None,
              held: bool = False) -> Action:
    """`local`: sha256 of the file, None when absent. `base`/`remote`: None when never seen."""
    b = base.sha256 if base else None
    r = remote.sha256 if remote else None

    if local == r:
        if remote is None or (base == Base(remote.version, remote.sha256) and not held):
            return Action.NOTHING
        return Action.ADOPT  # recording the base is also what releases a held path
    if held:
        return Action.CONFLICT
    if remote is None:
        # The store has no record at all (a new path, or a store that lost it): only a
        # tombstone may delete a local file, so give the store the content.
        return Action.PUSH
    if local == b:  # only the remote side changed
        return Action.PULL if r is not None else Action.DELETE_LOCAL
    if r == b:  # only the local side changed
        return Action.PUSH if local is not None else Action.DELETE_REMOTE
    if local is None:  # deleted here, edited there
        return Action.PULL
    if r is None:  # edited here, deleted there
        return Action.PUSH
    return Action.MERGE
