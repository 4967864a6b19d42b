"""`syncd db`: the store's administration (its migrations, a Supabase project's files)."""
from __future__ import annotations

from pathlib import Path

import click

from syncd import config as configuration
from syncd.cli.common import load_config
from syncd.cli.errors import Failure
from syncd.store.migrate import MigrationError, migrate
from syncd.store.dsn import describe_dsn


@click.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
@click.option("--database-url", help="Defaults to the config's database_url.")
@click.pass_context
def db_migrate(ctx: click.Context, database_url: str | None) -> None:
    """Apply the SQL contract's migrations (idempotent)."""
    if database_url:  # the config's own is checked as it loads
        configuration.check_database_url(database_url, "--database-url")
    cfg = None if database_url else load_config(ctx)
    url = database_url or cfg.database_url
    if not url and cfg.supabase_url:
        raise Failure(f"{cfg.path} syncs over Supabase: pass the project's database URL (Project settings → "
                      "Database), syncd db migrate --database-url URL")
    if not url:
        click.echo(f"{cfg.path} uses the embedded PostgreSQL, which syncd migrates itself each time it starts it: "
                   "nothing to do (for another database: --database-url URL)")
        return
    import psycopg
    try:
        done = migrate(url)
    except psycopg.OperationalError as exc:
        raise Failure(f"cannot reach the database {describe_dsn(url)}: {str(exc).strip().splitlines()[0]}") from exc
    except MigrationError as exc:
        raise Failure(f"{describe_dsn(url)}: {exc}") from exc
    for m in done:
        click.echo(f"applied {m.version:04d}_{m.name}")
    click.echo("schema up to date" if not done else f"{len(done)} migration(s) applied")


@db.command("supabase")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def db_supabase(directory: Path) -> None:
    """Write the contract for `supabase db push` into DIRECTORY.

    DIRECTORY is a Supabase project repository: one file per migration in its
    supabase/migrations (a re-run adds only new ones), one adding documents to Realtime, and
    GitHub sign-in in supabase/config.toml."""
    import datetime

    from syncd.store import supabase_project as project
    from syncd.store.migrate import bundled

    migrations = directory / "supabase" / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in migrations.iterdir())
    written = project.new_files(existing, bundled(), datetime.datetime.now(datetime.timezone.utc))
    for name, text in written:
        (migrations / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {migrations / name}")
    if not written:
        click.echo(f"{migrations}: nothing new")
    config = directory / "supabase" / "config.toml"
    if config.is_file():
        original = config.read_text(encoding="utf-8")
        try:
            text, notes = project.add_sign_in(original)
        except ValueError as exc:  # not TOML
            raise Failure(f"{config} is not valid TOML ({exc}); fix it and run this again") from exc
        if text != original:
            config.write_text(text, encoding="utf-8")
            click.echo(f"wrote {config}")
        for note in notes:
            click.echo(f"{config}: {note}")
    else:
        click.echo(f"no {config} (run `supabase init` in {directory} first, or add this to it):\n\n{project.SIGN_IN}")
    click.echo(f"next: cd {directory} && supabase link --project-ref <ref> && supabase db push; give the\n"
               "GitHub OAuth app's id and secret as SUPABASE_AUTH_EXTERNAL_GITHUB_CLIENT_ID and _SECRET, then\n"
               "`supabase config push` (or set GitHub up in the dashboard, as README's Supabase section says)")
