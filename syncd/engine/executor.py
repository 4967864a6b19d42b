"""One sync pass: pull the feed, scan, reconcile every path, apply the actions.

The imperative shell around the pure reconciler. Order matters for safety:
1. the feed is recorded in the journal (remote heads + cursor) before anything is applied,
   so a crash loses no knowledge of remote changes;
2. the tree is scanned (stat cache: only changed files are read);
3. every path gets an action from `reconcile`; pushes go out in batches, and each push is
   idempotent on retry (the store recognises base version + content hash);
4. pulls and local deletes re-check the file right before touching it, so an edit made
   during the pass is never overwritten: that path simply waits for the next pass;
5. paths both sides changed are merged (or settled by their policy) one by one, each merge
   committed before it is written here, with the local side kept as a version under it;
   the rest are held as conflicts until `syncd resolve` asks a pass to settle them.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Callable

from syncd.content import DIRECTORY, Entry, FilePolicy, Unsupported, decode_entry, encode_entry, file_entry
from syncd.engine import credentials
from syncd.engine.durability import Durability
from syncd.engine.entries import Stat, holds_nothing_synced, read_entry
from syncd.engine.identity import Mark, check_history
from syncd.engine.in_flight import InFlight
from syncd.engine.ignore import IgnoreRules, has_git_name
from syncd.engine.inference import Inference
from syncd.engine.journal import Conflict, Journal
from syncd.engine.merge import has_markers, merge_entries
from syncd.engine.moves import find_moves
from syncd.engine.policy import DeleteLimits, MergePolicies, Policy, keep_local, still_recent
from syncd.engine.reconcile import Action, Base, PassFacts, Remote, keep_parents, moved_version, reconcile
from syncd.engine.resolution import conflict_copy_name
from syncd.engine.scanner import LocalFile, remember, scan, scan_touched
from syncd.engine.touched import Touched, ancestors, under
from syncd.engine.writer import (HoldsUnsynced, LocalChanged, UnsafePath, delete_checked, make_directory, move_checked,
                                 Directories, remove_leftover, safe_target, write_atomic, write_link)
from syncd.logs import OncePerChange
from syncd.store.blobs import BlobMismatch, BlobStore, blobs_for, ensure_stored
from syncd.store.rpc import Batch, Change, CommitResult, Head, NotFound, RpcStore, Side, StoreError, StoreUnavailable

log = logging.getLogger("syncd.sync")


class _ReadOnlyCache:
    """The journal's stat cache, read but never written (for previews)."""

    def __init__(self, journal: Journal):
        self.journal = journal

    def get(self, path: str):
        return self.journal.get(path)

    def put(self, path, stat, sha256) -> None:
        pass


class _ContentsHeld:
    """How many of the feed's contents a pass keeps until it writes them: a first pull of a
    big tree would otherwise hold the whole tree in memory. Past the budget, and after a page
    that brought none worth keeping (a copy reading back its own pushes), the feed is read
    without contents; what is not kept is fetched a page at a time as the pass writes."""

    BUDGET = 4 * 1024 * 1024  # bytes, reckoning a decoded content at three times its size

    def __init__(self):
        self.held = 0
        self.kept = 0  # in the page being read
        self.last_page_kept = True  # (the first page brings them)

    def wanted(self) -> bool:
        return self.held < self.BUDGET and self.last_page_kept

    def take(self, entry) -> bool:
        if self.held >= self.BUDGET:
            return False
        self.held += 3 * entry.size + 512
        self.kept += 1
        return True

    def page_done(self) -> None:
        self.last_page_kept, self.kept = self.kept > 0, 0


class Paused(RuntimeError):
    """Syncing stopped for something the user must look at; nothing was changed."""


class RootMissing(Paused):
    pass


# A dry run's outcomes, as people read them.
DRY_RUN_OUTCOMES = {
    "pulled": "pulled", "fast_forwarded": "fast-forwarded (held an older version)",
    "deleted_upstream": "deleted as upstream deletes", "pushed": "pushed as local changes",
    "moved": "moved", "merged": "merged", "held": "held as conflicts", "held_back": "held back by the safety limits",
    "in_sync": "already in sync",
}


class DamagedVersion(ValueError):
    pass


