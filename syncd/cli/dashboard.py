"""`syncd dashboard`: the working copy's live page in the browser (syncd.dashboard)."""
from __future__ import annotations

import webbrowser

import click

from syncd.cli.common import load_config


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), help="The port on 127.0.0.1 (default: "
              "daemon.dashboard_port, else a free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@click.pass_context
def dashboard(ctx: click.Context, port: int | None, no_browser: bool) -> None:
    """A live page in the browser: pipeline, activity, this copy's state, devices, conflicts
    to resolve and the report's charts.

    Served on 127.0.0.1 until Ctrl-C; its URL carries a token that only you have."""
    from syncd.dashboard.server import Dashboard  # Starlette and uvicorn only for this command
    cfg = load_config(ctx)
    with Dashboard(cfg, cfg.daemon.dashboard_port if port is None else port) as board:
        click.echo(f"dashboard of {cfg.root} at {board.url} (Ctrl-C stops it)")
        if not no_browser:  # the opener file, not the URL: a browser's command line is any local user's to read
            webbrowser.open(board.opener.as_uri())
        board.serve()
