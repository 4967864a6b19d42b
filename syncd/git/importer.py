"""`syncd import`: a legacy workspace, with everything its Git history knows, into the store.

Every commit that touched a document becomes a version of it (origin `import`), in
history order, with the commit's author, date and id; a rename carries the old path's
versions over to the new one, as `git log --follow` shows them. The working tree then
becomes the head where it differs from the last commit. Each imported version is keyed by
its commit, so a second run, or one resumed after an interruption, adds nothing twice.
Paths a daemon has already synced keep the store's history untouched. The importing
copy's journal then records every file that equals its head as synced, so the next edit
anyone makes to it is a plain pull here.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import git

from syncd.content import Entry, FilePolicy, Unsupported, encode_entry, file_entry, link_entry, link_problem
from syncd.engine import credentials
from syncd.engine.entries import read_entry
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal
from syncd.engine.reconcile import Remote
from syncd.engine.scanner import MemoryStatCache, scan
from syncd.git.history import FileChange, History, HistoryCommit
from syncd.store.blobs import blobs_for, ensure_stored
from syncd.store.rpc import Batch, Change, NotFound, RpcStore

PERMISSION_FILES = (".owner", ".collaborators")


@dataclass
class ImportReport:
    repository: str | None = None
    commits: int = 0
    versions: int = 0  # new versions (a dry run: versions to replay, earlier imports included)
    already: int = 0  # versions an earlier run imported
    working_tree: int = 0  # heads set from the working tree
    documents: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)  # path → why
    notes: list[str] = field(default_factory=list)  # what the history reader could not take
    synced_before: list[str] = field(default_factory=list)  # paths whose history was left alone
    projects: list[str] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)
    added: int = 0
    invited: int = 0


class Importer:
    def __init__(self, root: Path, store: RpcStore, rules: IgnoreRules, policy: FilePolicy, who: str,
                 journal: Journal):
        self.root = Path(root)
        self.journal = journal  # the importing copy's: where it records what is in sync
        self.store = store
        self.rules = rules
        self.policy = policy
        self.who = who  # the author of working-tree versions
        self.repository: Path | None = None
        self.dry_run = False
        self.history = self._open_history()
        self._last: dict[str, str | None] = {}  # path → sha256 history left it at (None: deleted)

    def _open_history(self) -> History | None:
        try:
            repo = git.Repo(self.root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None
        top = Path(repo.working_tree_dir).resolve()
        prefix = Path(os.path.relpath(self.root.resolve(), top)).as_posix()
        repo.close()
        self.repository = top
        return History(top, "" if prefix == "." else prefix)

    def close(self) -> None:
        if self.history is not None:
            self.history.close()

    def count(self) -> int:
        return self.history.count() if self.history is not None else 0

    def run(self, dry_run: bool = False, step: Callable[[], None] = lambda: None) -> ImportReport:
        """`step` is called once per commit read (a progress bar)."""
        report = ImportReport(repository=str(self.repository) if self.repository else None)
        self.dry_run = dry_run  # a dry run stores no blob either
        try:
            heads = {d["path"]: d for d in self.store.documents()}
        except NotFound:  # a dry run for a workspace that does not exist yet
            heads = {}
        left_alone = {p for p, d in heads.items() if d["origin"] != "import"}
        report.synced_before = sorted(left_alone)
        pending = Batch()

        def send(change: Change) -> None:
            report.documents.add(change.path)
            if pending.add(change):
                self._commit(pending, report, dry_run)

        if self.history is not None:
            self._replay(left_alone, send, step, report)
        self._commit(pending, report, dry_run)
        if not dry_run:  # what the replay left, as the store has it now
            heads = {d["path"]: d for d in self.store.documents()}
            self._last.clear()
        local = self._working_tree(heads, left_alone, send, report)
        self._commit(pending, report, dry_run)
        if not dry_run:
            self._record_bases(local)
        files = [{"path": p, "text": (self.root / p).read_text(encoding="utf-8", errors="replace")}
                 for p in sorted(local) if p.rsplit("/", 1)[-1] in PERMISSION_FILES]
        members = self.store.import_members(files, dry_run=dry_run)
        report.members, report.added, report.invited = members["members"], members["added"], members["invited"]
        plan = self.store.layout_plan(sorted(report.documents | set(heads)))
        report.projects, report.sessions = plan["projects"], plan["sessions"]
        if not dry_run:
            self.store.record([{"kind": "import", "path": None, "details": {
                "commits": report.commits, "versions": report.versions, "working_tree": report.working_tree,
                "members": report.added, "invitations": report.invited}}])
        return report

    def _replay(self, left_alone: set[str], send, step, report: ImportReport) -> None:
        """Only what history really changed is sent: a commit that leaves a path's content as
        it was (a rename without edits, a merge's first-parent diff) adds no version. That
        decision rests on the history alone, so every run sends the same versions and a
        re-run finds each of them already stored."""
        seen: dict[str, list[tuple[dict, FileChange]]] = {}  # path → (provenance, change) of its versions

        def version(path: str, blob: str | None, prov: dict, mode: str) -> bool:
            try:
                entry = None if blob is None else self._entry(path, mode, self.history.blob(blob))
                digest = None if entry is None else entry.identity
                if self._last.get(path, None) == digest:
                    return False
                held = None if entry is None else credentials.held(path, entry.data, self._allowed, prov.get("commit"))
                if held is not None:
                    report.skipped[path] = held
                    return False
                content = None if entry is None else self._content(path, entry)
            except Unsupported as exc:
                report.skipped[path] = str(exc)
                return False
            self._last[path] = digest
            send(Change(path, None, content, "import", provenance=prov))
            return True

        for commit in self.history.commits():
            report.commits += 1
            step()
            prov = self._provenance(commit)
            for change in commit.changes:
                path = change.path
                if path in left_alone or self.rules.ignores(path) or path in report.skipped:
                    continue
                if change.blob is None:
                    version(path, None, prov, change.mode)
                    continue
                earlier = seen.get(change.renamed_from or path, [])
                if change.renamed_from:  # follow the rename: the old path's versions come along
                    for old_prov, old in earlier:
                        version(path, old.blob, {**old_prov, "renamed_from": change.renamed_from}, old.mode)
                if version(path, change.blob, prov, change.mode):
                    seen[path] = [*earlier, (prov, change)]
                elif change.renamed_from:
                    seen[path] = list(earlier)
        report.notes.extend(self.history.skipped)

    @staticmethod
    def _entry(path: str, mode: str, data: bytes) -> Entry:
        """A Git blob of that mode as a version holds it: an executable, a link (Unsupported
        when it leaves the root), or a file."""
        if mode != "120000":
            return file_entry(data, executable=mode == "100755")
        try:
            target = data.decode("utf-8")
        except UnicodeDecodeError:
            target = None
        problem = "a symbolic link whose target is not UTF-8" if target is None else link_problem(path, target)
        if problem is not None:
            raise Unsupported(path, f"{problem}; not imported (only relative links that stay inside the root are)")
        return link_entry(target)

    def _content(self, path: str, entry: Entry) -> dict:
        """A version's content; a blob's bytes are stored first (not in a dry run)."""
        content = encode_entry(path, entry, self.policy)
        if content["encoding"] == "blob" and not self.dry_run:
            ensure_stored(blobs_for(self.store), entry, self.root)
        return content

    def _allowed(self, path: str) -> bool:
        """`syncd allow` let this path's content through the check for credentials."""
        return self.journal.is_allowed(path)

    @staticmethod
    def _provenance(commit: HistoryCommit) -> dict:
        return {"commit": commit.sha, "author_name": commit.author.name,
                "author_email": commit.author.email, "at": commit.authored_at.isoformat()}

    def _record_bases(self, local: dict[str, str]) -> None:
        """Each local file (path → sha256 when scanned) that the store's head now holds is in sync."""
        with self.journal.transaction():
            for head in self.store.documents():
                if not head["deleted"] and local.get(head["path"]) == head["sha256"]:
                    self.journal.record_synced(head["path"], Remote(head["version"], head["sha256"]))

    def _working_tree(self, heads: dict[str, dict], left_alone: set[str], send,
                      report: ImportReport) -> dict[str, str]:
        """Make the working tree the head where it differs from what history left; returns
        the local files' hashes."""
        result = scan(self.root, self.rules, MemoryStatCache(), self.policy, temp_prefix=self.journal.temp_prefix)
        report.skipped.update(result.unsupported)
        state = {p: None if d["deleted"] else d["sha256"] for p, d in heads.items()} | self._last
        prov = {"working_tree": True, "author_name": self.who,
                "at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        for path, lf in sorted(result.files.items()):
            if path in left_alone or (state.get(path) is not None and state[path] == lf.sha256):
                continue
            try:
                found = read_entry(self.root, path, self.policy)
                if found is None:
                    continue  # gone since the scan
                entry = found[0]
                held = credentials.held(path, entry.data or b"", self._allowed)
                if held is not None:
                    report.skipped.setdefault(path, held)  # history's own word names the commit
                    continue
                content = self._content(path, entry)
            except (Unsupported, OSError) as exc:
                report.skipped[path] = str(exc)
                continue
            send(Change(path, None, content, "import", provenance=prov))
        for path, sha in sorted(state.items()):
            gone = path not in result.files and path not in result.unsupported
            if (gone and sha is not None and path not in left_alone and not self.rules.ignores(path)
                    and not any(path.startswith(d + "/") for d in result.unlisted)):
                send(Change(path, None, None, "import", provenance=prov))
        return {path: lf.sha256 for path, lf in result.files.items()}

    def _commit(self, pending: Batch, report: ImportReport, dry_run: bool) -> None:
        changes = pending.take()
        if not changes:
            return
        results = ([None] * len(changes)) if dry_run else self.store.commit(changes)
        for change, result in zip(changes, results):
            if result is None or result.status == "accepted":
                report.versions += 1
                report.working_tree += bool(change.provenance.get("working_tree"))
            elif result.status == "duplicate":
                report.already += 1
            elif result.status == "invalid":
                report.skipped[change.path] = f"{change.path}: refused by the store: {result.message}"
