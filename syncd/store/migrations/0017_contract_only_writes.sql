-- The contract is the only way to write, on a database shaped like a real Supabase project.
--
-- Supabase serves every table of `public` over its table API (PostgREST) and grants the
-- API roles everything there by default (`alter default privileges in schema public grant
-- all ... to anon, authenticated, service_role`). So nothing here may depend on what a
-- project grants: every privilege on syncd's objects is set explicitly below.
--
--   anon           nothing at all (every syncd call needs a signed-in user or a key)
--   authenticated  SELECT on the tables and views, under row level security; EXECUTE on the
--                  `syncd_*` RPCs and the read helpers RLS uses; no INSERT, UPDATE, DELETE
--                  or TRUNCATE anywhere: rows change only inside the contract's functions
--   service_role   the same RPCs, and the tables themselves (it is the project's admin key)
--
-- Exposed functions stay SECURITY INVOKER (Supabase's linter, lints 0028/0029); each write
-- is done by a SECURITY DEFINER function in the non-exposed `syncd` schema, with
-- search_path '', that checks the caller's rights itself. A new object in a later migration
-- gets its privileges set the same way: tests/test_supabase_shape.py checks every object the
-- migrations made, on a Supabase-shaped database.

-- A refusal to a non-member reads as a missing workspace does: no one learns which names
-- exist by asking. Every function finds its workspace here.
create or replace function syncd.workspace_id(ws_slug text) returns uuid
  language plpgsql stable security definer set search_path = '' as $$
declare
  ws uuid;
begin
  select w.id into ws from public.workspaces w where w.slug = ws_slug;
  if ws is null or not syncd.can_see_workspace(ws) then
    raise exception 'workspace "%" does not exist (or you are not a member of it)', ws_slug
      using errcode = 'PT404', hint = 'create it with `syncd init`, or ask its owner for access';
  end if;
  return ws;
end
$$;

-- A device id names one of the caller's own devices in that workspace, or nothing: another
-- member's device must not be made the author of one's changes.
create function syncd.own_device(ws uuid, dev uuid) returns uuid
  language sql stable security definer set search_path = '' as $$
  select d.id from public.devices d
   where d.id = dev and d.workspace_id = ws and (syncd.trusted() or d.user_id = (select auth.uid()))
$$;

-- syncd_commit as in 0015, run as the contract's owner: the workspace lock, the sequence
-- numbers and the rows are written only here. Each change is checked first: its path's
-- length, can_write, imported history (provenance or origin import: any author, any date)
-- from an owner only, an activity's details without the version facts the contract
-- states. The lock is taken at the first change that will be written: a caller with
-- nothing to write never holds it, nor waits for it.
create function syncd.commit_changes(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := syncd.own_device(ws, nullif($1 ->> 'device', '')::uuid);
  origin text := coalesce($1 ->> 'origin', 'sync');
  changes jsonb := coalesce($1 -> 'changes', '[]'::jsonb);
  change jsonb;
  result jsonb;
  results jsonb[] := '{}';
  first_seq bigint;
  last_seq bigint;
  head_size bigint;
  inline_bytes bigint := 0;
  touched record;
begin
  if jsonb_typeof(changes) <> 'array' or jsonb_array_length(changes) > syncd.commit_max_changes() then
    raise exception 'a commit takes at most % changes per call, got %', syncd.commit_max_changes(),
      case when jsonb_typeof(changes) = 'array' then jsonb_array_length(changes)::text else jsonb_typeof(changes) end
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  if pg_column_size($1) > syncd.commit_max_bytes() then
    raise exception 'a commit takes at most % MiB per call, got % MiB', syncd.commit_max_bytes() / 1048576,
      round(pg_column_size($1) / 1048576.0, 1)
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  perform set_config('syncd.pipeline', 'deferred', true);
  for change in select value from jsonb_array_elements(changes) loop
    if octet_length(change ->> 'path') > 4096 then  -- PATH_MAX; and what is split below stays small
      results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'invalid',
        'message', 'a path takes at most 4096 bytes'));
      continue;
    end if;
    if not syncd.can_write(ws, syncd.session_of(ws, change ->> 'path')) then
      results := array_append(results, jsonb_build_object(
        'path', change ->> 'path', 'status', 'forbidden',
        'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)'));
      continue;
    end if;
    if (change ? 'provenance' or coalesce(change ->> 'origin', origin) = 'import') and not syncd.is_owner(ws) then  -- names any author and date
      results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'forbidden',
        'message', 'only an owner of the workspace imports history (syncd import)'));
      continue;
    end if;
    if change ? 'activity' then  -- details of the event; what it says of the version is the contract's to say
      if jsonb_typeof(change -> 'activity') <> 'object' then
        results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'invalid',
          'message', 'activity: the details of an event are an object'));
        continue;
      end if;
      change := jsonb_set(change, '{activity}',
                          (change -> 'activity') - array['version', 'parent_version', 'merge_parent', 'deleted']);
    end if;
    if first_seq is null then  -- the lock, for those who write only: a reader never waits for it nor holds it
      first_seq := syncd.lock_workspace(ws);
      last_seq := first_seq;
    end if;
    result := syncd.commit_one(ws, dev, origin, change, last_seq);
    last_seq := coalesce((result ->> 'seq')::bigint, last_seq);
    if result -> 'head' ? 'content' then
      head_size := coalesce((result -> 'head' ->> 'size')::bigint, 0);
      if head_size > syncd.inline_item_max() or inline_bytes + head_size > syncd.inline_budget() then
        result := result #- '{head,content}';
      else
        inline_bytes := inline_bytes + head_size;
      end if;
    end if;
    results := array_append(results, result);
  end loop;
  perform set_config('syncd.pipeline', '', true);
  if last_seq > first_seq then
    perform syncd.set_last_seq(ws, last_seq);
    for touched in select distinct d.session_id, d.stage from public.documents d
                    where d.workspace_id = ws and d.seq > first_seq and d.session_id is not null loop
      perform syncd.refresh_stage(touched.session_id, touched.stage);
    end loop;
  end if;
  if dev is not null then
    perform syncd.touch_device(dev);
  end if;
  return jsonb_build_object('results', to_jsonb(results));
