-- Every kind of file arrives as it was (issue 18): bytes PostgreSQL text cannot hold, the
-- executable bit, symbolic links.
--
-- A document's content (see syncd/content.py) is now one of
--   {"encoding": "utf-8", "format": ..., "text": ...}            text, as before
--   {"encoding": "base64", "format": "binary", "data": ...}       legacy bytes, still accepted
--   {"encoding": "blob", "format": "binary", "sha256": <64 hex>, "size": <bytes>}
--   {"encoding": "link", "format": "link", "target": <relative target inside the root>}
-- and a file's (not a link's) may say "executable": true (never false: absent is not).
-- A blob's bytes are kept beside the documents, content-addressed and deduplicated per
-- workspace: in public.blobs here, or in the Supabase Storage bucket syncd-blobs.
--
-- The `sha256` of a version is its entry identity, as Git tells entries apart: a plain
-- file's is the sha256 of its bytes (every hash stored before stays valid), an executable
-- file's the sha256 of "100755 " || that hash, a link's of "120000 " || the target's hash.
-- So a mode change alone is a new version. `size` is the bytes of the file (the target).

create function syncd.identity(bytes_sha256 text, executable boolean, link boolean) returns text
  language sql immutable set search_path = '' as $$
  select case when link then encode(sha256(convert_to('120000 ' || bytes_sha256, 'UTF8')), 'hex')
              when executable then encode(sha256(convert_to('100755 ' || bytes_sha256, 'UTF8')), 'hex')
              else bytes_sha256 end
$$;

-- Why a link at doc_path with this target is refused, or null. The target stays inside the
-- root by its own words, without following anything (any link it passes may point anywhere):
-- relative; with '' and '.' parts dropped, a run of '..' then at least one plain name and no
-- '..' after it; no more '..' than the link's own directory is deep. (As the client's
-- syncd.content.link_problem, which refuses the same links before they are sent.)
create function syncd.link_problem(doc_path text, target text) returns text
  language plpgsql immutable set search_path = '' as $$
declare
  parts text[];
  ups integer := 0;
begin
  if target is null or target = '' then
    return 'a link needs a "target"';
  end if;
  if left(target, 1) = '/' then
    return 'a link''s target is relative, not an absolute path';
  end if;
  select coalesce(array_agg(p order by o), '{}') into parts
    from unnest(string_to_array(target, '/')) with ordinality u(p, o) where p not in ('', '.');
  while ups < cardinality(parts) and parts[ups + 1] = '..' loop
    ups := ups + 1;
  end loop;
  if ups = cardinality(parts) or '..' = any(parts[ups + 1:]) then
    return 'a link''s target is a run of ".." and then plain names';
  end if;
  if ups > length(doc_path) - length(replace(doc_path, '/', '')) then
    return 'a link''s target stays inside the root';
  end if;
  return null;
end
$$;

-- The most one blob may be (its bytes are hashed in one piece when its upload finishes)
-- and the size of its chunks: no statement moves more than a chunk of a blob.
create function syncd.blob_max_size() returns bigint
  language sql immutable set search_path = '' as $$ select 512 * 1024 * 1024::bigint $$;
create function syncd.blob_chunk_size() returns integer
  language sql immutable set search_path = '' as $$ select 4 * 1024 * 1024 $$;

-- Blobs of a workspace: a row once its upload began, complete once finish_blob checked
-- the sha256 of all its chunks. Only the contract's functions read or write them.
create table public.blobs (
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size bigint not null check (size >= 0),
  complete boolean not null default false,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (workspace_id, sha256)
);
create table public.blob_chunks (
  workspace_id uuid not null,
  sha256 text not null,
  part integer not null check (part >= 0),
  data bytea not null,
  primary key (workspace_id, sha256, part),
  foreign key (workspace_id, sha256) references public.blobs (workspace_id, sha256) on delete cascade
);
-- bytes of binaries rarely compress: stored out of line, as they are
alter table public.blob_chunks alter column data set storage external;
alter table public.blobs enable row level security;
alter table public.blob_chunks enable row level security;

-- Who may read a blob: who may read a version that names it.
create index document_versions_blob on public.document_versions (workspace_id, (content ->> 'sha256'))
  where content ->> 'encoding' = 'blob';

