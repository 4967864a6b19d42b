-- Whose daemon runs and how far behind it is; and the pipeline's analytics as views.
--
-- Every view is security invoker, so row level security decides what a signed-in user sees
-- through it, as it does for the tables; a view over sessions also checks can_read, because
-- session rows are visible to everyone in the workspace but their progress is not.

alter table public.devices
  add column state text,             -- the daemon's: running | held | paused | offline | stopped
  add column reason text,
  add column software_version text,
  add column applied_seq bigint,     -- how far into the feed the working copy has applied
  add column heartbeat_at timestamptz;  -- last_seen is any call, a CLI command's too

-- The device's own row only, or any row for a trusted caller.
create function syncd.heartbeat(ws uuid, dev uuid, beat jsonb) returns boolean
  language sql security definer set search_path = '' as $$
  with touched as (
    update public.devices d
       set state = beat ->> 'state', reason = beat ->> 'reason',
           software_version = beat ->> 'version', applied_seq = (beat ->> 'applied_seq')::bigint,
           heartbeat_at = now(), last_seen = now()
     where d.id = dev and d.workspace_id = ws
       and (syncd.trusted() or d.user_id = (select auth.uid()))
    returning 1)
  select exists (select 1 from touched)
$$;

-- {workspace, device, state, reason?, version, applied_seq} → {}
create function public.syncd_heartbeat(jsonb) returns jsonb
  language plpgsql set search_path = '' as $$
begin
  if coalesce($1 ->> 'state', '') not in ('running', 'held', 'paused', 'offline', 'stopped') then
    raise exception 'a heartbeat needs a state (running, held, paused, offline or stopped), got %',
      $1 -> 'state' using errcode = '22023';
  end if;
  if not syncd.heartbeat(syncd.workspace_id($1 ->> 'workspace'), nullif($1 ->> 'device', '')::uuid, $1) then
    raise exception 'device % is not one of yours in workspace "%"', $1 ->> 'device', $1 ->> 'workspace'
      using errcode = 'PT404', hint = 'run `syncd sync` once to register this device';
  end if;
  return '{}'::jsonb;
end
$$;

create function syncd.stages() returns table (stage text, ord integer)
  language sql immutable set search_path = '' as $$
  select s, p::integer from unnest(array['intent', 'context', 'spec', 'plan', 'tasks', 'implementation',
                                         'feedback']) with ordinality t(s, p)
$$;

-- Share of each project's sessions that have started each stage.
create view public.syncd_stage_completion with (security_invoker = true) as
  select s.workspace_id, p.name as project, st.stage, st.ord,
         count(*) as sessions,
         count(*) filter (where s.pipeline -> st.stage ->> 'status' = 'started') as started,
         round(count(*) filter (where s.pipeline -> st.stage ->> 'status' = 'started')::numeric / count(*), 3)
           as completion
    from public.sessions s
    join public.projects p on p.id = s.project_id
   cross join syncd.stages() st
   where syncd.can_read(s.workspace_id, s.id)
   group by s.workspace_id, p.name, st.stage, st.ord;

-- Per session and started stage: when it started (its first version that is more than an
-- empty file or an untouched template), and the time spent until the next stage started
-- (for the latest stage, until its last edit).
create view public.syncd_stage_times with (security_invoker = true) as
  select workspace_id, project, session, stage, ord, started_at, last_edited_at,
         coalesce(lead(started_at) over by_stage, last_edited_at) - started_at as time_spent
    from (select s.workspace_id, p.name as project, s.slug as session, st.stage, st.ord,
                 min(v.created_at) filter (where not v.deleted and coalesce(v.size, 0) > 0
                                             and not syncd.is_template(v.content ->> 'text')) as started_at,
                 max(v.created_at) as last_edited_at
            from public.sessions s
            join public.projects p on p.id = s.project_id
           cross join syncd.stages() st
            join public.documents d on d.session_id = s.id and d.stage = st.stage
            join public.document_versions v on v.document_id = d.id
           where syncd.can_read(s.workspace_id, s.id)
           group by s.workspace_id, p.name, s.slug, st.stage, st.ord) per_stage
   where started_at is not null
  window by_stage as (partition by workspace_id, project, session order by ord);

