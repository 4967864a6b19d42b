"""A legacy workspace that is a Git repository with a history by several people over days."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ALICE = ("Alice Archer", "alice@example.com")
BOB = ("Bob Builder", "bob@example.com")
CAROL = ("Carol Chen", "carol@example.com")

SPEC = "projects/P/sessions/s1/specs/spec.md"
PLAN = "projects/P/sessions/s1/plans/plan.md"
PLAN_V2 = "projects/P/sessions/s1/plans/plan-v2.md"


def git(root: Path, *args: str, author: tuple[str, str] = ALICE, when: str | None = None,
        check: bool = True) -> str:
    """git as the user runs it (GIT_OPTIONAL_LOCKS=0: `git status` must not rewrite the
    index while a test compares its bytes)."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0",
           "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
           "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1]}
    if when:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    return subprocess.run(["git", *args], cwd=root, env=env, check=check, capture_output=True,
                          text=True).stdout.strip()


def write(root: Path, rel: str, data: str | bytes) -> None:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode() if isinstance(data, str) else data)


def make_legacy_repo(root: Path) -> None:
    """Three people over three days; then an uncommitted edit and an untracked file."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, ".owner", "github|alice\ncarol\n")
    write(root, "projects/P/CURRENT_SESSION", "session_id: s1\ncanonical_root: ./sessions\n")
    write(root, "projects/P/session_state.json", '{"stages": {"intent": "completed", "spec": "in_progress"}}\n')
    write(root, "projects/P/sessions/s1/.owner", "alice\n")
    write(root, "projects/P/sessions/s1/metadata/.collaborators", "# people\nbob\ndave\n")
    write(root, SPEC, "# Spec\r\n\r\nFirst draft.\r\n")
    write(root, PLAN, "# Plan\n\nStep one.\n")
    write(root, "projects/P/sessions/s1/tasks/old.md", "obsolete\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start the session", when="2024-03-01T09:00:00+01:00")
    write(root, SPEC, "# Spec\r\n\r\nSecond draft, by Bob.\r\n")
    git(root, "commit", "-q", "-am", "spec: second draft", author=BOB, when="2024-03-02T14:30:00+05:30")
    git(root, "mv", PLAN, PLAN_V2)
    write(root, PLAN_V2, "# Plan\n\nStep one.\nStep two.\n")
    git(root, "rm", "-q", "projects/P/sessions/s1/tasks/old.md")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "plan v2", author=CAROL, when="2024-03-04T08:15:00-05:00")
    write(root, SPEC, "# Spec\r\n\r\nSecond draft, by Bob.\r\nUncommitted line.\r\n")  # not committed
    write(root, "projects/P/sessions/s1/feedback/notes.md", "untracked\n")


def show(root: Path, spec: str) -> bytes:
    """The exact bytes of `git show REV:PATH`."""
    return subprocess.run(["git", "show", spec], cwd=root, check=True, capture_output=True).stdout
