"""What the page shows, read as the CLI reads it: the store's progress, activity and stats
(row level security decides what they hold), this copy's state and held conflicts from its
journal; and what a resolve button does, `syncd resolve`'s own code."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Mapping

from syncd.cli.conflicts import KEEP, settle, state_of, three_way
from syncd.cli.errors import Failure
from syncd.cli.working_copy import copy_state
from syncd.config import Config
from syncd.engine.executor import Executor, Paused
from syncd.engine.journal import Conflict, Journal
from syncd.store.rpc import RpcStore, StoreError

ACTIVITY_ROWS = 300  # the latest rows the stream shows (of the project and session asked for)


@dataclass(frozen=True)
class Filters:
    """The activity stream's filters: project and session asked of the store (as `syncd
    activity` does), person and kind picked from its rows."""
    project: str | None = None
    session: str | None = None
    person: str | None = None
    kind: str | None = None

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filters:
        return cls(**{name: (query.get(name) or "").strip() or None for name in cls.__dataclass_fields__})

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def who(row: dict) -> str:
    return row.get("actor") or row.get("device") or "-"


class Reader:
    """The working copy's store, shared by the page's requests one at a time (a connection
    serves one thread at a time), and its journal, opened per request (SQLite's is per thread)."""

    def __init__(self, cfg: Config, store: RpcStore):
        self.cfg = cfg
        self.store = store
        self._lock = threading.Lock()

    def journal(self):
        return contextlib.closing(Journal(self.cfg.journal_path))

    def snapshot(self, filters: Filters) -> dict:
        with self._lock, self.journal() as journal:
            sessions = self.store.progress()
            stats = self.store.stats()
            rows, _ = self.store.activity(0, limit=ACTIVITY_ROWS, newest=True, project=filters.project,
                                          session=filters.session)
            state = copy_state(self.cfg, journal, lambda: self._first_pass(journal))
            conflicts = [self._conflict(journal, c) for c in journal.conflicts()]
        rows = sorted(rows, key=lambda r: -r["id"])
        return {
            "workspace": self.cfg.workspace,
            "sessions": sessions,
            "stats": stats,
            "activity": [r for r in rows if filters.person in (None, who(r)) and filters.kind in (None, r["kind"])],
            "people": sorted({who(r) for r in rows}),
            "kinds": sorted({r["kind"] for r in rows}),
            "state": state,
            "conflicts": conflicts,
        }

    def _first_pass(self, journal: Journal) -> dict:
        return Executor.from_config(self.cfg, journal, self.store).dry_run()

    def _conflict(self, journal: Journal, c: Conflict) -> dict:
        out = {"path": c.path, "state": state_of(c), "detected_at": c.detected_at,
               "base_version": c.base_version, "remote_version": c.remote_version}
        try:
            remote, (base, local, theirs), labels, _ = three_way(self.cfg, self.store, c)
        except (StoreError, Paused) as exc:
            return {**out, "error": str(exc)}
        return {**out, "remote_author": remote.get("author") or remote.get("device"),
                "remote_at": remote.get("created_at"), "base": base, "local": local, "remote": theirs,
                "labels": {"local": labels[0], "base": labels[1], "remote": labels[2]}}

    def resolve(self, path: str, keep: str, shown: str) -> tuple[bool, str]:
        """What `syncd resolve PATH --keep KEEP` does and says: (settled, the line it prints);
        nothing when the store's side held is no longer the one the page showed (`shown`):
        the choice was made looking at another version."""
        if keep not in KEEP:
            return False, f"keep {keep!r}: one of {', '.join(KEEP)}"
        with self.journal() as journal:
            held = journal.conflict(path)
            if held is not None and str(held.remote_version) != shown:
                return False, (f"{path}: the store's side is v{held.remote_version} now, not the v{shown} the "
                               "page showed; nothing was done: look at it again")
            try:
                out, message = settle(self.cfg, journal, path, keep)
            except (Failure, StoreError, Paused) as exc:
                return False, str(exc)
        return bool(out["resolved"]), message