-- From the first real intent to the first real feedback, per session that has an intent.
create view public.syncd_lead_times with (security_invoker = true) as
  select workspace_id, project, session,
         min(started_at) filter (where stage = 'intent') as intent_at,
         min(started_at) filter (where stage = 'feedback') as feedback_at,
         min(started_at) filter (where stage = 'feedback') - min(started_at) filter (where stage = 'intent')
           as lead_time
    from public.syncd_stage_times
   group by workspace_id, project, session
  having count(*) filter (where stage = 'intent') > 0;

-- People's edits: every version but the results of automatic merges (the edits merged are
-- versions of their own). The author is the signed-in user, an imported commit's author,
-- or else the device.
create view public.syncd_edits_per_day with (security_invoker = true) as
  select v.workspace_id, p.name as project, (v.created_at at time zone 'UTC')::date as day,
         coalesce(pr.github_login, pr.display_name, v.provenance ->> 'author_name', dv.name, 'unknown') as author,
         count(*) as edits
    from public.document_versions v
    join public.documents d on d.id = v.document_id
    left join public.projects p on p.id = d.project_id
    left join public.profiles pr on pr.id = v.author_id
    left join public.devices dv on dv.id = v.device_id
   where v.origin <> 'merge'
   group by 1, 2, 3, 4;

-- Concurrent edits per project: merged automatically, or held as a conflict for a person.
create view public.syncd_conflict_rates with (security_invoker = true) as
  select e.workspace_id, e.project, e.edits, coalesce(m.merged, 0) as merged,
         coalesce(c.conflicts, 0) as conflicts,
         round((coalesce(m.merged, 0) + coalesce(c.conflicts, 0))::numeric / greatest(e.edits, 1), 4) as rate
    from (select workspace_id, project, sum(edits) as edits from public.syncd_edits_per_day group by 1, 2) e
    left join (select v.workspace_id, p.name as project, count(*) as merged
                 from public.document_versions v
                 join public.documents d on d.id = v.document_id
                 left join public.projects p on p.id = d.project_id
                where v.origin = 'merge' group by 1, 2) m
      on m.workspace_id = e.workspace_id and m.project is not distinct from e.project
    left join (select a.workspace_id, p.name as project, count(*) as conflicts
                 from public.activity_log a
                 left join public.projects p on p.id = a.project_id
                where a.kind = 'conflict' group by 1, 2) c
      on c.workspace_id = e.workspace_id and c.project is not distinct from e.project;

-- Each device's daemon as it last reported, and how far behind the store it is now: the
-- versions from other devices past what it applied, and the age of the oldest of them.
-- A daemon beats every 30 s; one silent for 2 minutes without saying it stopped is
-- 'silent' (crashed, asleep or cut off).
create view public.syncd_device_sync with (security_invoker = true) as
  select d.workspace_id, d.id as device_id, d.name as device, d.hostname,
         coalesce(pr.github_login, pr.display_name) as owner,
         case when d.state is null then null
              when d.state <> 'stopped' and d.heartbeat_at < now() - interval '2 minutes' then 'silent'
              else d.state end as status,
         d.reason, d.software_version, d.last_seen, d.heartbeat_at, d.applied_seq,
         b.behind, case when b.behind > 0 then now() - b.oldest else interval '0' end as lag
    from public.devices d
    left join public.profiles pr on pr.id = d.user_id
    left join lateral (select count(*) as behind, min(v.created_at) as oldest
                         from public.document_versions v
                        where v.workspace_id = d.workspace_id and v.seq > d.applied_seq
                          and v.device_id is distinct from d.id) b on d.applied_seq is not null;

