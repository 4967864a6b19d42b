-- Commits by the set, not by the row (issue 20). A call of plain changes (no move, no side)
-- is checked, decided and written a few statements at a time for the whole call, instead
-- of each change running commit_one's dozen statements and the triggers' per-row work:
-- an import fell from 2,040 to ~670 versions/s once every version also wrote its activity,
-- woke the listeners and refreshed its stage row by row (0008-0010), and each statement of
-- commit_one was planned again for every change (0013).
--
-- The checks and answers are commit_one's and commit_changes', change for change. A path
-- named several times in one call (an import's history) is taken in rounds: the first
-- change of every path, then the second, and so on, each round against what the rounds
-- before it wrote, so each change meets the head the loop would have shown it. Sequence
-- numbers follow the rounds, then the order of the call: with one change per path (a
-- sync's pass) that is the call's order, and a path's versions are always in its order.
-- Calls with a move or a side go through the loop as before (commit_each).

alter function syncd.commit_changes(jsonb) rename to commit_each;
revoke all on function syncd.commit_each(jsonb) from public, anon, authenticated, service_role;

-- One change of a call, checked, as the rounds carry it.
create type syncd.pending_change as (
  ord integer, path text, base integer, is_delete boolean, content jsonb, origin text, prov jsonb,
  activity jsonb, stamp timestamptz, digest text, size bigint, round integer,
  version integer, parent integer, seq bigint, project text, session text, stage text,
  project_id uuid, session_id uuid);
create type syncd.change_result as (ord integer, result jsonb);

-- commit_one's test of provenance "at", without its block: false where the cast would fail.
create function syncd.is_time(t text) returns boolean
  language plpgsql stable set search_path = '' as $$
begin
  perform t::timestamptz;
  return true;
exception when others then
  return false;
end
$$;

create function syncd.commit_caps(call jsonb) returns void
  language plpgsql immutable set search_path = '' as $$
declare
  changes jsonb := coalesce(call -> 'changes', '[]'::jsonb);
begin
  if jsonb_typeof(changes) <> 'array' or jsonb_array_length(changes) > syncd.commit_max_changes() then
    raise exception 'a commit takes at most % changes per call, got %', syncd.commit_max_changes(),
      case when jsonb_typeof(changes) = 'array' then jsonb_array_length(changes)::text else jsonb_typeof(changes) end
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  if pg_column_size(call) > syncd.commit_max_bytes() then
    raise exception 'a commit takes at most % MiB per call, got % MiB', syncd.commit_max_bytes() / 1048576,
      round(pg_column_size(call) / 1048576.0, 1)
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
end
$$;

-- As 0022's, in plpgsql, whose plans last the session: a SQL function called from another
-- statement is planned again at each call (a third of a batch's time).
create or replace function syncd.entry_problem(ws uuid, doc_path text, content jsonb) returns text
  language plpgsql stable set search_path = '' as $$
begin
  return case
    when jsonb_typeof(content) = 'object' and content ->> 'encoding' = 'directory' then
      case when content <> '{"encoding": "directory", "format": "directory"}'::jsonb
             then 'a directory is {"encoding": "directory", "format": "directory"}, with nothing else'
      end
    else syncd.file_entry_problem(ws, doc_path, content)
  end;
end
$$;

-- commit_changes' loop and commit_one over a whole call of plain changes.
create function syncd.commit_batch(ws uuid, dev uuid, call_origin text, changes jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  pending syncd.pending_change[];
  accepted syncd.pending_change[];
  decided syncd.change_result[];
  written boolean;
  rounds integer;
  r integer;
  first_seq bigint;
  last_seq bigint;
  a syncd.pending_change;
  decision record;
  item syncd.change_result;
  result jsonb;
  results jsonb[] := '{}';
  head_size bigint;
  inline_bytes bigint := 0;
  owner boolean := syncd.is_owner(ws);  -- the loop asks for each import; the answer is the call's
begin
  -- Every check before the head is read, in the order the loop and commit_one make them.
  with c as (
    select e.ord::integer as ord, e.change, e.change ->> 'path' as path,
           coalesce((e.change ->> 'deleted')::boolean, false) as is_delete,
           coalesce(e.change ->> 'origin', call_origin) as origin, e.change -> 'provenance' as prov
      from jsonb_array_elements(changes) with ordinality e(change, ord)
  ), checked as materialized (
    select c.*, l.project, l.session, l.stage,
           case
             when octet_length(c.path) > 4096 then
               jsonb_build_object('path', c.path, 'status', 'invalid', 'message', 'a path takes at most 4096 bytes')
             when not syncd.can_write(ws, s.id) then jsonb_build_object(
               'path', c.path, 'status', 'forbidden',
               'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)')
             when (c.change ? 'provenance' or c.origin = 'import') and not owner then
               jsonb_build_object('path', c.path, 'status', 'forbidden',
                                  'message', 'only an owner of the workspace imports history (syncd import)')
             when c.change ? 'activity' and jsonb_typeof(c.change -> 'activity') <> 'object' then
               jsonb_build_object('path', c.path, 'status', 'invalid',
                                  'message', 'activity: the details of an event are an object')
           end as refused
      from c  -- session_of (layout_ids), for the set
      left join lateral syncd.layout(ws, c.path) l on true
      left join public.projects p on p.workspace_id = ws and p.name = l.project
      left join public.sessions s on s.project_id = p.id and s.slug = l.session
  ), valid as materialized (
    select ch.*,
           ch.refused is null as locks,  -- the loop takes the lock at the first change past these
           coalesce(ch.refused, case
             when ch.path is null or ch.path = '' or ch.path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'path must be relative, without "." or ".." parts')
             when not ch.is_delete and lower(ch.path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'a name Git keeps for itself (.git) is never stored')
             when ch.origin is null or ch.origin not in ('sync', 'merge', 'restore', 'resolve', 'import') then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', format('unknown origin %L', ch.origin))
             when ch.prov is not null and (ch.origin <> 'import' or jsonb_typeof(ch.prov) <> 'object') then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'provenance is for imported versions only')
             when ch.prov is not null and not syncd.is_time(ch.prov ->> 'at') then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', format('provenance "at" is not a time: %s', ch.prov ->> 'at'))
             when not ch.is_delete and syncd.entry_problem(ws, ch.path, ch.change -> 'content') is not null then
               jsonb_build_object('path', ch.path, 'status', 'invalid', 'message',
                                  'content: ' || syncd.entry_problem(ws, ch.path, ch.change -> 'content'))
           end) as verdict
      from checked ch
  ), ranked as (
    select v.*, row_number() over (partition by v.path, v.verdict is null order by v.ord) as round from valid v
  )
  select array_agg(row(v.ord, v.path, (v.change ->> 'base_version')::integer, v.is_delete,
                       case when v.is_delete then null else v.change -> 'content' end, v.origin, v.prov,
                       case when v.change ? 'activity'
                            then (v.change -> 'activity') - array['version', 'parent_version', 'merge_parent', 'deleted']
                       end,
                       case when v.prov is not null then coalesce((v.prov ->> 'at')::timestamptz, now()) else now() end,
                       e.identity, e.size, v.round, null, null, null, v.project, v.session, v.stage,
                       null, null)::syncd.pending_change order by v.ord)
           filter (where v.verdict is null),
         array_agg(row(v.ord, v.verdict)::syncd.change_result) filter (where v.verdict is not null),
         coalesce(bool_or(v.locks), false)
    into pending, decided, written
    from ranked v
    left join lateral (select x.identity, x.size from syncd.entry_of(v.change -> 'content') x
                        where v.verdict is null and not v.is_delete offset 0) e on true;  -- never for the refused
  pending := coalesce(pending, '{}');
  decided := coalesce(decided, '{}');

  perform set_config('syncd.pipeline', 'deferred', true);
  if written then
    first_seq := syncd.lock_workspace(ws);
    last_seq := first_seq;
  end if;
  select max(p.round) into rounds from unnest(pending) p;
  for r in 1 .. coalesce(rounds, 0) loop
    perform 1 from public.documents d
     where d.workspace_id = ws and d.path in (select p.path from unnest(pending) p where p.round = r)
     order by d.path for update;
    accepted := '{}';
    for decision in
      with h as (
        select p, d,
               case when p.prov is not null then d.version else p.base end as base,
               case when p.prov ? 'commit' and d.id is not null then
                 (select v.version from public.document_versions v
                   where v.document_id = d.id and v.provenance ? 'commit'
                     and v.provenance ->> 'commit' = p.prov ->> 'commit')
               end as imported
          from unnest(pending) p
          left join public.documents d on d.workspace_id = ws and d.path = p.path
         where p.round = r
      ), s as (
        select h.*, case
                 when h.imported is not null then 'imported'
                 when ((h.d).id is not null and (h.d).deleted = (h.p).is_delete
                       and (h.d).sha256 is not distinct from (h.p).digest)
                      or ((h.d).id is null and (h.p).is_delete) then 'unchanged'
                 when not (((h.d).id is null and h.base is null) or coalesce((h.d).version = h.base, false)) then 'behind'
                 else 'accepted' end as status
          from h
      )
      select row((s.p).ord, (s.p).path, (s.p).base, (s.p).is_delete, (s.p).content, (s.p).origin, (s.p).prov,
                 (s.p).activity, (s.p).stamp, (s.p).digest, (s.p).size, r,
                 coalesce((s.d).version, 0) + 1, (s.d).version,
                 case when s.status = 'accepted'
                      then last_seq + count(*) filter (where s.status = 'accepted') over (order by (s.p).ord) end,
                 (s.p).project, (s.p).session, (s.p).stage, null, null)::syncd.pending_change as change,
             case s.status
               when 'imported' then jsonb_build_object('path', (s.p).path, 'status', 'duplicate', 'version', s.imported,
                                      'sha256', (s.p).digest, 'deleted', (s.p).is_delete,
                                      'head', syncd.head_json(s.d, false))
               when 'unchanged' then jsonb_build_object('path', (s.p).path, 'status', 'unchanged',
                                      'version', (s.d).version, 'sha256', (s.p).digest, 'deleted', (s.p).is_delete)
               when 'behind' then coalesce(
                 -- A retried push whose first attempt was accepted: same parent, same content.
                 (select jsonb_build_object('path', (s.p).path, 'status', 'duplicate', 'version', v.version,
                                            'side_version', v.merge_parent,
                                            'sha256', (s.p).digest, 'deleted', (s.p).is_delete,
                                            'head', syncd.head_json(s.d, true))
                    from public.document_versions v
                   where v.document_id = (s.d).id and v.parent_version is not distinct from s.base
                     and v.sha256 is not distinct from (s.p).digest and v.deleted = (s.p).is_delete
                   order by v.version limit 1),
                 jsonb_build_object('path', (s.p).path, 'status', 'conflict',
                                    'head', case when (s.d).id is null then null else syncd.head_json(s.d, true) end))
             end as result
        from s
    loop
      if decision.result is null then
        accepted := accepted || decision.change;
      else
        decided := decided || row((decision.change).ord, decision.result)::syncd.change_result;
      end if;
    end loop;
    if cardinality(accepted) = 0 then
      continue;
    end if;

    -- ensure_layout for the round: its projects and sessions made, then found
    insert into public.projects (workspace_id, name)
      select distinct ws, x.project from unnest(accepted) x where x.project is not null
      on conflict (workspace_id, name) do nothing;
    insert into public.sessions (workspace_id, project_id, slug)
      select distinct ws, p.id, x.session from unnest(accepted) x
        join public.projects p on p.workspace_id = ws and p.name = x.project
       where x.session is not null
      on conflict on constraint sessions_project_id_slug_key do nothing;
    select array_agg(row(x.ord, x.path, x.base, x.is_delete, x.content, x.origin, x.prov, x.activity, x.stamp,
                         x.digest, x.size, x.round, x.version, x.parent, x.seq, x.project, x.session, x.stage,
                         p.id, s.id)::syncd.pending_change order by x.seq)
      into accepted
      from unnest(accepted) x
      left join public.projects p on p.workspace_id = ws and p.name = x.project
      left join public.sessions s on s.project_id = p.id and s.slug = x.session;
    -- one upsert of the heads, one insert of the versions
    with heads as (
      insert into public.documents as d (workspace_id, path, project_id, session_id, stage, version, content,
                                         sha256, size, deleted, seq, updated_by, device_id, updated_at)
      select ws, x.path, x.project_id, x.session_id, x.stage, x.version, x.content, x.digest, x.size,
             x.is_delete, x.seq, auth.uid(), dev, x.stamp
        from unnest(accepted) x
      on conflict (workspace_id, path) do update
        set version = excluded.version, content = excluded.content, sha256 = excluded.sha256,
            size = excluded.size, deleted = excluded.deleted, seq = excluded.seq,
            project_id = excluded.project_id, session_id = excluded.session_id, stage = excluded.stage,
            updated_by = excluded.updated_by, device_id = excluded.device_id, updated_at = excluded.updated_at
      returning d.id, d.path
    )
    insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                          merge_parent, content, sha256, size, deleted, origin,
                                          author_id, device_id, seq, provenance, created_at)
    select heads.id, ws, x.path, x.version, x.parent, null, x.content, x.digest, x.size, x.is_delete,
           x.origin, auth.uid(), dev, x.seq, x.prov, x.stamp
      from unnest(accepted) x join heads on heads.path = x.path
     order by x.seq;
    foreach a in array accepted loop
      if a.origin not in ('sync', 'import') then
        perform syncd.record_activity(ws, dev, a.origin, a.path,
          jsonb_strip_nulls(jsonb_build_object('version', a.version, 'parent_version', a.parent,
                                               'merge_parent', null, 'deleted', a.is_delete))
          || coalesce(a.activity, '{}'::jsonb));
      end if;
      decided := decided || row(a.ord, jsonb_build_object(
        'path', a.path, 'status', 'accepted', 'version', a.version, 'side_version', null,
        'sha256', a.digest, 'deleted', a.is_delete, 'seq', a.seq, 'created_at', a.stamp))::syncd.change_result;
    end loop;
    last_seq := last_seq + cardinality(accepted);
  end loop;

  -- the answers in the call's order, heads' contents within the inline budget as the loop kept them
  for item in select * from unnest(decided) d order by d.ord loop
    result := item.result;
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
    -- refresh_stage for each stage touched, one update per session: a new session's whole
    -- pipeline, or the touched stages merged into it
    with touched as (
      select distinct d.session_id, d.stage from public.documents d
       where d.workspace_id = ws and d.seq > first_seq and d.session_id is not null
    )
    update public.sessions s
       set pipeline = case when s.pipeline = '{}'::jsonb then syncd.pipeline_of(s.id)
                           else s.pipeline || (select jsonb_object_agg(t.stage, syncd.stage_of_session(s.id, t.stage))
                                                 from touched t where t.session_id = s.id and t.stage is not null) end
     where s.id in (select t.session_id from touched t)
       and (s.pipeline = '{}'::jsonb or exists (select 1 from touched t where t.session_id = s.id and t.stage is not null));
  end if;
  if dev is not null then
    perform syncd.touch_device(dev);
  end if;
  return jsonb_build_object('results', to_jsonb(results));
end
$$;

-- syncd_commit's body (0017, 0021): plain calls by the set, the rest by the loop.
create function syncd.commit_changes(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := syncd.own_device(ws, nullif($1 ->> 'device', '')::uuid);
  changes jsonb := coalesce($1 -> 'changes', '[]'::jsonb);
begin
  perform syncd.commit_caps($1);
  if exists (select 1 from jsonb_array_elements(changes) e
              where jsonb_typeof(e) <> 'object' or e ? 'moved_from' or e ? 'side') then
    return syncd.commit_each($1);
  end if;
  return syncd.commit_batch(ws, dev, coalesce($1 ->> 'origin', 'sync'), changes);
end
$$;

-- The triggers' work per statement: one activity insert for a statement's versions, one
-- wake-up per workspace, one refresh per session stage a statement's documents touched.
-- The rows they make are the ones the row triggers made.
drop trigger document_versions_activity on public.document_versions;
drop trigger document_versions_notify on public.document_versions;
drop trigger activity_log_notify on public.activity_log;
drop trigger documents_pipeline on public.documents;
drop function syncd.version_activity();
drop function syncd.refresh_pipeline();
drop function syncd.notify_change();

create function syncd.versions_activity() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details, created_at)
  select n.workspace_id, d.project_id, d.session_id, d.id, n.author_id, n.device_id, n.origin,
         jsonb_strip_nulls(jsonb_build_object('path', n.path, 'version', n.version,
                                              'parent_version', n.parent_version,
                                              'deleted', n.deleted, 'commit', n.provenance ->> 'commit',
                                              'author_name', n.provenance ->> 'author_name')),
         n.created_at
    from added n join public.documents d on d.id = n.document_id
   where n.origin in ('sync', 'import')
   order by n.id;
  return null;
end
$$;
create trigger document_versions_activity after insert on public.document_versions
  referencing new table as added for each statement execute function syncd.versions_activity();

create function syncd.notify_changes() returns trigger
  language plpgsql set search_path = '' as $$
begin
  perform pg_notify(coalesce(tg_argv[0], 'syncd:') || w.workspace_id::text, '')
     from (select distinct n.workspace_id from added n) w;
  return null;
end
$$;
create trigger document_versions_notify after insert on public.document_versions
  referencing new table as added for each statement execute function syncd.notify_changes();
create trigger activity_log_notify after insert on public.activity_log
  referencing new table as added for each statement execute function syncd.notify_changes('syncd-activity:');

-- As 0015's row trigger: deferred inside syncd_commit, which refreshes what it touched itself.
create function syncd.refresh_pipelines() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  touched record;
begin
  if current_setting('syncd.pipeline', true) = 'deferred' then
    return null;
  end if;
  for touched in
    select distinct n.session_id, n.stage from added n where n.session_id is not null
    union
    select o.session_id, o.stage from replaced o join added n on n.id = o.id
     where o.session_id is not null and o.stage is not null
       and (o.session_id, o.stage) is distinct from (n.session_id, n.stage)
  loop
    perform syncd.refresh_stage(touched.session_id, touched.stage);
  end loop;
  return null;
end
$$;
create function syncd.refresh_new_pipelines() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  touched record;
begin
  if current_setting('syncd.pipeline', true) = 'deferred' then
    return null;
  end if;
  for touched in select distinct n.session_id, n.stage from added n where n.session_id is not null loop
    perform syncd.refresh_stage(touched.session_id, touched.stage);
  end loop;
  return null;
end
$$;
create trigger documents_pipeline after insert on public.documents
  referencing new table as added for each statement execute function syncd.refresh_new_pipelines();
create trigger documents_pipeline_update after update on public.documents
  referencing old table as replaced new table as added for each statement execute function syncd.refresh_pipelines();

-- Privileges as 0017 sets them: only syncd_commit's body is callable by a client.
revoke all on function syncd.is_time(text), syncd.commit_caps(jsonb),
  syncd.commit_batch(uuid, uuid, text, jsonb), syncd.versions_activity(), syncd.notify_changes(),
  syncd.refresh_pipelines(), syncd.refresh_new_pipelines()
  from public, anon, authenticated, service_role;
revoke all on function syncd.commit_changes(jsonb) from public, anon;
grant execute on function syncd.commit_changes(jsonb) to authenticated, service_role;
