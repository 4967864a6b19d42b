-- The contract bounded (issue 16, items 4-6): content checked against the document
-- schema, feed pages bounded in bytes, and commits linear in their size and capped.

-- 1. Content. A content no client can decode (`text` a number, base64 with whitespace,
-- which decode(..., 'base64') here accepts but a strict decoder does not) was stored and
-- then failed every pass of every copy. It is refused, change by change, as `invalid`.

-- Why a content does not match the document schema, or null when it does: an object with
-- "encoding" utf-8 and a string "text" (and "format", when given, a string), or base64 and
-- a string "data" in canonical base64 (no whitespace or line breaks, padded to a multiple
-- of four).
create function syncd.content_problem(content jsonb) returns text
  language sql immutable set search_path = '' as $$
  select case
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
  end
$$;

-- 2. Bounded responses. A version's content rides inline (in a feed page, a conflict's
-- head, a batch of versions) only while the response's inline content stays within 8 MiB
-- of file bytes, and never above 1 MiB for one content: the client fetches the others one
-- at a time (syncd_version). A content's JSON is a few times its bytes at worst (a parsed
-- value beside the text, base64's 4/3, escapes), so a response stays within tens of MB:
-- far from jsonb's 256 MB limit (30 files of 9.9 MB in one page broke it), quick through
-- PostgREST, and a page a daemon holds in memory at once.
create function syncd.inline_budget() returns bigint
  language sql immutable set search_path = '' as $$ select 8 * 1024 * 1024::bigint $$;
create function syncd.inline_item_max() returns bigint
  language sql immutable set search_path = '' as $$ select 1024 * 1024::bigint $$;

-- syncd_version and syncd_versions find versions by path: an index for them (they scanned
-- every version of the workspace).
create index document_versions_path on public.document_versions (workspace_id, path, version);

-- {workspace, since, limit?} → {changes: [...], cursor, more}: as in 0003, with content only
-- for heads within the inline budget, in sequence order.
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

