"""`syncd db supabase DIR`: the Supabase CLI's layout, applied with psql as `supabase db push`
would apply it, before or after `syncd db migrate`."""
from __future__ import annotations

import datetime
import re
import subprocess
import tomllib
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from syncd.cli.main import main
from syncd.store.local_server import find_bindir
from syncd.store.migrate import bundled, migrate
from syncd.store.schema import dump
from syncd.store.supabase_project import ALLOWED_REDIRECT, GITHUB, add_sign_in

from test_schema_file import shipped

# What `supabase init` writes, in part: [auth] with its own redirect list, another provider.
INIT_CONFIG = """\
project_id = "team"

[api]
enabled = true
port = 54321

[auth]
enabled = true
# The base URL of your website. Used as an allow-list for redirects and for constructing URLs used
# in emails.
site_url = "http://127.0.0.1:3000"
# A list of *exact* URLs that auth providers are permitted to redirect to post authentication.
additional_redirect_urls = ["https://127.0.0.1:3000"]
jwt_expiry = 3600

[auth.external.apple]
enabled = false
client_id = ""
secret = "env(SUPABASE_AUTH_EXTERNAL_APPLE_SECRET)"
redirect_uri = ""
"""
SYNCD_GITHUB = tomllib.loads(GITHUB)["auth"]["external"]["github"]


