-- The two calls a pull waits on, at 100k files (issue 20).

-- 1. A page of the feed reads its versions in order from (workspace_id, seq), whatever the
-- planner guesses. On tables never analyzed (right after a first push, before autovacuum's
-- analyze; or where autovacuum is off) it guessed a handful of versions past the cursor and
-- chose a bitmap scan, which read and sorted every version after the cursor for each page:
-- the feed of a first push of 100k versions took 16 s to read (quadratic in its length).
-- The index scan it is left with stops at the page's limit.
alter function public.syncd_changes(jsonb) set enable_bitmapscan = off;

-- 2. The contents of versions, for a pull to write: those of syncd_versions (same order,
-- same inline budget, the versions a caller may not read left out by the same policies),
-- without the author, device and provenance that syncd.version_json looks up a version at
-- a time (0.15 ms each, six times the rest: a first pull of 100k files waited 14 s on them).
create function public.syncd_contents(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('versions', coalesce((
    select jsonb_agg(jsonb_build_object(
             'path', v.path, 'version', v.version, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
             'content', case when v.candidate and v.inline_so_far <= syncd.inline_budget() then v.content end)
             order by v.ord)
      from (select c.*, sum(case when c.candidate then c.size else 0 end) over (order by c.ord) as inline_so_far
              from (select x.path, x.version, x.sha256, x.size, x.deleted, x.content, w.ord,
                           not x.deleted and x.size <= syncd.inline_item_max() as candidate
                      from jsonb_array_elements(coalesce($1 -> 'versions', '[]'::jsonb)) with ordinality w(item, ord)
                      join public.document_versions x
                        on x.workspace_id = ws and x.path = w.item ->> 'path'
                       and x.version = (w.item ->> 'version')::integer) c) v), '[]'::jsonb));
end
$$;
revoke all on function public.syncd_contents(jsonb) from public, anon;
grant execute on function public.syncd_contents(jsonb) to authenticated, service_role;
