-- Moves are moves: a document keeps its id and its history when its path changes.
--
-- A change {"path": NEW, "moved_from": OLD, "base_version": <OLD's head version>} to
-- syncd_commit moves OLD's document to NEW: a new version of the same document at NEW,
-- with OLD's head content, parent the old head, `moved_from` OLD; and OLD gets a document of
-- its own whose head is a tombstone saying `moved_to` NEW. Both versions are numbered old
-- head + 1, so a copy whose base is OLD's head sees a plain successor at OLD and can tell
-- what the version at NEW holds (its base's content). Optimistic like any commit: OLD's head
-- must still be at base_version, and NEW must never have held a document (a path with
-- history of its own keeps it; such a move goes as a delete and a create).

alter table public.document_versions
  add column moved_from text,  -- the version was moved here from that path
  add column moved_to text;    -- the tombstone of a path whose document moved there

alter table public.document_versions drop constraint document_versions_origin_check,
  add constraint document_versions_origin_check
    check (origin in ('sync', 'merge', 'restore', 'resolve', 'import', 'move'));

create function syncd.move_one(ws uuid, dev uuid, change jsonb, last_seq bigint) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  new_path text := change ->> 'path';
  old_path text := change ->> 'moved_from';
  base integer := (change ->> 'base_version')::integer;
  head public.documents;
  there public.documents;
  old_l record;
  new_l record;
  tomb uuid;
  new_version integer;
begin
  if old_path is null or old_path = '' or old_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))'
     or new_path is null or new_path = '' or new_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' or old_path = new_path then
    return jsonb_build_object('path', new_path, 'status', 'invalid',
                              'message', 'a move names two different relative paths, without "." or ".." parts');
  end if;
  if lower(new_path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then  -- as commit_one: never stored
    return jsonb_build_object('path', new_path, 'status', 'invalid',
                              'message', 'a name Git keeps for itself (.git) is never stored');
  end if;
  if octet_length(old_path) > 4096 then
    return jsonb_build_object('path', new_path, 'status', 'invalid', 'message', 'a path takes at most 4096 bytes');
  end if;
  -- commit_changes checked the new path's session; the old one's must be writable too
  if not syncd.can_write(ws, syncd.session_of(ws, old_path)) then
    return jsonb_build_object('path', new_path, 'status', 'forbidden',
      'message', format('you may read but not write %s, the path moved from', old_path));
  end if;

  select * into head from public.documents d where d.workspace_id = ws and d.path = old_path for update;
  select * into there from public.documents d where d.workspace_id = ws and d.path = new_path for update;

  -- A retried move whose first attempt landed: OLD's tombstone says where it went.
  if head.deleted and there.id is not null and head.version = base + 1
     and exists (select 1 from public.document_versions v
                  where v.document_id = head.id and v.version = head.version and v.moved_to = new_path)
     and exists (select 1 from public.document_versions v
                  where v.document_id = there.id and v.version = head.version and v.moved_from = old_path) then
    return jsonb_build_object('path', new_path, 'status', 'duplicate', 'version', head.version,
                              'sha256', (select v.sha256 from public.document_versions v
                                          where v.document_id = there.id and v.version = head.version),
                              'deleted', false, 'head', syncd.head_json(there, true));
  end if;
  if there.id is not null then
    return jsonb_build_object('path', new_path, 'status', 'conflict', 'head', syncd.head_json(there, true),
                              'message', 'the path moved to has a history of its own');
  end if;
  if head.id is null or head.deleted or head.version is distinct from base then
    return jsonb_build_object('path', new_path, 'status', 'conflict', 'moved_from', old_path,
                              'head', case when head.id is not null then syncd.head_json(head, true) end);
  end if;

  if head.content ->> 'encoding' = 'link' and syncd.link_problem(new_path, head.content ->> 'target') is not null then
    -- a link's target is relative to where it is: at new_path it must still stay inside the root
    return jsonb_build_object('path', new_path, 'status', 'invalid', 'message',
      format('a link moved to %s: %s', new_path, syncd.link_problem(new_path, head.content ->> 'target')));
  end if;

  -- the tombstone takes the first seq, the version at new_path the second: the one this
  -- answer names, as every commit's answer names the change at its seq
  new_version := head.version + 1;
  select * into new_l from syncd.ensure_layout(ws, new_path);
  select * into old_l from syncd.ensure_layout(ws, old_path);
  update public.documents d
     set path = new_path, version = new_version, seq = last_seq + 2,
         project_id = new_l.project_id, session_id = new_l.session_id, stage = new_l.stage,
         updated_by = auth.uid(), device_id = dev, updated_at = now()
   where d.id = head.id;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version, content,
                                        sha256, size, deleted, origin, author_id, device_id, seq, moved_from)
    values (head.id, ws, new_path, new_version, head.version, head.content, head.sha256, head.size, false,
            'move', auth.uid(), dev, last_seq + 2, old_path);
  insert into public.documents (workspace_id, path, project_id, session_id, stage, version, content, sha256,
                                size, deleted, seq, updated_by, device_id)
    values (ws, old_path, old_l.project_id, old_l.session_id, old_l.stage, new_version, null, null,
            null, true, last_seq + 1, auth.uid(), dev)
    returning id into tomb;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version, content,
                                        sha256, size, deleted, origin, author_id, device_id, seq, moved_to)
    values (tomb, ws, old_path, new_version, head.version, null, null, null, true,
            'move', auth.uid(), dev, last_seq + 1, new_path);
  perform syncd.record_activity(ws, dev, 'move', new_path,
    jsonb_build_object('moved_from', old_path, 'version', new_version, 'parent_version', head.version));
  return jsonb_build_object('path', new_path, 'status', 'accepted', 'version', new_version,
                            'sha256', head.sha256, 'deleted', false, 'seq', last_seq + 2, 'created_at', now());
