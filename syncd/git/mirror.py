"""Versions as Git commits, without touching what the user is doing in the repository.

Every commit is built in a temporary index (GIT_INDEX_FILE) from its parent's tree plus
the batch, with plumbing only (hash objects, update-index, write-tree, commit-tree), and
the branch moves by compare-and-swap. In `ref` mode that branch is syncd's own: the
user's work tree, index, HEAD and branches are never read for writing, even mid-rebase.
In `branch` mode it is the checked-out branch, only when no operation is in progress,
and the user's index is then brought up to date only where they had staged nothing.
"""
from __future__ import annotations

import datetime
import io
import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb import IStream

from syncd.git.history import Author

log = logging.getLogger("syncd.git")

ZERO = "0" * 40
IN_PROGRESS = {"rebase-merge": "a rebase", "rebase-apply": "a rebase or git am", "MERGE_HEAD": "a merge",
               "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert", "BISECT_LOG": "a bisect"}


class MirrorError(Exception):
    pass


class UnsafeToCommit(MirrorError):
    pass


@dataclass(frozen=True)
class MirrorEntry:
    path: str  # relative to the sync root
    data: bytes | None  # None: deleted; a link's target for a link
    author: Author
    at: datetime.datetime
    version: int
    mode: str = "100644"  # 100755: executable; 120000: a symbolic link


