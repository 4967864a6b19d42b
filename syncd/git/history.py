"""A repository's history as ordered per-commit file changes, for `syncd import`.

Three git processes for the whole history, however long: `rev-list` for the order, one
`diff-tree --stdin` for every commit's changes against its first parent, one `cat-file
--batch` for contents; authors come from a single `log`. Oldest first, topological, side
branches included.
"""
from __future__ import annotations

import datetime
import os
import subprocess
from dataclasses import dataclass
from typing import Iterator

import git

KINDS = ("100644", "100755", "120000")  # what a version can be: a file, executable, a link


class HistoryError(Exception):
    pass


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class FileChange:
    """`blob` None: deleted. A rename is reported twice: the new path with `renamed_from`,
    and the old path deleted, so a reader that ignores renames still sees both facts."""
    path: str
    blob: str | None
    renamed_from: str | None = None
    mode: str = "100644"  # Git's: 100644, 100755 (executable) or 120000 (a symbolic link)


@dataclass(frozen=True)
class HistoryCommit:
    sha: str
    author: Author
    authored_at: datetime.datetime
    summary: str
    changes: tuple[FileChange, ...]


class History:
    def __init__(self, repo: str | os.PathLike, prefix: str = ""):
        try:
            self.repo = git.Repo(repo)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise HistoryError(f"{repo} is not a Git repository") from None
        self.prefix = prefix.strip("/")
        self.skipped: list[str] = []
        self._skipped_seen: set[str] = set()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.repo.close()

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        done = subprocess.run(["git", "-C", self.repo.working_tree_dir or self.repo.git_dir, *args],
                              input=stdin, capture_output=True)
        if done.returncode != 0:
            raise HistoryError(f"git {args[0]} failed in {self.repo.working_tree_dir}: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def _order(self, rev: str) -> list[list[str]]:
        """[commit, parents...], oldest first; [] for a repository without commits."""
        try:
            self.repo.head.commit
        except ValueError:
            if rev == "HEAD":
                return []
        try:
            self.repo.rev_parse(rev)
        except (git.BadName, ValueError):
            raise HistoryError(f"{rev!r} names no commit in {self.repo.working_tree_dir}") from None
        # "--": a workspace directory named like the branch must not make the rev ambiguous
        out = self._git("rev-list", "--reverse", "--topo-order", "--parents", rev, "--")
        return [line.split() for line in out.decode().splitlines()]

    def count(self, rev: str = "HEAD") -> int:
        return len(self._order(rev))

    def commits(self, rev: str = "HEAD") -> Iterator[HistoryCommit]:
        order = self._order(rev)
        if not order:
            return
        authors = self._authors([c[0] for c in order])
        # "<commit> <first parent>": a merge is compared with its first parent only
        lines = "".join(" ".join(c[:2]) + "\n" for c in order).encode()
        changes = self._parse(self._git("diff-tree", "--stdin", "--root", "-r", "-z", "--raw", "-M", stdin=lines))
        for entry in order:
            sha = entry[0]
            author, when, summary = authors[sha]
            yield HistoryCommit(sha, author, when, summary, tuple(sorted(changes.get(sha, []), key=lambda c: c.path)))

    def _authors(self, shas: list[str]) -> dict[str, tuple[Author, datetime.datetime, str]]:
        """The message comes whole (%B, last) because %s folds a first paragraph into one line;
        --no-show-signature because a user's log.showSignature would print into the output."""
        out = self._git("log", "--no-walk=unsorted", "--no-show-signature", "-z",
                        "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B", "--stdin", stdin="\n".join(shas).encode())
        result = {}
        for record in out.decode("utf-8", errors="replace").split("\0"):
            if record:
                sha, name, email, when, message = record.split("\x1f", 4)
                result[sha] = (Author(name, email), datetime.datetime.fromisoformat(when), message.split("\n", 1)[0])
        return result

    def _parse(self, raw: bytes) -> dict[str, list[FileChange]]:
        """diff-tree --stdin -z output: per commit with changes, its id, then entries
        `:oldmode newmode oldsha newsha status`, each followed by its path (two for R/C)."""
        fields = raw.split(b"\0")
        result: dict[str, list[FileChange]] = {}
        current: list[FileChange] | None = None
        i = 0
        while i < len(fields):
            field = fields[i]
            if not field:
                i += 1
                continue
            if not field.startswith(b":"):  # a commit id: its changes follow
                current = result.setdefault(field.decode(), [])
                i += 1
                continue
            old_mode, new_mode, _, new_sha, status = field[1:].decode().split(" ")
            if status[0] in "RC":
                old_path, new_path = fields[i + 1], fields[i + 2]
                i += 3
            else:
                old_path = new_path = fields[i + 1]
                i += 2
            self._add(current, status[0], old_mode, new_mode, new_sha, old_path, new_path)
        return result

    def _add(self, out: list[FileChange], status: str, old_mode: str, new_mode: str, new_sha: str,
             old_raw: bytes, new_raw: bytes) -> None:
        old, new = self._relative(old_raw), self._relative(new_raw)
        was_file, is_file = old_mode in KINDS, new_mode in KINDS
        if status == "R":
            if old is not None and was_file:
                out.append(FileChange(old, None))
            if new is not None and is_file:
                out.append(FileChange(new, new_sha, old if was_file else None, new_mode))
            return
        if new is None:
            return
        if status == "D" or not is_file:
            if was_file and status != "A":
                out.append(FileChange(new, None))  # deleted, or no longer a regular file
            return
        out.append(FileChange(new, new_sha, mode=new_mode))  # A, C (a copy is an add), M, T (a mode change)

    def _relative(self, raw: bytes) -> str | None:
        """The path under the prefix, None when outside it or not UTF-8."""
        try:
            path = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = raw.decode("utf-8", errors="replace")
            if shown not in self._skipped_seen:
                self._skipped_seen.add(shown)
                self.skipped.append(f"{shown}: the file name is not UTF-8; not imported (rename it in Git)")
            return None
        if not self.prefix:
            return path
        if not path.startswith(self.prefix + "/"):
            return None
        return path[len(self.prefix) + 1:]

    def blob(self, object_id: str) -> bytes:
        return self.repo.odb.stream(bytes.fromhex(object_id)).read()

