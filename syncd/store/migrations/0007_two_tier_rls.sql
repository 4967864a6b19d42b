-- The two-tier permission model, enforced by the database for every client.
--
--   workspace owner         everything in the workspace, and its membership
--   workspace collaborator  read and write every document
--   workspace reader        read every document
--   session owner/collaborator   read and write that session's documents
--   session reader          read that session's documents
--   anyone else             nothing: not in the feed, history, activity or devices
--
-- "Trusted" callers hold the database itself: the direct PostgreSQL transport (no JWT
-- claims at all) and a service key (role service_role). Everyone else is a signed-in
-- user, identified by auth.uid(). Checks live in security-definer helpers in the
-- non-exposed `syncd` schema; the RPC functions stay security invoker, so row level
-- security filters what they read, and explicit checks guard what they write.

-- A JWT says who the caller is; without one, the caller is trusted unless it switched to a
-- client role (as PostgREST does with `set role anon` for an anonymous request).
create function syncd.trusted() returns boolean
  language sql stable set search_path = '' as $$
  select case when nullif(auth.role(), '') is not null then auth.role() = 'service_role'
              else coalesce(nullif(current_setting('role', true), ''), 'none') not in ('anon', 'authenticated') end
$$;

create function syncd.touch_device(dev uuid) returns void
  language sql security definer set search_path = '' as $$
  update public.devices set last_seen = now() where id = dev
$$;

create function syncd.workspace_role(ws uuid) returns text
  language sql stable security definer set search_path = '' as $$
  select m.role from public.workspace_members m where m.workspace_id = ws and m.user_id = (select auth.uid())
$$;

create function syncd.session_role(sess uuid) returns text
  language sql stable security definer set search_path = '' as $$
  select m.role from public.session_members m where m.session_id = sess and m.user_id = (select auth.uid())
$$;

create function syncd.can_see_workspace(ws uuid) returns boolean
  language sql stable security definer set search_path = '' as $$
  select syncd.trusted() or syncd.workspace_role(ws) is not null
      or exists (select 1 from public.session_members m join public.sessions s on s.id = m.session_id
                  where s.workspace_id = ws and m.user_id = (select auth.uid()))
$$;

create function syncd.can_read(ws uuid, sess uuid) returns boolean
  language sql stable security definer set search_path = '' as $$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) is not null
                  or (sess is not null and syncd.session_role(sess) is not null), false)
$$;

create function syncd.can_write(ws uuid, sess uuid) returns boolean
  language sql stable security definer set search_path = '' as $$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) in ('owner', 'collaborator')
                  or (sess is not null and syncd.session_role(sess) in ('owner', 'collaborator')), false)
$$;

create function syncd.is_owner(ws uuid) returns boolean
  language sql stable security definer set search_path = '' as $$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) = 'owner', false)
$$;

-- (coalesce: a missing membership is a NULL role, and `not NULL` would let a check through)

-- The session a path belongs to, by the layout, without creating anything.
create function syncd.session_of(ws uuid, doc_path text) returns uuid
  language sql stable security definer set search_path = '' as $$
  select s.id from syncd.layout(doc_path) l
    join public.projects p on p.workspace_id = ws and p.name = l.project
    join public.sessions s on s.project_id = p.id and s.slug = l.session
$$;

create function syncd.can_read_document(doc uuid) returns boolean
  language sql stable security definer set search_path = '' as $$
  select syncd.can_read(d.workspace_id, d.session_id) from public.documents d where d.id = doc
$$;

-- Policies: reads filtered by membership; writes to documents only by writers, and all
-- other writes only through the contract's functions (no insert/update/delete policy).
do $$
declare
  t text;
begin
  foreach t in array array['profiles', 'workspaces', 'workspace_members', 'projects', 'sessions',
                           'session_members', 'devices', 'documents', 'document_versions',
                           'activity_log', 'invitations'] loop
    execute format('revoke insert, update, delete on public.%I from authenticated', t);
  end loop;
end
$$;
grant insert, update on public.documents, public.document_versions to authenticated;

create policy members_read on public.workspaces for select to authenticated
  using (syncd.can_see_workspace(id));