def write_project(root: Path):
    result = CliRunner().invoke(main, ["db", "supabase", str(root)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def migration_files(root: Path) -> list[Path]:
    return sorted((root / "supabase" / "migrations").iterdir())


def psql(dsn: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(find_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(path)],
                          capture_output=True, text=True)


def recorded(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("select to_regclass('syncd.schema_migrations')").fetchone()[0] is None:
            return []
        return conn.execute("select version, name, checksum, applied_at from syncd.schema_migrations"
                            " order by version").fetchall()


def test_one_file_per_migration_named_for_the_supabase_cli(tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    result = write_project(tmp_path)
    names = [re.fullmatch(r"(\d{14})_(\w+)\.sql", path.name) for path in migration_files(tmp_path)]
    assert all(names)
    assert [m[2] for m in names] == [f"syncd_{m.version:04d}_{m.name}" for m in bundled()] + ["syncd_realtime_documents"]
    stamps = [m[1] for m in names]
    assert len(set(stamps)) == len(stamps) and min(stamps) >= before  # the CLI orders by them
    for migration, path in zip(bundled(), migration_files(tmp_path)):
        text = path.read_text()
        assert migration.sql in text
        assert f"values ({migration.version}, '{migration.name}', '{migration.checksum}');" in text
    assert "alter publication supabase_realtime add table public.documents" in migration_files(tmp_path)[-1].read_text()
    assert result.output.count("\nwrote ") + result.output.startswith("wrote ") == len(names)
    assert "config.toml (run `supabase init`" in result.output and "[auth.external.github]" in result.output
    assert not (tmp_path / "supabase" / "config.toml").exists()


def test_a_rerun_writes_only_what_is_missing_and_dates_it_after_every_file_there(tmp_path):
    write_project(tmp_path)
    first = {path.name: path.read_text() for path in migration_files(tmp_path)}
    assert "nothing new" in write_project(tmp_path).output
    assert {path.name: path.read_text() for path in migration_files(tmp_path)} == first
    # The project's own migration, after syncd's; then a syncd with one migration more
    # (as if 0016 were new to this directory).
    later = datetime.datetime.strptime(max(first)[:14], "%Y%m%d%H%M%S") + datetime.timedelta(hours=1)
    theirs = tmp_path / "supabase" / "migrations" / f"{later:%Y%m%d%H%M%S}_their_own.sql"
    theirs.write_text("select 1;\n")
    gone = next(name for name in first if "_syncd_0016_" in name)
    (tmp_path / "supabase" / "migrations" / gone).unlink()
    result = write_project(tmp_path)
    added = {path.name for path in migration_files(tmp_path)} - set(first) - {theirs.name}
    assert len(added) == 1 and result.output.count("wrote ") == 1
    (name,) = added
    assert name.endswith(gone[14:]) and name > theirs.name
    assert (tmp_path / "supabase" / "migrations" / name).read_text() == first[gone]


@pytest.mark.parametrize("flavour", ["plain", "supabase"], indirect=True)  # as the project's postgres there
@pytest.mark.parametrize("first", ["supabase db push", "syncd db migrate", "syncd db migrate up to 0008"])
def test_the_files_and_syncd_db_migrate_apply_each_migration_once_in_either_order(tmp_path, empty_dsn, first,
                                                                                   flavour):
    write_project(tmp_path)
    if first == "syncd db migrate":
        assert len(migrate(empty_dsn)) == len(bundled())
    elif first == "syncd db migrate up to 0008":
        assert len(migrate(empty_dsn, upto=8)) == 8
    before = recorded(empty_dsn)
    for path in migration_files(tmp_path):  # timestamp order, as the Supabase CLI applies them
        done = psql(empty_dsn, path)
        assert done.returncode == 0, (path.name, done.stderr)
    after = recorded(empty_dsn)
    assert after[:len(before)] == before  # what syncd db migrate applied stays, not applied again
    assert [(v, n, c) for v, n, c, _ in after] == [(m.version, m.name, m.checksum) for m in bundled()]
    assert migrate(empty_dsn) == []
    for path in migration_files(tmp_path):
        assert psql(empty_dsn, path).returncode == 0
    assert recorded(empty_dsn) == after
    with psycopg.connect(empty_dsn) as conn:
        objects, _, published = dump(conn).partition("\n-- Publications\n\n")
    if flavour == "supabase":  # where GoTrue keeps identities, a login comes from them
        identity = ("CREATE TRIGGER syncd_login_from_identity AFTER INSERT OR UPDATE OF identity_data ON auth.identities"
                    " FOR EACH ROW EXECUTE FUNCTION syncd.on_auth_identity();\n")
        assert identity in objects
        objects = objects.replace(identity, "")
    assert objects == shipped()
    assert published == ("alter publication supabase_realtime add table public.documents;\n"
                         if flavour == "supabase" else "")  # a project has the publication


def test_a_file_refuses_a_database_that_applied_another_text_under_its_version(tmp_path, dsn):
    write_project(tmp_path)
    with psycopg.connect(dsn) as conn:
        conn.execute("update syncd.schema_migrations set checksum = 'edited' where version = 4")
    done = psql(dsn, next(path for path in migration_files(tmp_path) if "_syncd_0004_" in path.name))
    assert done.returncode == 3 and "migration 0004_change_notify differs" in done.stderr


def test_documents_join_the_realtime_publication_where_there_is_one(tmp_path, dsn):
    write_project(tmp_path)
    realtime = migration_files(tmp_path)[-1]
    assert psql(dsn, realtime).returncode == 0  # plain PostgreSQL: no publication, nothing to do
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select count(*) from pg_publication").fetchone()[0] == 0
        conn.execute("create publication supabase_realtime")
    for _ in range(2):
        assert psql(dsn, realtime).returncode == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select schemaname, tablename from pg_publication_tables"
                            " where pubname = 'supabase_realtime'").fetchall() == [("public", "documents")]


def test_sign_in_joins_the_config_supabase_init_wrote(tmp_path):
    config = tmp_path / "supabase" / "config.toml"
    config.parent.mkdir()
    config.write_text(INIT_CONFIG)
    result = write_project(tmp_path)
    assert f"wrote {config}" in result.output and "added [auth.external.github]" in result.output
    auth = tomllib.loads(config.read_text())["auth"]
    assert auth["additional_redirect_urls"] == ["https://127.0.0.1:3000", ALLOWED_REDIRECT]
    assert auth["external"]["github"] == SYNCD_GITHUB
    assert auth["external"]["apple"]["secret"] == "env(SUPABASE_AUTH_EXTERNAL_APPLE_SECRET)"
    assert config.read_text().startswith(INIT_CONFIG.split("additional_redirect_urls")[0])
    written = config.read_text()
    result = write_project(tmp_path)
    assert config.read_text() == written and "has syncd's [auth.external.github]" in result.output


def test_a_github_section_of_the_projects_own_is_kept(tmp_path):
    own = INIT_CONFIG.replace('additional_redirect_urls = ["https://127.0.0.1:3000"]',
                              'additional_redirect_urls = [\n  "https://127.0.0.1:3000",\n]')
    own += '\n[auth.external.github]\nenabled = true\nclient_id = "theirs"\nsecret = "env(THEIR_SECRET)"\n'
    config = tmp_path / "supabase" / "config.toml"
    config.parent.mkdir()
    config.write_text(own)
    result = write_project(tmp_path)
    assert config.read_text() == own
    assert "kept its own [auth.external.github]" in result.output
    assert f"add {ALLOWED_REDIRECT} to [auth] additional_redirect_urls yourself" in result.output


@pytest.mark.parametrize("config", ['project_id = "team"\n', 'project_id = "team"\n\n[auth]\nenabled = true\n'])
def test_sign_in_where_auth_has_no_redirect_list(config):
    text, _ = add_sign_in(config)
    auth = tomllib.loads(text)["auth"]
    assert auth["additional_redirect_urls"] == [ALLOWED_REDIRECT] and auth["external"]["github"] == SYNCD_GITHUB