-- Whether a blob a content names is there to be read: complete in the table (of that size;
-- null: any), or an object `<workspace>/<sha256>` in the Storage bucket syncd-blobs (the
-- Supabase transport's), where Storage exists. Called as the contract's owner.
create function syncd.has_blob(ws uuid, digest text, blob_size bigint) returns boolean
  language plpgsql stable set search_path = '' as $$
begin
  if exists (select 1 from public.blobs b
              where b.workspace_id = ws and b.sha256 = digest and (blob_size is null or b.size = blob_size)
                and b.complete) then
    return true;
  end if;
  if to_regclass('storage.objects') is not null then
    return exists (select 1 from storage.objects o
                    where o.bucket_id = 'syncd-blobs' and o.name = ws::text || '/' || digest);
  end if;
  return false;
end
$$;

-- Why a content does not match the document schema (0015's syncd.content_problem, with
-- blobs, links and the executable bit), or null when it does. A blob must be in the store
-- before a version may name it: no client can plant a version others cannot read.
create function syncd.entry_problem(ws uuid, doc_path text, content jsonb) returns text
  language sql stable set search_path = '' as $$
  select case
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
  end
$$;

-- The identity and size of a content that passed entry_problem.
create function syncd.entry_of(content jsonb, out identity text, out size bigint)
  language plpgsql immutable set search_path = '' as $$
declare
  body bytea;
begin
  if content ->> 'encoding' = 'blob' then
    identity := content ->> 'sha256';
    size := (content ->> 'size')::bigint;
  else
    body := case when content ->> 'encoding' = 'link' then convert_to(content ->> 'target', 'UTF8')
                 else syncd.content_bytes(content) end;
    identity := encode(sha256(body), 'hex');
    size := length(body);
  end if;
  identity := syncd.identity(identity, coalesce(content -> 'executable' = 'true'::jsonb, false),
                             content ->> 'encoding' = 'link');
end
$$;

-- commit_one as in 0015, with every kind of content: checked by entry_problem, its sha256
-- the entry identity, its size the file's bytes.
create or replace function syncd.commit_one(ws uuid, dev uuid, call_origin text, change jsonb, last_seq bigint)
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
  side_digest text;
  side_size bigint;
  problem text;
  side_version integer;
  body_size bigint;
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
    problem := syncd.entry_problem(ws, doc_path, new_content);
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'content: ' || problem);
    end if;
    select e.identity, e.size into digest, body_size from syncd.entry_of(new_content) e;
  end if;
  if side is not null then
    problem := syncd.entry_problem(ws, doc_path, side -> 'content');
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'side content: ' || problem);
    end if;
    select e.identity, e.size into side_digest, side_size from syncd.entry_of(side -> 'content') e;
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
              side -> 'content', side_digest, side_size, false,
              'sync', auth.uid(), dev, last_seq + 1);
  end if;
  new_seq := last_seq + case when side is null then 1 else 2 end;
  if head.id is null then
    insert into public.documents (workspace_id, path, project_id, session_id, stage, version,
                                  content, sha256, size, deleted, seq, updated_by, device_id,
                                  updated_at)
      values (ws, doc_path, l.project_id, l.session_id, l.stage, new_version,
              new_content, digest, body_size, is_delete, new_seq, auth.uid(), dev, stamp)
      returning id into doc_id;
  else
    doc_id := head.id;
    update public.documents d
      set version = new_version, content = new_content, sha256 = digest,
          size = body_size, deleted = is_delete, seq = new_seq,
          project_id = l.project_id, session_id = l.session_id, stage = l.stage,
          updated_by = auth.uid(), device_id = dev, updated_at = stamp
      where d.id = doc_id;
  end if;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                        merge_parent, content, sha256, size, deleted, origin,
                                        author_id, device_id, seq, provenance, created_at)
    values (doc_id, ws, doc_path, new_version, head.version, side_version, new_content, digest,
            body_size, is_delete, origin, auth.uid(), dev, new_seq, prov, stamp);
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


-- A version's mode, as Git spells it (null for a delete): `syncd log` shows it.
create function syncd.mode_of(content jsonb) returns text
  language sql immutable set search_path = '' as $$
  select case when content is null then null
              when content ->> 'encoding' = 'link' then '120000'
              when content -> 'executable' = 'true'::jsonb then '100755'
              else '100644' end
$$;

-- version_json as in 0017, with the mode.
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
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
$$;

