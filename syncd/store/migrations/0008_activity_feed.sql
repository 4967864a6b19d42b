-- Every version is an activity row, and the activity can be read and followed.

-- Versions with client context (merge, resolve, restore) are logged by commit_one with that
-- context; this trigger logs the others, at the version's own time (an import's author date).
create function syncd.version_activity() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details, created_at)
  select new.workspace_id, d.project_id, d.session_id, d.id, new.author_id, new.device_id, new.origin,
         jsonb_strip_nulls(jsonb_build_object('path', new.path, 'version', new.version,
                                              'parent_version', new.parent_version,
                                              'deleted', new.deleted, 'commit', new.provenance ->> 'commit',
                                              'author_name', new.provenance ->> 'author_name')),
         new.created_at
    from public.documents d where d.id = new.document_id;
  return null;
end
$$;
create trigger document_versions_activity after insert on public.document_versions
  for each row when (new.origin in ('sync', 'import'))
  execute function syncd.version_activity();

-- Followers (`syncd activity --follow`) listen on a channel of their own, so that activity
-- does not wake the sync daemons: the one notify function takes the channel's prefix as
-- its trigger argument (none: the daemons' `syncd:`).
create or replace function syncd.notify_change() returns trigger
  language plpgsql set search_path = '' as $$
begin
  perform pg_notify(coalesce(tg_argv[0], 'syncd:') || new.workspace_id::text, '');
  return null;
end
$$;
create trigger activity_log_notify after insert on public.activity_log
  for each row execute function syncd.notify_change('syncd-activity:');
create index activity_log_time on public.activity_log (workspace_id, created_at);

-- {workspace, after?: id, since?: time, project?, session?, limit?, newest?} → {activity, last}
-- Oldest first after `after` (a follower's cursor); with newest, the latest `limit` rows
-- (still listed oldest first). Row level security decides what shows.
create function public.syncd_activity(jsonb) returns jsonb
  language plpgsql stable set search_path = '' as $$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  lim integer := least(greatest(coalesce(($1 ->> 'limit')::integer, 200), 1), 2000);
  result jsonb;
begin
  select coalesce(jsonb_agg(item order by (item ->> 'id')::bigint), '[]'::jsonb) into result from (
    select jsonb_build_object(
             'id', a.id, 'kind', a.kind, 'at', a.created_at, 'details', a.details,
             'path', a.details ->> 'path', 'project', p.name, 'session', s.slug,
             'actor', coalesce(pr.github_login, pr.display_name, a.details ->> 'author_name'),
             'device', dv.name) as item
      from public.activity_log a
      left join public.projects p on p.id = a.project_id
      left join public.sessions s on s.id = a.session_id
      left join public.profiles pr on pr.id = a.actor_id
      left join public.devices dv on dv.id = a.device_id
     where a.workspace_id = ws
       and a.id > coalesce(($1 ->> 'after')::bigint, 0)
       and a.created_at >= coalesce(($1 ->> 'since')::timestamptz, '-infinity')
       and ($1 ->> 'project' is null or p.name = $1 ->> 'project')
       and ($1 ->> 'session' is null or s.slug = $1 ->> 'session')
     order by case when coalesce(($1 ->> 'newest')::boolean, false) then -a.id else a.id end
     limit lim) items;
  return jsonb_build_object('activity', result,
                            'last', coalesce((select max((r ->> 'id')::bigint) from jsonb_array_elements(result) r),
                                             ($1 ->> 'after')::bigint, 0));
end
$$;

revoke execute on function public.syncd_activity(jsonb), syncd.version_activity() from public;
grant execute on function public.syncd_activity(jsonb) to authenticated, service_role;
grant execute on function syncd.version_activity() to authenticated, service_role;
