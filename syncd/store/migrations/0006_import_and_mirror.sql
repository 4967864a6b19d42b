-- The migration of a legacy workspace (`syncd import`) and what the Git mirror reads.
-- (Imported versions themselves, with their provenance, come with 0005's commit_one.)

-- Pending invitations: legacy `.owner`/`.collaborators` logins that have no profile yet.
-- Signing in with that GitHub login turns them into memberships (with the Supabase work).
create table public.invitations (
  id bigint generated always as identity primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  session_id uuid references public.sessions (id) on delete cascade,
  github_login text not null,
  role text not null check (role in ('owner', 'collaborator', 'reader')),
  created_at timestamptz not null default now()
);
create unique index invitations_once on public.invitations
  (workspace_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(github_login));
alter table public.invitations enable row level security;
create policy service_role_all on public.invitations for all to service_role using (true) with check (true);
grant select, insert, update, delete on public.invitations to authenticated, service_role;

-- {workspace, versions: [{path, version}]} → {versions: [records with content]}, in the
-- order asked; what the Git mirror needs for one batch, in one call.
create function public.syncd_versions(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('versions', coalesce((
    select jsonb_agg(syncd.version_json(v) || jsonb_build_object('content', v.content)
                     order by w.ord)
      from jsonb_array_elements(coalesce($1 -> 'versions', '[]'::jsonb)) with ordinality w(item, ord)
      join public.document_versions v
        on v.workspace_id = ws and v.path = w.item ->> 'path'
       and v.version = (w.item ->> 'version')::integer), '[]'::jsonb));
end
$$;

-- The login in a legacy permission file line: "alice", "github|alice", "@alice"; else null.
create function syncd.legacy_login(line text) returns text
  language sql immutable set search_path = '' as $$
  select m[1] from regexp_match(trim(split_part(line, '#', 1)),
                                '^(?:github\|)?@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$') m
$$;

-- Who the legacy permission files name: {path, login, role, project, session, user_id} per line.
-- A workspace-level `.owner` makes owners of the workspace; a session's `.owner` /
-- `.collaborators` (also under metadata/) owners and collaborators of that session.
create function syncd.legacy_members(files jsonb)
  returns table (path text, login text, role text, project text, session text, user_id uuid)
  language sql stable set search_path = '' as $$
  select f ->> 'path', syncd.legacy_login(line),
         case when f ->> 'path' ~ '(^|/)\.owner$' then 'owner' else 'collaborator' end,
         l.project, l.session,
         (select p.id from public.profiles p where lower(p.github_login) = lower(syncd.legacy_login(line)))
    from jsonb_array_elements(files) f
    cross join lateral syncd.layout(f ->> 'path') l
    cross join lateral regexp_split_to_table(f ->> 'text', '\r?\n') line
   where syncd.legacy_login(line) is not null
     and (f ->> 'path' = '.owner' or l.session is not null)
$$;

-- {workspace, files: [{path, text}], dry_run?} → {members: [...], added: n, invited: n}
-- Legacy permission files, once, at import: a login with a profile becomes a member, any
-- other login is invited. Files outside a session (other than the workspace's .owner)
-- grant nothing. Editing these files later changes nothing: after the import,
-- permissions live in the database.
create function public.syncd_import_members(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
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
  for m in select * from syncd.legacy_members(coalesce($1 -> 'files', '[]'::jsonb)) loop
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

-- {paths: [...]} → {projects: [...], sessions: [{project, session}]}: what the layout
-- makes of these paths, for `syncd import --dry-run` (nothing is written).
create function public.syncd_layout_plan(jsonb) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'projects', coalesce((select jsonb_agg(distinct l.project) from jsonb_array_elements_text($1 -> 'paths') p
                           cross join lateral syncd.layout(p) l where l.project is not null), '[]'::jsonb),
    'sessions', coalesce((select jsonb_agg(distinct jsonb_build_object('project', l.project, 'session', l.session))
                           from jsonb_array_elements_text($1 -> 'paths') p
                           cross join lateral syncd.layout(p) l where l.session is not null), '[]'::jsonb))
$$;

-- A project's CURRENT_SESSION ("key: value" lines) and session_state.json are read into
-- its row whenever they change, by import or by any sync.
create function syncd.project_files() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
  info jsonb;
begin
  select * into l from syncd.layout(new.path);
  if l.project is null or new.path not in ('projects/' || l.project || '/CURRENT_SESSION',
                                           'projects/' || l.project || '/session_state.json') then
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
create trigger documents_project_files after insert or update of content on public.documents
  for each row when (new.path like 'projects/%' and not new.deleted)
  execute function syncd.project_files();

revoke execute on function public.syncd_versions(jsonb), public.syncd_import_members(jsonb),
  public.syncd_layout_plan(jsonb), syncd.legacy_login(text), syncd.legacy_members(jsonb),
  syncd.project_files() from public;
grant execute on function public.syncd_versions(jsonb), public.syncd_import_members(jsonb),
  public.syncd_layout_plan(jsonb), syncd.legacy_login(text), syncd.legacy_members(jsonb)
  to authenticated, service_role;
