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

from bisect import bisect_left
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from itertools import chain
from typing import NamedTuple

from syncd.content import DIRECTORY


@dataclass(frozen=True, slots=True)  # (slots: a pass holds one a path)
class Base:
    """What both sides held when the path last synced: as the journal recorded it, or as
    inferred from the store's history ("content": the file holds that version; "git": the
    clone's commit held it), for a copy whose journal cannot say."""
    version: int
    sha256: str | None  # None: the synced version was a tombstone
    source: str = "journal"  # journal | content | git


@dataclass(frozen=True, slots=True)  # (slots: a pass holds one a path)
class Remote:
    """The store's head."""
    version: int
    sha256: str | None  # None: the head is a tombstone
    moved_to: str | None = None  # a tombstone a move left: the document went there


class Action(Enum):
    NOTHING = "nothing"
    PUSH = "push"  # commit the local content on top of the remote head
    PULL = "pull"  # write the remote content to disk
    ADOPT = "adopt"  # both sides agree already: record the remote head as the base
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"  # commit a tombstone
    MERGE = "merge"  # both sides changed: merge them, or else hold the path
    CONFLICT = "conflict"  # hold the path, touch neither side
    MOVE_REMOTE = "move-remote"  # the file moved here: commit the move of its document
    MOVE_LOCAL = "move-local"  # the store moved the document: rename the file, then decide again


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


class Facts(NamedTuple):  # (a tuple: made three times a path a pass, see PassFacts)
    """One path's three facts, and whether it is held."""
    local: str | None
    base: Base | None
    remote: Remote | None
    held: bool = False


class PassFacts(Mapping[str, Facts]):
    """The facts of a pass's paths (sorted), each made when it is asked for from the pass's
    own dicts rather than held: a first pull of 100k paths would hold 11 MiB of them
    through the plan."""

    def __init__(self, paths: list[str], local: Mapping[str, object], bases: Mapping[str, Base],
                 remotes: Mapping[str, Remote], held: Container[str]):
        self._paths, self._local, self._bases, self._remotes, self._held = paths, local, bases, remotes, held

    def _of(self, path: str) -> Facts:
        lf = self._local.get(path)
        return Facts(None if lf is None else lf.sha256, self._bases.get(path), self._remotes.get(path),
                     path in self._held)

    def __getitem__(self, path: str) -> Facts:
        i = bisect_left(self._paths, path)
        if i == len(self._paths) or self._paths[i] != path:
            raise KeyError(path)
        return self._of(path)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def items(self) -> Iterator[tuple[str, Facts]]:  # (no look-up of each path it has)
        return ((p, self._of(p)) for p in self._paths)


def reconcile_move(old_path: str, old: Facts, new_path: str, new: Facts) -> Action | None:
    """Whether content that left `old_path` and is at `new_path` on one side is a move to
    carry to the other side, or None: each path is then reconciled on its own (a delete and
    a create), which is never wrong, only without the history.

    * moved here (the file left old_path, its exact base content appeared at new_path, a
      path neither the journal nor the store knows) while the store still has the document
      → MOVE_REMOTE, also when the store's head is newer: the move goes on top of that head,
      and new_path then pulls it as any remote edit;
    * moved in the store (old_path's head is a tombstone moved to new_path, the direct
      successor of the base, so the version at new_path holds the base's content) while
      new_path is free here → MOVE_LOCAL, also when the file was edited here: the edit
      lands at new_path, decided there against the moved version.
    A held path, a store that deleted rather than moved, a base that is itself a tombstone
    or an empty directory,
    or a file moved into a folder of its own name (or out of one: a rename cannot take a
    path whose folder the file still is) is no move."""
    if old.held or new.held or old.base is None or old.base.sha256 in (None, DIRECTORY) or old.remote is None:
        return None  # (an empty directory has nothing to keep but its name: made anew)
    if new_path.startswith(old_path + "/") or old_path.startswith(new_path + "/"):
        return None
    if (old.local is None and new.local == old.base.sha256 and new.base is None and new.remote is None
            and old.remote.sha256 is not None):
        return Action.MOVE_REMOTE
    if (old.remote.sha256 is None and old.remote.moved_to == new_path and old.remote.version == old.base.version + 1
            and old.local is not None and new.local is None and new.base is None and new.remote is not None):
        return Action.MOVE_LOCAL
    return None


def moved_version(old_base: Base, old_remote: Remote) -> Remote:
    """The store's move version at new_path, for a MOVE_LOCAL: old's base content, numbered
    as old's tombstone (the new path's base once the file is renamed)."""
    return Remote(old_remote.version, old_base.sha256)


def keep_parents(plan: dict[str, Action], facts: Mapping[str, Facts]) -> dict[str, Action]:
    """The plan, but a directory empty here that is the parent of what this plan writes
    under it, or of anything the store holds under it (a version this copy cannot write:
    damaged, refused here), is a parent, not an empty-directory entry: deleted in the store
    (because it got a file there), its tombstone is recorded (ADOPT), nothing is removed;
    never known to the store as an entry, it is not pushed as one (another copy holds
    files in it, and would delete it again: the two would take turns for ever). (The other
    way round, the store's empty directory over a folder that holds files here, is found
    when the pull comes to it: see Executor._apply_remote.)"""
    parents: set[str] = set()
    # what the store goes on holding after this plan (not what it deletes, nor a move's old path)
    live = (p for p, f in facts.items() if f.remote is not None and f.remote.sha256 is not None
            and plan.get(p, Action.DELETE_REMOTE) is not Action.DELETE_REMOTE)
    for path in chain(live, (p for p, a in plan.items() if a in (Action.PULL, Action.MOVE_LOCAL))):
        parent = path.rpartition("/")[0]
        if parent in parents:
            continue  # (and so are those above it)
        parts = parent.split("/") if parent else []
        parents.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for path in parents & plan.keys():
        if facts[path].local != DIRECTORY:
            continue
        if plan[path] is Action.DELETE_LOCAL:
            plan[path] = Action.ADOPT
        elif plan[path] is Action.PUSH:
            plan[path] = Action.NOTHING
    return plan
