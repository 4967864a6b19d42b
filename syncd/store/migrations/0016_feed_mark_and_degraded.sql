-- A copy's knowledge of the store must be of this store's history. A copy remembers the
-- newest change it knows the store has, from the feed or from its own commit: its seq,
-- path, version, hash and the moment it was made. If the store's change at that seq is
-- another one (a history regrown after a restore can repeat a change, not its moment),
-- or missing, the store is not the history the copy synced with (restored from an
-- earlier dump, or replaced), and the copy rebuilds what it knows from the store instead
-- of trusting a cursor and bases that point nowhere. Read under row level security, as
-- the feed is: a change the caller may no longer read is missing too, and the copy
-- rebuilds then as well (a rebuild costs a pass; a rewind missed would cost divergence).

-- {workspace, seq} → {change: {seq, path, version, sha256, deleted, created_at} | null}
create function public.syncd_feed_mark(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object(
    'change', (select jsonb_build_object('seq', v.seq, 'path', v.path, 'version', v.version,
                                         'sha256', v.sha256, 'deleted', v.deleted, 'created_at', v.created_at)
                 from public.document_versions v
                where v.workspace_id = ws and v.seq = ($1 ->> 'seq')::bigint));
end
$$;

revoke execute on function public.syncd_feed_mark(jsonb) from public, anon;
grant execute on function public.syncd_feed_mark(jsonb) to authenticated, service_role;

-- A daemon that syncs but cannot sync some paths (a full disk, refused names, damaged
-- versions) says so: `degraded`, with the reason, among the states a heartbeat may carry.
create or replace function public.syncd_heartbeat(jsonb) returns jsonb
  language plpgsql set search_path = '' set plan_cache_mode = force_custom_plan as $$
begin
  if coalesce($1 ->> 'state', '') not in ('running', 'degraded', 'held', 'paused', 'offline', 'stopped') then
    raise exception 'a heartbeat needs a state (running, degraded, held, paused, offline or stopped), got %',
      $1 -> 'state' using errcode = '22023';
  end if;
  if not syncd.heartbeat(syncd.workspace_id($1 ->> 'workspace'), nullif($1 ->> 'device', '')::uuid, $1) then
    raise exception 'device % is not one of yours in workspace "%"', $1 ->> 'device', $1 ->> 'workspace'
      using errcode = 'PT404', hint = 'run `syncd sync` once to register this device';
  end if;
  return '{}'::jsonb;
end
$$;
