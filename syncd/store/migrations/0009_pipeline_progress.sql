-- Where every IDSE session stands, derived from its documents and kept current by commits.

-- An untouched template: nothing but headings, blank lines, comments, front matter,
-- empty checkboxes and placeholders (TODO, TBD, <...>, [...], ...).
create function syncd.is_template(body text) returns boolean
  language sql immutable set search_path = '' as $$
  select btrim(regexp_replace(regexp_replace(regexp_replace(coalesce(body, ''),
           '\A\ufeff?---\r?\n.*?\r?\n---[ \t]*(\r?\n|\Z)', '', 's'),   -- front matter
           '<!--.*?-->', '', 'gs'),                                     -- comments
           '(^|\n)[ \t]*(#+[^\n]*|[-*+][ \t]*(\[[ xX]?\])?[ \t]*|>?[ \t]*(TODO|TBD|FIXME|\.\.\.|…|<[^>\n]*>|\[[^\]\n]*\])?[:.]?[ \t]*)(?=\r?\n|$)',
           '', 'gi'), E' \t\r\n') = ''
$$;

-- {stage: {status: pending|started, documents, last_edited_at, last_edited_by}} for a session.
create function syncd.pipeline_of(sess uuid) returns jsonb
  language sql stable security definer set search_path = '' as $$
  select jsonb_object_agg(st.stage, coalesce(
    (select jsonb_build_object(
              'status', case when bool_or(d.content is not null and coalesce(d.size, 0) > 0
                                          and not syncd.is_template(d.content ->> 'text'))
                             then 'started' else 'pending' end,
              'documents', count(*),
              'last_edited_at', max(d.updated_at),
              'last_edited_by', (select coalesce(p.github_login, p.display_name, dv.name)
                                   from public.documents x
                                   left join public.profiles p on p.id = x.updated_by
                                   left join public.devices dv on dv.id = x.device_id
                                  where x.session_id = sess and x.stage = st.stage and not x.deleted
                                  order by x.updated_at desc limit 1))
       from public.documents d where d.session_id = sess and d.stage = st.stage and not d.deleted
      having count(*) > 0),
    jsonb_build_object('status', 'pending', 'documents', 0)) order by st.ord)
  from unnest(array['intent', 'context', 'spec', 'plan', 'tasks', 'implementation', 'feedback'])
       with ordinality st(stage, ord)
$$;

create function syncd.refresh_pipeline() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  if new.session_id is not null then
    update public.sessions set pipeline = syncd.pipeline_of(new.session_id) where id = new.session_id;
  end if;
  if tg_op = 'UPDATE' and old.session_id is distinct from new.session_id and old.session_id is not null then
    update public.sessions set pipeline = syncd.pipeline_of(old.session_id) where id = old.session_id;
  end if;
  return null;
end
$$;
create trigger documents_pipeline after insert or update on public.documents
  for each row execute function syncd.refresh_pipeline();
update public.sessions s set pipeline = syncd.pipeline_of(s.id);

-- {workspace, project?} → {sessions: [{project, session, current, stages, state, disagreements}]}
-- `state` is the project's session_state.json stages for its current session; where it and
-- the documents disagree, both are reported and neither is changed.
create function public.syncd_progress(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('sessions', coalesce((
    select jsonb_agg(jsonb_build_object(
             'project', p.name, 'session', s.slug, 'current', p.current_session = s.slug,
             'stages', s.pipeline, 'state', st.stages,
             'disagreements', coalesce((
               select jsonb_agg(jsonb_build_object('stage', k, 'documents', s.pipeline -> k ->> 'status',
                                                   'session_state', st.stages ->> k))
                 from jsonb_object_keys(s.pipeline) k
                where st.stages ? k
                  and ((st.stages ->> k in ('in_progress', 'completed')) <> (s.pipeline -> k ->> 'status' = 'started'))),
               '[]'::jsonb))
           order by p.name, s.slug)
      from public.sessions s
      join public.projects p on p.id = s.project_id
      left join lateral (select case when p.current_session = s.slug
                                     then p.state -> 'session_state' -> 'stages' end as stages) st on true
     where s.workspace_id = ws and ($1 ->> 'project' is null or p.name = $1 ->> 'project')
       and syncd.can_read(ws, s.id)), '[]'::jsonb));  -- a session member sees that session only
end
$$;

revoke execute on function public.syncd_progress(jsonb), syncd.refresh_pipeline(), syncd.pipeline_of(uuid),
  syncd.is_template(text) from public;
grant execute on function public.syncd_progress(jsonb), syncd.refresh_pipeline(), syncd.pipeline_of(uuid),
  syncd.is_template(text) to authenticated, service_role;
