-- The feed as in 0021, and without the contents when the caller says `"contents": false`
-- (issue 20). A copy far behind (a first pull of a big tree) cannot hold every content the
-- feed brings until its pass writes them: past what it holds, it reads the rest of the
-- feed without them and fetches them a page at a time as it writes, rather than taking
-- each content twice.
create or replace function public.syncd_changes(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  since bigint := coalesce(($1 ->> 'since')::bigint, 0);
  lim integer := least(greatest(coalesce(($1 ->> 'limit')::integer, 500), 1), 5000);
  budget bigint := case when coalesce(($1 ->> 'contents')::boolean, true) then syncd.inline_budget() else -1 end;
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
           'content', case when v.candidate and v.inline_so_far <= budget then v.content end)
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
