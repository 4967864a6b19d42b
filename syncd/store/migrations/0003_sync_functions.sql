-- The RPC functions that carry all server behaviour. Each public function takes one
-- unnamed jsonb argument and returns jsonb, so PostgREST (POST /rest/v1/rpc/<name> with
-- the body as that argument) and psycopg (select syncd_x(%s::jsonb)) call them alike.
-- Errors meant for the client use SQLSTATE PTxxx, which PostgREST turns into HTTP xxx.

-- Helpers live in the non-exposed schema `syncd`.

-- volatile, not stable: syncd_open calls it right after creating the workspace, and a
-- stable function would still see the snapshot from before that insert
create function syncd.workspace_id(ws_slug text) returns uuid
  language plpgsql set search_path = '' as $$
declare
  ws uuid;
begin
  select w.id into ws from public.workspaces w where w.slug = ws_slug;
  if ws is null then
    raise exception 'workspace "%" does not exist', ws_slug
      using errcode = 'PT404', hint = 'create it with `syncd init`';
  end if;
  return ws;
end
$$;

-- Legacy IDSE layout, read off a path. Unknown layouts give nulls and still sync.
create function syncd.stage_of(dir text) returns text
  language sql immutable set search_path = '' as $$
  select case lower(dir)
    when 'intents' then 'intent' when 'intent' then 'intent'
    when 'contexts' then 'context' when 'context' then 'context'
    when 'specs' then 'spec' when 'spec' then 'spec'
    when 'plans' then 'plan' when 'plan' then 'plan'
    when 'tasks' then 'tasks'
    when 'implementation' then 'implementation'
    when 'feedback' then 'feedback'
  end
$$;

create function syncd.layout(path text, out project text, out session text, out stage text)
  language plpgsql immutable set search_path = '' as $$
declare
  p text[] := string_to_array(path, '/');
  n int := cardinality(p);
begin
  -- projects/<P>/<file> at least
  if n < 3 or p[1] <> 'projects' then
    return;
  end if;
  project := p[2];
  if n >= 5 and p[3] = 'sessions' then
    -- projects/<P>/sessions/<S>/...
    session := p[4];
    if n >= 6 then
      stage := syncd.stage_of(p[5]);
    end if;
  elsif n >= 5 and (syncd.stage_of(p[4]) is not null or p[4] = 'metadata') then
    -- projects/<P>/<S>/<stage dir>/... : a session without the sessions/ level
    session := p[3];
    stage := syncd.stage_of(p[4]);
  end if;
end
$$;

-- Project and session rows are bookkeeping derived from the path: made on first sight.
create function syncd.ensure_layout(ws uuid, path text,
                                    out project_id uuid, out session_id uuid, out stage text)
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
begin
  select * into l from syncd.layout(path);
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

-- The exact bytes a document content stands for; the sha256 and size are computed here,
-- never trusted from the client.
create function syncd.content_bytes(content jsonb) returns bytea
  language sql immutable set search_path = '' as $$
  select case content ->> 'encoding'
    when 'utf-8' then convert_to(content ->> 'text', 'UTF8')
    when 'base64' then decode(content ->> 'data', 'base64')
  end
$$;

-- Serializes commits per workspace: the caller holds this row lock until it commits, so a
-- transaction that takes a later sequence number always commits later, and a feed reader
-- paging `seq > cursor` can never skip a version.
create function syncd.lock_workspace(ws uuid) returns void
  language sql security definer set search_path = '' as $$
  select 1 from public.workspaces where id = ws for update
$$;

create function syncd.next_seq(ws uuid) returns bigint
  language sql security definer set search_path = '' as $$
  update public.workspaces set last_seq = last_seq + 1 where id = ws returning last_seq
$$;

create function syncd.head_json(d public.documents, with_content boolean) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'path', d.path, 'version', d.version, 'sha256', d.sha256, 'size', d.size,
    'deleted', d.deleted, 'seq', d.seq, 'updated_at', d.updated_at)
    || case when with_content then jsonb_build_object('content', d.content) else '{}'::jsonb end