create policy members_read on public.workspace_members for select to authenticated
  using (syncd.can_see_workspace(workspace_id));
create policy members_read on public.projects for select to authenticated
  using (syncd.can_see_workspace(workspace_id));
create policy members_read on public.sessions for select to authenticated
  using (syncd.can_see_workspace(workspace_id));
create policy members_read on public.session_members for select to authenticated
  using (exists (select 1 from public.sessions s where s.id = session_id and syncd.can_see_workspace(s.workspace_id)));
create policy members_read on public.devices for select to authenticated
  using (user_id = (select auth.uid()) or syncd.workspace_role(workspace_id) is not null);
create policy readers_read on public.documents for select to authenticated
  using (syncd.can_read(workspace_id, session_id));
create policy writers_insert on public.documents for insert to authenticated
  with check (syncd.can_write(workspace_id, session_id));
create policy writers_update on public.documents for update to authenticated
  using (syncd.can_write(workspace_id, session_id)) with check (syncd.can_write(workspace_id, session_id));
create policy readers_read on public.document_versions for select to authenticated
  using (syncd.can_read_document(document_id));
create policy writers_insert on public.document_versions for insert to authenticated
  with check (exists (select 1 from public.documents d where d.id = document_id
                       and syncd.can_write(d.workspace_id, d.session_id)));
create policy readers_read on public.activity_log for select to authenticated
  using (syncd.can_read(workspace_id, session_id));
create policy owners_read on public.invitations for select to authenticated
  using (syncd.is_owner(workspace_id));
create policy co_members_read on public.profiles for select to authenticated
  using (id = (select auth.uid()) or exists (
    select 1 from public.workspace_members m where m.user_id = profiles.id and syncd.can_see_workspace(m.workspace_id)));