-- {workspace, versions: [{path, version}]} → {versions: [...]}: as in 0006, content within
-- the inline budget (the rest: syncd_version).
create or replace function public.syncd_versions(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('versions', coalesce((
    select jsonb_agg(syncd.version_json(v.x)
                     || jsonb_build_object('content', case when v.candidate and v.inline_so_far <= syncd.inline_budget()
                                                           then (v.x).content end)
                     order by v.ord)
      from (select c.*, sum(case when c.candidate then (c.x).size else 0 end) over (order by c.ord) as inline_so_far
              from (select x, w.ord, not x.deleted and x.size <= syncd.inline_item_max() as candidate
                      from jsonb_array_elements(coalesce($1 -> 'versions', '[]'::jsonb)) with ordinality w(item, ord)
                      join public.document_versions x
                        on x.workspace_id = ws and x.path = w.item ->> 'path'
                       and x.version = (w.item ->> 'version')::integer) c) v), '[]'::jsonb));
end
$$;

-- 3. Commits linear and capped. A call of N changes cost O(N²): its results were built by
-- copying the array at each change, every change updated the workspace row again for its
-- sequence number (each update walks the chain of row versions the call made before it),
-- and each document refreshed its session stage from all the stage's documents. Now the
-- results are collected once, the caller hands out sequence numbers and writes the
-- workspace row once, and each stage a call touched is refreshed once at its end.

-- The caps on one call, which holds the workspace lock (and so every other commit of the
-- workspace) until it ends: 500 new documents take 0.7-0.9 s on a loaded 2-core machine
-- (bench/commit_bench.py). RpcStore.commit splits a batch to stay within them.
create function syncd.commit_max_changes() returns integer
  language sql immutable set search_path = '' as $$ select 500 $$;
create function syncd.commit_max_bytes() returns bigint
  language sql immutable set search_path = '' as $$ select 64 * 1024 * 1024::bigint $$;

-- The workspace lock (as in 0003), now with the last sequence number so far: the caller,
-- holding the lock, hands out the next ones and records the last once (replaces next_seq).
drop function syncd.next_seq(uuid);
drop function syncd.lock_workspace(uuid);
create function syncd.lock_workspace(ws uuid) returns bigint
  language sql security definer set search_path = '' as $$
  select last_seq from public.workspaces where id = ws for update
$$;
create function syncd.set_last_seq(ws uuid, seq bigint) returns void
  language sql security definer set search_path = '' as $$
  update public.workspaces set last_seq = greatest(last_seq, seq) where id = ws
$$;

-- One stage of a session, or all seven for its first document (see 0013).
create function syncd.refresh_stage(sess uuid, stage_name text) returns void
  language sql security definer set search_path = '' as $$
  update public.sessions
     set pipeline = case when pipeline = '{}'::jsonb then syncd.pipeline_of(id)
                         else pipeline || jsonb_build_object(stage_name, syncd.stage_of_session(id, stage_name)) end
   where id = sess and (stage_name is not null or pipeline = '{}'::jsonb)
$$;

-- syncd_commit refreshes the stages it touched itself, once each, and says so for the
-- length of the call; any other write still refreshes by this trigger.
create or replace function syncd.refresh_pipeline() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  if current_setting('syncd.pipeline', true) = 'deferred' then
    return null;
  end if;
  if new.session_id is not null then
    perform syncd.refresh_stage(new.session_id, new.stage);
  end if;
  if tg_op = 'UPDATE' and old.session_id is not null and old.stage is not null
     and (old.session_id, old.stage) is distinct from (new.session_id, new.stage) then
    perform syncd.refresh_stage(old.session_id, old.stage);
  end if;
  return null;
end
$$;

-- A stage has started when one document in it is more than an empty file or a template:
-- the first such document settles it (0013 read every document's text for each commit).
create or replace function syncd.stage_of_session(sess uuid, stage_name text) returns jsonb
  language sql stable security definer set search_path = '' as $$
  select coalesce(
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
    jsonb_build_object('status', 'pending', 'documents', 0))
$$;
create index documents_stage on public.documents (session_id, stage, updated_at);

-- commit_one as in 0005, with the content checked and the sequence numbers handed in:
-- `last_seq` is the workspace's last one so far; an accepted change takes the next (the
-- next two with a side) and says which in its result.
drop function syncd.commit_one(uuid, uuid, text, jsonb);
create function syncd.commit_one(ws uuid, dev uuid, call_origin text, change jsonb, last_seq bigint)
  returns jsonb
  language plpgsql set search_path = '' as $$
declare
  doc_path text := change ->> 'path';
  base integer := (change ->> 'base_version')::integer;
  is_delete boolean := coalesce((change ->> 'deleted')::boolean, false);
  new_content jsonb := case when is_delete then null else change -> 'content' end;
  origin text := coalesce(change ->> 'origin', call_origin);
  side jsonb := change -> 'side';
  prov jsonb := change -> 'provenance';
  stamp timestamptz := now();
  side_body bytea;
  problem text;
  side_version integer;
  body bytea;
  digest text;
  head public.documents;
  dup record;
  l record;
  new_seq bigint;
  doc_id uuid;
  new_version integer;
begin
  if doc_path is null or doc_path = '' or doc_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', 'path must be relative, without "." or ".." parts');
  end if;
  -- A name Git takes for its own .git (any case, trailing dots or spaces, the NTFS short
  -- name): written into a tree, it points Git at a config of the writer's choosing. Never
  -- stored; a delete of one stored before is let through.
  if not is_delete and lower(doc_path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', 'a name Git keeps for itself (.git) is never stored');
  end if;
  if origin is null or origin not in ('sync', 'merge', 'restore', 'resolve', 'import') then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', format('unknown origin %L', origin));
  end if;
  if prov is not null then
    if origin <> 'import' or jsonb_typeof(prov) <> 'object' then
      return jsonb_build_object('path', doc_path, 'status', 'invalid',
                                'message', 'provenance is for imported versions only');
    end if;
    begin
      stamp := coalesce((prov ->> 'at')::timestamptz, stamp);
    exception when others then
      return jsonb_build_object('path', doc_path, 'status', 'invalid',
                                'message', format('provenance "at" is not a time: %s', prov ->> 'at'));
    end;
  end if;
  if not is_delete then
    problem := syncd.content_problem(new_content);
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'content: ' || problem);
    end if;
    body := syncd.content_bytes(new_content);
    digest := encode(sha256(body), 'hex');
  end if;
  if side is not null then
    problem := syncd.content_problem(side -> 'content');
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'side content: ' || problem);
    end if;
    side_body := syncd.content_bytes(side -> 'content');
  end if;

  select * into head from public.documents d where d.workspace_id = ws and d.path = doc_path
    for update;

  if side is not null and head.id is null then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', 'a side needs a head to merge with');
  end if;

  if prov is not null then
    base := head.version;  -- an import appends to the document's line; no optimistic check
  end if;
  if prov ? 'commit' and head.id is not null then
    select v.version into dup from public.document_versions v
      where v.document_id = head.id and v.provenance ->> 'commit' = prov ->> 'commit';
    if dup.version is not null then
      return jsonb_build_object('path', doc_path, 'status', 'duplicate', 'version', dup.version,
                                'sha256', digest, 'deleted', is_delete,
                                'head', syncd.head_json(head, false));
    end if;
  end if;

  -- Already there: the same content (or an absence) needs no new version. A change with a
  -- side always makes one: the side must be kept.
  if side is null and ((head.id is not null and head.deleted = is_delete
                        and head.sha256 is not distinct from digest)
                       or (head.id is null and is_delete)) then
    return jsonb_build_object('path', doc_path, 'status', 'unchanged', 'version', head.version,
                              'sha256', digest, 'deleted', is_delete);
  end if;

  if not ((head.id is null and base is null) or coalesce(head.version = base, false)) then
    -- A retried push whose first attempt was accepted: same parent, same content.
    select v.version, v.merge_parent into dup from public.document_versions v
      where v.document_id = head.id and v.parent_version is not distinct from base
        and v.sha256 is not distinct from digest and v.deleted = is_delete
      order by v.version limit 1;
    if dup.version is not null then
      return jsonb_build_object('path', doc_path, 'status', 'duplicate', 'version', dup.version,
                                'side_version', dup.merge_parent,
                                'sha256', digest, 'deleted', is_delete,
                                'head', syncd.head_json(head, true));
    end if;
    return jsonb_build_object('path', doc_path, 'status', 'conflict',
                              'head', case when head.id is null then null
                                           else syncd.head_json(head, true) end);
  end if;

  select * into l from syncd.ensure_layout(ws, doc_path);
  new_version := coalesce(head.version, 0) + 1;
  if side is not null then
    side_version := new_version;
    new_version := new_version + 1;
    insert into public.document_versions (document_id, workspace_id, path, version,
                                          parent_version, content, sha256, size, deleted,
                                          origin, author_id, device_id, seq)
      values (head.id, ws, doc_path, side_version, (side ->> 'parent_version')::integer,
              side -> 'content', encode(sha256(side_body), 'hex'), length(side_body), false,
              'sync', auth.uid(), dev, last_seq + 1);
  end if;
  new_seq := last_seq + case when side is null then 1 else 2 end;
  if head.id is null then
    insert into public.documents (workspace_id, path, project_id, session_id, stage, version,
                                  content, sha256, size, deleted, seq, updated_by, device_id,
                                  updated_at)
      values (ws, doc_path, l.project_id, l.session_id, l.stage, new_version,
              new_content, digest, length(body), is_delete, new_seq, auth.uid(), dev, stamp)
      returning id into doc_id;
  else
    doc_id := head.id;
    update public.documents d
      set version = new_version, content = new_content, sha256 = digest,
          size = length(body), deleted = is_delete, seq = new_seq,
          project_id = l.project_id, session_id = l.session_id, stage = l.stage,
          updated_by = auth.uid(), device_id = dev, updated_at = stamp
      where d.id = doc_id;
  end if;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                        merge_parent, content, sha256, size, deleted, origin,
                                        author_id, device_id, seq, provenance, created_at)
    values (doc_id, ws, doc_path, new_version, head.version, side_version, new_content, digest,
            length(body), is_delete, origin, auth.uid(), dev, new_seq, prov, stamp);
  if origin not in ('sync', 'import') then
    perform syncd.record_activity(ws, dev, origin, doc_path,
      jsonb_strip_nulls(jsonb_build_object('version', new_version, 'parent_version', head.version,
                                           'merge_parent', side_version, 'deleted', is_delete))
      || coalesce(change -> 'activity', '{}'::jsonb));
  end if;
  return jsonb_build_object('path', doc_path, 'status', 'accepted', 'version', new_version,
                            'side_version', side_version,
                            'sha256', digest, 'deleted', is_delete, 'seq', new_seq, 'created_at', stamp);
