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
-- numbers and the rows are written only here, each change checked with can_write first.
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
  first_seq := syncd.lock_workspace(ws);
  last_seq := first_seq;
  perform set_config('syncd.pipeline', 'deferred', true);
  for change in select value from jsonb_array_elements(changes) loop
    if not syncd.can_write(ws, syncd.session_of(ws, change ->> 'path')) then
      results := array_append(results, jsonb_build_object(
        'path', change ->> 'path', 'status', 'forbidden',
        'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)'));
      continue;
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

-- The two exposed SECURITY DEFINER functions move into `syncd`, unchanged; what stays
-- exposed only calls them.
alter function public.syncd_open(jsonb) set schema syncd;
alter function syncd.syncd_open(jsonb) rename to open_workspace;
create function public.syncd_open(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.open_workspace($1) $$;

alter function public.syncd_members(jsonb) set schema syncd;
alter function syncd.syncd_members(jsonb) rename to members;
create function public.syncd_members(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.members($1) $$;

-- Client events: the read check moves inside, beside the write it guards, and the device
-- must be the caller's own.
create or replace function syncd.record_activity(ws uuid, dev uuid, kind text, doc_path text, details jsonb)
  returns void
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
begin
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
         jsonb_build_object('path', doc_path) || coalesce(details, '{}'::jsonb);
end
$$;

-- Writes through the table API: none. (0007 let writers insert and update documents and
-- versions directly; the contract's functions now write as their owner.)
revoke insert, update on public.documents, public.document_versions from authenticated;
drop policy writers_insert on public.documents;
drop policy writers_update on public.documents;
drop policy writers_insert on public.document_versions;

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
-- profile is gone.
create or replace function syncd.version_json(v public.document_versions) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
    'merge_parent', v.merge_parent, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
    'origin', v.origin, 'author_id', v.author_id,
    'author', coalesce(p.github_login, v.author_login, p.display_name, v.author_name, v.provenance ->> 'author_name'),
    'author_name', coalesce(p.display_name, v.author_name, p.github_login, v.author_login, v.provenance ->> 'author_name'),
    'author_email', coalesce(v.provenance ->> 'author_email',
                             coalesce(p.github_login, v.author_login) || '@users.noreply.github.com',
                             p.email),
    'device_id', v.device_id,
    'device', (select d.name from public.devices d where d.id = v.device_id),
    'provenance', v.provenance,
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
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
    execute format('grant select on public.%I to authenticated', t);
    execute format('grant select, insert, update, delete on public.%I to service_role', t);
  end loop;
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
  syncd.version_activity(), syncd.version_author(), syncd.on_auth_user(), syncd.project_files()
  from authenticated, service_role;
revoke all on schema syncd from public, anon;
grant usage on schema syncd to authenticated, service_role;
