"""What every command shares: the working copy, paths, a pass now."""
from __future__ import annotations

import datetime
import io
import os
import time
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import click
import click.shell_completion

from syncd import config as configuration
from syncd.cli.errors import Failure
from syncd.config import Config, ConfigError
from syncd.content import decode_entry
from syncd.engine.executor import Executor, SyncReport
from syncd.engine.identity import check_workspace
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal, JournalLocked, JournalUnwritable
from syncd.git import PENDING
from syncd.store.blobs import blobs_for
from syncd.store.connect import agree_layout, connect, open_workspace
from syncd.store.rpc import RpcStore, StoreError, Workspace

DAEMON_WAIT = 30.0  # how long a command waits for the running daemon to carry out a request


def load_config(ctx: click.Context) -> Config:
    return configuration.load(ctx.find_root().obj["config_path"])


@contextmanager
def working_copy(ctx: click.Context) -> Iterator[tuple[Config, Journal]]:
    cfg = load_config(ctx)
    journal = Journal(cfg.journal_path)
    try:
        yield cfg, journal
    finally:
        journal.close()


@contextmanager
def workspace_store(ctx: click.Context) -> Iterator[tuple[Config, RpcStore, Workspace]]:
    """The working copy's store, its workspace open, for commands that only read the store."""
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        yield cfg, store, open_workspace(store, cfg, journal)


def document_path(cfg: Config, given: str) -> str:
    """A document path from what the user typed: a path in the filesystem (absolute, or
    relative to a current directory inside the working copy), else relative to the root."""
    roots = {os.path.normpath(cfg.root), os.path.realpath(cfg.root)}
    if os.path.isabs(given):
        candidates = [given]
    else:
        cwd = os.getcwd()
        inside = [r for r in roots if os.path.commonpath([cwd, r]) == r
                  or os.path.commonpath([os.path.realpath(cwd), r]) == r]
        candidates = [os.path.join(cwd, given), os.path.join(os.path.realpath(cwd), given)] if inside else []
    for candidate in candidates:
        for root in roots:
            rel = os.path.relpath(os.path.normpath(candidate), root)
            if not rel.startswith("..") and rel != ".":
                return PurePosixPath(Path(rel)).as_posix()
    if candidates:
        raise Failure(f"{given}: not inside the working copy {cfg.root}")
    parts = PurePosixPath(given).parts
    if not parts or any(p in ("..", "/") for p in parts):
        raise Failure(f"{given}: give a path inside the working copy {cfg.root}")
    return "/".join(p for p in parts if p != ".")


def complete_path(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[click.shell_completion.CompletionItem]:
    """Shell completion of a PATH: what is under the working copy's root (`syncd log sp<TAB>`),
    one directory at a time, without what never syncs."""
    cfg = _completing_for(ctx)
    if cfg is None:
        return []
    directory, _, prefix = incomplete.rpartition("/")
    try:
        entries = sorted(os.scandir(cfg.root / directory), key=lambda e: e.name)
    except OSError:
        return []
    rules, found = IgnoreRules.of(cfg), []
    for entry in entries:
        path = f"{directory}/{entry.name}" if directory else entry.name
        folder = entry.is_dir(follow_symlinks=False)
        if entry.name.startswith(prefix) and not rules.ignores(path, is_dir=folder):
            found.append(click.shell_completion.CompletionItem(path + "/" if folder else path))
    return found


def complete_conflict(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a PATH held as a conflict (`syncd resolve <TAB>`)."""
    cfg = _completing_for(ctx)
    if cfg is None:
        return []
    try:
        journal = Journal(cfg.journal_path)
    except JournalUnwritable:
        return []
    try:
        return [c.path for c in journal.conflicts() if c.path.startswith(incomplete)]
    finally:
        journal.close()


def _completing_for(ctx: click.Context) -> Config | None:
    """The config a shell completion is for (the group's --config: it ran no callback to
    record it); None when it cannot be read, so nothing is offered."""
    try:
        return configuration.load(ctx.find_root().params["config_path"])
    except ConfigError:
        return None


def run_pass(cfg: Config, journal: Journal, store: RpcStore) -> SyncReport:
    """Open the workspace, run one pass, and record what it moved in the Git mirror."""
    check_workspace(journal, store, open_workspace(store, cfg, journal))
    agree_layout(store, cfg)
    report = Executor.from_config(cfg, journal, store).sync_once()
    if not report.moved_paths() and journal.get_meta(PENDING) in (None, "[]"):
        return report  # nothing for the mirror: GitPython stays unloaded (a sixth of a quiet pass)
    from syncd.git.recorder import Recorder
    recorder = Recorder.for_config(cfg, journal, store)
    if recorder is not None:
        recorder.after_pass(report)
    return report


def sync_now(cfg: Config, journal: Journal, done: Callable[[], bool]) -> SyncReport | None:
    """A pass right away: this process runs it when no syncd runs for the working copy,
    else the running daemon is asked to and awaited until `done()` (None: it has not yet)."""
    if journal.locked_by() is None:
        try:
            journal.lock()
        except JournalLocked:
            pass  # a daemon started just now: ask it instead
        else:
            with connect(cfg, journal) as store:
                return run_pass(cfg, journal, store)
    journal.set_meta("resume", str(time.time()))
    deadline = time.monotonic() + DAEMON_WAIT
    while time.monotonic() < deadline:
        if done():
            return SyncReport()
        time.sleep(0.1)
    return None


def version_bytes(store: RpcStore, path: str, version: int) -> bytes | None:
    """A version's exact bytes; None for a delete."""
    v = store.version(path, version)
    return None if v["deleted"] else decoded(store, v)


def decoded(store: RpcStore, v: dict) -> bytes:
    """A version record's bytes (a blob's from the blob store, a link's target); a content
    that does not match the schema is a StoreError."""
    try:
        entry = decode_entry(v["content"])
    except ValueError as exc:
        raise StoreError(f"{v['path']}: version {v['version']} in the store cannot be decoded ({exc})") from None
    if entry.data is not None:
        return entry.data
    out = io.BytesIO()
    blobs_for(store).get(entry.digest, entry.size, out)
    return out.getvalue()


def when(iso: str | float | None) -> str:
    """A store timestamp or a Unix time, as local time for people."""
    if iso is None:
        return "-"
    moment = (datetime.datetime.fromtimestamp(iso) if isinstance(iso, (int, float))
              else datetime.datetime.fromisoformat(iso).astimezone())
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def who(version: dict) -> str:
    return version.get("author") or version.get("device") or "unknown"