-- {workspace, project?} → every metric above for the workspace, as one document.
create function public.syncd_stats(jsonb) returns jsonb
  language sql stable set search_path = '' as $$
  with ws as (select syncd.workspace_id($1 ->> 'workspace') as id, $1 ->> 'project' as project)
  select jsonb_build_object(
    'stage_completion', coalesce((
      select jsonb_agg(jsonb_build_object('project', c.project, 'stage', c.stage, 'sessions', c.sessions,
                                          'started', c.started, 'completion', c.completion)
                       order by c.project, c.ord)
        from public.syncd_stage_completion c, ws
       where c.workspace_id = ws.id and (ws.project is null or c.project = ws.project)), '[]'),
    'stage_times', coalesce((
      select jsonb_agg(jsonb_build_object('project', t.project, 'stage', t.stage, 'sessions', t.n,
                                          'median_seconds', t.median, 'max_seconds', t.longest)
                       order by t.project, t.ord)
        from (select t.project, t.stage, t.ord, count(*) as n,
                     round(percentile_cont(0.5) within group (order by extract(epoch from t.time_spent))::numeric, 1)
                       as median,
                     round(max(extract(epoch from t.time_spent)), 1) as longest
                from public.syncd_stage_times t, ws
               where t.workspace_id = ws.id and (ws.project is null or t.project = ws.project)
               group by t.project, t.stage, t.ord) t), '[]'),
    'lead_times', coalesce((
      select jsonb_agg(jsonb_build_object('project', l.project, 'session', l.session,
                                          'intent_at', l.intent_at, 'feedback_at', l.feedback_at,
                                          'seconds', round(extract(epoch from l.lead_time), 1))
                       order by l.project, l.session)
        from public.syncd_lead_times l, ws
       where l.workspace_id = ws.id and (ws.project is null or l.project = ws.project)), '[]'),
    'edits_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', e.day, 'author', e.author, 'edits', e.edits)
                       order by e.day, e.author)
        from (select e.day, e.author, sum(e.edits) as edits
                from public.syncd_edits_per_day e, ws
               where e.workspace_id = ws.id and (ws.project is null or e.project = ws.project)
               group by e.day, e.author) e), '[]'),
    'conflict_rates', coalesce((
      select jsonb_agg(jsonb_build_object('project', r.project, 'edits', r.edits, 'merged', r.merged,
                                          'conflicts', r.conflicts, 'rate', r.rate)
                       order by r.project nulls first)
        from public.syncd_conflict_rates r, ws
       where r.workspace_id = ws.id and (ws.project is null or r.project = ws.project)), '[]'),
    'devices', coalesce((
      select jsonb_agg(jsonb_build_object('device', d.device, 'owner', d.owner, 'hostname', d.hostname,
                                          'status', d.status, 'reason', d.reason,
                                          'version', d.software_version, 'last_seen', d.last_seen,
                                          'heartbeat_at', d.heartbeat_at,
                                          'behind', d.behind, 'lag_seconds', round(extract(epoch from d.lag), 1))
                       order by d.device)
        from public.syncd_device_sync d, ws where d.workspace_id = ws.id), '[]'))
$$;

revoke all on public.syncd_stage_completion, public.syncd_stage_times, public.syncd_lead_times,
  public.syncd_edits_per_day, public.syncd_conflict_rates, public.syncd_device_sync from public, anon;
grant select on public.syncd_stage_completion, public.syncd_stage_times, public.syncd_lead_times,
  public.syncd_edits_per_day, public.syncd_conflict_rates, public.syncd_device_sync
  to authenticated, service_role;
revoke execute on function public.syncd_heartbeat(jsonb), public.syncd_stats(jsonb),
  syncd.heartbeat(uuid, uuid, jsonb), syncd.stages() from public;
grant execute on function public.syncd_heartbeat(jsonb), public.syncd_stats(jsonb),
  syncd.heartbeat(uuid, uuid, jsonb), syncd.stages() to authenticated, service_role;
