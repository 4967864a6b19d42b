"""The client side of the SQL contract, independent of how the JSON travels.

Every store operation is one call of a `public.syncd_*` function with a JSON object; a
transport only supplies `_call`. Payload shapes are documented beside each function in the
migrations.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

# The server's caps on one syncd_commit call (0015: 500 changes, 64 MiB of jsonb).
COMMIT_MAX_CHANGES = 500
COMMIT_MAX_BYTES = 64 * 1024 * 1024
# The most one call takes from here, in characters of JSON: an eighth of the server's cap
# (whose jsonb measure can be a few times the JSON), and what a client holds in memory a few
# times over while sending it. Callers gather at most a call's worth before `commit`.
CALL_MAX_BYTES = 8 * 1024 * 1024
# How long a commit call aims to take: a quarter of the statement_timeout Supabase gives
# signed-in users (8 s), room for a slower moment than the last call's.
CALL_SECONDS = 2.0


class StoreError(RuntimeError):
    """A store failure with a message fit for the user."""


class StoreUnavailable(StoreError):
    """The store could not be reached; retrying later may help."""


class NotFound(StoreError):
    pass


class TooLarge(StoreError):
    """The store refused a whole call as over its caps (PT413); nothing of it was applied."""


class StatementTimeout(StoreError):
    """The server cancelled a call that ran past its statement_timeout (SQLSTATE 57014). The
    call's transaction was rolled back: nothing of it was applied, and it may be sent again."""


