"""The `syncd` command line.

Exit codes: 0 done (in sync), 1 error, 2 usage, 3 conflicts are held, 4 files changed during
the pass (run again).
"""
from __future__ import annotations

import functools
import json
import logging
import socket
import sys
import time
import uuid
from pathlib import Path

import click

from syncd import config as configuration
from syncd.config import Config, ConfigError
from syncd.engine.executor import Executor, RootMissing
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import Journal, JournalLocked
from syncd.store.migrate import migrate
from syncd.store.postgres import PostgresStore, describe_dsn
from syncd.store.rpc import StoreError

EXIT_CONFLICTS = 3
EXIT_UNSETTLED = 4


class Failure(click.ClickException):
    """A one-line error; click prints it as `Error: ...` and exits 1."""


def friendly(fn):
    """Turn the errors a user can fix into one clear line instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreError, RootMissing, JournalLocked) as exc:
            raise Failure(str(exc)) from exc
    return wrapper


def _config(ctx: click.Context) -> Config:
    return configuration.load(ctx.obj["config_path"])


def _store(cfg: Config, journal: Journal) -> PostgresStore:
    if not cfg.database_url:
        raise ConfigError(
            f"{cfg.path}: key 'database_url' is not set (or set {configuration.ENV_DATABASE_URL})")
    device_id = journal.get_meta("device_id")
    if device_id is None:
        device_id = str(uuid.uuid4())
        journal.set_meta("device_id", device_id)
    return PostgresStore(cfg.database_url, cfg.workspace, device_id)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar=configuration.ENV_CONFIG,
              default=configuration.default_config_path, show_default="the XDG config dir's syncd/syncd.yaml",
              help="This working copy's config file (env SYNCD_CONFIG).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int) -> None:
    """Sync IDSE session directories with versioned documents in PostgreSQL/Supabase."""
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="syncd: %(levelname)s: %(message)s", stream=sys.stderr,
    )
    ctx.obj = {"config_path": Path(config_path).expanduser().absolute()}


@main.command()
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--workspace", required=True, help="The workspace slug shared by the team's working copies.")
@click.option("--database-url", help="PostgreSQL URL of the store.")
@click.pass_context
@friendly
def init(ctx: click.Context, root: Path, workspace: str, database_url: str | None) -> None:
    """Create a working copy's config for ROOT and register it with the store."""
    root = root.expanduser().resolve()
    path = ctx.obj["config_path"]
    if not root.exists():
        root.mkdir(parents=True)
        click.echo(f"created {root}")
    configuration.write_new(path, root, workspace, database_url)
    cfg = configuration.load(path)
    if cfg.database_url:
        journal = Journal(cfg.journal_path)
        try:
            store = _store(cfg, journal)
            ws = store.open(create=True, device_name=cfg.device_name, hostname=socket.gethostname())
            store.close()
        except StoreError:
            path.unlink()  # nothing half-made: fix the store and run init again
            raise
        finally:
            journal.close()
        click.echo(f"workspace {ws.slug} at {describe_dsn(cfg.database_url)} (change {ws.last_seq})")
    click.echo(f"wrote {path}; next: syncd --config {path} sync --once")


@main.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
@click.option("--database-url", help="Defaults to the config's database_url.")
@click.pass_context
@friendly
def db_migrate(ctx: click.Context, database_url: str | None) -> None:
    """Apply the SQL contract's migrations (idempotent)."""
    url = database_url or _config(ctx).database_url
    if not url:
        raise Failure("no database: pass --database-url or set database_url in the config")
    import psycopg
    try:
        done = migrate(url)
    except psycopg.OperationalError as exc:
        raise Failure(f"cannot reach the database {describe_dsn(url)}: {str(exc).strip().splitlines()[0]}") from exc
    for m in done:
        click.echo(f"applied {m.version:04d}_{m.name}")
    click.echo("schema up to date" if not done else f"{len(done)} migration(s) applied")


@main.command()
@click.option("--once", is_flag=True, default=True, help="One pass, then exit (`syncd run` keeps going).")
@click.option("--json", "as_json", is_flag=True, help="Print the pass's report as JSON.")
@click.pass_context
@friendly
def sync(ctx: click.Context, once: bool, as_json: bool) -> None:
    """Sync this working copy with the store, once."""
    cfg = _config(ctx)
    journal = Journal(cfg.journal_path)
    try:
        journal.lock()
        store = _store(cfg, journal)
        try:
            store.open(device_name=cfg.device_name, hostname=socket.gethostname())
            report = Executor(cfg.root, journal, store, IgnoreRules(cfg.ignore), cfg.files).sync_once()
        finally:
            store.close()
        journal.set_meta("last_sync", str(time.time()))
    finally:
        journal.close()
    summary = {
        "pushed": len(report.pushed), "pulled": len(report.pulled),
        "deleted_local": len(report.deleted_local), "deleted_remote": len(report.deleted_remote),
        "conflicts": report.conflicts, "skipped": report.skipped, "deferred": report.deferred,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"pushed {summary['pushed']}, pulled {summary['pulled']}, deleted "
                   f"{summary['deleted_local']} here and {summary['deleted_remote']} in the store")
        for path in report.conflicts:
            click.echo(f"conflict (held): {path}")
    if report.conflicts:
        ctx.exit(EXIT_CONFLICTS)
    if report.deferred:
        ctx.exit(EXIT_UNSETTLED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly
def status(ctx: click.Context, as_json: bool) -> None:
    """What this working copy knows, from its journal (no network)."""
    cfg = _config(ctx)
    journal = Journal(cfg.journal_path)
    try:
        last = journal.get_meta("last_sync")
        state = {
            "config": str(cfg.path),
            "root": str(cfg.root),
            "workspace": cfg.workspace,
            "cursor": journal.cursor,
            "last_sync": float(last) if last else None,
            "conflicts": [
                {"path": c.path, "base_version": c.base_version, "remote_version": c.remote_version,
                 "detected_at": c.detected_at}
                for c in journal.conflicts()
            ],
        }
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"{state['root']} ⇄ workspace {state['workspace']} (change {state['cursor']})")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state["last_sync"])) if last else "never"
    click.echo(f"last sync: {when}")
    if not state["conflicts"]:
        click.echo("no conflicts")
    for c in state["conflicts"]:
        click.echo(f"conflict (held): {c['path']} (base v{c['base_version']}, store v{c['remote_version']})")
