"""A PostgreSQL cluster shaped like a new Supabase project, for running the contract where
it really runs.

Plain PostgreSQL with a superuser grants nothing by default; a Supabase project grants a
lot, and its `postgres` is not a superuser. Every statement below comes from Supabase's
published setup (github.com/supabase/postgres, migrations/db, and github.com/supabase/auth,
migrations), cited by file:

* init-scripts/00000000000000-initial-schema.sql: the superuser is `supabase_admin`;
  `anon` and `authenticated` are NOLOGIN NOINHERIT, `service_role` also BYPASSRLS;
  `authenticator` is a NOINHERIT login granted all three (PostgREST connects as it and
  switches role per request); `alter default privileges in schema public grant all on
  tables, functions, sequences to postgres, anon, authenticated, service_role`;
  `statement_timeout` 3 s for anon and 8 s for authenticated; an empty publication
  `supabase_realtime`.
* migrations/10000000000000_demote-postgres.sql: `postgres` is NOSUPERUSER CREATEDB
  CREATEROLE LOGIN REPLICATION BYPASSRLS, with all on the auth schema's tables.
* 20221028101028_set_authenticator_timeout.sql, 20231130133139_set_lock_timeout_to_
  authenticator_role.sql: authenticator's statement_timeout and lock_timeout are 8 s.
* 20230201083204_grant_auth_roles_to_postgres.sql: anon, authenticated and service_role
  are granted to postgres; 20230529180330_alter_api_roles_for_inherit.sql: they INHERIT.
* migrations/db/migrate.sh: the init scripts run as `postgres` before it is demoted, so
  `postgres` owns the database, `public`, the publication, and the default privileges
  above are its own: what it creates in `public` is granted to the API roles (what issue
  17's trial found: anon held every privilege on syncd's tables).
* supabase/auth: the auth schema belongs to `supabase_auth_admin` (GoTrue connects as it);
  `auth.users` has the columns GoTrue writes (no default id: GoTrue makes it) and
  `auth.identities` cascades from it; `auth.uid()`, `auth.role()`, `auth.jwt()` read
  `request.jwt.claims` (20220224000811_update_auth_functions, 20220531120530_add_auth_jwt_
  function). A GitHub sign-in stores `user_name`, `preferred_username`, `full_name`, `name`,
  `avatar_url` and `provider_id` (the numeric GitHub id) in raw_user_meta_data
  (internal/api/provider/github.go). GoTrue deletes a user with `delete from auth.users
  where id = $1`.
* Storage (supabase/postgres init-scripts/00000000000002-storage-schema.sql, then the Storage
  API's own migrations/tenant/*.sql, which run before anyone uses the project): the schema
  `storage` belongs to supabase_admin; `storage.buckets` (0002, with `public` from 0008 and
  `file_size_limit`/`allowed_mime_types` from 0013/0014, `owner_id` from 0018) and
  `storage.objects` (0002, `path_tokens` 0003, `version` 0016, `owner_id` 0018,
  `user_metadata` 0025), unique on (bucket_id, name), both with row level security enabled
  (0002, 0007) and no policy: a client sees nothing until the project adds policies. They and
  `storage.foldername/filename/extension` belong to `supabase_storage_admin` (a NOINHERIT
  login: the Storage API connects as it, and switches to the caller's role through
  `authenticator`, 20231013070755_grant_authenticator_to_supabase_storage_admin); the API
  roles hold all privileges on both tables (0046) and postgres holds them with grant option
  (0049). `postgres` is granted `supabase_storage_admin`
  (20220609081115_grant-supabase-auth-admin-and-supabase-storage-admin-to-postgres: "so that
  the postgres role can manage ... storage tables policies"; a hosted project's supautils
  `policy_grants` lets postgres create policies on storage.objects too), which is how a
  project's SQL, syncd's migrations included, adds policies to a table it does not own.
  Left out: search functions, multipart uploads, prefixes, triggers of later migrations.
"""
from __future__ import annotations

import zlib

import psycopg
from psycopg.types.json import Jsonb
from psycopg.conninfo import make_conninfo

from syncd.store.local_server import LocalServer

CLUSTER_SETUP = """
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
create role postgres login nosuperuser createdb createrole replication bypassrls;
create role supabase_auth_admin login noinherit createrole;
create role supabase_storage_admin login noinherit createrole noreplication;
grant authenticator to supabase_storage_admin;
grant supabase_storage_admin to postgres;
alter role supabase_storage_admin set search_path = storage;
grant anon, authenticated, service_role to postgres;
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
"""

