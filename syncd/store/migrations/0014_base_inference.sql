-- Joining with files already on disk (a teammate's Git clone, a lost journal, a restored
-- copy, a pull cut short by a kill): the store's history says which version a file holds,
-- so a copy with no base for it takes that version as the base instead of seeing "both
-- sides changed". Both functions read under row level security: a caller matches only
-- versions it may read.

-- {workspace, files: [{path, sha256}]} → {matches: [{path, sha256, version}]}: for each
-- pair, the newest version of the document now at that path with that content; pairs
-- that match no version are left out.
create function public.syncd_match_versions(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('matches', coalesce((
    select jsonb_agg(jsonb_build_object('path', f.path, 'sha256', f.sha256, 'version', m.version))
      from (select distinct w ->> 'path' as path, w ->> 'sha256' as sha256
              from jsonb_array_elements(coalesce($1 -> 'files', '[]'::jsonb)) w) f
      join public.documents d on d.workspace_id = ws and d.path = f.path
      cross join lateral (select max(v.version) as version from public.document_versions v
                           where v.document_id = d.id and v.sha256 = f.sha256 and not v.deleted) m
     where m.version is not null), '[]'::jsonb));
end
$$;

create index document_versions_imported_commit on public.document_versions
  (workspace_id, (provenance ->> 'commit')) where provenance ? 'commit';

-- {workspace, commits: [sha, ...] newest first} → {commit}: the first of them that
-- `syncd import` made a version from (null when none): the newest commit of a clone's
-- history that the store knows, the merge base for files the clone changed since.
create function public.syncd_known_commit(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('commit', (
    select c.sha from jsonb_array_elements_text(coalesce($1 -> 'commits', '[]'::jsonb))
                      with ordinality c(sha, ord)
     where exists (select 1 from public.document_versions v
                    where v.workspace_id = ws and v.provenance ? 'commit'
                      and v.provenance ->> 'commit' = c.sha)
     order by c.ord limit 1));
end
$$;

revoke execute on function public.syncd_match_versions(jsonb), public.syncd_known_commit(jsonb) from public;
grant execute on function public.syncd_match_versions(jsonb), public.syncd_known_commit(jsonb)
  to authenticated, service_role;
