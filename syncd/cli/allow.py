"""`syncd allow`: sync a file whose content looks like a credential, all the same."""
from __future__ import annotations

import json
import time

import click

from syncd.cli.common import document_path, working_copy
from syncd.engine.ignore import IgnoreRules


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--revoke", is_flag=True, help="Check these paths' content again.")
@click.option("--json", "as_json", is_flag=True, help="Without PATHS: the paths allowed, as JSON.")
@click.pass_context
def allow(ctx: click.Context, paths: tuple[str, ...], revoke: bool, as_json: bool) -> None:
    """Push PATHS although their content looks like a private key or a token; without
    PATHS, list the paths allowed. An allowance is the path's, not one content's: the file's
    later edits go out too (a how-to full of example keys is not held at every save), until
    --revoke."""
    with working_copy(ctx) as (cfg, journal):
        if not paths:
            allowed = journal.allowed()
            click.echo(json.dumps(allowed, indent=2) if as_json else "\n".join(allowed), nl=bool(allowed) or as_json)
            return
        if as_json:
            raise click.UsageError("--json lists the paths allowed: give no PATHS with it")
        rules = IgnoreRules.of(cfg)
        for path in (document_path(cfg, given) for given in paths):
            if revoke:
                click.echo(f"{path}: checked again from the next pass" if journal.revoke(path)
                           else f"{path}: was not allowed")
                continue
            journal.allow(path)
            if rules.ignores(path):
                click.echo(f"{path}: allowed, but it is ignored by name and stays unsynced (a "
                           "'!' pattern in the config's ignore re-includes it)")
            else:
                click.echo(f"{path}: allowed; its content is no longer checked for credentials")
        journal.set_meta("resume", str(time.time()))  # a running daemon passes now
        running = journal.locked_by()
    click.echo(f"the running syncd (pid {running}) syncs within a second" if running
               else "it syncs on the next pass (`syncd sync --once` or `syncd run`)")