class Mirror:
    def __init__(self, repo: str | os.PathLike, mode: str = "ref", branch: str = "syncd/mirror",
                 prefix: str = ""):
        if mode not in ("ref", "branch"):
            raise ValueError(f"git mirror mode must be ref or branch, not {mode!r}")
        try:
            self.repo = git.Repo(repo, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise MirrorError(f"{repo} is not a Git repository") from None
        self.mode = mode
        self.branch = branch
        self.prefix = prefix.strip("/")
        self.top = Path(self.repo.working_tree_dir or self.repo.git_dir)

    def _git(self, *args: str, stdin: bytes | None = None, env: dict | None = None) -> str:
        # paths are names, never patterns: a document may be called `:x` or `[draft] *.md`
        done = subprocess.run(["git", *args], cwd=self.top, input=stdin, capture_output=True,
                              env={**os.environ, "GIT_LITERAL_PATHSPECS": "1", **(env or {})})
        if done.returncode != 0:
            raise MirrorError(f"git {args[0]}: {done.stderr.decode(errors='replace').strip()[:500]}")
        return done.stdout.decode(errors="replace").strip()

    def _resolve(self, ref: str) -> str | None:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], cwd=self.top,
                              capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    def _target(self) -> tuple[str, str | None, str | None]:
        """(ref to move, its current commit, the first commit's parent)."""
        if self.mode == "ref":
            ref = f"refs/heads/{self.branch}"
            old = self._resolve(ref)
            return ref, old, old or self._resolve("HEAD")
        git_dir = Path(self._git("rev-parse", "--absolute-git-dir"))
        for marker, what in IN_PROGRESS.items():
            if (git_dir / marker).exists():
                raise UnsafeToCommit(f"{what} is in progress in {self.top}; the mirror waits until it is done")
        done = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=self.top, capture_output=True, text=True)
        head = self._resolve("HEAD")
        if done.returncode != 0 or head is None:
            raise UnsafeToCommit(f"HEAD in {self.top} is detached or has no commit; the mirror waits")
        return done.stdout.strip(), head, head

    def record(self, entries: Sequence[MirrorEntry]) -> list[str]:
        """Commit a batch, one commit per author; returns the new commit ids."""
        if not entries:
            return []
        ref, old, parent = self._target()
        groups: dict[Author, list[MirrorEntry]] = {}
        for entry in entries:
            groups.setdefault(entry.author, []).append(entry)
        made: list[str] = []
        with tempfile.TemporaryDirectory(prefix="syncd-mirror-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._git("read-tree", *([parent] if parent else ["--empty"]), env=env)
            base = self._git("write-tree", env=env)  # the parent's tree, or the empty one
            for author, group in groups.items():
                tree = self._stage({e.path: e for e in group}.values(), env)  # the last version wins
                if tree == base:
                    continue  # nothing new: no empty commits
                parent, base = self._commit(tree, parent, author, group), tree
                made.append(parent)
        if not made:
            return []
        self._git("update-ref", "-m", "syncd mirror", ref, made[-1], old or ZERO)
        if self.mode == "branch":
            self._refresh_index(old, made[-1], [e.path for e in entries])
        return made

    def _repo_path(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _stage(self, entries, env: dict) -> str:
        paths = [self._repo_path(e.path) for e in entries]
        lines = []
        for entry, path in zip(entries, paths):
            if entry.data is None:
                lines.append(f"0 {ZERO}\t{path}\0")
            else:
                blob = self.repo.odb.store(IStream(b"blob", len(entry.data), io.BytesIO(entry.data))).hexsha
                blob = blob.decode() if isinstance(blob, bytes) else blob
                lines.append(f"{entry.mode} {blob}\t{path}\0")  # the version's mode: never a submodule
        self._git("update-index", "-z", "--index-info", stdin="".join(lines).encode(), env=env)
        return self._git("write-tree", env=env)

    def _commit(self, tree: str, parent: str | None, author: Author, entries: list[MirrorEntry]) -> str:
        when = max(e.at for e in entries)
        offset = when.utcoffset() or datetime.timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        stamp = f"{int(when.timestamp())} {'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        paths = dict.fromkeys(e.path for e in entries)
        subject = (f"syncd: update {entries[0].path}" if len(paths) == 1
                   else f"syncd: {len(paths)} documents by {author.name}")
        trailers = "".join(f"Syncd-Version: {e.path}@{e.version}{' (deleted)' if e.data is None else ''}\n"
                           for e in entries)
        env = {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email, "GIT_AUTHOR_DATE": stamp,
               "GIT_COMMITTER_NAME": "syncd", "GIT_COMMITTER_EMAIL": "syncd@localhost"}
        return self._git("commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-",
                         stdin=f"{subject}\n\n{trailers}".encode(), env=env)

    def _refresh_index(self, old: str, new: str, paths: list[str]) -> None:
        """The user's index follows the new commit for synced paths they had not staged."""
        repo_paths = [self._repo_path(p) for p in dict.fromkeys(paths)]

        def entries(listing: str, tree: bool) -> dict[str, tuple[str, str]]:
            out = {}
            for item in filter(None, listing.split("\0")):
                info, path = item.split("\t", 1)
                fields = info.split()
                out[path] = (fields[0], fields[2] if tree else fields[1])
            return out
        staged = entries(self._git("ls-files", "-s", "-z", "--", *repo_paths), tree=False)
        before = entries(self._git("ls-tree", "-z", old, "--", *repo_paths), tree=True)
        after = entries(self._git("ls-tree", "-z", new, "--", *repo_paths), tree=True)
        lines = []
        for path in repo_paths:
            if staged.get(path) != before.get(path):
                continue  # the user staged something of their own here: theirs stays
            mode, blob = after.get(path, ("0", ZERO))
            lines.append(f"{mode} {blob}\t{path}\0")
        if not lines:
            return
        try:
            self._git("update-index", "-z", "--index-info", stdin="".join(lines).encode())
        except MirrorError as exc:  # index.lock held by the user's git: their index stays as it is
            log.warning("git mirror: committed on %s, but the index was not refreshed (%s); "
                        "`git status` may show those paths as staged until `git reset -q -- <path>`", new[:10], exc)

    def push(self, remote: str) -> None:
        ref = (f"refs/heads/{self.branch}" if self.mode == "ref"
               else self._git("symbolic-ref", "HEAD"))
        # never wait for a password or a host-key question nobody is there to answer
        quiet = {"GIT_TERMINAL_PROMPT": "0",
                 "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")}
        self._git("push", "-q", remote, f"{ref}:{ref}", env=quiet)
