"""Held conflicts: list them, see both sides against their base, and settle them."""
from __future__ import annotations

import base64
import json
import sys

import click

from syncd.cli.common import (Failure, complete_conflict, document_path, sync_now, version_bytes, when, who,
                              working_copy)
from syncd.cli.errors import EXIT_CONFLICTS
from syncd.content import identity, sha256_hex
from syncd.engine.entries import read_entry
from syncd.engine.journal import Conflict, Journal
from syncd.engine.merge import has_markers, merge3
from syncd.engine.scanner import read_local
from syncd.engine.writer import LocalChanged, write_atomic
from syncd.store.connect import connect
from syncd.store.rpc import RpcStore, StoreError

KEEP = ("local", "remote", "both", "merged")


def _held(journal: Journal, path: str) -> Conflict:
    conflict = journal.conflict(path)
    if conflict is None:
        raise Failure(f"{path}: no conflict is held on this path (`syncd conflicts` lists them)")
    return conflict


def _remote_version(store: RpcStore, c: Conflict) -> dict:
    return store.version(c.path, c.remote_version)


def _sides(cfg, store: RpcStore, c: Conflict) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(base, local, remote) contents; None where a side is absent or deleted."""
    def content(version: int | None) -> bytes | None:
        return None if version is None else version_bytes(store, c.path, version)
    found = read_local(cfg.root, c.path, cfg.files)
    return content(c.base_version), found[0] if found else None, content(c.remote_version)


def _labels(c: Conflict, remote: dict) -> tuple[str, str, str]:
    return ("local (this working copy)", f"base (v{c.base_version})" if c.base_version else "base (none)",
            f"remote (v{c.remote_version} by {who(remote)})")


def three_way(cfg, store: RpcStore, c: Conflict):
    """(the store's version, (base, local, remote) contents, their labels, the diff3 merge or
    None where a side is deleted): what `conflicts show` prints and the dashboard shows."""
    remote = _remote_version(store, c)
    base, local, theirs = _sides(cfg, store, c)
    labels = _labels(c, remote)
    merged = None if local is None or theirs is None else merge3(c.path, base, local, theirs, labels, diff3=True)
    return remote, (base, local, theirs), labels, merged


def state_of(c: Conflict) -> str:
    if c.request == "merged":
        return "waiting for the conflict markers to be removed"
    if c.request:
        return f"settling: keep {c.request}"
    return "held"


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def conflicts(ctx: click.Context, as_json: bool) -> None:
    """List held conflicts (`conflicts show PATH` for one of them)."""
    if ctx.invoked_subcommand is not None:
        return
    with working_copy(ctx) as (cfg, journal):
        held = journal.conflicts()
        rows = []
        with connect(cfg, journal) as store:
            for c in held:
                try:
                    remote = _remote_version(store, c) if c.remote_version else {}
                except StoreError:
                    remote = {}
                rows.append({
                    "path": c.path, "detected_at": c.detected_at, "base_version": c.base_version,
                    "local_sha256": c.local_sha256, "remote_version": c.remote_version,
                    "remote_author": remote.get("author"), "remote_device": remote.get("device"),
                    "remote_at": remote.get("created_at"), "state": state_of(c),
                })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no conflicts")
    for r in [] if as_json else rows:
        local = r["local_sha256"][:10] if r["local_sha256"] else "deleted"
        state = "" if r["state"] == "held" else f": {r['state']}"
        click.echo(f"{r['path']}\n  held since {when(r['detected_at'])}{state}\n"
                   f"  base v{r['base_version'] or '-'}, local {local}, remote v{r['remote_version']} "
                   f"by {who({'author': r['remote_author'], 'device': r['remote_device']})} "
                   f"at {when(r['remote_at'])}")
    if rows and not as_json:
        click.echo("see one: syncd conflicts show PATH; settle it: syncd resolve PATH --keep "
                   "local|remote|both|merged")


@conflicts.command("show")
@click.argument("path", shell_complete=complete_conflict)
@click.option("--json", "as_json", is_flag=True, help="The three contents and the merge as JSON.")
@click.pass_context
def conflicts_show(ctx: click.Context, path: str, as_json: bool) -> None:
    """PATH's two sides against their base, as one text with diff3 conflict markers."""
    with working_copy(ctx) as (cfg, journal):
        path = document_path(cfg, path)
        c = _held(journal, path)
        with connect(cfg, journal) as store:
            remote, (base, local, theirs), labels, merged = three_way(cfg, store, c)
    if as_json:
        def text(data: bytes | None):
            if data is None:
                return None
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return {"base64": base64.b64encode(data).decode("ascii")}
        click.echo(json.dumps({
            "path": path, "base_version": c.base_version, "remote_version": c.remote_version,
            "remote_author": who(remote), "state": state_of(c), "base": text(base), "local": text(local),
            "remote": text(theirs), "merged": text(merged.marked) if merged else None,
            "clean": bool(merged and merged.clean)}, indent=2))
        return
    click.echo(f"{path}: {labels[0]} vs {labels[2]}, from {labels[1]}")
    if merged is None:
        click.echo("one side deleted the file: " + ("local" if local is None else "remote"))
    elif merged.how == "none" and merged.marked == local and b"<<<<<<<" not in local:
        click.echo(f"binary contents: local {sha256_hex(local)[:10]}, remote {sha256_hex(theirs)[:10]}")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(merged.marked)


