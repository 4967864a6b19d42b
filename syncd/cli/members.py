"""`syncd members`: who may read and write the workspace, by GitHub login."""
from __future__ import annotations

import json

import click

from syncd.cli.common import working_copy
from syncd.store.connect import connect

ROLES = click.Choice(["owner", "collaborator", "reader"])


def _where(session: str | None) -> dict:
    """`--session PROJECT/SESSION` → the payload's project and session."""
    if session is None:
        return {}
    project, sep, slug = session.partition("/")
    if not sep or not project or not slug:
        raise click.UsageError("--session takes PROJECT/SESSION, e.g. Alpha/s-001")
    return {"project": project, "session": slug}


def _call(ctx: click.Context, payload: dict) -> dict:
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        return store.members(**payload)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def members(ctx: click.Context, as_json: bool) -> None:
    """List the workspace's members and pending invitations (owners manage them)."""
    if ctx.invoked_subcommand is not None:
        return
    found = _call(ctx, {"action": "list"})["members"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for m in found:
        scope = f"session {m['project']}/{m['session']}" if m["session"] else "workspace"
        click.echo(f"{m['login']:<24} {m['role']:<13} {scope}{'  (invited, not signed in yet)' if m['pending'] else ''}")
    if not found:
        click.echo("no members yet (the database itself is the only user)")


def _change(action: str):
    @click.argument("login")
    @click.option("--session", help="PROJECT/SESSION: a session membership instead of the workspace's.")
    @click.pass_context
    def command(ctx: click.Context, login: str, session: str | None, role: str | None = None) -> None:
        out = _call(ctx, {"action": action, "login": login, **({"role": role} if role else {}), **_where(session)})
        if "invited" in out:
            click.echo(f"invited {login} as {role}: the membership starts when they first sign in")
        elif "removed" in out:
            click.echo(f"removed {login}" if out["removed"] else f"{login} was not a member there")
        else:
            click.echo(f"{login} is now {role}" + (f" of session {session}" if session else ""))
    return command


add = members.command("add", help="Add LOGIN (a GitHub login) with a role.")(
    click.option("--role", type=ROLES, required=True)(_change("add")))
role = members.command("role", help="Change LOGIN's role.")(
    click.option("--role", type=ROLES, required=True)(_change("role")))
remove = members.command("remove", help="Remove LOGIN (or its invitation).")(_change("remove"))