def _cause(exc: Exception) -> str | None:
    """What went wrong, in a few words (the daemon's `degraded` state names it)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, UnsafePath):
        return "a path from the store refused here"
    if isinstance(exc, DamagedVersion):
        return "a version the store cannot give"
    return getattr(exc, "cause", None)  # an Unsupported without one: left alone by a setting


@dataclass
class SyncReport:
    pushed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # new path → the path its document moved from
    adopted: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # both sides changed: merged cleanly
    resolved: list[str] = field(default_factory=list)  # settled by a policy or `syncd resolve`
    conflict_copies: dict[str, str] = field(default_factory=dict)  # path → where --keep both put ours
    conflicts: list[str] = field(default_factory=list)  # every held path after this pass
    new_conflicts: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path → why it was left alone
    ignored: dict[str, str] = field(default_factory=dict)  # path → why it never syncs (ignore rules)
    failed: dict[str, str] = field(default_factory=dict)  # those of them with a problem to fix → its cause
    deferred: list[str] = field(default_factory=list)  # changed during the pass: next pass
    unsettled: list[str] = field(default_factory=list)  # named by the feed alone, changed here: their events' pass
    held_deletes: list[str] = field(default_factory=list)  # over the limits: not carried out

    @property
    def in_sync(self) -> bool:
        return not self.conflicts and not self.deferred and not self.unsettled

    def moved_paths(self) -> list[str]:
        """Every path whose synced version this pass changed (a move's two), for the mirror."""
        return [*self.pushed, *self.pulled, *self.deleted_local, *self.deleted_remote, *self.merged,
                *self.resolved, *(p for move in self.moved.items() for p in move)]

    def trouble(self) -> str | None:
        """The problems of this pass in a line, most common cause first; None when none."""
        if not self.failed:
            return None
        causes: dict[str, int] = {}
        for cause in self.failed.values():
            causes[cause] = causes.get(cause, 0) + 1
        named = sorted(causes, key=lambda c: -causes[c])
        n = len(self.failed)
        return f"{n} path{'s' if n != 1 else ''} cannot be synced ({'; '.join(named[:3])})"


def _unwritable(path: str, exc: OSError) -> str:
    return (f"{path}: cannot change the local file ({exc.strerror or exc}); nothing is lost (the store "
            "keeps the version), and the next pass tries again")


class Executor:
    def __init__(self, root: Path, journal: Journal, store: RpcStore,
                 rules: IgnoreRules | None = None, policy: FilePolicy | None = None,
                 limits: DeleteLimits | None = None, policies: MergePolicies | None = None,
                 who: str = "syncd", progress: Callable[[], None] = lambda: None,
                 notices: OncePerChange | None = None):
        self.root = Path(root)
        self.notices = notices or OncePerChange(log)  # a daemon keeps one across its passes
        self.progress = progress  # called as work advances: a long pass is not a stuck one
        self.policies = policies or MergePolicies()
        self.who = who  # names this copy in conflict copies' names
        self.limits = limits or DeleteLimits()
        self.journal = journal
        self.store = store
        self.rules = rules or IgnoreRules()
        self.policy = policy or FilePolicy()
        self._contents: dict[tuple[str, int], dict] = {}
        self.durability = Durability(self.root)  # new files pulled, made durable before the journal commits
        self._dirs = Directories(self.root)  # the directories this pass writes in, open
        # this pass's view of the journal, kept in step with every write to it
        self._bases: dict[str, Base] = {}
        self._remotes: dict[str, Remote] = {}
        self._moves: dict[str, str] = {}  # this plan's moves: new path → old path
        self._in_flight = InFlight()  # the pushes' commit call beside the pass (`_push`)

    @classmethod
    def from_config(cls, cfg, journal: Journal, store: RpcStore | None,
                    progress: Callable[[], None] = lambda: None,
                    notices: OncePerChange | None = None) -> "Executor":
        """The executor a working copy's `syncd.config.Config` describes."""
        return cls(cfg.root, journal, store, IgnoreRules.of(cfg), cfg.files, cfg.deletes,
                   MergePolicies(dict(cfg.merge)), cfg.device_name, progress, notices)

    def sync_once(self, touched: Touched | None = None) -> SyncReport:
        """A full pass, or, given what events named (`touched`), a pass on those paths and
        the ones the feed brings: nothing else is stat'ed, read or reconciled (a root that is
        not the one last synced gets a full pass whatever the events say)."""
        try:
            return self._sync(touched)
        finally:
            self._dirs.close()  # (the next pass opens them anew: they may have been replaced meanwhile)

    def _sync(self, touched: Touched | None) -> SyncReport:
        report = SyncReport()
        root_id = self._root_identity()
        fed = self._pull_feed(named=touched is not None)
        held = self.journal.held()
        if touched is not None and fed is not None and self.journal.get_meta("root_id") == root_id:
            local, unlisted, scope = self._scan_touched(touched, fed | held, report)
            report.unsettled = self._unsettled(fed - held, touched, local, report)
            for path in {a for p in report.unsettled for a in ancestors(p)} | set(report.unsettled):
                local.pop(path, None)
                scope.discard(path)
            clean, looked_at = 0, scope
        else:
            # a file unchanged since it last synced decides nothing: the pass is on the rest
            local, unlisted, clean, scope = self._scan(report, held)
            scope.update(local)  # (grown in place: at 100k paths a copy is 4 MiB)
            scope.update(held)
            looked_at = None  # (every path)
        self._bases, self._remotes = self.journal.bases_of(scope), self.journal.remotes_of(scope)
        allow_deletes = self.journal.get_meta("allow_deletes") == "1"
        replaced = self.journal.get_meta("root_id") not in (None, root_id)
        # Also when nothing synced is known (a journal rebuilt while a volume was away): files
        # pulled onto an empty mount point are hidden by the volume's return, and then deleted.
        if not local and not clean and not report.skipped and replaced and not allow_deletes:
            synced_files = self.journal.synced_files()
            known = f", while {synced_files} synced files are known" if synced_files else ""
            raise Paused(
                f"the sync root {self.root} is empty and is not the directory it was (unmounted?){known}; "
                "syncing is paused and nothing was deleted in the store or written here. If this is "
                "the directory to sync: syncd resume --allow-deletes")
        self.journal.set_meta("root_id", root_id)
        self._refuse_git_names(report)
        paths = self._paths(scope, local, report.skipped, unlisted)
        del scope  # (a full pass's is every path: 4 MiB at 100k, not kept through the plan)
        self._infer_bases(paths, local, held)
        plan = self._plan(paths, local, held)
        deletes = any(a in (Action.DELETE_REMOTE, Action.DELETE_LOCAL) for a in plan.values())
        # (the tree's measure is only asked for when there are deletes: a count over every base)
        self._hold_mass_delete(plan, max(self.journal.synced_files(), len(local) + clean) if deletes else 0,
                               allow_deletes, report)
        if self._root_identity() != root_id:  # vanished or swapped while we scanned (rm -rf, umount)
            raise Paused(f"the sync root {self.root} changed during the scan; syncing is paused "
                         "and nothing was deleted in the store")
        self._apply(plan, local, report)
        # a push refused because the head moved: the store sent the new head, decide again
        retry, report.deferred = sorted(set(report.deferred)), []
        self._bases.update(self.journal.bases_of(retry))  # (what this pass synced of them: `_synced`)
        self._remotes.update(self.journal.remotes_of(retry))
        self._apply(self._plan(retry, local, self.journal.held()), local, report)
        report.conflicts = sorted(self.journal.held())
        self.notices.keep_only(report.skipped.keys() | report.ignored.keys(), looked_at)
        self._record_conflicts(report)
        self.journal.flush_stats()
        self._contents.clear()
        return report

    def _refuse_git_names(self, report: SyncReport) -> None:
        """Files the store holds under a name Git keeps for itself (`tools/.git`): written
        here, they would point Git at a config somebody else wrote. Never written, always said."""
        for path, remote in self._remotes.items():
            if remote.sha256 is not None and has_git_name(path):
                self._skip(report, path, f"{path}: the store holds a file under a name Git keeps for itself "
                                         "(.git); refused: it is never written here", "a .git name in the store")

    def _root_identity(self) -> str:
        """Device and inode of the root: an unmount leaves an empty directory of another device,
        a missing root is remembered as such."""
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            # Whatever appears here later is another directory, even if the filesystem hands
            # it the same inode number again (it does, right after an `rm -rf`).
            self.journal.set_meta("root_id", "missing")
            raise RootMissing(f"the sync root {self.root} does not exist or is not a directory; "
                              "syncing is paused and nothing was deleted in the store")
        return f"{st.st_dev}:{st.st_ino}"

    def _held_back(self, plan: dict[str, Action], tree: int, recent: int) -> dict[str, list[str]]:
        """What the safety valves keep from happening, by why: a mass delete (an unmount, a
        stray `rm -rf`) reaching the store, counting the `recent` files the last minute's
        passes deleted there (the tree was that much bigger before them); a joining copy
        deleting many of its files because the store deleted them; many files the store
        deleted coming back from a copy that never synced them, whatever the cause."""
        def acting(action: Action, inferred: bool) -> list[str]:
            return [p for p, a in plan.items() if a is action and (not inferred or self._unknown_here(p))]
        deletes, local_deletes = acting(Action.DELETE_REMOTE, False), acting(Action.DELETE_LOCAL, True)
        revived = [p for p in acting(Action.PUSH, True) if p in self._remotes and self._remotes[p].sha256 is None]
        held = {}
        files = self._files_among(deletes)
        if files and self.limits.exceeded(files + recent, tree + recent):
            held["deletes"] = deletes
        if self.limits.exceeded(len(local_deletes), tree):
            held["local deletes"] = local_deletes
        if len(revived) > self.limits.max_count:
            held["revivals"] = revived
        return held

    def _files_among(self, deletes: list[str]) -> int:
        """An empty directory holds nothing to lose: only files count (a moved folder's empty
        stage folders are deletes and creates); past the limits, the directories wait too."""
        return sum(1 for p in deletes if not self._stays(p))

    def _sent_deletes(self) -> list[list[float]]:
        """(time, files) of the passes that deleted files in the store, as the journal keeps them."""
        return json.loads(self.journal.get_meta("recent_deletes") or "[]")

    def _hold_mass_delete(self, plan: dict[str, Action], tree: int, allowed: bool,
                          report: SyncReport) -> None:
        now = time.time()  # (the wall clock: the window outlives a restart)
        stored = self._sent_deletes()
        sent = [] if allowed else still_recent(stored, now)  # (what went before a permission went with it)
        recent = sum(n for _, n in sent)
        if allowed:
            self.journal.set_meta("allow_deletes", "0")  # one pass's permission
        held = {} if allowed else self._held_back(plan, tree, recent)
        if not allowed and "deletes" not in held:
            files = self._files_among([p for p, a in plan.items() if a is Action.DELETE_REMOTE])
            sent += [[now, files]] if files else []
        if sent != stored:
            self.journal.set_meta("recent_deletes", json.dumps(sent))
        limits = f"more than {self.limits.max_count} files and more than {round(self.limits.max_share * 100)}% of"
        messages = {
            "deletes": f"deletes (limits: {limits} {tree + recent}"
                       + (f", counting the {recent} deleted in the last minute" if recent else "")
                       + "); none of them was deleted in the store",
            "local deletes": f"local deletes of files that hold versions the store has since deleted "
                             f"(limits: {limits} {tree}); nothing was deleted here",
            "revivals": f"files that the store has deleted and this copy never synced (limit: more than "
                        f"{self.limits.max_count} files); nothing was sent",
        }
        for why, paths in held.items():
            for path in paths:
                del plan[path]
            log.warning("held back %d %s. To let them through: syncd resume --allow-deletes",
                        len(paths), messages[why])
        report.held_deletes = sorted(p for paths in held.values() for p in paths)
        self.journal.set_meta("held_deletes", json.dumps(report.held_deletes))

    def _unknown_here(self, path: str) -> bool:
        """The journal has no record of this path's last sync (its base, if any, is inferred)."""
        base = self._bases.get(path)
        return base is None or base.source != "journal"

    def _infer_bases(self, paths: list[str], local: dict[str, LocalFile], held: set[str]) -> None:
        """Bases the store's history names where the journal has none or missed a pull
        (see `syncd.engine.inference`); kept in this pass's view until an action records them."""
        unheld = [p for p in paths if p not in held] if held else paths
        self._bases.update(Inference(self.root, self.store).infer(
            PassFacts(unheld, local, self._bases, self._remotes, ())))

    def _plan(self, paths: list[str], local: dict[str, LocalFile], held: set[str]) -> dict[str, Action]:
        """An action per path (`paths` sorted); a move's is its new path's (its old path has none)."""
        facts = PassFacts(paths, local, self._bases, self._remotes, held)
        self._moves = find_moves(facts)
        plan = {p: reconcile(*f) for p, f in facts.items()}
        for new, old in self._moves.items():
            del plan[old]
            plan[new] = Action.MOVE_REMOTE if facts[new].local is not None else Action.MOVE_LOCAL
        return keep_parents(plan, facts)

    # the three inputs

    def _pull_feed(self, named: bool = True) -> set[str] | None:
        """The paths the feed brought new heads for (`named`: for a pass on what events
        named; a full pass looks at every path anyway), recorded in the journal; None when
        the store is not the one the journal knew (every path is to be looked at again).
        A content is kept for the pass only where this copy has not synced that version (a
        copy reading back its own pushes, the pass after a first sync, holds none of them),
        and only so many (`_ContentsHeld`): the rest are fetched a page at a time as written."""
        rebuilt = check_history(self.journal, self.store)
        fed: set[str] = set()
        held = _ContentsHeld()
        for entries, cursor in self.store.feed(self.journal.cursor, contents=held.wanted):
            if named:
                fed.update(e.path for e in entries)
            heads: dict[str, Remote] = {}
            synced = self.journal.bases_of(e.path for e in entries if e.content is not None)
            for e in entries:
                heads[e.path] = Remote(e.version, e.sha256, e.moved_to)
                if e.content is not None and synced.get(e.path) != Base(e.version, e.sha256) and held.take(e):
                    self._contents[(e.path, e.version)] = e.content
            held.page_done()
            last = entries[-1] if entries else None
            self.journal.record_feed(heads, cursor, last and Mark(last.seq, last.path, last.version, last.sha256,
                                                                  last.created_at))
            self.progress()
        return None if rebuilt else fed

    def preview(self) -> dict[Action, list[str]]:
        """What a pass would do now, from what the journal knows of the store; changes
        nothing in the tree or the store."""
        by_action: dict[Action, list[str]] = {}
        for path, action in self._preview_plan()[0].items():
            by_action.setdefault(action, []).append(path)
        return by_action

    def dry_run(self) -> dict[str, list[str]]:
        """What a pass would do now, the store asked but nothing changed anywhere (tree,
        store, journal): paths by outcome, each merge tried in memory."""
        feed: dict[str, Remote] = {}  # never recorded
        held = _ContentsHeld()
        for entries, _ in self.store.feed(self.journal.cursor, contents=held.wanted):
            for e in entries:
                feed[e.path] = Remote(e.version, e.sha256, e.moved_to)
                if e.content is not None and held.take(e):
                    self._contents[(e.path, e.version)] = e.content
            held.page_done()
        plan, local = self._preview_plan(feed)
        allowed = self.journal.get_meta("allow_deletes") == "1"
        recent = sum(n for _, n in still_recent(self._sent_deletes(), time.time()))
        held_back = {} if allowed else self._held_back(plan, max(self.journal.synced_files(), len(local)), recent)
        out: dict[str, list[str]] = {k: [] for k in DRY_RUN_OUTCOMES}
        held_paths = {p for paths in held_back.values() for p in paths}
        for path, action in plan.items():
            base = self._bases.get(path)
            if path in held_paths:
                key = "held_back"
            elif action is Action.PULL and self._parent_here(path, local.get(path), self._remotes[path]):
                key = "pushed"  # (as the pass does: see _apply_remote)
            elif action is Action.PULL:
                key = "fast_forwarded" if base is not None and base.source == "content" else "pulled"
            elif action is Action.DELETE_LOCAL:
                key = "deleted_upstream"
            elif action in (Action.PUSH, Action.DELETE_REMOTE):
                key = "pushed"
            elif action is Action.MERGE:
                key = "merged" if self._would_merge(path, local.get(path)) else "held"
            elif action is Action.CONFLICT:
                key = "held"
            elif action is Action.ADOPT:
                key = "in_sync"
            elif action in (Action.MOVE_LOCAL, Action.MOVE_REMOTE):
                key = "moved"
            else:
                continue
            out[key].append(path)
        self._contents.clear()
        return out

    def _preview_plan(self, feed: dict[str, Remote] | None = None
                      ) -> tuple[dict[str, Action], dict[str, LocalFile]]:
        """The plan from the journal alone, or, given the store's feed, with bases inferred
        as a pass would."""
        self._root_identity()
        held = self.journal.held()
        clean, unclean, _ = self.journal.stat_rows()  # as a pass does: an unchanged synced file decides nothing
        for path in held | (feed or {}).keys():
            clean.pop(path, None)
        result = scan(self.root, self.rules, _ReadOnlyCache(self.journal), self.policy,
                      temp_prefix=self.journal.temp_prefix, clean=clean)
        scope = set(result.files) | unclean | clean.keys() | held | (feed or {}).keys()
        self._bases = self.journal.bases_of(scope)
        self._remotes = self.journal.remotes_of(scope) | (feed or {})
        paths = self._paths(scope, result.files, result.unsupported, result.unlisted)
        if feed is not None:
            self._infer_bases(paths, result.files, held)
        return self._plan(paths, result.files, held), result.files

    def _would_merge(self, path: str, lf: LocalFile | None) -> bool:
        """Whether both sides' changes would be settled without a person: merged cleanly, or
        by the path's policy (a version that cannot be decoded is left to a pass to skip)."""
        policy = self.policies.for_path(path)
        if policy is not Policy.MERGE:
            return policy is not Policy.MANUAL
        current = read_entry(self.root, path, self.policy, self.rules.ignores)
        if current is None or lf is None or current[1].sha256 != lf.sha256:
            return False
        base, remote = self._bases.get(path), self._remotes[path]
        try:
            ancestor = self._content_of(path, base) if base and base.sha256 else None
            return merge_entries(path, ancestor, current[0], self._content_of(path, remote)) is not None
        except DamagedVersion as exc:
            log.warning("%s", exc)
            return False

    def _paths(self, scope: set[str], local: dict[str, LocalFile], skipped, unlisted: list[str]) -> list[str]:
        """Every path either side knows, of those the pass looked at (`scope`: whose bases and
        heads it has), less those left alone: unsupported here, ignored (never pushed, and never
        written here whatever the store holds), or under a directory that could not be read
        (unknown is not deleted)."""
        known = chain((p for p in scope if p in local or p in self._bases or p in self._remotes),
                      (p for p in local if p not in scope))
        return sorted(p for p in known if p not in skipped and not self.rules.ignores(p)
                      and not self._under(p, unlisted))

    @staticmethod
    def _under(path: str, directories: list[str]) -> bool:
        return any(path.startswith(d + "/") for d in directories)

    def _scan(self, report: SyncReport, held: set[str]
              ) -> tuple[dict[str, LocalFile], list[str], int, set[str]]:
        """The whole tree: what changed, the directories that could not be read, how many
        files were found unchanged since they last synced (`Journal.stat_rows`; a held
        path is decided whatever it holds), and every other path the journal knows."""
        clean, other, synced = self.journal.stat_rows()
        for path in held:
            clean.pop(path, None)
            synced.pop(path, None)
        # A first sync reads each new file once, to push it: with no base, no file moved away
        # whose content it could be, and with neither base nor head, it is pushed whatever it holds.
        unread = None if self.journal.has_bases() else (lambda path: path not in other)
        result = scan(self.root, self.rules, self.journal, self.policy, temp_prefix=self.journal.temp_prefix,
                      clean=clean, unread=unread, synced=synced)
        self._take_scan(result, report)
        other.difference_update(result.settled)  # (found in sync: nothing to decide, nothing gone)
        other |= clean.keys()  # (what is left of it: not found unchanged)
        for path in other - set(result.files) - set(result.unsupported):
            if not self._under(path, result.unlisted):
                self.journal.drop(path)
        return result.files, result.unlisted, result.clean, other

    def _take_scan(self, result, report: SyncReport) -> None:
        """What a scan found besides files: this copy's leftovers removed, what is left
        alone said."""
        if "" in result.unlisted:
            raise RootMissing(f"the sync root {self.root} cannot be read; syncing is paused and "
                              "nothing was deleted in the store")
        for rel in result.temp_files:  # this copy's; one syncd per copy: nobody is writing them
            try:
                remove_leftover(self.root, rel, dirs=self._dirs)
            except UnsafePath as exc:  # its folder became a link since the scan
                log.warning("%s; left in place", exc)
                continue
            log.info("removed %s, left by an interrupted write", rel)
        for path, why in result.unsupported.items():
            self._skip(report, path, why, result.problems.get(path))
        report.ignored = result.ignored
        for path, why in result.ignored.items():
            self.notices.say(logging.INFO, path, why)

    def _scan_touched(self, touched: Touched, also: set[str], report: SyncReport
                      ) -> tuple[dict[str, LocalFile], list[str], set[str]]:
        """`_scan` for the paths events named and `also` (the feed's, the held ones): what
        was found, the directories that could not be read, and the scope looked at."""
        wanted = Touched(touched.paths | also, touched.trees)
        result, scope = scan_touched(self.root, self.rules, self.journal, self.policy, wanted,
                                     self.journal.known_under, temp_prefix=self.journal.temp_prefix)
        self._take_scan(result, report)
        for path in scope - set(result.files) - set(result.unsupported):
            if not self._under(path, result.unlisted):
                self.journal.drop(path)
        return result.files, result.unlisted, scope

    def _unsettled(self, fed: set[str], touched: Touched, local: dict[str, LocalFile],
                   report: SyncReport) -> list[str]:
        """The paths only the feed named whose file here is not what last synced: a save may be
        half done there (truncated and not yet written, renamed away and not yet back), and
        deciding now would push that half or merge it, and replace the file under the program
        still writing it. The save's events decide them (or the next pass, as if named)."""
        named = touched.paths | {a for p in touched.paths for a in ancestors(p)}
        alone = [p for p in fed if p not in named and p not in report.skipped
                 and not any(under(p, tree) for tree in touched.trees)]
        bases = self.journal.bases_of(alone)
        unsettled = {p for p in alone if (local[p].sha256 if p in local else None)
                     != (bases[p].sha256 if p in bases else None)}
        # a document moved away from one of them: where it went is decided with it
        unsettled |= {r.moved_to for r in self.journal.remotes_of(unsettled).values() if r.moved_to in fed}
        return sorted(unsettled)

    # applying actions

    def _apply(self, plan: dict[str, Action], local: dict[str, LocalFile], report: SyncReport) -> None:
        with self.journal.transaction():
            pushes, both_changed = self._apply_locally(plan, local, report)
        self._push(pushes, local, report)
        for path in both_changed:
            try:
                if plan[path] is Action.MERGE:
                    self._merge(path, local.get(path), report)
                else:
                    self._settle(path, local.get(path), report)
            except (UnsafePath, DamagedVersion, Unsupported, HoldsUnsynced) as exc:
                self._skip(report, path, str(exc), _cause(exc))
            except OSError as exc:
                self._skip(report, path, _unwritable(path, exc), _cause(exc))

    def _apply_locally(self, plan: dict[str, Action], local: dict[str, LocalFile],
                       report: SyncReport) -> tuple[list[str], list[str]]:
        """Carry out every action but pushes and merges; returns the paths for those."""
        pushes: list[str] = []
        both_changed: list[str] = []
        requested = {c.path for c in self.journal.conflicts() if c.request}
        # local deletes first: a directory whose files went gives way to a file of its name
        ordered = chain((p for p, a in plan.items() if a is Action.DELETE_LOCAL),
                        (p for p, a in plan.items() if a is not Action.DELETE_LOCAL))
        pulls = [path for path, action in plan.items() if action is Action.PULL]
        pulled = fetched = 0  # pulls[:fetched] have had their contents fetched
        for path in ordered:
            action = plan[path]
            remote = self._remotes.get(path)
            match action:
                case Action.PUSH | Action.DELETE_REMOTE | Action.MOVE_REMOTE:
                    pushes.append(path)
                case Action.MOVE_LOCAL:
                    self._move_here(self._moves[path], path, local, report)
                case Action.PULL | Action.DELETE_LOCAL:
                    if action is Action.PULL:
                        if pulled == fetched:
                            fetched = self._fetch(pulls, fetched)
                        pulled += 1
                    if self._apply_remote(path, local.get(path), remote, report, self.durability):
                        pushes.append(path)
                    self._contents.pop((path, remote.version), None)  # written: memory stays flat in the pull
                case Action.ADOPT:
                    self._synced(path, remote)
                    report.adopted.append(path)
                case Action.MERGE:
                    both_changed.append(path)
                case Action.CONFLICT if path in requested:
                    both_changed.append(path)
                case Action.CONFLICT:
                    self._hold(path, local.get(path), report)
        try:
            self.durability.flush()  # still inside the journal's transaction: no base before its file is durable
        except OSError as exc:  # the journal's records of the pass are rolled back with this
            raise Paused(f"the files pulled into {self.root} cannot be made durable ({exc.strerror or exc}): "
                         "root unmounted or the disk failing? Syncing is paused, nothing was recorded as "
                         "synced, and the next pass looks at those files again") from exc
        return pushes, both_changed

    def _fetch(self, pulls: list[str], start: int, page: int = 500) -> int:
        """The contents of the next page of heads to pull (from `pulls[start]`) that the feed
        did not bring, in one call; where the next page starts."""
        end = start + page
        heads = [(path, self._remotes[path]) for path in pulls[start:end]]
        wanted = [(path, head.version) for path, head in heads
                  if head.sha256 is not None and (path, head.version) not in self._contents]
        if wanted:
            for v in self.store.contents(wanted):
                if not v["deleted"]:
                    self._contents[(v["path"], v["version"])] = v["content"]
        return end

    def _push(self, paths: list[str], local: dict[str, LocalFile], report: SyncReport) -> None:
        """A commit call's worth at a time, each committing while the next is read (the last
        one, often the only one, in this thread: no thread for a pass of a few changes)."""
        batch = Batch()
        with InFlight() as self._in_flight:
            for path in paths:
                change = self._change_for(path, self._remotes.get(path), path in local, report)
                if change is not None and batch.add(change):
                    changes = batch.take()
                    self._in_flight.start(lambda changes=changes: self.store.commit(changes),
                                          lambda results, changes=changes: self._record(changes, results, report))
            self._in_flight.settle()
            if batch.changes:
                self._commit(batch.take(), report)

    def _change_for(self, path: str, remote: Remote | None, seen: bool, report: SyncReport) -> Change | None:
        """The change to send, read fresh from disk (the file may have moved on since the scan);
        a move sends no content: the store moves what it holds. A file the scan `seen` that is
        gone now waits for the next pass: a delete goes out only as planned, past the
        mass-delete valve (a root unmounted mid-pass reads as every file gone)."""
        if path in self._moves:
            return Change(path, self._remotes[self._moves[path]].version, None, moved_from=self._moves[path])
        base_version = remote.version if remote else None
        try:
            current = read_entry(self.root, path, self.policy, self.rules.ignores)
        except Unsupported as exc:
            self._skip(report, path, str(exc), exc.cause)
            return None
        if current is None:
            if seen:
                report.deferred.append(path)
                return None
            return Change(path, base_version, None)
        entry, lf = current
        remember(self.journal, path, lf.stat, lf.sha256)
        if self._holds_credential(path, entry, report):
            return None
        try:
            return Change(path, base_version, self._encode(path, entry))
        except BlobMismatch:  # changed while it was read: the next look sees what it is now
            report.deferred.append(path)
        except StoreUnavailable:
            raise
        except (StoreError, OSError) as exc:
            self._skip(report, path, f"{path}: its bytes could not be stored ({exc}); not pushed",
                       "bytes not stored" if isinstance(exc, StoreError) else _cause(exc))
        return None

    @property
    def blobs(self) -> BlobStore:
        return blobs_for(self.store)

    def _encode(self, path: str, entry: Entry) -> dict:
        """The content of an entry, its bytes in the blob store first when it is a blob."""
        content = encode_entry(path, entry, self.policy)
        if content["encoding"] == "blob":
            self._in_flight.settle()  # (the store's connection is the commit's while one is in flight)
            ensure_stored(self.blobs, entry, self.root)
        return content

    def _holds_credential(self, path: str, entry: Entry, report: SyncReport) -> bool:
        """Local content about to go to the store holds a private key or a token (and `syncd
        allow` did not let the path through): it stays here, with one line saying why. (A
        file too big to hold is not looked into.)"""
        why = credentials.held(path, entry.data or b"", self.journal.is_allowed)
        if why is None:
            return False
        self._skip(report, path, why, "a credential held back: syncd allow")
        return True

    def _commit(self, batch: list[Change], report: SyncReport) -> None:
        self._record(batch, self.store.commit(batch), report)

    def _record(self, batch: list[Change], results: list[CommitResult], report: SyncReport) -> None:
        with self.journal.transaction():
            self._note(*results)
            for change, result in zip(batch, results):
                self._record_commit(change, result, report)
        self.progress()

    def _record_commit(self, change: Change, result: CommitResult, report: SyncReport) -> None:
        path = change.path
        if change.moved_from is not None:
            self._record_move(change, result, report)
        elif result.landed:
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
            self._skip(report, path, f"{path}: refused by the store: {result.message}", "refused by the store")

    def _record_move(self, change: Change, result: CommitResult, report: SyncReport) -> None:
        """A move this copy made, as the store took it. Its head may be newer than this copy's
        file (edited there meanwhile): the file is then that head's to pull, from the old
        base, as any remote edit."""
        new, old = change.path, change.moved_from
        if not result.landed:
            if result.head is not None:
                self._learn_head(result.head)
            if result.status == "conflict":
                report.deferred += [old, new]  # decided again: the move goes on the new head
            else:
                self._skip(report, new, f"{new}: the move from {old} was refused by the store: {result.message}",
                           "refused by the store")
            return
        base = self._bases[old]
        self._synced(old, Remote(result.version, None, new))
        report.moved[new] = old
        if result.sha256 == base.sha256:
            self._synced(new, Remote(result.version, result.sha256))
            return
        self._synced(new, Remote(base.version, base.sha256))
        self._learn_head(result.head or Head(new, result.version, result.sha256))
        report.deferred.append(new)

    def _move_here(self, old: str, new: str, local: dict[str, LocalFile], report: SyncReport) -> None:
        """The store moved the document: rename the file (checked like any write, keeping its
        inode), and decide again at the new path (a local edit goes on top of the move)."""
        lf, remote, base = local[old], self._remotes[old], self._bases[old]
        try:
            written = move_checked(self.root, old, new, lf.sha256, self._stays, dirs=self._dirs)
        except UnsafePath as exc:
            self._skip(report, new, str(exc), _cause(exc))
            return
        except LocalChanged:
            report.deferred += [old, new]
            return
        except OSError as exc:
            self._skip(report, new, _unwritable(new, exc), _cause(exc))
            return
        self.journal.drop(old)
        remember(self.journal, new, written, lf.sha256)
        local[new] = LocalFile(new, lf.sha256, written)
        del local[old]
        self._synced(old, remote)
        self._synced(new, moved_version(base, remote))
        report.moved[new] = old
        report.deferred.append(new)
        self.progress()

    def _note(self, *results: CommitResult) -> None:
        """The newest change this copy made is the newest it knows the store has (a batch's
        newest: the journal keeps one)."""
        made = [r for r in results if r.seq is not None]
        if made:
            newest = max(made, key=lambda r: r.seq)
            self.journal.note_change(Mark(newest.seq, newest.path, newest.version, newest.sha256, newest.created_at))

    def _skip(self, report: SyncReport, path: str, message: str, cause: str | None) -> None:
        """Leave the path alone this pass: by a setting (no cause), or for a problem to fix."""
        report.skipped[path] = message
        if cause:
            report.failed[path] = cause
        self.notices.say(logging.ERROR if cause else logging.WARNING, path, message)

    def _synced(self, path: str, head: Remote) -> None:
        """Recorded in the journal, and in the pass's view where the pass knew the path or it
        is a folder (which `_stays`). The pass looks at no other again but to decide it
        again, from the journal (`_sync`): a first sync of 100k files would hold 4 MiB more
        in bases after a pull, 22 MiB more in heads after a push."""
        self.journal.record_synced(path, head)
        folder = head.sha256 == DIRECTORY
        if path in self._bases or folder:
            self._bases[path] = Base(head.version, head.sha256)
        known = self._remotes.get(path)
        if known is None and folder or known is not None and head.version >= known.version:
            self._remotes[path] = head

    def _synced_directory(self, path: str) -> bool:
        """An empty directory this copy synced."""
        base = self._bases.get(path)
        return base is not None and base.sha256 == DIRECTORY

    def _stays(self, path: str) -> bool:
        """An empty directory synced, or one the store holds: a directory emptied by a delete
        or a move stays (pulled later in the pass: local deletes go first)."""
        remote = self._remotes.get(path)
        return self._synced_directory(path) or (remote is not None and remote.sha256 == DIRECTORY)

    def _learn_head(self, head: Head) -> None:
        remote = Remote(head.version, head.sha256)
        self.journal.record_remote(head.path, remote)
        self._remotes[head.path] = remote
        if head.content is not None:
            self._contents[(head.path, head.version)] = head.content

    def _content_of(self, path: str, remote: Remote | Base) -> Entry:
        """The entry a version holds (a blob's bytes stay in the blob store until written)."""
        content = self._contents.get((path, remote.version))
        if content is None:
            try:
                content = self.store.version(path, remote.version)["content"]
            except NotFound:
                raise DamagedVersion(f"{path}: version {remote.version} is not in the store (restored from an "
                                     "earlier backup?); not written: the next pass checks the store's history") from None
        try:
            entry = decode_entry(content)
        except ValueError as exc:
            raise DamagedVersion(f"{path}: version {remote.version} in the store cannot be decoded ({exc}); not written") from None
        if entry.identity != remote.sha256:
            raise DamagedVersion(f"{path}: version {remote.version} in the store does not match its hash; not written")
        return entry

    def _write(self, path: str, entry: Entry, expect: str | None, durability: Durability | None = None) -> Stat:
        """Make the path hold the entry, if it still holds `expect` (see syncd.engine.writer);
        a blob streams from the store into the temporary file, checked before the rename.
        With `durability`, a new file waits for its batch's flush to reach the disk."""
        prefix = self.journal.temp_prefix
        if entry.directory:
            return make_directory(self.root, path, expect, dirs=self._dirs)
        if entry.link:
            return write_link(self.root, path, entry.target, expect, temp_prefix=prefix, ignored=self.rules.ignores,
                              dirs=self._dirs)
        data = entry.data
        if data is None:
            def data(out):
                try:
                    self.blobs.get(entry.digest, entry.size, out)
                except (BlobMismatch, NotFound) as exc:
                    raise DamagedVersion(f"{path}: the store's bytes for this version cannot be had ({exc}); "
                                         "not written") from None
        return write_atomic(self.root, path, data, expect, temp_prefix=prefix, executable=entry.executable,
                            ignored=self.rules.ignores, durability=durability, dirs=self._dirs)

    def _apply_remote(self, path: str, lf: LocalFile | None, remote: Remote, report: SyncReport,
                      durability: Durability | None = None) -> bool:
        """Make the local file what the store's head says: its content, or gone. With
        `durability` (inside the journal's transaction, flushed before it commits), a new
        file is written without its own fsync. True when the path is to be pushed instead:
        the store's empty directory where a folder here holds files (after this pass's local
        deletes, which go first; the plan cannot tell, having no fact of unchanged files) is
        their parent, and goes from the store."""
        try:
            if self._parent_here(path, lf, remote):
                return True
            if remote.sha256 is None:
                delete_checked(self.root, path, lf.sha256, self._stays, self.rules.ignores, dirs=self._dirs)
                self.journal.drop(path)
            else:
                written = self._write(path, self._content_of(path, remote), lf.sha256 if lf else None,
                                      durability)
                remember(self.journal, path, written, remote.sha256)
        except (UnsafePath, DamagedVersion, HoldsUnsynced) as exc:
            self._skip(report, path, str(exc), _cause(exc))
            return False
        except LocalChanged:
            report.deferred.append(path)  # the user got there first: decide again next pass
            return False
        except OSError as exc:  # a full disk, a read-only directory: this path waits, the rest go on
            self._skip(report, path, _unwritable(path, exc), _cause(exc))
            return False
        self._synced(path, remote)
        (report.pulled if remote.sha256 is not None else report.deleted_local).append(path)
        self.progress()
        return False

    def _parent_here(self, path: str, lf: LocalFile | None, remote: Remote) -> bool:
        """The store's empty directory at the path is a folder here holding files."""
        return remote.sha256 == DIRECTORY and lf is None and self._holds_files(path)

    def _holds_files(self, path: str) -> bool:
        """A folder at the path, holding something that syncs."""
        target = safe_target(self.root, path, directory_ok=True)  # (also in dry_run: no directory kept open)
        try:
            folder = stat.S_ISDIR(os.lstat(target).st_mode)
        except FileNotFoundError:
            return False
        return folder and not holds_nothing_synced(path, self.rules.ignores, str(target))

    def _hold(self, path: str, lf: LocalFile | None, report: SyncReport) -> None:
        remote = self._remotes.get(path)
        if self.journal.hold(path, lf.sha256 if lf else None, self._bases.get(path), remote):
            report.new_conflicts.append(path)
            log.warning(
                "conflict: %s changed here and in the store (version %s); the local file is "
                "kept as it is and the store's version stays there; the path is held until resolved",
                path, remote.version if remote else "?")

    def _record_conflicts(self, report: SyncReport) -> None:
        events = []
        for path in report.new_conflicts:
            c = self.journal.conflict(path)
            if c is not None:
                events.append({"kind": "conflict", "path": path, "details": {
                    "base_version": c.base_version, "remote_version": c.remote_version,
                    "local_sha256": c.local_sha256, "policy": self.policies.for_path(path).value}})
        self.store.record(events)

    # both sides changed

    def _current(self, path: str, lf: LocalFile | None, report: SyncReport) -> Entry | None | bool:
        """The local entry (None: absent) if it is still what the scan saw; else False, and
        the path waits for the next pass (or, holding a credential, until `syncd allow`)."""
        try:
            now = read_entry(self.root, path, self.policy, self.rules.ignores)
        except Unsupported:
            now = False
        if now is False or (now[1].sha256 if now else None) != (lf.sha256 if lf else None):
            report.deferred.append(path)
            return False
        if now and self._holds_credential(path, now[0], report):  # a merge would push it
            return False
        return now[0] if now else None

    def _merge(self, path: str, lf: LocalFile, report: SyncReport) -> None:
        """Both sides hold new content: merge it, or settle it by policy, or hold it."""
        policy = self.policies.for_path(path)
        if policy is Policy.MANUAL:
            self._hold(path, lf, report)
            return
        ours = self._current(path, lf, report)
        if ours is False:
            return
        remote, base = self._remotes[path], self._bases.get(path)
        try:
            theirs = self._content_of(path, remote)
        except DamagedVersion as exc:
            # Nothing to merge with and nothing to lose: the edit made here goes on top (the
            # damaged version stays in the history), or the path would be stuck on every copy.
            self.notices.say(logging.WARNING, path, f"{exc}; this copy's content goes on top of it")
            self._keep(path, "local", lf, ours, None, report, {"keep": "local", "damaged_version": remote.version})
            return
        if policy is not Policy.MERGE:
            remote_time = datetime.datetime.fromisoformat(
                self.store.version(path, remote.version)["created_at"]).timestamp()
            keep = "local" if keep_local(policy, lf.stat.mtime_ns / 1e9, remote_time) else "remote"
            self._keep(path, keep, lf, ours, theirs, report, {"keep": keep, "policy": policy.value})
            return
        ancestor = self._content_of(path, base) if base and base.sha256 else None
        merged = merge_entries(path, ancestor, ours, theirs)
        if merged is None:
            self._hold(path, lf, report)
            return
        result, how = merged
        if result.identity == theirs.identity:  # the store already holds everything ours had
            self._publish(path, lf, theirs, None, remote.version, "merge", {"how": how}, report)
        else:
            self._publish(path, lf, result, ours if result.identity != ours.identity else None,
                          remote.version, "merge", {"how": how}, report)
        report.merged.append(path)

    def _settle(self, path: str, lf: LocalFile | None, report: SyncReport) -> None:
        """Carry out the resolution `syncd resolve` asked for on a held path."""
        conflict = self.journal.conflict(path)
        remote = self._remotes[path]
        if conflict.request == "merged":
            self._publish_merged(path, lf, conflict, report)
            return
        ours = self._current(path, lf, report)
        if ours is False:
            return
        theirs = None if remote.sha256 is None else self._content_of(path, remote)
        self._keep(path, conflict.request, lf, ours, theirs, report, {
            "keep": conflict.request, "base_version": conflict.base_version,
            "remote_version": remote.version})

    def _keep(self, path: str, keep: str, lf: LocalFile | None, ours: Entry | None,
              theirs: Entry | None, report: SyncReport, activity: dict) -> None:
        remote = self._remotes[path]
        if keep == "local":
            self._publish(path, lf, ours, None, remote.version, "resolve", activity, report)
        elif keep == "remote":
            # the local content becomes a version of its own first: it stays recoverable
            self._publish(path, lf, theirs, ours, remote.version, "resolve", activity, report)
        elif ours is None or theirs is None:  # both, with one side deleted: nothing to set aside
            self._publish(path, lf, ours if theirs is None else theirs, None, remote.version,
                          "resolve", activity, report)
        else:
            copy = conflict_copy_name(path, self.who, datetime.date.today(),
                                      lambda p: (self.root / p).exists() or self.journal.remote(p) is not None)
            self._publish(copy, None, ours, None, None, "resolve",
                          {**activity, "conflict_path": path}, report)
            if copy in report.deferred:
                return
            report.conflict_copies[path] = copy
            self._apply_remote(path, lf, remote, report)
            log.warning("conflict on %s settled: the store's version is at the path, this "
                        "copy's content is in %s", path, copy)
        if path not in report.deferred and path not in report.skipped:
            report.resolved.append(path)

    def _publish_merged(self, path: str, lf: LocalFile | None, conflict: Conflict,
                        report: SyncReport) -> None:
        """A conflict-marker file the user finished: publish it once the markers are gone."""
        ours = self._current(path, lf, report)
        if ours is False:
            return
        if ours is not None and ours.data is not None and has_markers(ours.data):
            log.info("%s: still has conflict markers; it is published once they are gone", path)
            return
        kept = conflict.merge_local
        side = None if kept is None or (ours is not None and ours.data == kept) else file_entry(kept)
        self._publish(path, lf, ours, side, conflict.remote_version, "resolve",
                      {"keep": "merged", "base_version": conflict.base_version,
                       "remote_version": conflict.remote_version}, report, conflict.base_version)
        if path in report.deferred:  # the store moved on while the user merged
            self.journal.reopen(path, lf.sha256 if lf else None,
                                Base(conflict.remote_version, conflict.remote_sha256),
                                self._remotes[path])
            report.deferred.remove(path)
            log.warning("%s: the store has a newer version than the one you merged with; the "
                        "conflict is held again against it", path)
        else:
            report.resolved.append(path)

    def _publish(self, path: str, lf: LocalFile | None, result: Entry | None, side: Entry | None,
                 on: int | None, origin: str, activity: dict, report: SyncReport,
                 side_parent: int | None = None) -> None:
        """Commit `result` on top of version `on` (with `side`, the local content it replaces,
        kept as a version under it), then make the local file `result`. Committed first: a
        crash in between leaves a file the next pass merges to the same result."""
        base = self._bases.get(path)
        change = Change(
            path, on, None if result is None else self._encode(path, result), origin,
            None if side is None else Side(self._encode(path, side),
                                           side_parent if side_parent is not None else base.version if base else None),
            activity)
        [outcome] = self.store.commit([change])
        self._note(outcome)
        if not outcome.landed:
            if outcome.head is not None:
                self._learn_head(outcome.head)
            if outcome.status == "conflict":
                report.deferred.append(path)
            else:
                raise Unsupported(path, f"refused by the store: {outcome.message}", "refused by the store")
            return
        head = Remote(outcome.version, None if result is None else result.identity)
        ours = lf.sha256 if lf else None
        try:
            if head.sha256 != ours:
                if result is None:
                    delete_checked(self.root, path, ours, self._stays, self.rules.ignores, dirs=self._dirs)
                    self.journal.drop(path)
                else:
                    written = self._write(path, result, ours)
                    remember(self.journal, path, written, head.sha256)
        except LocalChanged:
            # edited again meanwhile: the file was made from the side version, now the base
            self._learn_head(Head(path, head.version, head.sha256))
            if outcome.side_version is not None:
                self._synced(path, Remote(outcome.side_version, side.identity))
            report.deferred.append(path)
            return
        self._synced(path, head)
