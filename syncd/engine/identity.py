"""Whether the store is the one this copy's journal knows.

The journal's cursor into the feed and its per-path bases mean something only for the
history they came from. Pointed at another store (a changed database_url or workspace) or
at the same store rewound (restored from an earlier dump), they would say "nothing to do"
while the copies drift apart, or name versions that no longer exist. So the journal keeps
the workspace's id and the newest change it knows the store has (its mark); when either
does not hold, the copy forgets what it knew of the store and rebuilds that knowledge as a
joining copy does: every local file is kept, a file holding a stored version takes that
version as its base, and what differs is merged or held, never overwritten.
"""
from __future__ import annotations

import datetime
import json
import logging
from dataclasses import asdict, dataclass

from syncd.store.rpc import RpcStore, StoreError, Workspace

log = logging.getLogger("syncd.sync")


@dataclass(frozen=True)
class Mark:
    """One change the store has: where in its feed, of which path, which version, what hash,
    made when (a history regrown after a restore can repeat a change, not its moment)."""
    seq: int
    path: str
    version: int
    sha256: str | None
    at: str

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str | None) -> "Mark | None":
        return cls(**json.loads(text)) if text else None


def moved(known_workspace: str | None, workspace_id: str) -> str | None:
    """Why the journal's knowledge is not of this workspace, or None."""
    if known_workspace is None or known_workspace == workspace_id:
        return None
    return "the store's workspace is not the one this copy synced with (database_url or workspace changed?)"


def rewound(mark: Mark | None, found: dict | None) -> str | None:
    """Why the store's change at the mark's seq (`found`) says its history was rewound, or None."""
    if mark is None:
        return None
    if found is None:
        return (f"the store no longer has change {mark.seq} ({mark.path} version {mark.version}), which "
                "this copy saw there (restored from an earlier backup? or it is no longer visible to you)")
    same = (found["path"], found["version"], None if found["deleted"] else found["sha256"])
    if same != (mark.path, mark.version, mark.sha256) or _instant(found["created_at"]) != _instant(mark.at):
        return (f"the store's change {mark.seq} is not the one this copy saw there ({mark.path} version "
                f"{mark.version}): its history was rewound and has moved on (restored from a backup?)")
    return None


def _instant(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso)


def check_workspace(journal, store: RpcStore, workspace: Workspace) -> None:
    """Before a copy's first pass with the store: the journal's knowledge is of this
    workspace, or it is rebuilt (a command that only reads the store leaves it alone: a
    daemon may be syncing the copy)."""
    known = journal.get_meta("workspace_id")
    why = moved(known, workspace.id)
    if why:
        _rebuild(journal, store, why)
    if known != workspace.id:
        journal.set_meta("workspace_id", workspace.id)


def check_history(journal, store: RpcStore) -> bool:
    """Before a pass: the newest change the journal knows is still the store's; True when
    it was not, and the journal's knowledge of the store was forgotten."""
    mark = journal.mark
    if mark is not None:
        why = rewound(mark, store.change_at(mark.seq))
        if why:
            _rebuild(journal, store, why)
            return True
    return False


def _rebuild(journal, store: RpcStore, why: str) -> None:
    journal.forget_store()
    log.warning("%s; this copy's knowledge of the store is rebuilt from the store: every local file is kept, "
                "files holding a stored version are in sync, other differences are merged or held as conflicts", why)
    try:
        store.record([{"kind": "copy_rebuilt", "path": None, "details": {"why": why}}])
    except StoreError as exc:
        log.debug("activity not recorded: %s", exc)
