"""`syncd progress`: every session × IDSE stage, from the documents themselves."""
from __future__ import annotations

import json
import sys

import click

from syncd.cli.common import workspace_store
from syncd.report.page import STAGES

MARK = {"started": ("●", "green"), "pending": ("·", None)}


@click.command()
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def progress(ctx: click.Context, project: str | None, as_json: bool) -> None:
    """Sessions × stages: ● started (a document with more than a template), · pending.
    Where a project's session_state.json disagrees with the documents, both are shown."""
    with workspace_store(ctx) as (_, store, _):
        sessions = store.progress(project)
    if as_json:
        click.echo(json.dumps(sessions, indent=2))
        return
    if not sessions:
        click.echo("no sessions yet" + (f" in project {project}" if project else ""))
        return
    colour = sys.stdout.isatty()
    width = max(len(f"{s['project']}/{s['session']}") for s in sessions) + 2
    click.echo(" " * (width + 2) + " ".join(stage[:4].ljust(4) for stage in STAGES))
    for s in sessions:
        cells = []
        for stage in STAGES:
            mark, fg = MARK[(s["stages"] or {}).get(stage, {}).get("status", "pending")]
            cells.append(click.style(mark.ljust(4), fg=fg) if colour and fg else mark.ljust(4))
        current = "*" if s["current"] else " "
        click.echo(f"{current} {(s['project'] + '/' + s['session']).ljust(width)}{' '.join(cells)}")
        for d in s["disagreements"]:
            click.echo(f"    {d['stage']}: session_state.json says {d['session_state']}, "
                       f"the documents say {d['documents']}")
    click.echo("* the project's current session (CURRENT_SESSION)")