end
$$;

create or replace function public.syncd_commit(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.commit_changes($1) $$;

-- The two exposed SECURITY DEFINER functions move into `syncd`; what stays exposed only
-- calls them.
-- (syncd_open as in 0007, with a device's name and hostname bounded: every member's
-- syncd_stats carries them)
create function syncd.open_workspace(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' set plan_cache_mode = force_custom_plan as $$
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
      values ((dev ->> 'id')::uuid, ws.id, me, left(coalesce(dev ->> 'name', dev ->> 'hostname', 'unnamed device'), 255),
              left(dev ->> 'hostname', 255))
      on conflict (id) do update  -- an open without a name keeps the device's name
        set name = coalesce(left(dev ->> 'name', 255), public.devices.name),
            hostname = coalesce(left(dev ->> 'hostname', 255), public.devices.hostname), last_seen = now()
        where public.devices.user_id is not distinct from me;
  end if;
  return jsonb_build_object(
    'workspace_id', ws.id, 'workspace', ws.slug, 'last_seq', ws.last_seq,
    'schema_version', (select max(version) from syncd.schema_migrations),
    'role', case when syncd.trusted() then 'service' else coalesce(syncd.workspace_role(ws.id), 'session member') end);
end
$$;
create or replace function public.syncd_open(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.open_workspace($1) $$;

alter function public.syncd_members(jsonb) set schema syncd;
alter function syncd.syncd_members(jsonb) rename to members;
create function public.syncd_members(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.members($1) $$;

-- Client events: the read check moves inside, beside the write it guards; the device must
-- be the caller's own; details are an object of at most 16 KiB, and the event is about the
-- path checked (not a `path` in details).
create or replace function syncd.record_activity(ws uuid, dev uuid, kind text, doc_path text, details jsonb)
  returns void
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
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
  select * into l from syncd.layout(doc_path);
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details)
  select ws,
         (select p.id from public.projects p where p.workspace_id = ws and p.name = l.project),
         (select s.id from public.sessions s join public.projects p on p.id = s.project_id
           where p.workspace_id = ws and p.name = l.project and s.slug = l.session),
         (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path),
         auth.uid(), syncd.own_device(ws, dev), kind,
         case when jsonb_typeof(details) = 'object' then details else '{}'::jsonb end || jsonb_build_object('path', doc_path);  -- the path checked
end
$$;

-- Client events (0007), recorded as the contract's owner like every write: at most as many
-- per call as a commit's changes, and none of the kinds the contract records itself with
-- the versions it made (a reader's "conflict" would count in syncd_conflict_rates).
create function syncd.record_events(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := nullif($1 ->> 'device', '')::uuid;
  event jsonb;
  n integer := 0;
begin
  if jsonb_typeof(coalesce($1 -> 'events', '[]'::jsonb)) <> 'array'
     or jsonb_array_length(coalesce($1 -> 'events', '[]'::jsonb)) > syncd.commit_max_changes() then
    raise exception 'a call records at most % events', syncd.commit_max_changes()
      using errcode = 'PT413', hint = 'split the events into several calls';
  end if;
  for event in select value from jsonb_array_elements(coalesce($1 -> 'events', '[]'::jsonb)) loop
    if coalesce(event ->> 'kind', '') !~ '^[a-z][a-z_-]{0,39}$' then
      raise exception 'an event needs a kind (lowercase word), got %', event -> 'kind'
        using errcode = '22023';
    end if;
    if not syncd.can_read(ws, syncd.session_of(ws, event ->> 'path')) then
      raise exception 'no access to %', coalesce(event ->> 'path', 'this workspace') using errcode = '42501';
    end if;
    if event ->> 'kind' in ('sync', 'merge', 'restore', 'resolve')  -- the contract's own, with the versions
       or (event ->> 'kind' = 'import' and not syncd.is_owner(ws))
       or (event ->> 'kind' = 'conflict' and not syncd.can_write(ws, syncd.session_of(ws, event ->> 'path'))) then
      raise exception 'you do not record "%" events', event ->> 'kind' using errcode = '42501';
    end if;
    perform syncd.record_activity(ws, dev, event ->> 'kind', event ->> 'path', event -> 'details');
    n := n + 1;
  end loop;
  return jsonb_build_object('recorded', n);
end
$$;
create or replace function public.syncd_record(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.record_events($1) $$;

-- A heartbeat's reason and version, bounded (as a device's name above).
create or replace function syncd.heartbeat(ws uuid, dev uuid, beat jsonb) returns boolean
  language sql security definer set search_path = '' as $$
  with touched as (
    update public.devices d
       set state = beat ->> 'state', reason = left(beat ->> 'reason', 1000),
           software_version = left(beat ->> 'version', 100), applied_seq = (beat ->> 'applied_seq')::bigint,
           heartbeat_at = now(), last_seen = now()
     where d.id = dev and d.workspace_id = ws
       and (syncd.trusted() or d.user_id = (select auth.uid()))
    returning 1)
  select exists (select 1 from touched)
$$;

-- Commits serialize on their workspace's row; FOR NO KEY UPDATE still does, without waiting
-- for the KEY SHARE locks every insert referencing the workspace takes (a reader's 20,000
-- events made a writer's commit wait 7 s).
create or replace function syncd.lock_workspace(ws uuid) returns bigint
  language sql security definer set search_path = '' as $$
  select last_seq from public.workspaces where id = ws for no key update
$$;

-- Writes through the table API: none. (0007 let writers insert and update documents and
-- versions directly; the contract's functions now write as their owner.)
revoke insert, update on public.documents, public.document_versions from authenticated;
drop policy writers_insert on public.documents;
drop policy writers_update on public.documents;
drop policy writers_insert on public.document_versions;

-- Row level security for a signed-in reader, as sets computed once per statement (Supabase's
-- advice for RLS at scale) rather than a function called for every row: on 30,000
-- documents a member's syncd_documents took 6-10 s and syncd_stats 17 s, past the 8 s a
-- signed-in user's statement may run on Supabase. The same rule as syncd.can_read: a
-- member of the workspace, or of the document's session.
create function syncd.my_workspaces() returns setof uuid
  language sql stable security definer set search_path = '' as $$
  select m.workspace_id from public.workspace_members m where m.user_id = (select auth.uid())
$$;

create function syncd.my_sessions() returns setof uuid
  language sql stable security definer set search_path = '' as $$
  select m.session_id from public.session_members m where m.user_id = (select auth.uid())
$$;

create function syncd.my_session_documents() returns setof uuid
  language sql stable security definer set search_path = '' as $$
  select d.id from public.session_members m join public.documents d on d.session_id = m.session_id
   where m.user_id = (select auth.uid())
$$;

alter policy readers_read on public.documents
  using (workspace_id in (select syncd.my_workspaces()) or session_id in (select syncd.my_sessions()));
alter policy readers_read on public.activity_log
  using (workspace_id in (select syncd.my_workspaces()) or session_id in (select syncd.my_sessions()));
alter policy readers_read on public.document_versions
  using (workspace_id in (select syncd.my_workspaces()) or document_id in (select syncd.my_session_documents()));

-- A person can be deleted (GoTrue: `delete from auth.users where id = $1`). What they made
-- stays, without the link to them; their versions keep their login and name as text.
alter table public.document_versions add column author_login text, add column author_name text;
update public.document_versions v set author_login = p.github_login, author_name = p.display_name
  from public.profiles p where p.id = v.author_id;

create function syncd.version_author() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  select p.github_login, p.display_name into new.author_login, new.author_name
    from public.profiles p where p.id = new.author_id;
  return new;
end
$$;
create trigger document_versions_author before insert on public.document_versions
  for each row when (new.author_id is not null) execute function syncd.version_author();

-- The same for the activity they made, and what the analytics call their edits.
alter table public.activity_log add column actor_login text;
update public.activity_log a set actor_login = p.github_login from public.profiles p where p.id = a.actor_id;

create function syncd.activity_actor() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  select p.github_login into new.actor_login from public.profiles p where p.id = new.actor_id;
  return new;
end
$$;
create trigger activity_log_actor before insert on public.activity_log
  for each row when (new.actor_id is not null) execute function syncd.activity_actor();

-- syncd_activity as in 0008, naming a deleted actor by the login the row kept.
create or replace function public.syncd_activity(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  lim integer := least(greatest(coalesce(($1 ->> 'limit')::integer, 200), 1), 2000);
  result jsonb;
begin
  select coalesce(jsonb_agg(item order by (item ->> 'id')::bigint), '[]'::jsonb) into result from (
    select jsonb_build_object(
             'id', a.id, 'kind', a.kind, 'at', a.created_at, 'details', a.details,
             'path', a.details ->> 'path', 'project', p.name, 'session', s.slug,
             'actor', coalesce(pr.github_login, a.actor_login, pr.display_name, a.details ->> 'author_name'),
             'device', dv.name) as item
      from public.activity_log a
      left join public.projects p on p.id = a.project_id
      left join public.sessions s on s.id = a.session_id
      left join public.profiles pr on pr.id = a.actor_id
      left join public.devices dv on dv.id = a.device_id
     where a.workspace_id = ws
       and a.id > coalesce(($1 ->> 'after')::bigint, 0)
       and a.created_at >= coalesce(($1 ->> 'since')::timestamptz, '-infinity')
       and ($1 ->> 'project' is null or p.name = $1 ->> 'project')
       and ($1 ->> 'session' is null or s.slug = $1 ->> 'session')
     order by case when coalesce(($1 ->> 'newest')::boolean, false) then -a.id else a.id end
     limit lim) items;
  return jsonb_build_object('activity', result,
                            'last', coalesce((select max((r ->> 'id')::bigint) from jsonb_array_elements(result) r),
                                             ($1 ->> 'after')::bigint, 0));
end
$$;

create or replace view public.syncd_edits_per_day with (security_invoker = true) as
  select v.workspace_id, p.name as project, (v.created_at at time zone 'UTC')::date as day,
         coalesce(pr.github_login, v.author_login, pr.display_name, v.author_name, v.provenance ->> 'author_name',
                  dv.name, 'unknown') as author,
         count(*) as edits
    from public.document_versions v
    join public.documents d on d.id = v.document_id
    left join public.projects p on p.id = d.project_id
    left join public.profiles pr on pr.id = v.author_id
    left join public.devices dv on dv.id = v.device_id
   where v.origin <> 'merge'
   group by 1, 2, 3, 4;

alter table public.workspaces drop constraint workspaces_created_by_fkey,
  add constraint workspaces_created_by_fkey foreign key (created_by) references auth.users (id) on delete set null;
alter table public.sessions drop constraint sessions_owner_id_fkey,
  add constraint sessions_owner_id_fkey foreign key (owner_id) references auth.users (id) on delete set null;
alter table public.devices drop constraint devices_user_id_fkey,
  add constraint devices_user_id_fkey foreign key (user_id) references auth.users (id) on delete set null;
alter table public.documents drop constraint documents_updated_by_fkey,
  add constraint documents_updated_by_fkey foreign key (updated_by) references auth.users (id) on delete set null;
alter table public.document_versions drop constraint document_versions_author_id_fkey,
  add constraint document_versions_author_id_fkey foreign key (author_id) references auth.users (id) on delete set null;
alter table public.activity_log drop constraint activity_log_actor_id_fkey,
  add constraint activity_log_actor_id_fkey foreign key (actor_id) references auth.users (id) on delete set null;

-- Names for people as in 0005, falling back to the name a version kept when its author's
-- profile is gone; no e-mail address but GitHub's noreply one (profiles keep none, below).
create or replace function syncd.version_json(v public.document_versions) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
    'merge_parent', v.merge_parent, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
    'origin', v.origin, 'author_id', v.author_id,
    'author', coalesce(p.github_login, v.author_login, p.display_name, v.author_name, v.provenance ->> 'author_name'),
    'author_name', coalesce(p.display_name, v.author_name, p.github_login, v.author_login, v.provenance ->> 'author_name'),
    'author_email', coalesce(v.provenance ->> 'author_email',
                             coalesce(p.github_login, v.author_login) || '@users.noreply.github.com'),
    'device_id', v.device_id,
    'device', (select d.name from public.devices d where d.id = v.device_id),
    'provenance', v.provenance,
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
$$;

-- Who someone is on GitHub comes from the GitHub identity GoTrue writes from GitHub's API,
-- never from raw_user_meta_data, which its user may edit (`PUT /auth/v1/user`, or an e-mail
-- sign-up's data): else anyone could name themselves after an invited login and take the
-- invitation, or take a login first and lock its owner out. Plain PostgreSQL has no GoTrue
-- (users are made by whoever runs the database) and no auth.identities: metadata there.
-- A login GitHub has given to someone else (after a rename) moves to them.
create or replace function syncd.claim_login(uid uuid, login text) returns void
  language plpgsql security definer set search_path = '' as $$
begin
  if login is null then
    return;
  end if;
  -- GitHub frees renamed logins: whoever holds it now is the one GitHub says
  update public.profiles set github_login = null where lower(github_login) = lower(login) and id <> uid;
  update public.profiles set github_login = login, display_name = coalesce(display_name, login) where id = uid;
  insert into public.workspace_members (workspace_id, user_id, role)
    select i.workspace_id, uid, i.role from public.invitations i
     where i.session_id is null and lower(i.github_login) = lower(login)
    on conflict do nothing;
  insert into public.session_members (session_id, user_id, role)
    select i.session_id, uid, i.role from public.invitations i
     where i.session_id is not null and lower(i.github_login) = lower(login)
    on conflict do nothing;
  delete from public.invitations i where lower(i.github_login) = lower(login);
end
$$;

create or replace function syncd.on_auth_user() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, display_name, avatar_url)
    values (new.id, coalesce(new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'name'),
            new.raw_user_meta_data ->> 'avatar_url')
    on conflict (id) do update set display_name = excluded.display_name, avatar_url = excluded.avatar_url;
  if to_regclass('auth.identities') is null then
    perform syncd.claim_login(new.id, coalesce(new.raw_user_meta_data ->> 'user_name',
                                               new.raw_user_meta_data ->> 'preferred_username'));
  end if;
  return null;
end
$$;

create function syncd.on_auth_identity() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  if new.provider = 'github' then
    perform syncd.claim_login(new.user_id, coalesce(new.identity_data ->> 'user_name',
                                                    new.identity_data ->> 'preferred_username'));
  end if;
  return null;
end
$$;

do $$
begin
  if to_regclass('auth.identities') is not null then
    create trigger syncd_login_from_identity after insert or update of identity_data on auth.identities
      for each row execute function syncd.on_auth_identity();
  end if;
end
$$;

-- On Supabase, logins already taken from metadata are taken again from identities.
do $$
begin
  if to_regclass('auth.identities') is not null then
    update public.profiles p set github_login = null
     where not exists (select 1 from auth.identities i where i.user_id = p.id and i.provider = 'github');
    perform syncd.claim_login(i.user_id, coalesce(i.identity_data ->> 'user_name', i.identity_data ->> 'preferred_username'))
       from auth.identities i where i.provider = 'github';
  end if;
end
$$;

-- A profile holds only what every co-member may see, and anyone can become a co-member of
-- anyone (make a workspace, add a login): no e-mail address (GoTrue keeps it).
alter table public.profiles drop column email;

-- A session's row (its pipeline: who edited what, when) is for those who may read the
-- session; a project's state (session_state.json, CURRENT_SESSION) for those who may read
-- the project's files. syncd_progress gets a session's part of it through a helper that checks.
drop policy members_read on public.sessions;
create policy members_read on public.sessions for select to authenticated using (syncd.can_read(workspace_id, id));

create function syncd.session_state(sess uuid) returns jsonb
  language sql stable security definer set search_path = '' as $$
  select jsonb_build_object('current', p.current_session = s.slug,
                            'stages', case when p.current_session = s.slug then p.state -> 'session_state' -> 'stages' end)
    from public.sessions s join public.projects p on p.id = s.project_id
   where s.id = sess and syncd.can_read(s.workspace_id, s.id)
$$;

create or replace function public.syncd_progress(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('sessions', coalesce((
    select jsonb_agg(jsonb_build_object(
             'project', p.name, 'session', s.slug, 'current', (x.st ->> 'current')::boolean,
             'stages', s.pipeline, 'state', x.st -> 'stages',
             'disagreements', coalesce((
               select jsonb_agg(jsonb_build_object('stage', k, 'documents', s.pipeline -> k ->> 'status',
                                                   'session_state', x.st -> 'stages' ->> k))
                 from jsonb_object_keys(s.pipeline) k
                where (x.st -> 'stages') ? k
                  and ((x.st -> 'stages' ->> k in ('in_progress', 'completed')) <> (s.pipeline -> k ->> 'status' = 'started'))),
               '[]'::jsonb))
           order by p.name, s.slug)
      from public.sessions s
      join public.projects p on p.id = s.project_id
      cross join lateral (select syncd.session_state(s.id) as st) x
     where s.workspace_id = ws and ($1 ->> 'project' is null or p.name = $1 ->> 'project')
       and syncd.can_read(ws, s.id)), '[]'::jsonb));
end
$$;

-- The owner check of public.syncd_import_members moves inside the function that writes.
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

-- Every privilege, explicitly.
do $$
declare
  t text;
  f regprocedure;
  s regclass;
begin
  foreach t in array array['profiles', 'workspaces', 'workspace_members', 'projects', 'sessions',
                           'session_members', 'devices', 'documents', 'document_versions',
                           'activity_log', 'invitations'] loop
    execute format('revoke all on public.%I from public, anon, authenticated, service_role', t);
    execute format('grant select, insert, update, delete on public.%I to service_role', t);
    if t <> 'projects' then
      execute format('grant select on public.%I to authenticated', t);
    end if;
  end loop;
  grant select (id, workspace_id, name, created_at) on public.projects to authenticated;
  foreach t in array array['syncd_stage_completion', 'syncd_stage_times', 'syncd_lead_times',
                           'syncd_edits_per_day', 'syncd_conflict_rates', 'syncd_device_sync'] loop
    execute format('revoke all on public.%I from public, anon, authenticated, service_role', t);
    execute format('grant select on public.%I to authenticated, service_role', t);
  end loop;
  foreach s in array array[pg_get_serial_sequence('public.document_versions', 'id'),
                           pg_get_serial_sequence('public.activity_log', 'id'),
                           pg_get_serial_sequence('public.invitations', 'id')]::regclass[] loop
    execute format('revoke all on sequence %s from public, anon, authenticated, service_role', s);
    execute format('grant usage on sequence %s to service_role', s);
  end loop;
  revoke all on syncd.schema_migrations from public, anon, authenticated, service_role;
  grant select on syncd.schema_migrations to authenticated, service_role;

  for f in select p.oid::regprocedure from pg_proc p
            where p.pronamespace = 'syncd'::regnamespace
               or (p.pronamespace = 'public'::regnamespace and p.proname like 'syncd\_%') loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
    execute format('grant execute on function %s to authenticated, service_role', f);
  end loop;
end
$$;

-- What only the contract's own functions call, as their owner: not callable by a client
-- role at all, even with SQL access. (Triggers need no EXECUTE of whoever fires them.)
revoke execute on function syncd.commit_one(uuid, uuid, text, jsonb, bigint), syncd.lock_workspace(uuid),
  syncd.set_last_seq(uuid, bigint), syncd.touch_device(uuid), syncd.ensure_layout(uuid, text),
  syncd.refresh_stage(uuid, text), syncd.refresh_pipeline(), syncd.notify_change(),
  syncd.version_activity(), syncd.version_author(), syncd.activity_actor(), syncd.on_auth_user(), syncd.on_auth_identity(),
  syncd.claim_login(uuid, text), syncd.project_files(), syncd.stage_of_session(uuid, text), syncd.pipeline_of(uuid),
  syncd.record_activity(uuid, uuid, text, text, jsonb)
  from authenticated, service_role;
revoke all on schema syncd from public, anon;
grant usage on schema syncd to authenticated, service_role;
