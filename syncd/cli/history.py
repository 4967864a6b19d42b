"""Every version ever written, from the command line: log, diff, show, restore."""
from __future__ import annotations

import difflib
import json
import sys

import click

from syncd.cli.common import (Failure, complete_path, decoded, document_path, sync_now, version_bytes, when, who,
                              working_copy)
from syncd.engine.scanner import read_local
from syncd.store.connect import connect
from syncd.store.rpc import Change, NotFound


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


# how a version's mode reads in `syncd log` (Git's numbers, as `git ls-tree` shows them); a
# plain file's is left unsaid
MODES = {"100755": "100755 executable", "120000": "120000 link", "040000": "040000 directory"}


def _describe(v: dict) -> str:
    parents = f" (merge of v{v['parent_version']} and v{v['merge_parent']})" if v.get("merge_parent") else ""
    mode = MODES.get(v.get("mode"))
    what = "deleted" if v["deleted"] else f"{_size(v['size']):>9}  {v['sha256'][:10]}" + (f"  {mode}" if mode else "")
    moved = (f" (moved from {v['moved_from']})" if v.get("moved_from")
             else f" (moved to {v['moved_to']})" if v.get("moved_to") else "")
    return f"v{v['version']:<4} {when(v['created_at'])}  {who(v):<20} {v['origin']:<8} {what}{parents}{moved}"


@click.command("log")
@click.argument("path", required=False, shell_complete=complete_path)
@click.option("--deleted", is_flag=True, help="List deleted documents instead (to find one to restore).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def log_command(ctx: click.Context, path: str | None, deleted: bool, as_json: bool) -> None:
    """The versions of PATH, newest first: who, from which device, how, when, size, hash."""
    if bool(path) == deleted:
        raise click.UsageError("give a PATH, or --deleted")
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        if deleted:
            docs = store.documents(deleted=True)
            if as_json:
                click.echo(json.dumps(docs, indent=2))
            elif not docs:
                click.echo("no deleted documents")
            for d in [] if as_json else docs:
                click.echo(f"{d['path']}  deleted in v{d['version']} {when(d['created_at'])} by {who(d)}; "
                           f"to bring it back: syncd restore {json.dumps(d['path'])} --version {d['parent_version']}")
            return
        path = document_path(cfg, path)
        versions = store.history(path)
    if as_json:
        click.echo(json.dumps({"path": path, "versions": versions}, indent=2))
        return
    click.echo(path)
    for v in versions:
        click.echo(_describe(v))


def _content(store, path: str, version: int) -> tuple[bytes | None, str]:
    """A version's bytes (None for a tombstone) and its label."""
    data = version_bytes(store, path, version)
    return data, f"{path} (v{version}{', deleted' if data is None else ''})"


@click.command()
@click.argument("path", shell_complete=complete_path)
@click.option("--from", "old", type=int, help="Older version (default: the store's head, or M-1 with --to).")
@click.option("--to", "new", type=int, help="Newer version (default: the file in this working copy).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the unified diff as one string).")
@click.pass_context
def diff(ctx: click.Context, path: str, old: int | None, new: int | None, as_json: bool) -> None:
    """What changed in PATH: between two versions, or from a version to the local file."""
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        path = document_path(cfg, path)
        if new is not None:
            after, after_label = _content(store, path, new)
            if old is None:
                old = new - 1
        else:
            found = read_local(cfg.root, path, cfg.files)
            after, after_label = (found[0] if found else None), f"{path} (this working copy)"
        if old is None:
            old = store.version(path)["version"]
        if old < 1:
            raise Failure(f"{path}: version {new} is the first; there is nothing before it")
        before, before_label = _content(store, path, old)
    try:
        a = (before or b"").decode("utf-8").splitlines(keepends=True)
        b = (after or b"").decode("utf-8").splitlines(keepends=True)
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in difflib.unified_diff(a, b, before_label, after_label))
    except UnicodeDecodeError:
        text = None
    if as_json:
        click.echo(json.dumps({"path": path, "from": old, "to": new if new is not None else "local",
                               "differs": before != after, "binary": text is None,
                               "diff": text if before != after else ""}, indent=2))
    elif before == after:
        click.echo("no differences")
    elif text is None:
        click.echo(f"binary contents differ: {before_label} and {after_label}")
    else:
        click.echo(text, nl=False)


@click.command()
@click.argument("path", shell_complete=complete_path)
@click.option("--version", "version", type=int, help="Which version (default: the store's head).")
@click.option("--json", "as_json", is_flag=True, help="The version's record and content as JSON.")
@click.pass_context
def show(ctx: click.Context, path: str, version: int | None, as_json: bool) -> None:
    """Print a version of PATH exactly as it was written (bytes to stdout)."""
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        path = document_path(cfg, path)
        v = store.version(path, version)
        if as_json:
            click.echo(json.dumps(v, indent=2))
            return
        if v["deleted"]:
            raise Failure(f"{path}: version {v['version']} is a delete and has no content; "
                          f"`syncd log {path}` lists the versions")
        data = decoded(store, v)
    sys.stdout.flush()
    sys.stdout.buffer.write(data)


@click.command()
@click.argument("path", shell_complete=complete_path)
@click.option("--version", "version", type=int, required=True, help="The version whose content comes back.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def restore(ctx: click.Context, path: str, version: int, as_json: bool) -> None:
    """Make an old version's content the newest one (a new version; history is kept).

    Works for deleted documents too (`syncd log --deleted` finds them)."""
    with working_copy(ctx) as (cfg, journal):
        path = document_path(cfg, path)
        with connect(cfg, journal) as store:
            try:
                old = store.version(path, version)
            except NotFound:
                try:
                    store.history(path)
                except NotFound:
                    raise Failure(f"{path}: the store has no such path (`syncd log --deleted` lists the deleted "
                                  "ones, with the command that restores each)") from None
                raise Failure(f"{path}: there is no version {version}; `syncd log {path}` lists them") from None
            if old["deleted"]:
                raise Failure(f"{path}: version {version} is a delete; pick a version with content "
                              f"(`syncd log {path}`)")
            for _ in range(3):  # the head may move between reading and committing
                head = store.version(path)
                [result] = store.commit([Change(path, head["version"], old["content"], "restore",
                                                activity={"restored_version": version})])
                if result.status != "conflict":
                    break
        if not result.landed:
            raise Failure(f"{path}: the store did not take the restore: {result.message or result.status}")
        report = sync_now(cfg, journal, lambda: (journal.base(path) or head).version >= result.version)
    out = {"path": path, "restored_version": version, "version": result.version,
           "status": result.status, "local": "updated" if report is not None else "pending"}
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif result.status == "unchanged":
        click.echo(f"{path}: version {version}'s content is already the newest (v{result.version})")
    else:
        click.echo(f"restored {path} to the content of v{version}, as v{result.version}")
    if report is None:
        click.echo("the running syncd has not applied it yet; it will on its next pass")
    elif path in report.conflicts:
        click.echo(f"{path} has local changes of its own: held as a conflict (syncd conflicts)")