$$;

create function syncd.commit_one(ws uuid, dev uuid, origin text, change jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  doc_path text := change ->> 'path';
  base integer := (change ->> 'base_version')::integer;
  is_delete boolean := coalesce((change ->> 'deleted')::boolean, false);
  new_content jsonb := case when is_delete then null else change -> 'content' end;
  body bytea;
  digest text;
  head public.documents;
  dup integer;
  l record;
  new_seq bigint;
  doc_id uuid;
  new_version integer;
begin
  if doc_path is null or doc_path = '' or doc_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', 'path must be relative, without "." or ".." parts');
  end if;
  if not is_delete then
    body := syncd.content_bytes(new_content);
    if body is null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid',
                                'message', 'content needs "encoding" utf-8 (with "text") or base64 (with "data")');
    end if;
    digest := encode(sha256(body), 'hex');
  end if;

  select * into head from public.documents d where d.workspace_id = ws and d.path = doc_path
    for update;

  -- Already there: the same content (or an absence) needs no new version.
  if (head.id is not null and head.deleted = is_delete and head.sha256 is not distinct from digest)
     or (head.id is null and is_delete) then
    return jsonb_build_object('path', doc_path, 'status', 'unchanged', 'version', head.version,
                              'sha256', digest, 'deleted', is_delete);
  end if;

  if not ((head.id is null and base is null) or coalesce(head.version = base, false)) then
    -- A retried push whose first attempt was accepted: same parent, same content.
    select v.version into dup from public.document_versions v
      where v.document_id = head.id and v.parent_version is not distinct from base
        and v.sha256 is not distinct from digest and v.deleted = is_delete
      order by v.version limit 1;
    if dup is not null then
      return jsonb_build_object('path', doc_path, 'status', 'duplicate', 'version', dup,
                                'sha256', digest, 'deleted', is_delete,
                                'head', syncd.head_json(head, true));
    end if;
    return jsonb_build_object('path', doc_path, 'status', 'conflict',
                              'head', case when head.id is null then null
                                           else syncd.head_json(head, true) end);
  end if;

  new_seq := syncd.next_seq(ws);
  select * into l from syncd.ensure_layout(ws, doc_path);
  new_version := coalesce(head.version, 0) + 1;
  if head.id is null then
    insert into public.documents (workspace_id, path, project_id, session_id, stage, version,
                                  content, sha256, size, deleted, seq, updated_by, device_id)
      values (ws, doc_path, l.project_id, l.session_id, l.stage, new_version,
              new_content, digest, length(body), is_delete, new_seq, auth.uid(), dev)
      returning id into doc_id;
  else
    doc_id := head.id;
    update public.documents d
      set version = new_version, content = new_content, sha256 = digest,
          size = length(body), deleted = is_delete, seq = new_seq,
          project_id = l.project_id, session_id = l.session_id, stage = l.stage,
          updated_by = auth.uid(), device_id = dev, updated_at = now()
      where d.id = doc_id;
  end if;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                        content, sha256, size, deleted, origin, author_id,
                                        device_id, seq)
    values (doc_id, ws, doc_path, new_version, head.version, new_content, digest, length(body),
            is_delete, origin, auth.uid(), dev, new_seq);
  return jsonb_build_object('path', doc_path, 'status', 'accepted', 'version', new_version,
                            'sha256', digest, 'deleted', is_delete, 'seq', new_seq);
end
$$;

