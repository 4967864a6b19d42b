"""The Git mirror fed by sync passes: what each pass moved becomes commits.

A pass hands over the paths it pushed, pulled, deleted, merged or resolved; their synced
versions (author, time, exact bytes) come from the store in one call and go to the mirror.
The mirror is a record, never a reason to stop syncing: a batch that cannot be committed
now (a rebase in progress in branch mode, a locked repository) waits in the journal and
goes with the next one, and push failures are reported and retried on the next interval.
"""
from __future__ import annotations

import datetime
import io
import json
import logging
import re
import time
from pathlib import Path

import git

from syncd.content import decode_entry
from syncd.engine.executor import SyncReport
from syncd.engine.journal import Journal
from syncd.engine.resolution import is_conflict_copy
from syncd.git import PENDING
from syncd.git.mirror import Author, Mirror, MirrorEntry, MirrorError
from syncd.store.blobs import blobs_for
from syncd.store.rpc import RpcStore, StoreError

log = logging.getLogger("syncd.git")


def mirror_repository(cfg) -> git.Repo | None:
    """The repository a config's mirror records into: git.repository, else the one the
    root is in; None when the mirror is off or there is none."""
    if cfg.git.mode == "off":
        return None
    where = cfg.git.repository or cfg.root
    try:
        return git.Repo(where, search_parent_directories=cfg.git.repository is None)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        if cfg.git.repository is not None:
            log.warning("git.repository %s is not a Git repository; no mirror", where)
        return None


class Recorder:
    def __init__(self, mirror: Mirror, journal: Journal, store: RpcStore,
                 push_remote: str | None = None, push_interval: float = 300.0):
        self.mirror = mirror
        self.journal = journal
        self.store = store
        self.push_remote = push_remote
        self.push_interval = push_interval
        self.last_push = time.monotonic()
        self.unpushed = False

    @classmethod
    def for_config(cls, cfg, journal: Journal, store: RpcStore) -> "Recorder | None":
        """The recorder a config asks for, or None: mirror off, or no repository."""
        repo = mirror_repository(cfg)
        if repo is None:
            return None
        top = Path(repo.working_tree_dir or repo.git_dir).resolve()
        repo.close()
        prefix = ""
        if cfg.git.repository is None:
            prefix = Path(cfg.root).resolve().relative_to(top).as_posix()
            prefix = "" if prefix == "." else prefix
        return cls(Mirror(top, cfg.git.mode, cfg.git.branch, prefix), journal, store,
                   cfg.git.push_remote, cfg.git.push_interval)

    def after_pass(self, report: SyncReport) -> None:
        moved = report.moved_paths()  # (a move's two paths in one commit: Git sees a rename)
        # only what this pass moved is looked up: most passes (a quiet rescan) move nothing
        synced = {p: self.journal.base(p) for p in dict.fromkeys(moved) if not is_conflict_copy(p)}
        wanted = [[p, base.version] for p, base in synced.items() if base is not None]
        pending = json.loads(self.journal.get_meta(PENDING) or "[]") + wanted
        if not pending:
            return
        self.journal.set_meta(PENDING, json.dumps(pending))
        try:
            entries = self._entries(self.store.versions([tuple(p) for p in pending]))
            made = self.mirror.record(entries)
        except (MirrorError, StoreError) as exc:
            log.warning("git mirror: %s; %d versions wait for the next pass", exc, len(pending))
            return
        self.journal.set_meta(PENDING, "[]")
        if made:
            self.unpushed = True
            log.info("git mirror: %d commit(s) for %d versions", len(made), len(entries))

    def _entries(self, versions: list[dict]) -> list[MirrorEntry]:
        entries = []
        for v in versions:
            if isinstance(v.get("content"), dict) and v["content"].get("encoding") == "directory":
                continue  # Git keeps no empty directories (and a tombstone of one changes no tree)
            try:
                entries.append(self._entry(v))
            except ValueError as exc:
                log.warning("git mirror: %s version %s in the store cannot be decoded (%s); left out",
                            v["path"], v["version"], exc)
        return entries

    def _entry(self, v: dict) -> MirrorEntry:
        device = v.get("device") or "syncd"
        name = v.get("author_name") or device
        email = v.get("author_email") or f"{re.sub(r'[^A-Za-z0-9._-]+', '-', device).strip('-') or 'syncd'}@syncd.invalid"
        data, mode = None, "100644"
        if not v["deleted"]:
            entry = decode_entry(v["content"])
            data = entry.data
            if data is None:  # a blob: its bytes from the blob store, checked
                out = io.BytesIO()
                blobs_for(self.store).get(entry.digest, entry.size, out)
                data = out.getvalue()
            mode = "120000" if entry.link else "100755" if entry.executable else "100644"
        return MirrorEntry(v["path"], data, Author(name, email),
                           datetime.datetime.fromisoformat(v["created_at"]), v["version"], mode)

    def push_if_due(self) -> None:
        if not (self.push_remote and self.unpushed) or time.monotonic() - self.last_push < self.push_interval:
            return
        self.last_push = time.monotonic()
        try:
            self.mirror.push(self.push_remote)
        except MirrorError as exc:
            log.warning("git mirror: push to %s failed (retried in %d s): %s",
                        self.push_remote, self.push_interval, exc)
            return
        self.unpushed = False