end
$$;

-- {workspace, device?, origin?, changes: [...]} → {results: [...]}: as in 0007, refused whole
-- (PT413) over the caps; a conflict's or duplicate's head carries its content within the
-- inline budget.
create or replace function public.syncd_commit(jsonb) returns jsonb
  language plpgsql set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  -- a device the store does not know (never opened) is left out rather than failing the batch
  dev uuid := (select d.id from public.devices d where d.id = nullif($1 ->> 'device', '')::uuid);
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

revoke execute on function syncd.content_problem(jsonb), syncd.inline_budget(), syncd.inline_item_max(),
  syncd.commit_max_changes(), syncd.commit_max_bytes(), syncd.refresh_stage(uuid, text),
  syncd.lock_workspace(uuid), syncd.set_last_seq(uuid, bigint),
  syncd.commit_one(uuid, uuid, text, jsonb, bigint) from public;
grant execute on function syncd.content_problem(jsonb), syncd.inline_budget(), syncd.inline_item_max(),
  syncd.commit_max_changes(), syncd.commit_max_bytes(), syncd.refresh_stage(uuid, text),
  syncd.lock_workspace(uuid), syncd.set_last_seq(uuid, bigint),
  syncd.commit_one(uuid, uuid, text, jsonb, bigint) to authenticated, service_role;
