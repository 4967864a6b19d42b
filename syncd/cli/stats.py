"""`syncd stats` and `syncd report --html`: the pipeline's analytics from the store's views."""
from __future__ import annotations

import datetime
import json
import os
from collections import defaultdict
from pathlib import Path

import click

from syncd.cli.common import Failure, when, workspace_store
from syncd.report.page import STAGES, render
from syncd.report.units import count, duration, percent


@click.command()
@click.option("--project", help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stats(ctx: click.Context, project: str | None, as_json: bool) -> None:
    """Stage completion, time per stage, lead times, edits, concurrent edits and devices."""
    with workspace_store(ctx) as (_, store, _):
        figures = store.stats(project)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    for title, lines in _sections(figures):
        click.echo(title)
        for line in lines or ["(none yet)"]:
            click.echo(f"  {line}")


def _sections(f: dict):
    completion = defaultdict(dict)
    for r in f["stage_completion"]:
        completion[r["project"]][r["stage"]] = f"{r['started']}/{r['sessions']}"
    width = max((len(p) for p in completion), default=0) + 2
    yield "Stage completion (sessions that started each stage)", (
        [" " * width + " ".join(s[:4].ljust(4) for s in STAGES)] if completion else []) + [
        project.ljust(width) + " ".join(stages.get(s, "-").ljust(4) for s in STAGES)
        for project, stages in completion.items()]
    yield "Time per stage (median over sessions)", [
        f"{r['project']} {r['stage']}: {duration(r['median_seconds'])} ({count(r['sessions'], 'session')}, "
        f"longest {duration(r['max_seconds'])})" for r in f["stage_times"]]
    yield "Lead time, intent to feedback", [
        f"{r['project']}/{r['session']}: " + (duration(r["seconds"]) if r["seconds"] is not None
                                             else "no feedback yet") for r in f["lead_times"]]
    authors: dict[str, int] = defaultdict(int)
    days: dict[str, dict[str, int]] = defaultdict(dict)
    for r in f["edits_per_day"]:
        authors[r["author"]] += r["edits"]
        days[r["day"]][r["author"]] = r["edits"]
    yield "Edits per author", [f"{a}: {n}" for a, n in sorted(authors.items(), key=lambda kv: -kv[1])]
    yield "Edits per day (the last 14 days with edits)", [
        f"{day}: {sum(by.values())} ({', '.join(f'{a} {n}' for a, n in sorted(by.items()))})"
        for day, by in sorted(days.items())[-14:]]
    yield "Concurrent edits", [
        f"{r['project'] or '(outside projects)'}: {r['edits']} edits, {r['merged']} merged, "
        f"{r['conflicts']} held as conflicts ({percent(r['rate'])})" for r in f["conflict_rates"]]
    yield "Devices", [_device(d) for d in f["devices"]]


def _device(d: dict) -> str:
    behind = "" if d["behind"] is None else (
        ", up to date" if not d["behind"] else f", {count(d['behind'], 'version')} behind ({duration(d['lag_seconds'])})")
    owner = f" ({d['owner']})" if d["owner"] else ""
    daemon = f"{d['status']}, syncd {d['version']}" if d["status"] else "no daemon has run"
    seen = f"last heartbeat {when(d['heartbeat_at'])}" if d["status"] else f"last seen {when(d['last_seen'])}"
    return f"{d['device']}{owner}: {daemon}, {seen}{behind}"


@click.command()
@click.option("--html", "target", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page.")
@click.option("--project", help="Only this project.")
@click.pass_context
def report(ctx: click.Context, target: Path, project: str | None) -> None:
    """Write the analytics as one self-contained HTML page with charts."""
    with workspace_store(ctx) as (cfg, store, _):
        figures, sessions = store.stats(project), store.progress(project)
    page = render(cfg.workspace, figures, sessions, datetime.datetime.now().astimezone())
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, target)  # a reader never sees half a page
    except OSError as exc:
        if partial.exists():
            partial.unlink()
        raise Failure(f"cannot write {target}: {exc.strerror}; choose a writable path") from exc
    click.echo(f"wrote {target} ({len(page) // 1024 + 1} KiB)")
