-- The checks of a call committed by the set (0023), by the set too (issue 20). 0023 wrote
-- and decided a call a statement at a time, but still asked each change's rights, layout
-- and entry in nested function calls, and a SQL function called from a statement is
-- planned again at every call (PostgreSQL before 18): about 0.3 ms a change, half an
-- import's server time. Now the workspace's rights and layout roots are asked once a call,
-- a session's rights once for all its changes, every provenance time is tried in one
-- statement (is_time's block, a subtransaction, only where one fails), and the helpers an
-- entry's check goes through are plpgsql, whose plans last the session. The answers are
-- 0023's, change for change.

-- The entry's check and layout's helper as 0003's, 0015's and 0019's, in plpgsql.
create or replace function syncd.stage_of(dir text) returns text
  language plpgsql immutable set search_path = '' as $$
begin
  return case lower(dir)
    when 'intents' then 'intent' when 'intent' then 'intent'
    when 'contexts' then 'context' when 'context' then 'context'
    when 'specs' then 'spec' when 'spec' then 'spec'
    when 'plans' then 'plan' when 'plan' then 'plan'
    when 'tasks' then 'tasks'
    when 'implementation' then 'implementation'
    when 'feedback' then 'feedback'
  end;
end
$$;

create or replace function syncd.content_problem(content jsonb) returns text
  language plpgsql immutable set search_path = '' as $$
begin
  return case
    when content is null or jsonb_typeof(content) <> 'object' then 'must be an object with an "encoding"'
    when content ? 'format' and jsonb_typeof(content -> 'format') <> 'string' then '"format" must be a string'
    when content ->> 'encoding' = 'utf-8' then
      case when jsonb_typeof(content -> 'text') is distinct from 'string' then 'utf-8 needs "text" as a string' end
    when content ->> 'encoding' = 'base64' then
      case when jsonb_typeof(content -> 'data') is distinct from 'string' then 'base64 needs "data" as a string'
           when length(content ->> 'data') % 4 <> 0 or content ->> 'data' !~ '^[A-Za-z0-9+/]*={0,2}$'
             then '"data" is not canonical base64 (no whitespace, padded with "=" to a multiple of 4)' end
    else format('unknown "encoding" %s: utf-8 (with "text") or base64 (with "data")',
                coalesce(content -> 'encoding', 'null'::jsonb))
  end;
end
$$;

create or replace function syncd.file_entry_problem(ws uuid, doc_path text, content jsonb) returns text
  language plpgsql stable set search_path = '' as $$
begin
  return case
    when content is null or jsonb_typeof(content) <> 'object' then 'must be an object with an "encoding"'
    when content ? 'executable' and content -> 'executable' <> 'true'::jsonb
      then '"executable" is true, or absent for a file that is not executable'
    when content ->> 'encoding' = 'blob' then
      case when content -> 'format' is distinct from '"binary"' then 'a blob''s "format" is "binary"'
           when jsonb_typeof(content -> 'sha256') is distinct from 'string' or content ->> 'sha256' !~ '^[0-9a-f]{64}$'
             then 'a blob needs "sha256": 64 lowercase hex digits'
           when jsonb_typeof(content -> 'size') is distinct from 'number' or (content ->> 'size') !~ '^[0-9]{1,19}$'
             then 'a blob needs "size": its number of bytes'
           when (content ->> 'size')::numeric > syncd.blob_max_size()
             then format('a blob takes at most %s MiB', syncd.blob_max_size() / 1048576)
           when not syncd.has_blob(ws, content ->> 'sha256', (content ->> 'size')::bigint)
             then format('the blob %s (%s bytes) is not in the store: upload it first (syncd_blob_put, syncd_blob_finish)',
                         content ->> 'sha256', content ->> 'size')
      end
    when content ->> 'encoding' = 'link' then
      case when content ? 'executable' then 'a link is never "executable"'
           when content -> 'format' is distinct from '"link"' then 'a link''s "format" is "link"'
           when jsonb_typeof(content -> 'target') is distinct from 'string' then 'a link needs "target" as a string'
           else syncd.link_problem(doc_path, content ->> 'target')
      end
    when content ->> 'encoding' in ('utf-8', 'base64') then syncd.content_problem(content)
    else format('unknown "encoding" %s: utf-8 (with "text"), blob (with "sha256" and "size"), link (with "target") '
                'or base64 (with "data")', coalesce(content -> 'encoding', 'null'::jsonb))
  end;
end
$$;

-- What a written change costs, as 0009's, 0013's, 0015's and 0019's, in plpgsql too: a version's
-- identity, the stages a call refreshes, the heads its answers carry.
create or replace function syncd.is_template(body text) returns boolean
  language plpgsql immutable set search_path = '' as $$
begin
  return btrim(regexp_replace(regexp_replace(regexp_replace(coalesce(body, ''),
           '\A\ufeff?---\r?\n.*?\r?\n---[ \t]*(\r?\n|\Z)', '', 's'),   -- front matter
           '<!--.*?-->', '', 'gs'),                                     -- comments
           '(^|\n)[ \t]*(#+[^\n]*|[-*+][ \t]*(\[[ xX]?\])?[ \t]*|>?[ \t]*(TODO|TBD|FIXME|\.\.\.|…|<[^>\n]*>|\[[^\]\n]*\])?[:.]?[ \t]*)(?=\r?\n|$)',
           '', 'gi'), E' \t\r\n') = '';
end
$$;

create or replace function syncd.stage_of_session(sess uuid, stage_name text) returns jsonb
  language plpgsql stable security definer set search_path = '' as $$
begin
  return coalesce(
    (select jsonb_build_object(
              'status', case when exists (select 1 from public.documents s
                                           where s.session_id = sess and s.stage = stage_name and not s.deleted
                                             and coalesce(s.size, 0) > 0 and not syncd.is_template(s.content ->> 'text'))
                             then 'started' else 'pending' end,
              'documents', count(*),
              'last_edited_at', max(d.updated_at),
              'last_edited_by', (select coalesce(p.github_login, p.display_name, dv.name)
                                   from public.documents x
                                   left join public.profiles p on p.id = x.updated_by
                                   left join public.devices dv on dv.id = x.device_id
                                  where x.session_id = sess and x.stage = stage_name and not x.deleted
                                  order by x.updated_at desc limit 1))
       from public.documents d where d.session_id = sess and d.stage = stage_name and not d.deleted
      having count(*) > 0),
    jsonb_build_object('status', 'pending', 'documents', 0));
end
$$;

create or replace function syncd.pipeline_of(sess uuid) returns jsonb
  language plpgsql stable security definer set search_path = '' as $$
begin
  return (select jsonb_object_agg(st.stage, syncd.stage_of_session(sess, st.stage) order by st.ord) from syncd.stages() st);
end
$$;

create or replace function syncd.content_bytes(content jsonb) returns bytea
  language plpgsql immutable set search_path = '' as $$
begin
  return case content ->> 'encoding'
    when 'utf-8' then convert_to(content ->> 'text', 'UTF8')
    when 'base64' then decode(content ->> 'data', 'base64')
  end;
end
$$;

create or replace function syncd.identity(bytes_sha256 text, executable boolean, link boolean) returns text
  language plpgsql immutable set search_path = '' as $$
begin
  return case when link then encode(sha256(convert_to('120000 ' || bytes_sha256, 'UTF8')), 'hex')
              when executable then encode(sha256(convert_to('100755 ' || bytes_sha256, 'UTF8')), 'hex')
              else bytes_sha256 end;
end
$$;

create or replace function syncd.head_json(d public.documents, with_content boolean) returns jsonb
  language plpgsql stable set search_path = '' as $$
begin
  return jsonb_build_object(
    'path', d.path, 'version', d.version, 'sha256', d.sha256, 'size', d.size,
    'deleted', d.deleted, 'seq', d.seq, 'updated_at', d.updated_at)
    || case when with_content then jsonb_build_object('content', d.content) else '{}'::jsonb end;
end
$$;

-- is_time of every text at once: one block for the call where 0023 opened one per change.
create function syncd.are_times(texts text[]) returns boolean
  language plpgsql stable set search_path = '' as $$
begin
  perform count(t::timestamptz) from unnest(texts) t;
  return true;
exception when others then
  return false;
end
$$;

-- 0023's, with the call's rights, roots and times asked once.
create or replace function syncd.commit_batch(ws uuid, dev uuid, call_origin text, changes jsonb) returns jsonb
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
  writer boolean := syncd.can_write(ws, null);  -- the workspace's rights, so a session's are asked once
  roots text[] := syncd.layout_roots(ws);
  times boolean;
begin
  select syncd.are_times(array_agg(e.change -> 'provenance' ->> 'at')) into times
    from jsonb_array_elements(changes) e(change) where e.change ? 'provenance';
  -- Every check before the head is read, in the order the loop and commit_one make them.
  with c as (
    select e.ord::integer as ord, e.change, e.change ->> 'path' as path,
           coalesce((e.change ->> 'deleted')::boolean, false) as is_delete,
           coalesce(e.change ->> 'origin', call_origin) as origin, e.change -> 'provenance' as prov
      from jsonb_array_elements(changes) with ordinality e(change, ord)
  ), laid as materialized (
    select c.*, l.project, l.session, l.stage, s.id as session_id
      from c  -- session_of (layout_ids), for the set: layout(ws, path) with the call's roots
      left join lateral syncd.layout_under(c.path, roots) l on true
      left join public.projects p on p.workspace_id = ws and p.name = l.project
      left join public.sessions s on s.project_id = p.id and s.slug = l.session
  ), rights as (  -- can_write(ws, session) for each session the call names, unless the workspace's answer
    select x.session_id, syncd.can_write(ws, x.session_id) as may
      from (select distinct la.session_id from laid la where la.session_id is not null) x
     where not writer
  ), checked as materialized (
    select la.*,
           case
             when octet_length(la.path) > 4096 then
               jsonb_build_object('path', la.path, 'status', 'invalid', 'message', 'a path takes at most 4096 bytes')
             when not coalesce(r.may, writer) then jsonb_build_object(
               'path', la.path, 'status', 'forbidden',
               'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)')
             when (la.change ? 'provenance' or la.origin = 'import') and not owner then
               jsonb_build_object('path', la.path, 'status', 'forbidden',
                                  'message', 'only an owner of the workspace imports history (syncd import)')
             when la.change ? 'activity' and jsonb_typeof(la.change -> 'activity') <> 'object' then
               jsonb_build_object('path', la.path, 'status', 'invalid',
                                  'message', 'activity: the details of an event are an object')
           end as refused
      from laid la
      left join rights r on r.session_id = la.session_id
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
             when ch.prov is not null and not (times or syncd.is_time(ch.prov ->> 'at')) then
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

-- An import's last call planned its empty list of permission files as ~100k rows of
-- regular expressions, which JIT compiled: 0.15-0.35 s of every import.
alter function syncd.import_members(jsonb) set jit = off;

revoke all on function syncd.are_times(text[]) from public, anon, authenticated, service_role;
