"""What a Supabase project repository gets from syncd, in the Supabase CLI's layout
(`syncd db supabase DIR`): the migrations as supabase/migrations/<timestamp>_syncd_NNNN_name.sql,
one that adds documents to Realtime's publication, and GitHub sign-in in supabase/config.toml.

Each migration file runs the migration's own text as `syncd db migrate` does (under the same
advisory lock, recorded in syncd.schema_migrations with the same checksum) and does nothing
where that version is recorded already, so `supabase db push` and `syncd db migrate` can each
go first, and either can apply what the other has not yet.
"""
from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime, timedelta

from syncd.store.migrate import BOOKKEEPING, LOCK_KEY, Migration

LOGIN_REDIRECT = "http://127.0.0.1:{port}/callback"  # where `syncd login` receives the sign-in
ALLOWED_REDIRECT = LOGIN_REDIRECT.format(port="*")  # Supabase Auth's allow list takes globs

_STAMP = "%Y%m%d%H%M%S"
_STAMPED = re.compile(r"^(\d{14})_.*\.sql$")
_OURS = re.compile(r"^\d+_syncd_(\d{4}|realtime)_\w+\.sql$")

REALTIME = """\
-- Written by `syncd db supabase`. Remote changes wake syncd's daemons through Realtime
-- (postgres_changes on public.documents): the table joins the supabase_realtime publication,
-- where there is one and it does not have the table yet.
do $syncd$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime')
     and not exists (select 1 from pg_publication_tables
                      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'documents') then
    alter publication supabase_realtime add table public.documents;
  end if;
end
$syncd$;
"""

GITHUB = """\
# Written by `syncd db supabase`: `syncd login` signs in with GitHub. The GitHub OAuth app's
# callback URL is Supabase Auth's own, https://<project-ref>.supabase.co/auth/v1/callback
# (http://127.0.0.1:54321/auth/v1/callback under `supabase start`), which an empty
# redirect_uri stands for; the app's id and secret come from the environment.
[auth.external.github]
enabled = true
client_id = "env(SUPABASE_AUTH_EXTERNAL_GITHUB_CLIENT_ID)"
secret = "env(SUPABASE_AUTH_EXTERNAL_GITHUB_SECRET)"
redirect_uri = ""
"""

# For a config.toml yet to be made (`supabase init` makes one).
SIGN_IN = f"[auth]\nadditional_redirect_urls = {json.dumps([ALLOWED_REDIRECT])}\n\n{GITHUB}"

_BOOKKEEPING = BOOKKEEPING.replace("\n", "\n    ")


def migration_file(m: Migration) -> str:
    """The migration wrapped so that it applies once, whoever applies it."""
    tag = f"syncd_{m.version:04d}"
    if "$syncd$" in m.sql or f"${tag}$" in m.sql:
        raise ValueError(f"{m.version:04d}_{m.name} uses the dollar quotes that would wrap it")
    return f"""\
-- syncd migration {m.version:04d}_{m.name}, written by `syncd db supabase`: do not edit.
-- The same SQL as `syncd db migrate` applies, recorded as it records it (syncd.schema_migrations);
-- where that version is recorded already, whichever of the two applied it, this does nothing.
do $syncd$
declare
  recorded text;
begin
  perform pg_advisory_xact_lock({LOCK_KEY});
  if to_regclass('syncd.schema_migrations') is null then
    {_BOOKKEEPING}
  end if;
  select checksum into recorded from syncd.schema_migrations where version = {m.version};
  if recorded = '{m.checksum}' then
    return;
  elsif recorded is not null then
    raise exception '{m.differs}';
  end if;
  execute ${tag}$
{m.sql}${tag}$;
  insert into syncd.schema_migrations (version, name, checksum)
  values ({m.version}, '{m.name}', '{m.checksum}');
end
$syncd$;
"""


def new_files(existing: list[str], migrations: list[Migration], now: datetime) -> list[tuple[str, str]]:
    """(name, text) of the files a migrations directory holding `existing` lacks. syncd's
    files are known by their `_syncd_NNNN_` part, whatever their timestamp; new ones come
    after every file there, since the Supabase CLI refuses a migration older than the last
    one a database applied."""
    have = {m[1] for name in existing if (m := _OURS.match(name))}
    missing = [(f"syncd_{m.version:04d}_{m.name}", migration_file(m)) for m in migrations
               if f"{m.version:04d}" not in have]
    if "realtime" not in have:
        missing.append(("syncd_realtime_documents", REALTIME))
    after = [datetime.strptime(m[1], _STAMP) + timedelta(seconds=1) for name in existing if (m := _STAMPED.match(name))]
    start = max([now.replace(microsecond=0, tzinfo=None), *after])
    return [(f"{(start + timedelta(seconds=i)).strftime(_STAMP)}_{stem}.sql", text)
            for i, (stem, text) in enumerate(missing)]


def add_sign_in(config: str) -> tuple[str, list[str]]:
    """config.toml's text with what `syncd login` needs (GitHub; the loopback redirect
    allowed), and what was done or is left to do. An existing [auth.external.github] is
    never rewritten, nor a redirect list written over several lines."""
    auth = tomllib.loads(config).get("auth", {})
    config, redirect = _allow_login_redirect(config, auth)
    notes = [redirect] if redirect else []
    github = auth.get("external", {}).get("github")
    if github == tomllib.loads(GITHUB)["auth"]["external"]["github"]:
        notes.append("has syncd's [auth.external.github]")
    elif github is not None:
        notes.append("kept its own [auth.external.github] as it is; syncd's would be:\n" + GITHUB)
    else:
        config = config.rstrip("\n") + "\n\n" + GITHUB
        notes.append("added [auth.external.github]")
    tomllib.loads(config)  # still TOML, or nothing is written
    return config, notes


def _allow_login_redirect(config: str, auth: dict) -> tuple[str, str | None]:
    urls = auth.get("additional_redirect_urls", [])
    if ALLOWED_REDIRECT in urls:
        return config, None
    done = f"allowed {ALLOWED_REDIRECT} as a redirect ([auth] additional_redirect_urls)"
    line = f"additional_redirect_urls = {json.dumps([*urls, ALLOWED_REDIRECT])}"
    header = re.search(r"^\[auth\][ \t]*(#.*)?$", config, re.MULTILINE)
    if header is None:
        return (config.rstrip("\n") + f"\n\n[auth]\n{line}\n", done) if not urls else (config, _BY_HAND)
    table = config[header.end():]
    table = table[:m.start()] if (m := re.search(r"^\[", table, re.MULTILINE)) else table
    found = re.search(r"^additional_redirect_urls[ \t]*=.*$", table, re.MULTILINE)
    if found is None and "additional_redirect_urls" not in auth:
        return config[:header.end()] + f"\n{line}" + config[header.end():], done
    if found is not None and _one_line_list(found[0]):
        at = header.end() + found.start()
        return config[:at] + line + config[at + len(found[0]):], done
    return config, _BY_HAND


_BY_HAND = f"add {ALLOWED_REDIRECT} to [auth] additional_redirect_urls yourself"


def _one_line_list(line: str) -> bool:
    try:
        return isinstance(tomllib.loads(line).get("additional_redirect_urls"), list)
    except tomllib.TOMLDecodeError:
        return False