-- syncd_commit: each change is checked against the caller's rights before it is applied;
-- a change the caller may not make is refused on its own ("forbidden"), the rest go on.
create or replace function public.syncd_commit(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  -- a device the store does not know (never opened) is left out rather than failing the batch
  dev uuid := (select d.id from public.devices d where d.id = nullif($1 ->> 'device', '')::uuid);
  origin text := coalesce($1 ->> 'origin', 'sync');
  change jsonb;
  results jsonb := '[]'::jsonb;
begin
  perform syncd.lock_workspace(ws);
  for change in select value from jsonb_array_elements(coalesce($1 -> 'changes', '[]'::jsonb)) loop
    if not syncd.can_write(ws, syncd.session_of(ws, change ->> 'path')) then
      results := results || jsonb_build_array(jsonb_build_object(
        'path', change ->> 'path', 'status', 'forbidden',
        'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)'));
      continue;
    end if;
    results := results || jsonb_build_array(syncd.commit_one(ws, dev, origin, change));
  end loop;
  if dev is not null then
    perform syncd.touch_device(dev);
  end if;
  return jsonb_build_object('results', results);
end
$$;

-- syncd_open: creating a workspace makes the signed-in caller its owner; opening one needs
-- some membership in it (a stranger is told it does not exist, as for any name).
create or replace function public.syncd_open(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws_slug text := $1 ->> 'workspace';
  ws public.workspaces;
  dev jsonb := $1 -> 'device';
  me uuid := auth.uid();
begin
  if coalesce(($1 ->> 'create')::boolean, false) then
    if not syncd.trusted() and me is null then
      raise exception 'sign in to create a workspace' using errcode = '42501';
    end if;
    insert into public.workspaces (slug, name, created_by)
      values (ws_slug, coalesce($1 ->> 'name', ws_slug), me)
      on conflict on constraint workspaces_slug_key do nothing
      returning * into ws;
    if ws.id is not null and me is not null then
      insert into public.workspace_members (workspace_id, user_id, role) values (ws.id, me, 'owner');
    end if;
  end if;
  select * into ws from public.workspaces w where w.slug = ws_slug;
  if ws.id is null or not syncd.can_see_workspace(ws.id) then
    raise exception 'workspace "%" does not exist (or you are not a member of it)', ws_slug
      using errcode = 'PT404', hint = 'create it with `syncd init`, or ask its owner for access';
  end if;
  if dev is not null then
    insert into public.devices (id, workspace_id, user_id, name, hostname)
      values ((dev ->> 'id')::uuid, ws.id, me, coalesce(dev ->> 'name', dev ->> 'hostname', 'unnamed device'),
              dev ->> 'hostname')
      on conflict (id) do update  -- an open without a name keeps the device's name
        set name = coalesce(dev ->> 'name', public.devices.name),
            hostname = coalesce(dev ->> 'hostname', public.devices.hostname), last_seen = now()
        where public.devices.user_id is not distinct from me;
  end if;
  return jsonb_build_object(
    'workspace_id', ws.id, 'workspace', ws.slug, 'last_seq', ws.last_seq,
    'schema_version', (select max(version) from syncd.schema_migrations),
    'role', case when syncd.trusted() then 'service' else coalesce(syncd.workspace_role(ws.id), 'session member') end);
end
$$;

-- Client events need read access to the workspace they are about.
create or replace function public.syncd_record(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := nullif($1 ->> 'device', '')::uuid;
  event jsonb;
  n integer := 0;
begin
  for event in select value from jsonb_array_elements(coalesce($1 -> 'events', '[]'::jsonb)) loop
    if coalesce(event ->> 'kind', '') !~ '^[a-z][a-z_-]{0,39}$' then
      raise exception 'an event needs a kind (lowercase word), got %', event -> 'kind'
        using errcode = '22023';
    end if;
    if not syncd.can_read(ws, syncd.session_of(ws, event ->> 'path')) then
      raise exception 'no access to %', coalesce(event ->> 'path', 'this workspace') using errcode = '42501';
    end if;
    perform syncd.record_activity(ws, dev, event ->> 'kind', event ->> 'path', event -> 'details');
    n := n + 1;
  end loop;
  return jsonb_build_object('recorded', n);
end
$$;

-- Only owners (or the database itself) bring legacy members in.
create or replace function syncd.require_owner(ws uuid) returns void
  language plpgsql stable set search_path = '' as $$
begin
  if not syncd.is_owner(ws) then
    raise exception 'only an owner of the workspace can change its members' using errcode = '42501';
  end if;
end
$$;

-- {workspace, action: list|add|remove|role, login?, role?, project?, session?}
-- Members by GitHub login; adding a login without a profile yet makes an invitation.
create function public.syncd_members(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  action text := coalesce($1 ->> 'action', 'list');
  login text := $1 ->> 'login';
  new_role text := $1 ->> 'role';
  sess uuid;
  who uuid;
  n integer;
  m integer;
begin
  if not syncd.can_see_workspace(ws) then
    raise exception 'no access to this workspace' using errcode = '42501';
  end if;
  if action = 'list' then
    return jsonb_build_object('members', coalesce((
      select jsonb_agg(x order by x ->> 'session' nulls first, x ->> 'login') from (
        select jsonb_build_object('login', p.github_login, 'name', p.display_name, 'role', m.role,
                                  'session', null, 'project', null, 'pending', false) x
          from public.workspace_members m join public.profiles p on p.id = m.user_id
         where m.workspace_id = ws
        union all
        select jsonb_build_object('login', p.github_login, 'name', p.display_name, 'role', m.role,
                                  'session', s.slug, 'project', pr.name, 'pending', false)
          from public.session_members m join public.profiles p on p.id = m.user_id
          join public.sessions s on s.id = m.session_id join public.projects pr on pr.id = s.project_id
         where s.workspace_id = ws
        union all
        select jsonb_build_object('login', i.github_login, 'name', null, 'role', i.role,
                                  'session', s.slug, 'project', pr.name, 'pending', true)
          from public.invitations i left join public.sessions s on s.id = i.session_id
          left join public.projects pr on pr.id = s.project_id
         where i.workspace_id = ws and syncd.is_owner(ws)) y), '[]'::jsonb));
  end if;
  perform syncd.require_owner(ws);
  if login is null or login !~ '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$' then
    raise exception 'give a GitHub login, not %', coalesce(login, 'nothing') using errcode = '22023';
  end if;
  if action in ('add', 'role') and coalesce(new_role, '') not in ('owner', 'collaborator', 'reader') then
    raise exception 'role must be owner, collaborator or reader' using errcode = '22023';
  end if;
  if $1 ? 'session' then
    select s.id into sess from public.sessions s join public.projects p on p.id = s.project_id
     where s.workspace_id = ws and p.name = $1 ->> 'project' and s.slug = $1 ->> 'session';
    if sess is null then
      raise exception 'no session %/% in this workspace', $1 ->> 'project', $1 ->> 'session' using errcode = 'PT404';
    end if;
  end if;
  select p.id into who from public.profiles p where lower(p.github_login) = lower(login);
  if action in ('add', 'role') then
    if who is null then
      delete from public.invitations i where i.workspace_id = ws and i.session_id is not distinct from sess
        and lower(i.github_login) = lower(login);
      insert into public.invitations (workspace_id, session_id, github_login, role) values (ws, sess, login, new_role);
      return jsonb_build_object('invited', login, 'role', new_role);
    elsif sess is null then
      insert into public.workspace_members (workspace_id, user_id, role) values (ws, who, new_role)
        on conflict (workspace_id, user_id) do update set role = excluded.role;
    else
      insert into public.session_members (session_id, user_id, role) values (sess, who, new_role)
        on conflict (session_id, user_id) do update set role = excluded.role;
    end if;
    return jsonb_build_object('member', login, 'role', new_role);
  elsif action = 'remove' then
    if sess is null then
      delete from public.workspace_members m where m.workspace_id = ws and m.user_id = who;
    else
      delete from public.session_members m where m.session_id = sess and m.user_id = who;
    end if;
    get diagnostics n = row_count;
    delete from public.invitations i where i.workspace_id = ws and i.session_id is not distinct from sess
      and lower(i.github_login) = lower(login);
    get diagnostics m = row_count;
    return jsonb_build_object('removed', n + m);
  end if;
  raise exception 'unknown action %', action using errcode = '22023';
end
$$;

alter function public.syncd_import_members(jsonb) set schema syncd;
alter function syncd.syncd_import_members(jsonb) rename to import_members;
alter function syncd.import_members(jsonb) security definer;
create function public.syncd_import_members(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
begin
  if not coalesce(($1 ->> 'dry_run')::boolean, false) then
    perform syncd.require_owner(syncd.workspace_id($1 ->> 'workspace'));
  end if;
  return syncd.import_members($1);
end
$$;

-- A profile for every auth user, from the GitHub identity; invitations for that login
-- become memberships. Kept small: a failing trigger would block sign-ups.
create function syncd.on_auth_user() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  login text := coalesce(new.raw_user_meta_data ->> 'user_name', new.raw_user_meta_data ->> 'preferred_username');
begin
  insert into public.profiles (id, github_login, display_name, email, avatar_url)
    values (new.id, login, coalesce(new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'name', login),
            new.email, new.raw_user_meta_data ->> 'avatar_url')
    on conflict (id) do update set github_login = excluded.github_login,
      display_name = excluded.display_name, email = excluded.email, avatar_url = excluded.avatar_url;
  if login is not null then
    insert into public.workspace_members (workspace_id, user_id, role)
      select i.workspace_id, new.id, i.role from public.invitations i
       where i.session_id is null and lower(i.github_login) = lower(login)
      on conflict do nothing;
    insert into public.session_members (session_id, user_id, role)
      select i.session_id, new.id, i.role from public.invitations i
       where i.session_id is not null and lower(i.github_login) = lower(login)
      on conflict do nothing;
    delete from public.invitations i where lower(i.github_login) = lower(login);
  end if;
  return null;
end
$$;
create trigger syncd_profile_from_auth after insert or update of raw_user_meta_data, email on auth.users
  for each row execute function syncd.on_auth_user();

revoke execute on function public.syncd_members(jsonb), public.syncd_import_members(jsonb) from public;
grant execute on function public.syncd_members(jsonb), public.syncd_import_members(jsonb) to authenticated, service_role;
revoke execute on all functions in schema syncd from public;
grant execute on all functions in schema syncd to authenticated, service_role;
