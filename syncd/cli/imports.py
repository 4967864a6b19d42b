"""`syncd import`: bring a legacy workspace and its Git history into the store."""
from __future__ import annotations

import json
import socket
import sys
from dataclasses import asdict

import click

from syncd.cli.common import working_copy
from syncd.engine.ignore import IgnoreRules
from syncd.git.importer import Importer
from syncd.store.connect import agree_layout, connect


@click.command("import")
@click.option("--dry-run", is_flag=True, help="Report what would be created; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.pass_context
def import_command(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Import the working copy's legacy workspace: projects, sessions, members and every
    version its Git history holds (authors and dates kept). Safe to run again: a second
    run, or one resumed after an interruption, adds nothing twice."""
    with working_copy(ctx) as (cfg, journal), connect(cfg, journal) as store:
        if not dry_run:
            store.open(create=True, device_name=cfg.device_name, hostname=socket.gethostname())
            agree_layout(store, cfg)  # before any version: rows are derived under the roots from the start
        importer = Importer(cfg.root, store, IgnoreRules.of(cfg), cfg.files, cfg.device_name, journal)
        try:
            with click.progressbar(length=importer.count(), label="reading history",
                                   file=sys.stderr, show_pos=True) as bar:
                report = importer.run(dry_run, step=lambda: bar.update(1))
        finally:
            importer.close()
    if as_json:
        click.echo(json.dumps({**asdict(report), "documents": len(report.documents), "dry_run": dry_run},
                              indent=2, default=str))
        return
    would = "would " if dry_run else ""
    source = f"{report.commits} commits of {report.repository}" if report.repository else "no Git history (not a repository)"
    click.echo(f"{'dry run: ' if dry_run else ''}{source}")
    if dry_run:
        click.echo(f"would replay {report.versions} versions of {len(report.documents)} documents "
                   f"(versions imported by an earlier run are skipped), {report.working_tree} of them "
                   "from the working tree")
    else:
        click.echo(f"imported {report.versions} new versions of {len(report.documents)} documents "
                   f"({report.already} were there already), {report.working_tree} from the working tree")
    click.echo(f"projects: {len(report.projects)}, sessions: {len(report.sessions)}")
    unknown = sorted({m["login"] for m in report.members if not m["known"]})
    known = sorted({m["login"] for m in report.members if m["known"]})
    click.echo(f"members from .owner/.collaborators: {would}add {report.added if not dry_run else len(known)} "
               f"({', '.join(known) or 'none'}), {would}invite {report.invited if not dry_run else len(unknown)} "
               f"without a syncd account yet ({', '.join(unknown) or 'none'})")
    if report.synced_before:
        click.echo(f"{len(report.synced_before)} documents were synced before the import: their history "
                   "in the store is kept as it is")
    for path, why in sorted(report.skipped.items()):
        click.echo(f"skipped: {why}")
    for note in report.notes:
        click.echo(f"skipped: {note}")