end
$$;

-- syncd_commit as in 0017; a change that names `moved_from` is a move.
create or replace function syncd.commit_changes(jsonb) returns jsonb
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
    if change ? 'moved_from' then
      result := syncd.move_one(ws, dev, change, last_seq);
    else
      result := syncd.commit_one(ws, dev, origin, change, last_seq);
    end if;
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

-- The feed as in 0016, each change saying where it moved from or to.
create or replace function public.syncd_changes(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  since bigint := coalesce(($1 ->> 'since')::bigint, 0);
  lim integer := least(greatest(coalesce(($1 ->> 'limit')::integer, 500), 1), 5000);
  page jsonb;
  n integer;
  last_in_page bigint;
begin
  select coalesce(jsonb_agg(jsonb_build_object(
           'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
           'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted, 'seq', v.seq,
           'origin', v.origin, 'author_id', v.author_id, 'device_id', v.device_id,
           'created_at', v.created_at, 'is_head', v.is_head,
           'moved_from', v.moved_from, 'moved_to', v.moved_to,
           'content', case when v.candidate and v.inline_so_far <= syncd.inline_budget() then v.content end)
           order by v.seq), '[]'::jsonb),
         count(*), max(v.seq)
    into page, n, last_in_page
    from (select c.*, sum(case when c.candidate then c.size else 0 end) over (order by c.seq) as inline_so_far
            from (select x.*, d.version = x.version as is_head,
                         d.version = x.version and not x.deleted and x.size <= syncd.inline_item_max() as candidate
                    from (select * from public.document_versions y
                           where y.workspace_id = ws and y.seq > since
                           order by y.seq limit lim) x
                    join public.documents d on d.id = x.document_id) c) v;
  return jsonb_build_object('changes', page, 'cursor', coalesce(last_in_page, since), 'more', n = lim);
end
$$;

-- The versions of a path follow its document, as `git log --follow`: those written at the
-- path, and those its document had at the paths it moved from. (Version numbers at one
-- path never repeat: a document moves only to a path that never held one.) Read as the
-- caller: row level security applies.
create function syncd.versions_at(ws uuid, doc_path text) returns setof public.document_versions
  language sql stable set search_path = '' as $$
  select v.* from public.document_versions v
   where v.workspace_id = ws
     and (v.path = doc_path
          or v.document_id = (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path))
$$;

-- A version's record as in 0019 (with its mode), and where it moved from or to.
create or replace function syncd.version_json(v public.document_versions) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
    'merge_parent', v.merge_parent, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
    'mode', syncd.mode_of(v.content),
    'origin', v.origin, 'author_id', v.author_id,
    'author', coalesce(p.github_login, v.author_login, p.display_name, v.author_name, v.provenance ->> 'author_name'),
    'author_name', coalesce(p.display_name, v.author_name, p.github_login, v.author_login, v.provenance ->> 'author_name'),
    'author_email', coalesce(v.provenance ->> 'author_email',
                             coalesce(p.github_login, v.author_login) || '@users.noreply.github.com'),
    'device_id', v.device_id,
    'device', (select d.name from public.devices d where d.id = v.device_id),
    'provenance', v.provenance,
    'moved_from', v.moved_from, 'moved_to', v.moved_to,
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
$$;

create or replace function public.syncd_history(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  result jsonb;
begin
  select jsonb_agg(syncd.version_json(v) order by v.version desc)
    into result
    from syncd.versions_at(ws, $1 ->> 'path') v;
  if result is null then
    raise exception 'no document "%" in workspace "%"', $1 ->> 'path', $1 ->> 'workspace'
      using errcode = 'PT404';
  end if;
  return jsonb_build_object('path', $1 ->> 'path', 'versions', result);
end
$$;

-- A version of a path, as syncd_history lists them.
create or replace function public.syncd_version(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  want integer := ($1 ->> 'version')::integer;
  result jsonb;
begin
  select syncd.version_json(v) || jsonb_build_object('content', v.content)
    into result
    from syncd.versions_at(ws, $1 ->> 'path') v
   where want is null or v.version = want
   order by v.version desc
   limit 1;
  if result is null then
    raise exception 'no version % of "%" in workspace "%"',
      coalesce(want::text, 'head'), $1 ->> 'path', $1 ->> 'workspace'
      using errcode = 'PT404';
  end if;
  return result;
end
$$;

-- Client events as in 0017; a move is one of the contract's own events.
create or replace function syncd.record_events(jsonb) returns jsonb
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
    if event ->> 'kind' in ('sync', 'merge', 'restore', 'resolve', 'move')  -- the contract's own, with the versions
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

-- A move edits no content: edits per day (and the conflict rates over them) leave it out.
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
   where v.origin not in ('merge', 'move')
   group by 1, 2, 3, 4;

-- Privileges as 0017 sets them: the move runs only inside syncd_commit.
revoke all on function syncd.move_one(uuid, uuid, jsonb, bigint) from public, anon, authenticated, service_role;
revoke all on function syncd.versions_at(uuid, text) from public, anon;
grant execute on function syncd.versions_at(uuid, text) to authenticated, service_role;
