"""`syncd activity`: who changed what, when, from which device; `--follow` tails it live."""
from __future__ import annotations

import datetime
import json
import re
import time

import click
import psycopg
from psycopg import sql

from syncd.cli.common import Failure, when, workspace_store
from syncd.store.postgres import PostgresStore

_AGO = re.compile(r"^(\d+)\s*([smhd])$")


def _since(text: str | None) -> str | None:
    """`2h`, `30m`, `7d`, or an ISO date/time → an ISO time for the store."""
    if text is None:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        seconds = int(ago[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[ago[2]]
        return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)).isoformat()
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: give a time like 2h, 30m, 7d or 2026-11-20T09:00") from None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def _line(row: dict) -> str:
    who = row.get("actor") or row.get("device") or "-"
    device = f" ({row['device']})" if row.get("device") and row.get("actor") else ""
    details = row.get("details") or {}
    version = f" v{details['version']}" if "version" in details else ""
    where = row.get("path") or "-"
    extra = "".join(f" {k}={details[k]}" for k in ("keep", "policy", "restored_version") if k in details)
    return f"{when(row['at'])}  {who}{device}  {row['kind']}  {where}{version}{' (deleted)' if details.get('deleted') else ''}{extra}"


@click.command()
@click.option("--project", help="Only this project.")
@click.option("--session", help="Only this session.")
@click.option("--since", "since_text", help="From this time: 2h, 30m, 7d, or 2026-11-20T09:00.")
@click.option("--limit", default=50, show_default=True, help="Without --since: the latest this many.")
@click.option("--follow", is_flag=True, help="Keep printing new activity as it happens (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def activity(ctx: click.Context, project: str | None, session: str | None, since_text: str | None,
             limit: int, follow: bool, as_json: bool) -> None:
    """The workspace's activity: versions (edits, merges, restores, imports), conflicts,
    resolutions, daemon starts and stops."""
    since = _since(since_text)
    with workspace_store(ctx) as (_, store, workspace):
        filters = {"project": project, "session": session, "since": since}
        rows, cursor = store.activity(0, limit=2000 if since else limit, newest=since is None, **filters)
        show = (lambda r: click.echo(json.dumps(r))) if as_json else (lambda r: click.echo(_line(r)))
        for row in rows:
            show(row)
        if not follow:
            return
        wait = _waiter(store, workspace.id)
        try:
            while True:
                wait()
                rows, cursor = store.activity(cursor, **filters)
                for row in rows:
                    show(row)
        except KeyboardInterrupt:
            return


def _waiter(store, workspace_id: str):
    """Block until there may be new activity: a NOTIFY on the direct transport, else a second."""
    if not isinstance(store, PostgresStore):
        return lambda: time.sleep(1.0)
    try:
        conn = psycopg.connect(store.dsn, autocommit=True)
        conn.execute(sql.SQL("listen {}").format(sql.Identifier(f"syncd-activity:{workspace_id}")))
    except psycopg.Error as exc:
        raise Failure(f"cannot follow the activity: {exc}") from exc

    def wait() -> None:
        for _ in conn.notifies(timeout=1.0, stop_after=1):
            pass
    return wait
