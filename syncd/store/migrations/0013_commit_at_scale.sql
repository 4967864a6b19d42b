-- Commits at scale (found by bench/scale_bench.py: a first sync of 100,000 files slowed
-- from ~900 to ~40 documents a second as the tables grew).

-- 1. The contract's functions plan each statement for the tables as they are. PL/pgSQL
-- caches a generic plan after five runs; made while the tables were nearly empty, it
-- keeps scanning them once they are large, for the whole life of a connection (a daemon's
-- lasts weeks). A custom plan costs a little planning per statement and stays right.
do $$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p
            where p.pronamespace = 'public'::regnamespace and p.proname like 'syncd\_%'
              and p.pronargs = 1 and p.proargtypes[0] = 'jsonb'::regtype loop
    execute format('alter function %s set plan_cache_mode = force_custom_plan', f);
  end loop;
end
$$;

-- 2. A commit touches one stage of one session: recompute that stage, not all seven (a
-- third of a new document's cost).

-- {status, documents, last_edited_at, last_edited_by} of one stage of a session.
create function syncd.stage_of_session(sess uuid, stage_name text) returns jsonb
  language sql stable security definer set search_path = '' as $$
  select coalesce(
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
                                  where x.session_id = sess and x.stage = stage_name and not x.deleted
                                  order by x.updated_at desc limit 1))
       from public.documents d where d.session_id = sess and d.stage = stage_name and not d.deleted
      having count(*) > 0),
    jsonb_build_object('status', 'pending', 'documents', 0))
$$;

create or replace function syncd.pipeline_of(sess uuid) returns jsonb
  language sql stable security definer set search_path = '' as $$
  select jsonb_object_agg(st.stage, syncd.stage_of_session(sess, st.stage) order by st.ord) from syncd.stages() st
$$;

-- Only the stages the row was in before and is in now; a document outside the stage
-- folders (metadata, notes) changes no stage. A session's first document fills in all seven.
create or replace function syncd.refresh_pipeline() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  if new.session_id is not null then
    update public.sessions
       set pipeline = case when pipeline = '{}'::jsonb then syncd.pipeline_of(id)
                           else pipeline || jsonb_build_object(new.stage, syncd.stage_of_session(id, new.stage)) end
     where id = new.session_id and (new.stage is not null or pipeline = '{}'::jsonb);
  end if;
  if tg_op = 'UPDATE' and old.session_id is not null and old.stage is not null
     and (old.session_id, old.stage) is distinct from (new.session_id, new.stage) then
    update public.sessions
       set pipeline = pipeline || jsonb_build_object(old.stage, syncd.stage_of_session(id, old.stage))
     where id = old.session_id;
  end if;
  return null;
end
$$;

revoke execute on function syncd.stage_of_session(uuid, text) from public;
grant execute on function syncd.stage_of_session(uuid, text) to authenticated, service_role;
