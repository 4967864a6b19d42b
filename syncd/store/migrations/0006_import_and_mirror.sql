-- The migration of a legacy workspace (`syncd import`) and what the Git mirror reads.

-- Where an imported version came from: {commit, author_name, author_email, renamed_from?,
-- working_tree?}. Only `import` versions carry it; their created_at is the author date.
alter table public.document_versions add column provenance jsonb;
create unique index document_versions_commit on public.document_versions
  (document_id, (provenance ->> 'commit')) where provenance ? 'commit';

-- Pending invitations: legacy `.owner`/`.collaborators` logins that have no profile yet.
-- Signing in with that GitHub login turns them into memberships (with the Supabase work).
create table public.invitations (
  id bigint generated always as identity primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  session_id uuid references public.sessions (id) on delete cascade,
  github_login text not null,
  role text not null check (role in ('owner', 'collaborator', 'reader')),
  created_at timestamptz not null default now()
);
create unique index invitations_once on public.invitations
  (workspace_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(github_login));
alter table public.invitations enable row level security;
create policy service_role_all on public.invitations for all to service_role using (true) with check (true);
grant select, insert, update, delete on public.invitations to authenticated, service_role;

-- commit_one, now also taking `provenance` (origin import only): a version of that commit
-- already stored for the path is a duplicate, so a re-run or a resumed import adds nothing.
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
revoke execute on function syncd.commit_one(uuid, uuid, text, jsonb) from public;
grant execute on function syncd.commit_one(uuid, uuid, text, jsonb) to authenticated, service_role;

-- Names for people: a signed-in author's profile, else the imported commit's author.
-- author_email is what the Git mirror puts in commits: the GitHub noreply address.
create or replace function syncd.version_json(v public.document_versions) returns jsonb
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

-- {workspace, versions: [{path, version}]} → {versions: [records with content]}, in the
-- order asked; what the Git mirror needs for one batch, in one call.
create function public.syncd_versions(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('versions', coalesce((
    select jsonb_agg(syncd.version_json(v) || jsonb_build_object('content', v.content)
                     order by w.ord)
      from jsonb_array_elements(coalesce($1 -> 'versions', '[]'::jsonb)) with ordinality w(item, ord)
      join public.document_versions v
        on v.workspace_id = ws and v.path = w.item ->> 'path'
       and v.version = (w.item ->> 'version')::integer), '[]'::jsonb));
end
$$;

-- The login in a legacy permission file line: "alice", "github|alice", "@alice"; else null.
create function syncd.legacy_login(line text) returns text
  language sql immutable set search_path = '' as $$
  select m[1] from regexp_match(trim(split_part(line, '#', 1)),
                                '^(?:github\|)?@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$') m
$$;

-- Who the legacy permission files name: {path, login, role, project, session, user_id} per line.
-- A workspace-level `.owner` makes owners of the workspace; a session's `.owner` /
-- `.collaborators` (also under metadata/) owners and collaborators of that session.
create function syncd.legacy_members(files jsonb)
  returns table (path text, login text, role text, project text, session text, user_id uuid)
  language sql stable set search_path = '' as $$
  select f ->> 'path', syncd.legacy_login(line),
         case when f ->> 'path' ~ '(^|/)\.owner$' then 'owner' else 'collaborator' end,
         l.project, l.session,
         (select p.id from public.profiles p where lower(p.github_login) = lower(syncd.legacy_login(line)))
    from jsonb_array_elements(files) f
    cross join lateral syncd.layout(f ->> 'path') l
    cross join lateral regexp_split_to_table(f ->> 'text', '\r?\n') line
   where syncd.legacy_login(line) is not null
     and (f ->> 'path' = '.owner' or l.session is not null)
$$;

-- {workspace, files: [{path, text}], dry_run?} → {members: [...], added: n, invited: n}
-- Legacy permission files, once, at import: a login with a profile becomes a member, any
-- other login is invited. Files outside a session (other than the workspace's .owner)
-- grant nothing. Editing these files later changes nothing: after the import,
-- permissions live in the database.
create function public.syncd_import_members(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
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

-- {paths: [...]} → {projects: [...], sessions: [{project, session}]}: what the layout
-- makes of these paths, for `syncd import --dry-run` (nothing is written).
create function public.syncd_layout_plan(jsonb) returns jsonb
  language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'projects', coalesce((select jsonb_agg(distinct l.project) from jsonb_array_elements_text($1 -> 'paths') p
                           cross join lateral syncd.layout(p) l where l.project is not null), '[]'::jsonb),
    'sessions', coalesce((select jsonb_agg(distinct jsonb_build_object('project', l.project, 'session', l.session))
                           from jsonb_array_elements_text($1 -> 'paths') p
                           cross join lateral syncd.layout(p) l where l.session is not null), '[]'::jsonb))
$$;

-- A project's CURRENT_SESSION ("key: value" lines) and session_state.json are read into
-- its row whenever they change, by import or by any sync.
create function syncd.project_files() returns trigger
  language plpgsql security definer set search_path = '' as $$
declare
  l record;
  info jsonb;
begin
  select * into l from syncd.layout(new.path);
  if l.project is null or new.path not in ('projects/' || l.project || '/CURRENT_SESSION',
                                           'projects/' || l.project || '/session_state.json') then
    return null;
  end if;
  if new.path like '%/CURRENT_SESSION' then
    select coalesce(jsonb_object_agg(trim(kv[1]), trim(kv[2])), '{}'::jsonb) into info
      from regexp_matches(coalesce(new.content ->> 'text', ''), '^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$', 'gm') kv;
    update public.projects set current_session = info ->> 'session_id',
                               state = coalesce(state, '{}'::jsonb) || jsonb_build_object('current_session_file', info)
     where id = new.project_id;
  else
    update public.projects
       set state = coalesce(state, '{}'::jsonb) || jsonb_build_object('session_state', new.content -> 'value')
     where id = new.project_id;
  end if;
  return null;
end
$$;
create trigger documents_project_files after insert or update of content on public.documents
  for each row when (new.path like 'projects/%' and not new.deleted)
  execute function syncd.project_files();

revoke execute on function public.syncd_versions(jsonb), public.syncd_import_members(jsonb),
  public.syncd_layout_plan(jsonb), syncd.legacy_login(text), syncd.legacy_members(jsonb),
  syncd.project_files() from public;
grant execute on function public.syncd_versions(jsonb), public.syncd_import_members(jsonb),
  public.syncd_layout_plan(jsonb), syncd.legacy_login(text), syncd.legacy_members(jsonb)
  to authenticated, service_role;