@dataclass
class CallSize:
    """How much one syncd_commit call carries (changes, characters of JSON). It starts below
    the caps, shrinks at once after a slow call (to half a call that timed out), and grows by
    half again after each fast call that filled it; a store keeps it across calls, so a big
    first sync learns the server's pace once rather than timing out once per call."""
    changes: int = COMMIT_MAX_CHANGES // 5
    size: int = CALL_MAX_BYTES // 4
    seconds: float = CALL_SECONDS  # the aim, lower once a timeout shows the server's is shorter

    def took(self, changes: int, size: int, seconds: float) -> None:
        if seconds > self.seconds:  # what would have taken the aim
            scale = self.seconds / seconds
            self.changes = max(1, min(self.changes, int(changes * scale)))
            self.size = max(1, min(self.size, int(size * scale)))
        elif seconds < self.seconds / 2 and (2 * changes >= self.changes or 2 * size >= self.size):
            self.changes = min(COMMIT_MAX_CHANGES, self.changes + self.changes // 2 + 1)
            self.size = min(CALL_MAX_BYTES, self.size + self.size // 2 + 1)

    def timed_out(self, changes: int, size: int, seconds: float) -> None:
        self.seconds = min(self.seconds, seconds / 4)
        self.changes = max(1, min(self.changes, changes // 2))
        self.size = max(1, min(self.size, size // 2))


@dataclass(frozen=True)
class Head:
    path: str
    version: int
    sha256: str | None  # None for a tombstone
    content: dict | None = None


@dataclass(frozen=True)
class Side:
    """The local side of a merge or resolution: kept as its own version under the result."""
    content: dict
    parent_version: int | None


@dataclass(frozen=True)
class Change:
    path: str
    base_version: int | None
    content: dict | None  # None commits a tombstone
    origin: str | None = None  # None: the call's origin
    side: Side | None = None
    activity: dict | None = None  # details for the activity row of a non-sync version
    provenance: dict | None = None  # an imported version's commit, author and time
    moved_from: str | None = None  # a move of that path's document here (base_version: its head)

    def payload(self) -> dict:
        if self.moved_from is not None:
            return {"path": self.path, "moved_from": self.moved_from, "base_version": self.base_version}
        out: dict = {"path": self.path, "base_version": self.base_version,
                     "content": self.content, "deleted": self.content is None}
        if self.origin:
            out["origin"] = self.origin
        if self.side:
            out["side"] = {"content": self.side.content, "parent_version": self.side.parent_version}
        if self.activity:
            out["activity"] = self.activity
        if self.provenance:
            out["provenance"] = self.provenance
        return out


@dataclass(frozen=True)
class CommitResult:
    path: str
    status: str  # accepted | unchanged | duplicate | conflict | invalid
    version: int | None = None
    sha256: str | None = None
    head: Head | None = None  # the store's head, on conflict and duplicate
    message: str | None = None
    side_version: int | None = None  # where the change's side was kept
    seq: int | None = None  # the accepted change's place in the feed
    created_at: str | None = None  # and when it was made

    @property
    def landed(self) -> bool:
        """The store now holds this change (now or from an earlier attempt)."""
        return self.status in ("accepted", "unchanged", "duplicate")


@dataclass(frozen=True)
class FeedEntry:
    path: str
    version: int
    sha256: str | None
    seq: int
    is_head: bool
    content: dict | None
    origin: str
    created_at: str | None = None
    moved_to: str | None = None  # a tombstone left by a move there
    size: int = 0  # the version's bytes


@dataclass(frozen=True)
class Workspace:
    id: str
    slug: str
    last_seq: int
    schema_version: int


def _head(obj: dict | None) -> Head | None:
    if not obj:
        return None
    return Head(obj["path"], obj["version"], None if obj["deleted"] else obj["sha256"],
                obj.get("content"))


class Batch:
    """Changes gathered for one `RpcStore.commit`, up to a call's worth: what a caller holds
    in memory at once (commit splits it further while the store is slow)."""

    def __init__(self):
        self.changes: list[Change] = []
        self.size = 0  # characters of content

    def add(self, change: Change) -> bool:
        """True once the batch is full."""
        self.changes.append(change)
        self.size += len(str(change.content)) if change.content else 0
        return len(self.changes) >= COMMIT_MAX_CHANGES or self.size >= CALL_MAX_BYTES

    def take(self) -> list[Change]:
        changes, self.changes, self.size = self.changes, [], 0
        return changes


class RpcStore:
    """Typed operations over `_call(function, payload) -> JSON`."""

    def __init__(self, workspace: str, device_id: str | None = None):
        self.workspace = workspace
        self.device_id = device_id
        self.call_size = CallSize()

    def _call(self, function: str, payload: dict) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, for people (no secrets)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def open(self, *, create: bool = False, device_name: str | None = None,
             hostname: str | None = None) -> Workspace:
        payload: dict = {"workspace": self.workspace, "create": create}
        if self.device_id:
            payload["device"] = {"id": self.device_id, "name": device_name, "hostname": hostname}
        out = self._call("syncd_open", payload)
        return Workspace(out["workspace_id"], out["workspace"], out["last_seq"], out["schema_version"])

    def commit(self, changes: Iterable[Change], origin: str = "sync") -> list[CommitResult]:
        """Results in the order of `changes`, in as many calls as the server's caps and pace
        need: each call holds the workspace lock, so none may be long."""
        results: list[CommitResult] = []
        sized: list[tuple[dict, int]] = []
        for change in changes:
            payload = change.payload()
            grows = len(json.dumps(payload))
            if grows > COMMIT_MAX_BYTES:  # not even sent: past jsonb's own limits the server could not
                # tell it too large (PT413), it would fail the call, and every pass with it
                results += self._send(sized, origin)
                sized = []
                results.append(CommitResult(change.path, "invalid", message=(
                    f"{grows / 2**20:.0f} MiB is more than one commit takes ({COMMIT_MAX_BYTES // 2**20} MiB); "
                    "lower files.max_size to leave such files out")))
                continue
            sized.append((payload, grows))
        return results + self._send(sized, origin)

    def _send(self, sized: list[tuple[dict, int]], origin: str) -> list[CommitResult]:
        """(payload, size) pairs in calls of the size the store takes now, which each call's
        duration adjusts for the next."""
        results: list[CommitResult] = []
        start = 0
        while start < len(sized):
            end, size = start + 1, sized[start][1]  # a change goes, however big
            while (end < len(sized) and end - start < self.call_size.changes
                   and size + sized[end][1] <= self.call_size.size):
                size += sized[end][1]
                end += 1
            results += self._commit_call(sized[start:end], origin)
            start = end
        return results

    def _commit_call(self, sized: list[tuple[dict, int]], origin: str) -> list[CommitResult]:
        """One call. Refused as too large (the server measures the stored form, which can be
        a few times the JSON sent), its halves go in turn; timed out (rolled back, so safe to
        repeat: a change that did land before comes back `duplicate` or `unchanged`), it goes
        again in calls of half its size. A single change still refused is refused on its own:
        one big file never stops the others."""
        changes = [payload for payload, _ in sized]
        size = sum(grows for _, grows in sized)
        payload = {"workspace": self.workspace, "device": self.device_id, "origin": origin, "changes": changes}
        started = time.monotonic()
        try:
            out = self._call("syncd_commit", payload)
        except TooLarge as exc:
            if len(changes) == 1:
                return [CommitResult(changes[0]["path"], "invalid", message=f"{exc}; lower files.max_size "
                                     "to leave such files out")]
            half = len(sized) // 2
            return self._commit_call(sized[:half], origin) + self._commit_call(sized[half:], origin)
        except StatementTimeout as exc:
            if len(changes) == 1:
                return [CommitResult(changes[0]["path"], "invalid", message=(
                    f"this one change takes the store longer than its statement timeout ({exc}); raise the "
                    "timeout of the role syncd signs in as (on Supabase: alter role authenticated set "
                    "statement_timeout = '30s'; notify pgrst, 'reload config';) or lower files.max_size "
                    "to leave such files out"))]
            self.call_size.timed_out(len(changes), size, time.monotonic() - started)
            return self._send(sized, origin)
        self.call_size.took(len(changes), size, time.monotonic() - started)
        return [
            CommitResult(
                r["path"], r["status"], r.get("version"),
                None if r.get("deleted") else r.get("sha256"),
                _head(r.get("head")), r.get("message"), r.get("side_version"), r.get("seq"), r.get("created_at"),
            )
            for r in out["results"]
        ]

    def changes(self, since: int, limit: int = 500, contents: bool = True) -> tuple[list[FeedEntry], int, bool]:
        """One page of the feed: (entries, next cursor, more pages waiting); with
        `contents`, the heads' contents that fit the page's budget come with it."""
        asked = {"workspace": self.workspace, "since": since, "limit": limit}
        if not contents:
            asked["contents"] = False
        out = self._call("syncd_changes", asked)
        entries = [
            FeedEntry(e["path"], e["version"], None if e["deleted"] else e["sha256"], e["seq"],
                      e["is_head"], e.get("content"), e["origin"], e.get("created_at"), e.get("moved_to"),
                      e.get("size") or 0)
            for e in out["changes"]
        ]
        return entries, out["cursor"], out["more"]

    def feed(self, since: int, limit: int = 500, contents: Callable[[], bool] = lambda: True
             ) -> Iterator[tuple[list[FeedEntry], int]]:
        """Pages from `since` until the feed is drained; `contents` is asked before each
        page whether it is to bring contents."""
        while True:
            entries, since, more = self.changes(since, limit, contents())
            yield entries, since
            if not more:
                return

    def history(self, path: str) -> list[dict]:
        return self._call("syncd_history", {"workspace": self.workspace, "path": path})["versions"]

    def version(self, path: str, version: int | None = None) -> dict:
        return self._call("syncd_version", {"workspace": self.workspace, "path": path, "version": version})

    def documents(self, deleted: bool = False) -> list[dict]:
        return self._call("syncd_documents", {"workspace": self.workspace, "deleted": deleted})["documents"]

    def versions(self, wanted: list[tuple[str, int]]) -> list[dict]:
        """Several versions with their contents and authors: one call, and one more for
        each content too big to come with it."""
        return self._with_contents("syncd_versions", wanted)

    def contents(self, wanted: list[tuple[str, int]]) -> list[dict]:
        """Several versions' contents (path, version, sha256, size, deleted, content), as a
        pull needs them: `versions` without the authors, which cost the server six times
        the rest."""
        return self._with_contents("syncd_contents", wanted)

    def _with_contents(self, function: str, wanted: list[tuple[str, int]]) -> list[dict]:
        out = self._call(function, {"workspace": self.workspace, "versions": [
            {"path": path, "version": version} for path, version in wanted]})
        return [v if v["deleted"] or v["content"] is not None else self.version(v["path"], v["version"])
                for v in out["versions"]]

    def match_versions(self, files: Iterable[tuple[str, str]], page: int = 5000) -> dict[tuple[str, str], int]:
        """(path, sha256) → the newest version of that path with that content, for the
        pairs that match one; a call per `page` pairs."""
        files = list(files)
        found: dict[tuple[str, str], int] = {}
        for start in range(0, len(files), page):
            out = self._call("syncd_match_versions", {"workspace": self.workspace, "files": [
                {"path": path, "sha256": sha} for path, sha in files[start:start + page]]})
            found.update({(m["path"], m["sha256"]): m["version"] for m in out["matches"]})
        return found

    def change_at(self, seq: int) -> dict | None:
        """The change with that sequence number ({seq, path, version, sha256, deleted,
        created_at}), if there is one the caller may read."""
        return self._call("syncd_feed_mark", {"workspace": self.workspace, "seq": seq})["change"]

    def known_commit(self, commits: list[str]) -> str | None:
        """The first of `commits` (newest first) that an import made versions from."""
        return self._call("syncd_known_commit", {"workspace": self.workspace, "commits": commits})["commit"]

    def import_members(self, files: list[dict], dry_run: bool = False) -> dict:
        """Legacy `.owner`/`.collaborators` files ([{path, text}]) into members and invitations."""
        return self._call("syncd_import_members", {"workspace": self.workspace, "files": files,
                                                   "dry_run": dry_run})

    def members(self, action: str = "list", **fields) -> dict:
        """List or change members: add/role/remove with login, role, project, session."""
        return self._call("syncd_members", {"workspace": self.workspace, "action": action, **fields})

    def layout_plan(self, paths: list[str]) -> dict:
        return self._call("syncd_layout_plan", {"workspace": self.workspace, "paths": paths})

    def set_layout_roots(self, roots: list[str]) -> dict:
        """Make these the workspace's further layout roots (an owner's call when they differ)."""
        return self._call("syncd_layout_roots", {"workspace": self.workspace, "roots": roots})

    def activity(self, after: int = 0, **filters) -> tuple[list[dict], int]:
        """Activity rows after the cursor `after`, oldest first, and the new cursor.
        Filters: since (a time), project, session, limit."""
        out = self._call("syncd_activity", {"workspace": self.workspace, "after": after,
                                            **{k: v for k, v in filters.items() if v is not None}})
        return out["activity"], out["last"]

    def progress(self, project: str | None = None) -> list[dict]:
        payload = {"workspace": self.workspace, **({"project": project} if project else {})}
        return self._call("syncd_progress", payload)["sessions"]

    def stats(self, project: str | None = None) -> dict:
        """The pipeline's analytics (the `syncd_*` views), as far as row level security shows them."""
        return self._call("syncd_stats", {"workspace": self.workspace, **({"project": project} if project else {})})

    def heartbeat(self, state: str, reason: str | None, version: str, applied_seq: int) -> None:
        """This device's daemon is alive, in `state`, and has applied the feed up to `applied_seq`."""
        self._call("syncd_heartbeat", {"workspace": self.workspace, "device": self.device_id, "state": state,
                                       "reason": reason, "version": version, "applied_seq": applied_seq})

    def clock(self) -> str:
        """The server's time now (ISO 8601)."""
        return self._call("syncd_clock", {})["now"]

    def record(self, events: list[dict]) -> None:
        """Activity only the client sees: [{kind, path, details}]."""
        for start in range(0, len(events), COMMIT_MAX_CHANGES):  # the server's cap per call, as a commit's
            self._call("syncd_record", {"workspace": self.workspace, "device": self.device_id,
                                        "events": events[start:start + COMMIT_MAX_CHANGES]})
