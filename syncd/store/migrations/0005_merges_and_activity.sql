-- Merges with both parents, resolutions, restores and imports as versions, the activity
-- log, and the history readers the CLI needs (`log`, `show`, `restore`, `log --deleted`).

-- A merge or resolution has two parents: `parent_version` (the head it was committed on)
-- and `merge_parent` (the other side, stored as its own version so nothing either side
-- wrote is lost).
alter table public.document_versions add column merge_parent integer;

-- Where an imported version came from: {commit, author_name, author_email, renamed_from?,
-- working_tree?}. Only `import` versions carry it; their created_at is the author date.
alter table public.document_versions add column provenance jsonb;
create unique index document_versions_commit on public.document_versions
  (document_id, (provenance ->> 'commit')) where provenance ? 'commit';

create function syncd.record_activity(ws uuid, dev uuid, kind text, doc_path text, details jsonb)
  returns void
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
  doc uuid;
begin
  select * into l from syncd.layout(doc_path);
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details)
  select ws,
         (select p.id from public.projects p where p.workspace_id = ws and p.name = l.project),
         (select s.id from public.sessions s join public.projects p on p.id = s.project_id
           where p.workspace_id = ws and p.name = l.project and s.slug = l.session),
         (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path),
         auth.uid(),
         (select d.id from public.devices d where d.id = dev),
         kind,
         jsonb_build_object('path', doc_path) || coalesce(details, '{}'::jsonb);
end
$$;

-- change: {path, base_version, content | deleted: true, origin?, activity?, side?, provenance?}
--   origin:     overrides the call's origin for this change (merge | resolve | restore | ...)
--   side:       {content, parent_version}: the local side of a merge or resolution, never
--               committed before; stored first as its own version (parent: its own base),
--               then the change is stored on top of the head with merge_parent = that version.
--   activity:   details for the activity row every merge/resolve/restore version gets.
--   provenance: an imported version's {commit, author_name, author_email, at} (origin
--               import only): it is appended to the document's line, dated `at`, and a
--               version of that commit already stored for the path is a duplicate, so a
--               re-run or a resumed import adds nothing.
drop function syncd.commit_one(uuid, uuid, text, jsonb);
create function syncd.commit_one(ws uuid, dev uuid, call_origin text, change jsonb) returns jsonb
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
    body := syncd.content_bytes(new_content);
    if body is null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid',
                                'message', 'content needs "encoding" utf-8 (with "text") or base64 (with "data")');
    end if;
    digest := encode(sha256(body), 'hex');
  end if;
  if side is not null then
    side_body := syncd.content_bytes(side -> 'content');
    if side_body is null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid',
                                'message', 'side needs a content in utf-8 or base64');
    end if;
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
              'sync', auth.uid(), dev, syncd.next_seq(ws));
  end if;
  new_seq := syncd.next_seq(ws);
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
                            'sha256', digest, 'deleted', is_delete, 'seq', new_seq);
end
$$;

-- {workspace, device?, events: [{kind, path, details?}]} → {recorded: n}
-- Events only the client sees (a conflict detected in a working copy).
create function public.syncd_record(jsonb) returns jsonb
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
    perform syncd.record_activity(ws, dev, event ->> 'kind', event ->> 'path', event -> 'details');
    n := n + 1;
  end loop;
  return jsonb_build_object('recorded', n);
end
$$;

-- Names for people: a signed-in author's profile, else the imported commit's author.
-- author_email is what the Git mirror puts in commits: the GitHub noreply address.
create function syncd.version_json(v public.document_versions) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
    'merge_parent', v.merge_parent, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
    'origin', v.origin, 'author_id', v.author_id,
    'author', coalesce(p.github_login, p.display_name, v.provenance ->> 'author_name'),
    'author_name', coalesce(p.display_name, p.github_login, v.provenance ->> 'author_name'),
    'author_email', coalesce(v.provenance ->> 'author_email',
                             case when p.github_login is not null
                                  then p.github_login || '@users.noreply.github.com' end,
                             p.email),
    'device_id', v.device_id,
    'device', (select d.name from public.devices d where d.id = v.device_id),
    'provenance', v.provenance,
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
$$;

-- {workspace, path} → {path, versions: [...newest first]}
create or replace function public.syncd_history(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  result jsonb;
begin
  select jsonb_agg(syncd.version_json(v) order by v.version desc)
    into result
    from public.document_versions v
   where v.workspace_id = ws and v.path = $1 ->> 'path';
  if result is null then
    raise exception 'no document "%" in workspace "%"', $1 ->> 'path', $1 ->> 'workspace'
      using errcode = 'PT404';
  end if;
  return jsonb_build_object('path', $1 ->> 'path', 'versions', result);
end
$$;

-- {workspace, path, version?} → one version with its content (the head when no version)
create or replace function public.syncd_version(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  want integer := ($1 ->> 'version')::integer;
  result jsonb;
begin
  select syncd.version_json(v) || jsonb_build_object('content', v.content)
    into result
    from public.document_versions v
   where v.workspace_id = ws and v.path = $1 ->> 'path'
     and (want is null or v.version = want)
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

-- {workspace, deleted?: bool} → {documents: [head versions, by path]}; deleted: true lists
-- only the documents whose head is a tombstone (what `syncd log --deleted` shows).
create function public.syncd_documents(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  only_deleted boolean := coalesce(($1 ->> 'deleted')::boolean, false);
begin
  return jsonb_build_object('documents', coalesce((
    select jsonb_agg(syncd.version_json(v) order by v.path)
      from public.documents d
      join public.document_versions v on v.document_id = d.id and v.version = d.version
     where d.workspace_id = ws and (not only_deleted or d.deleted)), '[]'::jsonb));
end
$$;

revoke execute on function syncd.record_activity(uuid, uuid, text, text, jsonb),
  syncd.commit_one(uuid, uuid, text, jsonb),
  syncd.version_json(public.document_versions) from public;
grant execute on function syncd.record_activity(uuid, uuid, text, text, jsonb),
  syncd.commit_one(uuid, uuid, text, jsonb),
  syncd.version_json(public.document_versions) to authenticated, service_role;
revoke execute on function public.syncd_record(jsonb), public.syncd_documents(jsonb) from public;
grant execute on function public.syncd_record(jsonb), public.syncd_documents(jsonb)
  to authenticated, service_role;
