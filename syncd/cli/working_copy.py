"""The commands of a working copy's life: init, sync, run, pause, resume, status. Imported
when one of them runs (syncd.cli.main), so `syncd --version` pays for none of the engine."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
from pathlib import Path

import click

from syncd import config as configuration, logs
from syncd.cli.common import load_config, run_pass, working_copy
from syncd.cli.errors import EXIT_CONFLICTS, EXIT_NOT_SYNCED, EXIT_UNSETTLED, Failure
from syncd.engine.executor import DRY_RUN_OUTCOMES, Executor, Paused, SyncReport
from syncd.engine.journal import Journal
from syncd.engine.reconcile import Action
from syncd.store.connect import ENV_SERVICE_KEY, connect, open_workspace
from syncd.store.dsn import describe_dsn
from syncd.store.rpc import StoreError


@click.command()
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@click.option("--workspace", required=True, help="The workspace slug shared by the team's working copies.")
@click.option("--database-url", help="PostgreSQL URL of the store.")
@click.option("--supabase-url", help="The Supabase project's URL (instead of --database-url).")
@click.option("--anon-key", help="With --supabase-url: the project's public anon key, to sign in with GitHub.")
@click.pass_context
def init(ctx: click.Context, root: Path, workspace: str, database_url: str | None,
         supabase_url: str | None, anon_key: str | None) -> None:
    """Create a working copy's config for ROOT and register it with the store."""
    root = root.expanduser().resolve()
    path = ctx.obj["config_path"]
    if database_url:  # said before anything is made
        configuration.check_database_url(database_url, "--database-url")
    if database_url and supabase_url:
        raise click.UsageError("--database-url or --supabase-url, not both")
    made_root = [p for p in (root, *root.parents) if not p.exists()]  # deepest first
    made_state: list[Path] = []
    try:
        with configuration.new_config(path, root, workspace, database_url, supabase_url, anon_key) as cfg:
            made_state = [p for p in (cfg.state_directory, *cfg.state_directory.parents) if not p.exists()]
            root.mkdir(parents=True, exist_ok=True)
            ws, where = _register(cfg)
    except BaseException:
        # nothing half-made: fix what was said and run init again
        if made_state:  # the journal init began, in directories of its own making
            shutil.rmtree(made_state[-1], ignore_errors=True)
        for directory in made_root:
            try:
                directory.rmdir()
            except OSError:
                break  # something is in it now: not ours to remove
        raise
    if made_root:
        click.echo(f"created {root}")
    if ws is None:
        click.echo(f"wrote {path}; next: syncd --config {path} login, then sync --once (or run)")
        return
    click.echo(f"workspace {ws.slug} at {where} (change {ws.last_seq})")
    click.echo(f"wrote {path}; next: syncd --config {path} sync --once (or run)")


def _register(cfg) -> tuple[object | None, str | None]:
    """The workspace, opened (made) in the store, and where; (None, None) for a Supabase copy
    that signs in first (its first pass after that makes the workspace)."""
    journal = Journal(cfg.journal_path)
    try:
        if cfg.supabase_url and cfg.supabase_anon_key and not os.environ.get(ENV_SERVICE_KEY):
            journal.set_meta("create_workspace", "1")
            return None, None
        with connect(cfg, journal) as store:
            ws = store.open(create=True, device_name=cfg.device_name, hostname=socket.gethostname())
            return ws, store.describe() if cfg.database_url or cfg.supabase_url else "the embedded PostgreSQL"
    finally:
        journal.close()


SETTLE_PASSES = 5  # `sync` without --once: passes while files change during one, at most this many