DATABASE_SETUP = """
create publication supabase_realtime;
alter publication supabase_realtime owner to postgres;
alter database {database} owner to postgres;
create schema extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter schema public owner to postgres;
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
grant all on database {database} to postgres;

create schema auth authorization supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role;
grant all on schema auth to postgres;
set role supabase_auth_admin;
create table auth.users (
  instance_id uuid, id uuid not null primary key, aud varchar(255), role varchar(255),
  email varchar(255), encrypted_password varchar(255), email_confirmed_at timestamptz,
  invited_at timestamptz, confirmation_token varchar(255), confirmation_sent_at timestamptz,
  recovery_token varchar(255), recovery_sent_at timestamptz, email_change_token_new varchar(255),
  email_change varchar(255), email_change_sent_at timestamptz, last_sign_in_at timestamptz,
  raw_app_meta_data jsonb, raw_user_meta_data jsonb, is_super_admin boolean,
  created_at timestamptz, updated_at timestamptz, phone text unique, phone_confirmed_at timestamptz,
  phone_change text default '', phone_change_token varchar(255) default '', phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '', email_change_confirm_status smallint default 0,
  banned_until timestamptz, reauthentication_token varchar(255) default '', reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false, deleted_at timestamptz, is_anonymous boolean not null default false
);
create table auth.identities (
  provider_id text not null, user_id uuid not null references auth.users (id) on delete cascade,
  identity_data jsonb not null, provider text not null, last_sign_in_at timestamptz,
  created_at timestamptz, updated_at timestamptz, email text generated always as (lower(identity_data ->> 'email')) stored,
  id uuid not null default gen_random_uuid() primary key, unique (provider_id, provider)
);
create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;
create function auth.role() returns text language sql stable as $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text $$;
reset role;
grant all on all tables in schema auth to postgres;
grant all on all routines in schema auth to postgres;
grant execute on all functions in schema auth to anon, authenticated, service_role;

create schema storage authorization supabase_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin, postgres;
create table storage.buckets (
  id text not null primary key, name text not null, owner uuid, owner_id text,
  created_at timestamptz default now(), updated_at timestamptz default now(),
  public boolean default false, file_size_limit bigint, allowed_mime_types text[]
);
create unique index bname on storage.buckets using btree (name);
create table storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text references storage.buckets (id), name text, owner uuid, owner_id text,
  created_at timestamptz default now(), updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(), metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text, user_metadata jsonb
);
create unique index bucketid_objname on storage.objects using btree (bucket_id, name);
alter table storage.objects enable row level security;
alter table storage.buckets enable row level security;
create function storage.foldername(name text) returns text[] language plpgsql as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end $$;
create function storage.filename(name text) returns text language plpgsql as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end $$;
create function storage.extension(name text) returns text language plpgsql as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return reverse(split_part(reverse(_parts[array_length(_parts, 1)]), '.', 1));
end $$;
alter table storage.objects owner to supabase_storage_admin;
alter table storage.buckets owner to supabase_storage_admin;
alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;
grant execute on all functions in schema storage to postgres, anon, authenticated, service_role;
"""


class SupabaseCluster(LocalServer):
    """A cluster whose superuser is supabase_admin, so that `postgres` can be what it is on
    Supabase: a demoted owner."""

    superuser = "supabase_admin"

    def start(self) -> None:
        fresh = not self.initialized()
        super().start()
        if fresh:
            with psycopg.connect(self.dsn(), autocommit=True) as conn:
                conn.execute(CLUSTER_SETUP)

    def create_project(self, name: str) -> None:
        """A database as a new project has it, before anything of the user's is in it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            conn.execute(DATABASE_SETUP.format(database=f'"{name}"'))

    def as_role(self, dsn: str, role: str) -> str:
        return make_conninfo(dsn, user=role)


def gotrue_user(dsn: str, login: str, name: str | None = None, github_id: int = 1) -> str:
    """A GitHub user as GoTrue signs one up: a users row and its identity, with GitHub's
    metadata keys. Returns the user's id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return _gotrue_sign_up(conn, login, name, github_id)


def _gotrue_sign_up(conn: psycopg.Connection, login: str, name: str | None, github_id: int) -> str:
    meta = {"iss": "https://api.github.com", "sub": str(github_id), "name": name or login,
            "full_name": name or login, "user_name": login, "preferred_username": login,
            "avatar_url": f"https://avatars.githubusercontent.com/u/{github_id}", "provider_id": str(github_id),
            "email": f"{login}@example.com", "email_verified": True}
    uid = conn.execute(
        "insert into auth.users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data,"
        " created_at, updated_at, email_confirmed_at) values ('00000000-0000-0000-0000-000000000000',"
        " gen_random_uuid(), 'authenticated', 'authenticated', %s, %s, %s, now(), now(), now()) returning id",
        (meta["email"], Jsonb({"provider": "github", "providers": ["github"]}), Jsonb(meta))).fetchone()[0]
    conn.execute("insert into auth.identities (provider_id, user_id, identity_data, provider, created_at,"
                 " updated_at) values (%s, %s, %s, 'github', now(), now())", (str(github_id), uid, Jsonb(meta)))
    return str(uid)


def sign_up(conn: psycopg.Connection, login: str, name: str | None = None) -> str:
    """A GitHub user on either database: on a Supabase-shaped one as GoTrue signs one up (the
    identity is where a login comes from), on plain PostgreSQL with the metadata alone."""
    if conn.execute("select to_regclass('auth.identities')").fetchone()[0]:
        return _gotrue_sign_up(conn, login, name, github_id=zlib.crc32(login.lower().encode()))
    meta = {"user_name": login, "preferred_username": login, **({"full_name": name} if name else {})}
    return str(conn.execute("insert into auth.users (id, email, raw_user_meta_data) values (gen_random_uuid(), %s, %s)"
                            " returning id", (f"{login}@example.com", Jsonb(meta))).fetchone()[0])
