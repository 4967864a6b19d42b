"""Bases the journal cannot vouch for, inferred from the store's history.

A copy joining with files already on disk (a teammate's Git clone, a lost journal, a
restored backup, the copy that ran `syncd import`) or whose journal missed what a pass
wrote (a kill mid-pull) sees "both sides changed" where nothing did. But the store keeps
every version with its hash: a file holding the content of a version is that version,
and pulling over it loses nothing. So, for each such path, in one batched call a pass:

* the newest version with the file's content becomes the base, when the journal has none
  or an older one (a newer head is then pulled, a tombstone deletes the file, an equal
  head is adopted). A version older than the journal's base is left alone: that file was
  reverted here, an edit like any other;
* with no such version and no base at all, the clone's Git says what the file was: its
  blob at HEAD, else at the newest commit of the clone's history that an import recorded,
  when that content is a version of the path. An uncommitted edit on an old commit is so
  merged three-way with what changed upstream, as if the copy had been syncing all along.

The decisions are pure (`needs_match`, `choose`); `infer` gathers the facts.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from syncd.engine.reconcile import Base, Facts, Remote
from syncd.git.clone import Clone
from syncd.store.rpc import RpcStore


def needs_match(local: str | None, base: Base | None, remote: Remote | None) -> bool:
    """Whether a file's content could name a better base: the store knows the path, the file
    differs from the head, and the journal either has no base or sees both sides changed."""
    if local is None or remote is None or local == remote.sha256:
        return False
    return base is None or (local != base.sha256 and remote.sha256 != base.sha256)


def choose(local: str | None, journal: Base | None, matched: int | None,
           from_git: Base | None) -> Base | None:
    """The base for a path: the version the content matched if it is newer than the
    journal's (or the journal has none), else the journal's, else what Git says."""
    if matched is not None and (journal is None or matched > journal.version):
        return Base(matched, local, source="content")
    if journal is not None:
        return journal
    return from_git


class Inference:
    def __init__(self, root: Path, store: RpcStore):
        self.root = Path(root)
        self.store = store

    def infer(self, facts: Mapping[str, Facts]) -> dict[str, Base]:
        """The facts of every path of the pass (a `PassFacts`: made when asked, not held);
        returns the paths whose base is inferred, with that base."""
        asked = {p: f.local for p, f in facts.items() if needs_match(f.local, f.base, f.remote)}
        matched = self.store.match_versions(asked.items()) if asked else {}
        unbased = [p for p, f in facts.items() if f.base is None and f.remote is not None
                   and f.local != f.remote.sha256 and (p, f.local) not in matched]
        from_git = self._from_git(unbased) if unbased else {}
        inferred = {}
        for path in [*asked, *(p for p in from_git if p not in asked)]:
            f = facts[path]
            chosen = choose(f.local, f.base, matched.get((path, f.local)), from_git.get(path))
            if chosen is not None and chosen is not f.base:
                inferred[path] = chosen
        return inferred

    def _from_git(self, unbased: list[str]) -> dict[str, Base]:
        """The versions the clone's HEAD (else its newest imported commit) has at these paths."""
        clone = Clone.around(self.root)
        if clone is None:
            return {}  # (most roots: no set of the paths made)
        paths = set(unbased)
        found = self._versions_at(clone, "HEAD", paths)
        rest = paths - set(found)
        history = clone.history() if rest else []
        known = self.store.known_commit(history) if history else None
        if known is not None and known != history[0]:
            found |= self._versions_at(clone, known, rest)
        return found

    def _versions_at(self, clone: Clone, rev: str, paths: set[str]) -> dict[str, Base]:
        hashes = clone.hashes_at(rev, paths)
        versions = self.store.match_versions(hashes.items()) if hashes else {}
        return {path: Base(versions[(path, sha)], sha, source="git")
                for path, sha in hashes.items() if (path, sha) in versions}