@click.command()
@click.option("--once", is_flag=True, help="Exactly one pass, even if files changed during it (exit 4 then).")
@click.option("--dry-run", is_flag=True, help="Say what a pass would do (ask the store, change nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(ctx: click.Context, once: bool, dry_run: bool, as_json: bool) -> None:
    """Sync this working copy with the store, then exit: another pass right away while files
    changed during one (at most 5 in all), so that it ends settled; --once: one pass."""
    if dry_run:
        print_preview(dry_run_of(ctx), as_json)
        return
    cfg = load_config(ctx)
    journal = Journal(cfg.journal_path)
    try:
        if journal.get_meta("paused") == "1":
            raise Failure("this working copy is paused (`syncd pause`); `syncd resume` first")
        journal.lock()
        with connect(cfg, journal) as store:
            reports = [run_pass(cfg, journal, store)]
            while reports[-1].deferred and not once and len(reports) < SETTLE_PASSES:
                reports.append(run_pass(cfg, journal, store))
        journal.set_meta("last_sync", str(time.time()))
    finally:
        journal.close()
    report = together(reports)
    summary = {
        "pushed": len(report.pushed), "pulled": len(report.pulled),
        "deleted_local": len(report.deleted_local), "deleted_remote": len(report.deleted_remote),
        "moved": report.moved, "merged": report.merged, "resolved": report.resolved, "conflicts": report.conflicts,
        "skipped": report.skipped, "ignored": report.ignored, "failed": report.failed, "deferred": report.deferred,
        "held_deletes": report.held_deletes, "passes": len(reports),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"pushed {summary['pushed']}, pulled {summary['pulled']}, deleted "
                   f"{summary['deleted_local']} here and {summary['deleted_remote']} in the store")
        for new, old in report.moved.items():
            click.echo(f"moved: {old} -> {new}")
        for path in report.merged:
            click.echo(f"merged: {path}")
        for path in report.resolved:
            click.echo(f"resolved: {path}")
        for path in report.conflicts:
            click.echo(f"conflict (held): {path}")
        if report.conflicts:
            click.echo("see them with `syncd conflicts`; settle with `syncd resolve PATH --keep ...`")
        if report.held_deletes:
            click.echo(f"{len(report.held_deletes)} deletes held back; to let them through: "
                       "syncd resume --allow-deletes")
        if report.failed:
            click.echo(f"{report.trouble()}: each is named above")
    if report.conflicts or report.held_deletes:
        ctx.exit(EXIT_CONFLICTS)
    if report.failed:
        ctx.exit(EXIT_NOT_SYNCED)
    if report.deferred:
        ctx.exit(EXIT_UNSETTLED)


def together(reports: list[SyncReport]) -> SyncReport:
    """What the passes did, added up; what is held, skipped or deferred as the last one left it."""
    last = reports[-1]
    return dataclasses.replace(
        last, **{name: [p for r in reports for p in getattr(r, name)]
                 for name in ("pushed", "pulled", "deleted_local", "deleted_remote", "adopted", "merged", "resolved")},
        moved={new: old for r in reports for new, old in r.moved.items()},
        conflict_copies={path: copy for r in reports for path, copy in r.conflict_copies.items()})


def dry_run_of(ctx: click.Context) -> dict[str, list[str]]:
    """What a pass would do now (see `Executor.dry_run`)."""
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        open_workspace(store, cfg, journal)
        return Executor.from_config(cfg, journal, store).dry_run()


def print_preview(outcomes: dict[str, list[str]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"dry_run": True, **outcomes}, indent=2))
        return
    click.echo("dry run: nothing was changed; a pass now would leave")
    for outcome, paths in outcomes.items():
        click.echo(f"  {len(paths):6d} {DRY_RUN_OUTCOMES[outcome]}")
    for path in outcomes["held"]:
        click.echo(f"conflict (would be held): {path}")


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Keep this working copy in sync until stopped (SIGTERM/SIGINT; SIGHUP reloads)."""
    from syncd.daemon.service import Daemon
    cfg = load_config(ctx)
    journal = Journal(cfg.journal_path)  # first: it says a state directory that cannot be made
    logs.setup(ctx.obj["log_level"] or "info", cfg.state_directory / logs.FILE_NAME)
    try:
        journal.lock()
        with connect(cfg, journal) as store:
            code = Daemon(cfg, journal, store).run()
    finally:
        journal.close()
    ctx.exit(code)


@click.command()
@click.pass_context
def pause(ctx: click.Context) -> None:
    """Stop syncing this working copy until `syncd resume` (the daemon keeps running)."""
    with working_copy(ctx) as (_, journal):
        journal.set_meta("paused", "1")
        running = journal.locked_by()
    click.echo("paused; local and remote changes wait until `syncd resume`"
               + (f" (the running syncd, pid {running}, stops syncing within a second)" if running else ""))


@click.command()
@click.option("--allow-deletes", is_flag=True, help="Let held-back deletes through, once.")
@click.pass_context
def resume(ctx: click.Context, allow_deletes: bool) -> None:
    """Undo `syncd pause` and ask for a pass now; with --allow-deletes, let a held mass delete through."""
    with working_copy(ctx) as (_, journal):
        held = json.loads(journal.get_meta("held_deletes") or "[]")
        was_paused = journal.get_meta("paused") == "1"
        journal.set_meta("paused", "0")
        if allow_deletes:
            journal.set_meta("allow_deletes", "1")
        journal.set_meta("resume", str(time.time()))
        running = journal.locked_by()
    if was_paused:
        click.echo("resumed")
    if allow_deletes:
        click.echo(f"{len(held)} held deletes will go through on the next pass" if held
                   else "deletes are allowed for the next pass")
    click.echo(f"the running syncd (pid {running}) will sync within a second" if running
               else "no syncd runs for this working copy: `syncd sync --once` or `syncd run`")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The daemon's state, pending changes, conflicts and held deletes (no network, but
    before the first pass: then it asks the store what that pass would do)."""
    cfg = load_config(ctx)
    journal = Journal(cfg.journal_path)
    try:
        state = copy_state(cfg, journal, lambda: dry_run_of(ctx))
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps(state, indent=2))
    else:
        _print_status(state, cfg)
    ctx.exit(status_code(state))


