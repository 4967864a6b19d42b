-- Where projects live: `projects/<P>/...` as before, the newer IDSE tooling's
-- `.idse/projects/<P>/...`, and further directories a workspace's owners name (a config's
-- `layout.roots`, sent by syncd), for workspaces that keep their projects elsewhere. Under
-- every root the layout is the one 0003 reads (sessions with or without `sessions/`), and
-- the root's CURRENT_SESSION and session_state.json are read into the project's row. Every
-- row derived from a path is derived again, here and whenever the roots change.

alter table public.workspaces add column layout_roots text[] not null default '{}';

create function syncd.builtin_layout_roots() returns text[]
  language sql immutable set search_path = '' as $$
  select array['projects', '.idse/projects']
$$;

-- A workspace's roots (none known: the built-in ones only).
create function syncd.layout_roots(ws uuid) returns text[]
  language sql stable set search_path = '' as $$
  select syncd.builtin_layout_roots()
         || coalesce((select w.layout_roots from public.workspaces w where w.id = ws), '{}')
$$;

-- <root>/<P>/<file> at least, the longest root holding the path deciding; then as 0003.
create function syncd.layout_under(path text, roots text[],
                                   out root text, out project text, out session text, out stage text)
  language plpgsql immutable set search_path = '' as $$
declare
  r text;
  p text[];
  n int;
begin
  foreach r in array roots loop
    if starts_with(path, r || '/') and (root is null or length(r) > length(root)) then
      root := r;
    end if;
  end loop;
  p := string_to_array(substr(path, length(root) + 2), '/');
  n := coalesce(cardinality(p), 0);
  if n < 2 then
    root := null;
    return;
  end if;
  project := p[1];
  if n >= 4 and p[2] = 'sessions' then
    -- <root>/<P>/sessions/<S>/...
    session := p[3];
    if n >= 5 then
      stage := syncd.stage_of(p[4]);
    end if;
  elsif n >= 4 and (syncd.stage_of(p[3]) is not null or p[3] = 'metadata') then
    -- <root>/<P>/<S>/<stage dir>/... : a session without the sessions/ level
    session := p[2];
    stage := syncd.stage_of(p[3]);
  end if;
end
$$;

-- The built-in roots only: what a path means before any workspace is known.
create or replace function syncd.layout(path text, out project text, out session text, out stage text)
  language sql immutable set search_path = '' as $$
  select l.project, l.session, l.stage from syncd.layout_under(path, syncd.builtin_layout_roots()) l
$$;

create function syncd.layout(ws uuid, path text, out root text, out project text, out session text, out stage text)
  language sql stable set search_path = '' as $$
  select * from syncd.layout_under(path, syncd.layout_roots(ws))
$$;

-- The project and session rows a path belongs to, without creating anything.
create function syncd.layout_ids(ws uuid, doc_path text, out project_id uuid, out session_id uuid)
  language sql stable set search_path = '' as $$
  select p.id, s.id from syncd.layout(ws, doc_path) l
    left join public.projects p on p.workspace_id = ws and p.name = l.project
    left join public.sessions s on s.project_id = p.id and s.slug = l.session
$$;

