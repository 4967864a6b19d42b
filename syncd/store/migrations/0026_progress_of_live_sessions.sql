-- `syncd progress` as in 0017, and the stage completion of `syncd stats` as in 0010, of
-- only the sessions that still hold a document: a session folder removed (every document
-- of it deleted, their history kept) was still listed, every stage pending, and counted
-- as a session that started none. A version of one of its files restored counts it again.
-- (The stage and lead times are history: a removed session's stay.)
create or replace function public.syncd_progress(jsonb) returns jsonb
  language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('sessions', coalesce((
    select jsonb_agg(jsonb_build_object(
             'project', p.name, 'session', s.slug, 'current', (x.st ->> 'current')::boolean,
             'stages', s.pipeline, 'state', x.st -> 'stages',
             'disagreements', coalesce((
               select jsonb_agg(jsonb_build_object('stage', k, 'documents', s.pipeline -> k ->> 'status',
                                                   'session_state', x.st -> 'stages' ->> k))
                 from jsonb_object_keys(s.pipeline) k
                where (x.st -> 'stages') ? k
                  and ((x.st -> 'stages' ->> k in ('in_progress', 'completed')) <> (s.pipeline -> k ->> 'status' = 'started'))),
               '[]'::jsonb))
           order by p.name, s.slug)
      from public.sessions s
      join public.projects p on p.id = s.project_id
      cross join lateral (select syncd.session_state(s.id) as st) x
     where s.workspace_id = ws and ($1 ->> 'project' is null or p.name = $1 ->> 'project')
       and syncd.can_read(ws, s.id)
       and exists (select 1 from public.documents d where d.session_id = s.id and not d.deleted)), '[]'::jsonb));
end
$$;

create or replace view public.syncd_stage_completion with (security_invoker = true) as
  select s.workspace_id, p.name as project, st.stage, st.ord, count(*) as sessions,
         count(*) filter (where s.pipeline -> st.stage ->> 'status' = 'started') as started,
         round(count(*) filter (where s.pipeline -> st.stage ->> 'status' = 'started')::numeric / count(*), 3)
           as completion
    from public.sessions s
    join public.projects p on p.id = s.project_id
    cross join syncd.stages() st(stage, ord)
   where syncd.can_read(s.workspace_id, s.id)
     and exists (select 1 from public.documents d where d.session_id = s.id and not d.deleted)
   group by s.workspace_id, p.name, st.stage, st.ord;