def copy_state(cfg, journal: Journal, first_pass_of) -> dict:
    """What `syncd status --json` reports (and the dashboard shows): the daemon's state from the
    journal, pending changes from a scan, and, before the first pass, what `first_pass_of()`
    says that pass would do."""
    pid = journal.locked_by()
    daemon = json.loads(journal.get_meta("daemon") or "{}")
    last = journal.get_meta("last_sync")
    last_sync = max(filter(None, [float(last) if last else None, daemon.get("last_success")]), default=None)
    first_pass = None
    if journal.cursor == 0 and not journal.bases():  # never synced: what the first pass would do
        try:
            first_pass = first_pass_of()
        except (StoreError, Paused) as exc:
            first_pass = {"unknown": str(exc)}
    try:
        plan = Executor.from_config(cfg, journal, None).preview()
        pending = {
            "local": sorted(plan.get(Action.PUSH, []) + plan.get(Action.DELETE_REMOTE, [])
                            + plan.get(Action.MOVE_REMOTE, [])),
            "remote": sorted(plan.get(Action.PULL, []) + plan.get(Action.DELETE_LOCAL, [])
                             + plan.get(Action.MOVE_LOCAL, [])),
        }
    except Paused as exc:
        pending = {"local": None, "remote": None, "unknown": str(exc)}
    from syncd.store.embedded import describe as describe_embedded  # which binaries, which data
    return {
        "config": str(cfg.path),
        "root": str(cfg.root),
        "workspace": cfg.workspace,
        "store": (describe_dsn(cfg.database_url) if cfg.database_url
                  else f"Supabase {cfg.supabase_url}" if cfg.supabase_url else "embedded"),
        "embedded": None if cfg.database_url or cfg.supabase_url else describe_embedded(),
        "daemon": {"running": pid is not None, "pid": pid,
                   "state": daemon.get("state") if pid else "not running",
                   "reason": daemon.get("reason") if pid else None},
        "paused": journal.get_meta("paused") == "1",
        "cursor": journal.cursor,
        "last_sync": last_sync,
        "pending": pending,
        "held_deletes": json.loads(journal.get_meta("held_deletes") or "[]"),
        "first_pass": first_pass,
        "conflicts": [
            {"path": c.path, "base_version": c.base_version, "remote_version": c.remote_version,
             "detected_at": c.detected_at}
            for c in journal.conflicts()
        ],
    }


def status_code(state: dict) -> int:
    """`status` ends as a pass would: 3 while conflicts or deletes are held, 5 while the
    daemon cannot sync (degraded, or paused by a safety valve), else 0 (also when paused by
    `syncd pause`, which was asked for, or offline, where changes wait safely on disk)."""
    if state["conflicts"] or state["held_deletes"]:
        return EXIT_CONFLICTS
    daemon = state["daemon"]["state"]
    if daemon == "degraded" or (daemon == "paused" and not state["paused"]):
        return EXIT_NOT_SYNCED
    return 0


def _print_status(state: dict, cfg) -> None:
    d, pending, first_pass, last_sync = state["daemon"], state["pending"], state["first_pass"], state["last_sync"]
    click.echo(f"{state['root']} ⇄ workspace {state['workspace']} at {state['store']} (change {state['cursor']})")
    click.echo(f"daemon: {d['state']}" + (f" (pid {d['pid']})" if d["pid"] else "")
               + (f": {d['reason']}" if d["reason"] else ""))
    if state["paused"] and not d["running"]:
        click.echo("paused (`syncd pause`): `syncd resume` continues")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_sync)) if last_sync else "never"
    click.echo(f"last sync: {when}")
    if first_pass and "unknown" in first_pass:
        click.echo(f"never synced; what the first pass would do is unknown ({first_pass['unknown']})")
    elif first_pass:
        click.echo("never synced; the first pass would leave: " + ", ".join(
            f"{len(paths)} {DRY_RUN_OUTCOMES[outcome]}" for outcome, paths in first_pass.items() if paths))
    elif pending.get("unknown"):
        click.echo(f"pending: unknown ({pending['unknown']})")
    else:
        click.echo(f"pending: {len(pending['local'])} local, {len(pending['remote'])} remote")
    if state["held_deletes"]:
        click.echo(f"held deletes: {len(state['held_deletes'])} (over the limits: more than "
                   f"{cfg.deletes.max_count} files and {round(cfg.deletes.max_share * 100)}% of the tree); "
                   "syncd resume --allow-deletes to let them through")
    if not state["conflicts"]:
        click.echo("no conflicts")
    for c in state["conflicts"]:
        click.echo(f"conflict (held): {c['path']} (base v{c['base_version']}, store v{c['remote_version']})")
