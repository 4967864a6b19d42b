"""`syncd allow`: sync a file whose content looks like a credential, all the same."""
from __future__ import annotations

import time

import click

from syncd.cli.common import document_path, working_copy
from syncd.engine.ignore import IgnoreRules


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--revoke", is_flag=True, help="Check these paths' content again.")
@click.pass_context
def allow(ctx: click.Context, paths: tuple[str, ...], revoke: bool) -> None:
    """Push PATHS although their content looks like a private key or a token; without
    PATHS, list the paths allowed. An allowance is the path's, not one content's: the file's
    later edits go out too (a how-to full of example keys is not held at every save), until
    --revoke."""
    with working_copy(ctx) as (cfg, journal):
        if not paths:
            for path in journal.allowed():
                click.echo(path)
            return
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