@click.command()
@click.argument("path", shell_complete=complete_conflict)
@click.option("--keep", type=click.Choice(KEEP), required=True,
              help="local: publish this copy's file; remote: take the store's version (this copy's "
                   "is kept as a version); both: store's version at PATH, this copy's beside it; "
                   "merged: write a file with conflict markers to edit, published once they are gone.")
@click.option("--edit", is_flag=True, help="With --keep merged: open $EDITOR on the file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def resolve(ctx: click.Context, path: str, keep: str, edit: bool, as_json: bool) -> None:
    """Settle the conflict held on PATH."""
    if edit and keep != "merged":
        raise click.UsageError("--edit goes with --keep merged")
    with working_copy(ctx) as (cfg, journal):
        out, message = settle(cfg, journal, document_path(cfg, path), keep,
                              edit=(lambda target: click.edit(filename=str(target))) if edit else None)
    _print(out, as_json, message)
    if not out["resolved"]:
        ctx.exit(EXIT_CONFLICTS)


def settle(cfg, journal: Journal, path: str, keep: str, edit=None) -> tuple[dict, str]:
    """What `syncd resolve PATH --keep KEEP` does, for the CLI and the dashboard's buttons:
    (what happened, said as JSON, and in a line); out["resolved"] says if it is settled.
    `edit(target)`, for --keep merged, is given the file with the markers before it is read."""
    c = _held(journal, path)
    out = {"path": path, "keep": keep}
    if keep == "merged":
        target = _write_marked(cfg, journal, c)
        journal.request(path, keep)  # from now on, a pass publishes the file once it is clean
        if edit:
            edit(target)
        found = read_local(cfg.root, path, cfg.files)
        if found is not None and has_markers(found[0]):
            out.update(resolved=False, file=str(target))
            return out, (f"wrote {target} with conflict markers: edit it and remove them; "
                         "a running syncd publishes it when you save, else run `syncd sync`")
    else:
        journal.request(path, keep)
    report = sync_now(cfg, journal, lambda: journal.conflict(path) is None)
    settled = journal.conflict(path) is None
    out.update(resolved=settled)
    if settled:
        copy = report.conflict_copies.get(path) if report else None
        out.update(copy=copy)
        message = f"resolved {path}: kept {keep}" + (f"; this copy's content is in {copy}" if keep == "both" and copy else "")
    elif report is None:
        message = f"asked the running syncd to settle {path}; it has not yet (see `syncd conflicts`)"
    else:
        message = (f"{path} is not settled yet: {report.skipped.get(path) or 'it changed during the pass'}; "
                   "run the command again")
    return out, message


def _print(out: dict, as_json: bool, message: str) -> None:
    click.echo(json.dumps(out, indent=2) if as_json else message)


def _write_marked(cfg, journal: Journal, c: Conflict):
    """Replace the local file by both sides with conflict markers; the local content is kept
    in the journal first, to become a version when the merged file is published."""
    target = cfg.root / c.path
    found = read_entry(cfg.root, c.path, cfg.files)
    if found is None:
        raise Failure(f"{c.path}: the local file is gone; use --keep remote or --keep local")
    entry, lf = found
    if not entry.inline:
        raise Failure(f"{c.path}: {'a link' if entry.link else 'a binary file'} cannot hold conflict markers; "
                      "use --keep local, remote or both")
    local = entry.data
    if c.marker_sha256 == lf.sha256:
        return target  # already written; the user is still editing it
    with connect(cfg, journal) as store:
        remote = _remote_version(store, c)
        base, _, theirs = _sides(cfg, store, c)
    if theirs is None:
        raise Failure(f"{c.path}: the store's version is a delete; use --keep local or --keep remote")
    merged = merge3(c.path, base, local, theirs, _labels(c, remote))
    if merged.how == "none" and not has_markers(merged.marked):
        raise Failure(f"{c.path}: a binary file cannot hold conflict markers; use --keep local, remote or both")
    journal.start_merge(c.path, c.merge_local or local, identity(sha256_hex(merged.marked), executable=entry.executable))
    try:
        write_atomic(cfg.root, c.path, merged.marked, lf.sha256, temp_prefix=journal.temp_prefix,
                     executable=entry.executable)
    except LocalChanged:
        raise Failure(f"{c.path} changed while the merge was written; run the command again") from None
    return target