-- (as in 0003, under the workspace's roots)
create or replace function syncd.ensure_layout(ws uuid, path text,
                                               out project_id uuid, out session_id uuid, out stage text)
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
begin
  select * into l from syncd.layout(ws, path);
  stage := l.stage;
  if l.project is null then
    return;
  end if;
  insert into public.projects (workspace_id, name) values (ws, l.project)
    on conflict (workspace_id, name) do nothing;
  select id into project_id from public.projects where workspace_id = ws and name = l.project;
  if l.session is null then
    return;
  end if;
  insert into public.sessions (workspace_id, project_id, slug)
    values (ws, ensure_layout.project_id, l.session)
    on conflict on constraint sessions_project_id_slug_key do nothing;
  select id into session_id from public.sessions s
    where s.project_id = ensure_layout.project_id and s.slug = l.session;
end
$$;

-- (as in 0007: the session whose roles guard a path, under the workspace's roots)
create or replace function syncd.session_of(ws uuid, doc_path text) returns uuid
  language sql stable security definer set search_path = '' as $$
  select session_id from syncd.layout_ids(ws, doc_path)
$$;

-- (as in 0017, the event's project and session under the workspace's roots)
create or replace function syncd.record_activity(ws uuid, dev uuid, kind text, doc_path text, details jsonb)
  returns void
  language plpgsql security definer set search_path = '' as $$
begin
  if jsonb_typeof(details) not in ('object', 'null') then
    raise exception 'an event''s details are an object, got %', jsonb_typeof(details) using errcode = '22023';
  end if;
  if octet_length(details::text) > 16384 then
    raise exception 'an event''s details take at most 16 KiB' using errcode = 'PT413';
  end if;
  if not syncd.can_read(ws, syncd.session_of(ws, doc_path)) then
    raise exception 'no access to %', coalesce(doc_path, 'this workspace') using errcode = '42501';
  end if;
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details)
  select ws, l.project_id, l.session_id,
         (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path),
         auth.uid(), syncd.own_device(ws, dev), kind,
         case when jsonb_typeof(details) = 'object' then details else '{}'::jsonb end || jsonb_build_object('path', doc_path)
    from syncd.layout_ids(ws, doc_path) l;
end
$$;

-- (as in 0006, under the workspace's roots: permission files of sessions under any root)
create function syncd.legacy_members(files jsonb, ws uuid)
  returns table (path text, login text, role text, project text, session text, user_id uuid)
  language sql stable set search_path = '' as $$
  select f ->> 'path', syncd.legacy_login(line),
         case when f ->> 'path' ~ '(^|/)\.owner$' then 'owner' else 'collaborator' end,
         l.project, l.session,
         (select p.id from public.profiles p where lower(p.github_login) = lower(syncd.legacy_login(line)))
    from jsonb_array_elements(files) f
    cross join lateral syncd.layout(ws, f ->> 'path') l
    cross join lateral regexp_split_to_table(f ->> 'text', '\r?\n') line
   where syncd.legacy_login(line) is not null
     and (f ->> 'path' = '.owner' or l.session is not null)
$$;
drop function syncd.legacy_members(jsonb);

-- (as in 0017, reading the permission files under the workspace's roots)
create or replace function syncd.import_members(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  dry boolean := coalesce(($1 ->> 'dry_run')::boolean, false);
  ws uuid := case when not dry then syncd.workspace_id($1 ->> 'workspace') end;  -- a dry run needs none
  m record;
  sess uuid;
  found jsonb := '[]'::jsonb;
  added integer := 0;
  invited integer := 0;
  n integer;
begin
  if not dry then
    perform syncd.require_owner(ws);
  end if;
  for m in select * from syncd.legacy_members(coalesce($1 -> 'files', '[]'::jsonb), ws) loop
    found := found || jsonb_build_array(jsonb_build_object(
      'path', m.path, 'login', m.login, 'role', m.role, 'project', m.project,
      'session', m.session, 'known', m.user_id is not null));
    if dry then
      continue;
    end if;
    sess := null;
    if m.session is not null then
      select s.id into sess from public.sessions s join public.projects p on p.id = s.project_id
       where p.workspace_id = ws and p.name = m.project and s.slug = m.session;
      if sess is null then
        insert into public.projects (workspace_id, name) values (ws, m.project)
          on conflict (workspace_id, name) do nothing;
        insert into public.sessions (workspace_id, project_id, slug)
          select ws, p.id, m.session from public.projects p
           where p.workspace_id = ws and p.name = m.project
          returning id into sess;
      end if;
    end if;
    if m.user_id is not null and sess is null then
      insert into public.workspace_members (workspace_id, user_id, role)
        values (ws, m.user_id, m.role) on conflict do nothing;
    elsif m.user_id is not null then
      insert into public.session_members (session_id, user_id, role)
        values (sess, m.user_id, m.role) on conflict do nothing;
    else
      insert into public.invitations (workspace_id, session_id, github_login, role)
        values (ws, sess, m.login, m.role) on conflict do nothing;
    end if;
    get diagnostics n = row_count;
    if m.user_id is not null then
      added := added + n;
    else
      invited := invited + n;
    end if;
  end loop;
  return jsonb_build_object('members', found, 'added', added, 'invited', invited);
end
$$;

-- {workspace?, paths: [...]} → {projects, sessions} (0006), under the roots of the
-- workspace when the caller may see it (a dry run's may not exist yet: the built-in ones).
create or replace function public.syncd_layout_plan(jsonb) returns jsonb
  language sql stable set search_path = '' as $$
  with l as (select l.* from jsonb_array_elements_text($1 -> 'paths') p
               cross join lateral syncd.layout_under(p, syncd.layout_roots(
                 (select w.id from public.workspaces w where w.slug = $1 ->> 'workspace'))) l)
  select jsonb_build_object(
    'projects', coalesce((select jsonb_agg(distinct l.project) from l where l.project is not null), '[]'::jsonb),
    'sessions', coalesce((select jsonb_agg(distinct jsonb_build_object('project', l.project, 'session', l.session))
                            from l where l.session is not null), '[]'::jsonb))
$$;

-- (as in 0006: a project's CURRENT_SESSION and session_state.json, under any root)
create or replace function syncd.project_files() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
  info jsonb;
begin
  select * into l from syncd.layout(new.workspace_id, new.path);
  if l.project is null or new.path not in (l.root || '/' || l.project || '/CURRENT_SESSION',
                                           l.root || '/' || l.project || '/session_state.json') then
    return null;
  end if;
  if new.path like '%/CURRENT_SESSION' then
    select coalesce(jsonb_object_agg(trim(kv[1]), trim(kv[2])), '{}'::jsonb) into info
      from regexp_matches(coalesce(new.content ->> 'text', ''), '^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$', 'gm') kv;
    update public.projects set current_session = info ->> 'session_id',
                               state = coalesce(state, '{}'::jsonb) || jsonb_build_object('current_session_file', info)
     where id = new.project_id;
  else
    update public.projects
       set state = coalesce(state, '{}'::jsonb) || jsonb_build_object('session_state', new.content -> 'value')
     where id = new.project_id;
  end if;
  return null;
end
$$;
drop trigger documents_project_files on public.documents;
create trigger documents_project_files after insert or update of content on public.documents
  for each row when (not new.deleted and (new.path like '%/CURRENT_SESSION' or new.path like '%/session_state.json'))
  execute function syncd.project_files();

-- Every row a path's layout decides, derived again for one workspace, one statement per
-- table: the projects and sessions the paths name, the documents (and then, once per
-- session touched, its pipeline), activity about a path, the projects' state files.
-- Called under the workspace's lock, like a commit.
create function syncd.derive_layout(ws uuid) returns void
  language plpgsql security definer set search_path = '' as $$
declare
  roots text[] := syncd.layout_roots(ws);
  touched uuid[];
begin
  create temporary table pg_temp.derived on commit drop as
    select d.id, d.session_id as old_session, l.project, l.session, l.stage
      from public.documents d cross join lateral syncd.layout_under(d.path, roots) l
     where d.workspace_id = ws;
  insert into public.projects (workspace_id, name)
    select distinct ws, project from pg_temp.derived where project is not null
    on conflict (workspace_id, name) do nothing;
  insert into public.sessions (workspace_id, project_id, slug)
    select distinct ws, p.id, x.session from pg_temp.derived x
      join public.projects p on p.workspace_id = ws and p.name = x.project
     where x.session is not null
    on conflict on constraint sessions_project_id_slug_key do nothing;
  perform set_config('syncd.pipeline', 'deferred', true);
  with moved as (
    update public.documents d set project_id = p.id, session_id = s.id, stage = x.stage
      from pg_temp.derived x
      left join public.projects p on p.workspace_id = ws and p.name = x.project
      left join public.sessions s on s.project_id = p.id and s.slug = x.session
     where d.id = x.id and (d.project_id, d.session_id, d.stage) is distinct from (p.id, s.id, x.stage)
    returning d.session_id, x.old_session)
  select array_agg(distinct t) into touched
    from moved cross join lateral unnest(array[moved.session_id, moved.old_session]) t where t is not null;
  perform set_config('syncd.pipeline', '', true);
  update public.sessions set pipeline = syncd.pipeline_of(id) where id = any(touched);
  -- activity about a document at its path takes the document's; any other, its path's
  update public.activity_log a
     set project_id = d.project_id, session_id = d.session_id
    from public.documents d
   where a.workspace_id = ws and d.id = a.document_id and d.path = a.details ->> 'path'
     and (a.project_id, a.session_id) is distinct from (d.project_id, d.session_id);
  update public.activity_log a
     set project_id = l.project_id, session_id = l.session_id
    from public.activity_log x cross join lateral syncd.layout_ids(ws, x.details ->> 'path') l
   where x.id = a.id and x.workspace_id = ws and x.details ? 'path'
     and not exists (select 1 from public.documents d where d.id = x.document_id and d.path = x.details ->> 'path')
     and (a.project_id, a.session_id) is distinct from (l.project_id, l.session_id);
  update public.documents set content = content
   where workspace_id = ws and not deleted and (path like '%/CURRENT_SESSION' or path like '%/session_state.json');
  drop table pg_temp.derived;
end
$$;

-- {workspace, roots: [directory, ...]} → {roots, changed}: the workspace's further roots,
-- as a working copy's config names them. The same list changes nothing and anyone may send
-- it; another list is an owner's to set, and re-derives the workspace's rows.
create function syncd.set_layout_roots(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  wanted text[];
  current text[];
begin
  if jsonb_typeof($1 -> 'roots') is distinct from 'array' then
    raise exception 'layout roots are a list of at most 32 directories' using errcode = '22023';
  end if;
  if jsonb_array_length($1 -> 'roots') > 32
     or exists (select 1 from jsonb_array_elements($1 -> 'roots') r where jsonb_typeof(r) <> 'string') then
    raise exception 'layout roots are a list of at most 32 directories' using errcode = '22023';
  end if;
  select coalesce(array_agg(distinct r order by r), '{}') into wanted
    from (select btrim(r, '/') as r from jsonb_array_elements_text($1 -> 'roots') r) x
   where r <> all (syncd.builtin_layout_roots());
  if exists (select 1 from unnest(wanted) r
              where length(r) > 255 or r !~ '^[^/]+(/[^/]+)*$' or r ~ '(^|/)\.\.?(/|$)'
                 or exists (select 1 from unnest(string_to_array(r, '/')) part where lower(part) = '.git')) then
    raise exception 'a layout root is a directory of the workspace, like docs/projects (no "..", ".", ".git" or empty parts)'
      using errcode = '22023';
  end if;
  current := (select w.layout_roots from public.workspaces w where w.id = ws);
  if current = wanted then
    return jsonb_build_object('roots', to_jsonb(current), 'changed', false);
  end if;
  if not syncd.is_owner(ws) then
    raise exception 'the workspace''s layout roots are [%]; only an owner of the workspace can change them',
      array_to_string(current, ', ') using errcode = '42501';
  end if;
  perform syncd.lock_workspace(ws);
  update public.workspaces set layout_roots = wanted where id = ws;
  perform syncd.derive_layout(ws);
  return jsonb_build_object('roots', to_jsonb(wanted), 'changed', true);
end
$$;
create function public.syncd_layout_roots(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.set_layout_roots($1) $$;

-- The rows of every workspace, under the built-in roots now known.
select syncd.derive_layout(w.id) from public.workspaces w;

-- Privileges (see 0017): the RPC and what its layout plan reads for any client; the rest
-- only for the contract's own functions.
revoke all on function syncd.builtin_layout_roots(), syncd.layout_roots(uuid), syncd.layout_under(text, text[]),
  syncd.layout(uuid, text), syncd.layout_ids(uuid, text), syncd.legacy_members(jsonb, uuid),
  syncd.derive_layout(uuid), syncd.set_layout_roots(jsonb), public.syncd_layout_roots(jsonb)
  from public, anon, authenticated, service_role;
grant execute on function syncd.builtin_layout_roots(), syncd.layout_roots(uuid), syncd.layout_under(text, text[]),
  syncd.set_layout_roots(jsonb), public.syncd_layout_roots(jsonb) to authenticated, service_role;