-- {workspace, device?, origin?, changes: [{path, base_version|null, content | deleted: true}]}
-- → {results: [{path, status: accepted|unchanged|duplicate|conflict|invalid, ...}]}
-- Each change is judged on its own; a conflict on one path does not hold back the others.
create function public.syncd_commit(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := nullif($1 ->> 'device', '')::uuid;
  origin text := coalesce($1 ->> 'origin', 'sync');
  change jsonb;
  results jsonb := '[]'::jsonb;
begin
  -- take the workspace lock before any document lock: one lock order, no deadlocks
  perform syncd.lock_workspace(ws);
  for change in select value from jsonb_array_elements(coalesce($1 -> 'changes', '[]'::jsonb)) loop
    results := results || jsonb_build_array(syncd.commit_one(ws, dev, origin, change));
  end loop;
  if dev is not null then
    update public.devices set last_seen = now() where id = dev;
  end if;
  return jsonb_build_object('results', results);
end
$$;

-- {workspace, since, limit?} → {changes: [...], cursor, more}
-- Every version after the cursor, in sequence order. Content comes only with versions that
-- are still the head: an older one is followed later in the feed by its successor.
create function public.syncd_changes(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
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
           'created_at', v.created_at, 'is_head', d.version = v.version,
           'content', case when d.version = v.version then v.content end)
           order by v.seq), '[]'::jsonb),
         count(*), max(v.seq)
    into page, n, last_in_page
    from (select * from public.document_versions x
           where x.workspace_id = ws and x.seq > since
           order by x.seq limit lim) v
    join public.documents d on d.id = v.document_id;
  return jsonb_build_object('changes', page, 'cursor', coalesce(last_in_page, since), 'more', n = lim);
end
$$;

-- {workspace, path} → {path, versions: [...newest first]}
create function public.syncd_history(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  result jsonb;
begin
  select jsonb_agg(jsonb_build_object(
           'version', v.version, 'parent_version', v.parent_version, 'sha256', v.sha256,
           'size', v.size, 'deleted', v.deleted, 'origin', v.origin, 'author_id', v.author_id,
           'device_id', v.device_id, 'seq', v.seq, 'created_at', v.created_at)
           order by v.version desc)
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
create function public.syncd_version(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  want integer := ($1 ->> 'version')::integer;
  result jsonb;
begin
  select jsonb_build_object(
           'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
           'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted, 'origin', v.origin,
           'author_id', v.author_id, 'device_id', v.device_id, 'seq', v.seq,
           'created_at', v.created_at, 'content', v.content)
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

-- {workspace, create?: bool, name?, device: {id, name, hostname}} → {workspace_id, last_seq,
-- schema_version}. A sync client calls it first: it checks the workspace and registers the
-- device; `syncd init` passes create so a new workspace comes into being.
create function public.syncd_open(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
declare
  ws_slug text := $1 ->> 'workspace';
  ws_id uuid;
  ws public.workspaces;
  dev jsonb := $1 -> 'device';
begin
  if coalesce(($1 ->> 'create')::boolean, false) then
    insert into public.workspaces (slug, name, created_by)
      values (ws_slug, coalesce($1 ->> 'name', ws_slug), auth.uid())
      on conflict on constraint workspaces_slug_key do nothing;
  end if;
  ws_id := syncd.workspace_id(ws_slug);
  select * into ws from public.workspaces w where w.id = ws_id;
  if dev is not null then
    insert into public.devices (id, workspace_id, user_id, name, hostname)
      values ((dev ->> 'id')::uuid, ws.id, auth.uid(), dev ->> 'name', dev ->> 'hostname')
      on conflict (id) do update
        set name = excluded.name, hostname = excluded.hostname, last_seen = now();
  end if;
  return jsonb_build_object(
    'workspace_id', ws.id, 'workspace', ws.slug, 'last_seq', ws.last_seq,
    'schema_version', (select max(version) from syncd.schema_migrations));
end
$$;

-- Only signed-in users and the service role reach the contract.
revoke execute on all functions in schema syncd from public;
revoke execute on function public.syncd_commit(jsonb), public.syncd_changes(jsonb),
  public.syncd_history(jsonb), public.syncd_version(jsonb), public.syncd_open(jsonb) from public;
grant usage on schema syncd to authenticated, service_role;
grant execute on all functions in schema syncd to authenticated, service_role;
grant execute on function public.syncd_commit(jsonb), public.syncd_changes(jsonb),
  public.syncd_history(jsonb), public.syncd_version(jsonb), public.syncd_open(jsonb)
  to authenticated, service_role;
grant select on syncd.schema_migrations to authenticated, service_role;