-- Blobs move through these, a chunk per call. A blob is uploaded by one who may write
-- somewhere in the workspace (which document names it is for the commit to check), and
-- read by one who may read a version that names it. Payloads:
--   syncd_blob_missing {workspace, blobs: [sha256]}              → {missing: [sha256]}
--   syncd_blob_put     {workspace, sha256, size, part, data}     → {part}   (data: base64 of
--                      the part's bytes, every part but the last syncd.blob_chunk_size() long)
--   syncd_blob_finish  {workspace, sha256, size}                 → {sha256, size}, once the
--                      bytes of all parts hash to sha256 (else they are dropped, and refused)
--   syncd_blob_get     {workspace, sha256, part}                 → {data}
create function syncd.can_write_somewhere(ws uuid) returns boolean
  language sql stable set search_path = '' as $$
  select syncd.can_write(ws, null) or exists (
    select 1 from public.session_members m join public.sessions s on s.id = m.session_id
     where s.workspace_id = ws and m.user_id = (select auth.uid()) and m.role in ('owner', 'collaborator'))
$$;

create function syncd.blob_writer(payload jsonb) returns uuid
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id(payload ->> 'workspace');
begin
  if not syncd.can_write_somewhere(ws) then
    raise exception 'you may read but not write in this workspace: no blob is stored for you'
      using errcode = '42501';
  end if;
  if coalesce(payload ->> 'sha256', '') !~ '^[0-9a-f]{64}$' then
    raise exception 'a blob is named by its sha256: 64 lowercase hex digits' using errcode = '22023';
  end if;
  if coalesce(payload ->> 'size', '') !~ '^[0-9]{1,19}$' or (payload ->> 'size')::numeric > syncd.blob_max_size() then
    raise exception 'a blob''s size is a number of bytes up to % MiB', syncd.blob_max_size() / 1048576
      using errcode = '22023';
  end if;
  return ws;
end
$$;

create function syncd.blob_missing(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  wanted jsonb := coalesce($1 -> 'blobs', '[]'::jsonb);
begin
  if not syncd.can_write_somewhere(ws) then
    raise exception 'you may read but not write in this workspace' using errcode = '42501';
  end if;
  if jsonb_typeof(wanted) <> 'array' or jsonb_array_length(wanted) > syncd.commit_max_changes() then
    raise exception 'ask about at most % blobs per call', syncd.commit_max_changes() using errcode = 'PT413';
  end if;
  return jsonb_build_object('missing', coalesce((
    select jsonb_agg(distinct w.digest) from jsonb_array_elements_text(wanted) w(digest)
     where not syncd.has_blob(ws, w.digest, null)), '[]'::jsonb));
end
$$;

create function syncd.blob_put(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.blob_writer($1);
  digest text := $1 ->> 'sha256';
  blob_size bigint := ($1 ->> 'size')::bigint;
  chunk integer := syncd.blob_chunk_size();
  parts integer := greatest(1, ((blob_size + chunk - 1) / chunk)::integer);
  piece integer;
  bytes_in bytea;
  known public.blobs;
begin
  if coalesce($1 ->> 'part', '') !~ '^[0-9]{1,9}$' or ($1 ->> 'part')::integer >= parts then
    raise exception 'a blob of % bytes has parts 0 to %', blob_size, parts - 1 using errcode = '22023';
  end if;
  piece := ($1 ->> 'part')::integer;
  begin
    bytes_in := decode($1 ->> 'data', 'base64');
  exception when others then
    raise exception 'a part''s "data" is its bytes in base64' using errcode = '22023';
  end;
  if bytes_in is null or length(bytes_in) <> least(chunk::bigint, blob_size - piece::bigint * chunk) then
    raise exception 'part % of a blob of % bytes is % bytes long, got %', piece, blob_size,
      least(chunk::bigint, blob_size - piece::bigint * chunk), coalesce(length(bytes_in), 0) using errcode = '22023';
  end if;
  insert into public.blobs (workspace_id, sha256, size, created_by) values (ws, digest, blob_size, auth.uid())
    on conflict (workspace_id, sha256) do nothing;
  select * into known from public.blobs b where b.workspace_id = ws and b.sha256 = digest for update;
  if known.size <> blob_size and known.complete then
    raise exception 'blob % is stored, with % bytes', digest, known.size using errcode = '22023';
  elsif known.size <> blob_size then
    -- begun with another size, by anyone who may write somewhere (a digest has one size, so
    -- it can never finish): it would keep the real bytes out for good; begun again here
    delete from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
    update public.blobs b set size = blob_size, created_by = auth.uid() where b.workspace_id = ws and b.sha256 = digest;
    known.complete := false;
  end if;
  if not known.complete then
    insert into public.blob_chunks (workspace_id, sha256, part, data) values (ws, digest, piece, bytes_in)
      on conflict on constraint blob_chunks_pkey do update set data = excluded.data;
  end if;
  return jsonb_build_object('part', piece);
end
$$;

-- The sha256 is checked over the whole blob at once (PostgreSQL's sha256 has no running
-- form): one statement holds the blob in memory here, which is why blob_max_size is bounded.
create function syncd.blob_finish(jsonb) returns jsonb
  language plpgsql security definer set search_path = '' as $$
declare
  ws uuid := syncd.blob_writer($1);
  digest text := $1 ->> 'sha256';
  known public.blobs;
  chunk integer := syncd.blob_chunk_size();
  found text;
  n integer;
  total bigint;
begin
  select * into known from public.blobs b where b.workspace_id = ws and b.sha256 = digest for update;
  if known.complete then
    return jsonb_build_object('sha256', digest, 'size', known.size);
  end if;
  select count(*), coalesce(sum(length(c.data)), 0) into n, total
    from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
  if known.sha256 is null or known.size <> ($1 ->> 'size')::bigint
     or n <> greatest(1, (known.size + chunk - 1) / chunk) or total <> known.size then
    raise exception 'blob %: not all of its % bytes were uploaded (% parts, % bytes)', digest,
      ($1 ->> 'size'), coalesce(n, 0), coalesce(total, 0) using errcode = '22023';
  end if;
  select encode(sha256(string_agg(c.data, ''::bytea order by c.part)), 'hex') into found
    from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
  if found <> digest then
    delete from public.blobs b where b.workspace_id = ws and b.sha256 = digest;
    raise exception 'blob %: the bytes uploaded hash to %; dropped', digest, found using errcode = '22023';
  end if;
  update public.blobs b set complete = true where b.workspace_id = ws and b.sha256 = digest;
  return jsonb_build_object('sha256', digest, 'size', known.size);
end
$$;

create function syncd.blob_get(jsonb) returns jsonb
  language plpgsql stable security definer set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  digest text := $1 ->> 'sha256';
  found bytea;
begin
  if not syncd.trusted() and not exists (
       select 1 from public.document_versions v join public.documents d on d.id = v.document_id
        where v.workspace_id = ws and v.content ->> 'encoding' = 'blob' and v.content ->> 'sha256' = digest
          and syncd.can_read(ws, d.session_id)) then
    found := null;
  else
    select c.data into found from public.blob_chunks c join public.blobs b using (workspace_id, sha256)
     where c.workspace_id = ws and c.sha256 = digest and b.complete
       and c.part = case when coalesce($1 ->> 'part', '') ~ '^[0-9]{1,9}$' then ($1 ->> 'part')::integer end;
  end if;
  if found is null then
    raise exception 'blob % (part %) is not in the store, or no version you may read names it', digest, $1 ->> 'part'
      using errcode = 'PT404';
  end if;
  return jsonb_build_object('data', translate(encode(found, 'base64'), E'\n', ''));
end
$$;

create function public.syncd_blob_missing(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.blob_missing($1) $$;
create function public.syncd_blob_put(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.blob_put($1) $$;
create function public.syncd_blob_finish(jsonb) returns jsonb
  language sql set search_path = '' as $$ select syncd.blob_finish($1) $$;
create function public.syncd_blob_get(jsonb) returns jsonb
  language sql stable set search_path = '' as $$ select syncd.blob_get($1) $$;

-- Privileges, explicitly (as 0017): the tables to no client role but the admin key; the
-- RPCs and the pure helpers to signed-in users and the service role; what only the
-- contract's own functions call, to nobody.
revoke all on public.blobs, public.blob_chunks from public, anon, authenticated, service_role;
grant select, insert, update, delete on public.blobs, public.blob_chunks to service_role;
do $$
declare
  f regprocedure;
begin
  foreach f in array array['syncd.identity(text, boolean, boolean)', 'syncd.mode_of(jsonb)', 'syncd.link_problem(text, text)',
                           'syncd.blob_max_size()', 'syncd.blob_chunk_size()', 'syncd.has_blob(uuid, text, bigint)',
                           'syncd.entry_problem(uuid, text, jsonb)', 'syncd.entry_of(jsonb)',
                           'syncd.can_write_somewhere(uuid)', 'syncd.blob_writer(jsonb)',
                           'syncd.blob_missing(jsonb)', 'syncd.blob_put(jsonb)', 'syncd.blob_finish(jsonb)',
                           'syncd.blob_get(jsonb)', 'public.syncd_blob_missing(jsonb)', 'public.syncd_blob_put(jsonb)',
                           'public.syncd_blob_finish(jsonb)', 'public.syncd_blob_get(jsonb)']::regprocedure[] loop
    execute format('revoke all on function %s from public, anon, authenticated, service_role', f);
    execute format('grant execute on function %s to authenticated, service_role', f);
  end loop;
end
$$;
revoke execute on function syncd.has_blob(uuid, text, bigint), syncd.entry_problem(uuid, text, jsonb),
  syncd.commit_one(uuid, uuid, text, jsonb, bigint) from authenticated, service_role;
