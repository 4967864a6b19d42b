"""schema.sql is what the migrations make, and holds syncd's objects and only those."""
from __future__ import annotations

from importlib import resources

import psycopg

from syncd.store.migrate import migrate
from syncd.store.schema import REGENERATE, dump


def shipped() -> str:
    return resources.files("syncd.store").joinpath("schema.sql").read_text(encoding="utf-8")


def test_schema_sql_is_what_the_migrations_make(dsn):
    with psycopg.connect(dsn) as conn:
        current = dump(conn)
    assert current == shipped(), f"syncd/store/schema.sql is out of date: regenerate it with `{REGENERATE}`"


def _public_objects(conn: psycopg.Connection) -> set[str]:
    """Relations by name, functions with their arguments, triggers by name."""
    return {row[0] for row in conn.execute("""
        select c.relname::text from pg_class c where c.relnamespace = 'public'::regnamespace
        union select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'public'::regnamespace
        union select t.tgname::text from pg_trigger t where not t.tgisinternal""")}


def test_the_dump_holds_what_the_migrations_add_to_public_and_nothing_of_the_projects(empty_dsn):
    """On Supabase, `public` holds the project's own objects and `auth` exists beforehand."""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("set search_path = ''")
        conn.execute("create table public.notes (id integer primary key, body text)")
        conn.execute("create index notes_body on public.notes (body)")
        conn.execute("alter table public.notes enable row level security")
        conn.execute("create policy everyone_reads on public.notes for select using (true)")
        conn.execute("create function public.note_count() returns bigint language sql"
                     " as 'select count(*) from public.notes'")
        conn.execute("create trigger notes_touch before update on public.notes"
                     " for each row execute function suppress_redundant_updates_trigger()")
        before = _public_objects(conn)
    migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("set search_path = ''")
        added = _public_objects(conn) - before
        conn.execute("create publication supabase_realtime for table public.notes, public.documents")
        conn.execute("alter default privileges revoke execute on functions from public")
        conn.execute("alter default privileges in schema syncd grant select on tables to service_role")
        text = dump(conn)
    assert len(added) > 40 and all(name in text for name in added), sorted(n for n in added if n not in text)
    assert "notes" not in text and "note_count" not in text
    assert "create table auth." not in text and "FUNCTION auth." not in text
    assert "ON auth.users FOR EACH ROW EXECUTE FUNCTION syncd.on_auth_user()" in text  # syncd's trigger there
    lines, expected = text.splitlines(), shipped().splitlines()
    assert set(expected) <= set(lines)
    assert set(lines) - set(expected) == {
        "-- Default privileges",  # the project's own global ones are not syncd's
        "alter default privileges in schema syncd grant select on tables to service_role;",
        "-- Publications",
        "alter publication supabase_realtime add table public.documents;",
    }
