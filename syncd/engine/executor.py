"""One sync pass: pull the feed, scan, reconcile every path, apply the actions.

The imperative shell around the pure reconciler. Order matters for safety:
1. the feed is recorded in the journal (remote heads + cursor) before anything is applied,
   so a crash loses no knowledge of remote changes;
2. the tree is scanned (stat cache: only changed files are read);
3. every path gets an action from `reconcile`; pushes go out in batches, and each push is
   idempotent on retry (the store recognises base version + content hash);
4. pulls and local deletes re-check the file right before touching it, so an edit made
   during the pass is never overwritten: that path simply waits for the next pass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from syncd.content import FilePolicy, Unsupported, decode, encode, sha256_hex
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal
from syncd.engine.reconcile import Action, Base, Remote, reconcile
from syncd.engine.scanner import LocalFile, read_local, scan
from syncd.engine.writer import LocalChanged, UnsafePath, delete_checked, write_atomic
from syncd.store.rpc import Change, CommitResult, Head, RpcStore

log = logging.getLogger("syncd.sync")

PUSH_BATCH_FILES = 200
PUSH_BATCH_BYTES = 8 * 1024 * 1024


class RootMissing(RuntimeError):
    pass


class DamagedVersion(ValueError):
    pass


@dataclass
class SyncReport:
    pushed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # every held path after this pass
    new_conflicts: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path → why it was left alone
    deferred: list[str] = field(default_factory=list)  # changed during the pass: next pass

    @property
    def in_sync(self) -> bool:
        return not self.conflicts and not self.deferred


class Executor:
    def __init__(self, root: Path, journal: Journal, store: RpcStore,
                 rules: IgnoreRules | None = None, policy: FilePolicy | None = None):
        self.root = Path(root)
        self.journal = journal
        self.store = store
        self.rules = rules or IgnoreRules()
        self.policy = policy or FilePolicy()
        self._contents: dict[tuple[str, int], dict] = {}
        # this pass's view of the journal, kept in step with every write to it
        self._bases: dict[str, Base] = {}
        self._remotes: dict[str, Remote] = {}

    def sync_once(self) -> SyncReport:
        if not self.root.is_dir():
            raise RootMissing(f"the sync root {self.root} does not exist or is not a directory")
        report = SyncReport()
        self._pull_feed()
        local = self._scan(report)
        self._bases, self._remotes = self.journal.bases(), self.journal.remotes()
        held = self.journal.held()
        paths = sorted(set(local) | set(self._bases) | set(self._remotes))
        # ignored paths are never pushed, and never written here whatever the store holds
        paths = [p for p in paths if p not in report.skipped and not self.rules.ignores(p)]
        self._apply(self._plan(paths, local, held), local, report)
        # a push refused because the head moved: the store sent the new head, decide again
        retry, report.deferred = report.deferred, []
        self._apply(self._plan(retry, local, held=set()), local, report)
        report.conflicts = sorted(self.journal.held())
        self.journal.flush_stats()
        self._contents.clear()
        return report

    def _plan(self, paths: list[str], local: dict[str, LocalFile], held: set[str]) -> dict[str, Action]:
        return {
            p: reconcile(local[p].sha256 if p in local else None, self._bases.get(p),
                         self._remotes.get(p), held=p in held)
            for p in paths
        }

    # the three inputs

    def _pull_feed(self) -> None:
        for entries, cursor in self.store.feed(self.journal.cursor):
            heads: dict[str, Remote] = {}
            for e in entries:
                heads[e.path] = Remote(e.version, e.sha256)
                if e.content is not None:
                    self._contents[(e.path, e.version)] = e.content
            self.journal.record_feed(heads, cursor)

    def _scan(self, report: SyncReport) -> dict[str, LocalFile]:
        result = scan(self.root, self.rules, self.journal, self.policy)
        for path, why in result.unsupported.items():
            log.warning("%s", why)
            report.skipped[path] = why
        for path in self.journal.cached_paths() - set(result.files) - set(result.unsupported):
            self.journal.drop(path)
        return result.files

    # applying actions

    def _apply(self, plan: dict[str, Action], local: dict[str, LocalFile], report: SyncReport) -> None:
        with self.journal.transaction():
            pushes = self._apply_locally(plan, local, report)
        self._push(pushes, local, report)

    def _apply_locally(self, plan: dict[str, Action], local: dict[str, LocalFile],
                       report: SyncReport) -> list[str]:
        """Carry out every action but pushes; returns the paths to push."""
        pushes: list[str] = []
        for path, action in plan.items():
            remote = self._remotes.get(path)
            match action:
                case Action.PUSH | Action.DELETE_REMOTE:
                    pushes.append(path)
                case Action.PULL | Action.DELETE_LOCAL:
                    self._apply_remote(path, local.get(path), remote, report)
                case Action.ADOPT:
                    self._synced(path, remote)
                    report.adopted.append(path)
                case Action.CONFLICT:
                    self._hold(path, local.get(path), report)
        return pushes

    def _push(self, paths: list[str], local: dict[str, LocalFile], report: SyncReport) -> None:
        batch: list[Change] = []
        size = 0
        for path in paths:
            change = self._change_for(path, self._remotes.get(path), report)
            if change is None:
                continue
            batch.append(change)
            size += len(str(change.content)) if change.content else 0
            if len(batch) >= PUSH_BATCH_FILES or size >= PUSH_BATCH_BYTES:
                self._commit(batch, report)
                batch, size = [], 0
        if batch:
            self._commit(batch, report)

    def _change_for(self, path: str, remote: Remote | None, report: SyncReport) -> Change | None:
        """The change to send, read fresh from disk (the file may have moved on since the scan)."""
        base_version = remote.version if remote else None
        try:
            current = read_local(self.root, path, self.policy)
        except Unsupported as exc:
            report.skipped[path] = str(exc)
            log.warning("%s", exc)
            return None
        if current is None:
            return Change(path, base_version, None)
        data, lf = current
        self.journal.put(path, lf.stat, lf.sha256)
        return Change(path, base_version, encode(path, data, self.policy))

    def _commit(self, batch: list[Change], report: SyncReport) -> None:
        results = self.store.commit(batch)
        with self.journal.transaction():
            for change, result in zip(batch, results):
                self._record_commit(change, result, report)

    def _record_commit(self, change: Change, result: CommitResult, report: SyncReport) -> None:
        path = change.path
        if result.landed:
            if result.version is not None:  # None: deleting what the store never had
                self._synced(path, Remote(result.version, result.sha256))
            (report.pushed if change.content is not None else report.deleted_remote).append(path)
            if result.head is not None and result.head.version != result.version:
                # our retried push had landed earlier, and the store has moved on since
                self._learn_head(result.head)
                report.deferred.append(path)
        elif result.status == "conflict":
            if result.head is not None:
                self._learn_head(result.head)
            report.deferred.append(path)
        else:
            report.skipped[path] = f"{path}: refused by the store: {result.message}"
            log.error("%s", report.skipped[path])

    def _synced(self, path: str, head: Remote) -> None:
        self.journal.record_synced(path, head)
        self._bases[path] = head
        known = self._remotes.get(path)
        if known is None or head.version >= known.version:
            self._remotes[path] = head

    def _learn_head(self, head: Head) -> None:
        remote = Remote(head.version, head.sha256)
        self.journal.record_remote(head.path, remote)
        self._remotes[head.path] = remote
        if head.content is not None:
            self._contents[(head.path, head.version)] = head.content

    def _content_of(self, path: str, remote: Remote) -> bytes:
        content = self._contents.get((path, remote.version))
        if content is None:
            content = self.store.version(path, remote.version)["content"]
        try:
            data = decode(content)
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedVersion(f"{path}: version {remote.version} in the store cannot be decoded ({exc}); not written") from None
        if sha256_hex(data) != remote.sha256:
            raise DamagedVersion(f"{path}: version {remote.version} in the store does not match its hash; not written")
        return data

    def _apply_remote(self, path: str, lf: LocalFile | None, remote: Remote, report: SyncReport) -> None:
        """Make the local file what the store's head says: its content, or gone."""
        try:
            if remote.sha256 is None:
                delete_checked(self.root, path, lf.sha256)
                self.journal.drop(path)
            else:
                data = self._content_of(path, remote)
                stat = write_atomic(self.root, path, data, lf.sha256 if lf else None)
                self.journal.put(path, stat, remote.sha256)
        except (UnsafePath, DamagedVersion) as exc:
            report.skipped[path] = str(exc)
            log.error("%s", exc)
            return
        except LocalChanged:
            report.deferred.append(path)  # the user got there first: decide again next pass
            return
        self._synced(path, remote)
        (report.pulled if remote.sha256 is not None else report.deleted_local).append(path)

    def _hold(self, path: str, lf: LocalFile | None, report: SyncReport) -> None:
        remote = self._remotes.get(path)
        if self.journal.hold(path, lf.sha256 if lf else None, self._bases.get(path), remote):
            report.new_conflicts.append(path)
            log.warning(
                "conflict: %s changed here and in the store (version %s); the local file is "
                "kept as it is and the store's version stays there; the path is held until resolved",
                path, remote.version if remote else "?")
