-- syncd's objects as migrations up to 0027_pull_calls leave them. GENERATED: do not edit.
-- Regenerate after adding a migration: python -m syncd.store.schema > syncd/store/schema.sql
-- For reading: databases get the migrations (syncd db migrate), not this file. Owners are left out;
-- grants are every grantee's but the owner's. Objects in public are the ones the migrations name.

-- Schema

create schema syncd;

-- Tables

create table public.activity_log (
    id bigint generated always as identity not null,
    workspace_id uuid not null,
    project_id uuid,
    session_id uuid,
    document_id uuid,
    actor_id uuid,
    device_id uuid,
    kind text not null,
    details jsonb default '{}'::jsonb not null,
    created_at timestamp with time zone default now() not null,
    actor_login text
);

create table public.blob_chunks (
    workspace_id uuid not null,
    sha256 text not null,
    part integer not null,
    data bytea not null
);

create table public.blobs (
    workspace_id uuid not null,
    sha256 text not null,
    size bigint not null,
    complete boolean default false not null,
    created_by uuid,
    created_at timestamp with time zone default now() not null
);

create table public.devices (
    id uuid not null,
    workspace_id uuid not null,
    user_id uuid,
    name text not null,
    hostname text,
    created_at timestamp with time zone default now() not null,
    last_seen timestamp with time zone default now() not null,
    state text,
    reason text,
    software_version text,
    applied_seq bigint,
    heartbeat_at timestamp with time zone
);

create table public.document_versions (
    id bigint generated always as identity not null,
    document_id uuid not null,
    workspace_id uuid not null,
    path text not null,
    version integer not null,
    parent_version integer,
    content jsonb,
    sha256 text,
    size bigint,
    deleted boolean default false not null,
    origin text not null,
    author_id uuid,
    device_id uuid,
    seq bigint not null,
    created_at timestamp with time zone default now() not null,
    merge_parent integer,
    provenance jsonb,
    author_login text,
    author_name text,
    moved_from text,
    moved_to text
);

create table public.documents (
    id uuid default gen_random_uuid() not null,
    workspace_id uuid not null,
    path text not null,
    project_id uuid,
    session_id uuid,
    stage text,
    version integer not null,
    content jsonb,
    sha256 text,
    size bigint,
    deleted boolean default false not null,
    seq bigint not null,
    updated_by uuid,
    device_id uuid,
    updated_at timestamp with time zone default now() not null
);

create table public.invitations (
    id bigint generated always as identity not null,
    workspace_id uuid not null,
    session_id uuid,
    github_login text not null,
    role text not null,
    created_at timestamp with time zone default now() not null
);

create table public.profiles (
    id uuid not null,
    github_login text,
    display_name text,
    avatar_url text,
    created_at timestamp with time zone default now() not null
);

create table public.projects (
    id uuid default gen_random_uuid() not null,
    workspace_id uuid not null,
    name text not null,
    current_session text,
    state jsonb,
    created_at timestamp with time zone default now() not null
);

create table public.session_members (
    session_id uuid not null,
    user_id uuid not null,
    role text not null,
    created_at timestamp with time zone default now() not null
);

create table public.sessions (
    id uuid default gen_random_uuid() not null,
    workspace_id uuid not null,
    project_id uuid not null,
    slug text not null,
    owner_id uuid,
    status text default 'active'::text not null,
    pipeline jsonb default '{}'::jsonb not null,
    created_at timestamp with time zone default now() not null
);

create table public.workspace_members (
    workspace_id uuid not null,
    user_id uuid not null,
    role text not null,
    created_at timestamp with time zone default now() not null
);

create table public.workspaces (
    id uuid default gen_random_uuid() not null,
    slug text not null,
    name text,
    created_by uuid,
    created_at timestamp with time zone default now() not null,
    last_seq bigint default 0 not null,
    layout_roots text[] default '{}'::text[] not null
);

create table syncd.schema_migrations (
    version integer not null,
    name text not null,
    checksum text not null,
    applied_at timestamp with time zone default now() not null
);

-- Constraints

alter table public.activity_log add constraint activity_log_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.activity_log add constraint activity_log_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(id);
alter table public.activity_log add constraint activity_log_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.documents(id) ON DELETE SET NULL;
alter table public.activity_log add constraint activity_log_pkey PRIMARY KEY (id);
alter table public.activity_log add constraint activity_log_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id) ON DELETE SET NULL;
alter table public.activity_log add constraint activity_log_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id) ON DELETE SET NULL;
alter table public.activity_log add constraint activity_log_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.blob_chunks add constraint blob_chunks_part_check CHECK ((part >= 0));
alter table public.blob_chunks add constraint blob_chunks_pkey PRIMARY KEY (workspace_id, sha256, part);
alter table public.blob_chunks add constraint blob_chunks_workspace_id_sha256_fkey FOREIGN KEY (workspace_id, sha256) REFERENCES public.blobs(workspace_id, sha256) ON DELETE CASCADE;
alter table public.blobs add constraint blobs_created_by_fkey FOREIGN KEY (created_by) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.blobs add constraint blobs_pkey PRIMARY KEY (workspace_id, sha256);
alter table public.blobs add constraint blobs_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text));
alter table public.blobs add constraint blobs_size_check CHECK ((size >= 0));
alter table public.blobs add constraint blobs_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.devices add constraint devices_pkey PRIMARY KEY (id);
alter table public.devices add constraint devices_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.devices add constraint devices_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.document_versions add constraint document_versions_author_id_fkey FOREIGN KEY (author_id) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.document_versions add constraint document_versions_check CHECK ((deleted = (content IS NULL)));
alter table public.document_versions add constraint document_versions_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(id);
alter table public.document_versions add constraint document_versions_document_id_fkey FOREIGN KEY (document_id) REFERENCES public.documents(id) ON DELETE CASCADE;
alter table public.document_versions add constraint document_versions_document_id_version_key UNIQUE (document_id, version);
alter table public.document_versions add constraint document_versions_origin_check CHECK ((origin = ANY (ARRAY['sync'::text, 'merge'::text, 'restore'::text, 'resolve'::text, 'import'::text, 'move'::text])));
alter table public.document_versions add constraint document_versions_pkey PRIMARY KEY (id);
alter table public.document_versions add constraint document_versions_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.document_versions add constraint document_versions_workspace_id_seq_key UNIQUE (workspace_id, seq);
alter table public.documents add constraint documents_check CHECK ((deleted = (content IS NULL)));
alter table public.documents add constraint documents_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.devices(id);
alter table public.documents add constraint documents_path_check CHECK (((path <> ''::text) AND (path !~ '(^/|/$|//|(^|/)\.\.?(/|$))'::text)));
alter table public.documents add constraint documents_pkey PRIMARY KEY (id);
alter table public.documents add constraint documents_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id);
alter table public.documents add constraint documents_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id);
alter table public.documents add constraint documents_updated_by_fkey FOREIGN KEY (updated_by) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.documents add constraint documents_version_check CHECK ((version >= 1));
alter table public.documents add constraint documents_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.documents add constraint documents_workspace_id_path_key UNIQUE (workspace_id, path);
alter table public.invitations add constraint invitations_pkey PRIMARY KEY (id);
alter table public.invitations add constraint invitations_role_check CHECK ((role = ANY (ARRAY['owner'::text, 'collaborator'::text, 'reader'::text])));
alter table public.invitations add constraint invitations_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id) ON DELETE CASCADE;
alter table public.invitations add constraint invitations_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.profiles add constraint profiles_github_login_key UNIQUE (github_login);
alter table public.profiles add constraint profiles_id_fkey FOREIGN KEY (id) REFERENCES auth.users(id) ON DELETE CASCADE;
alter table public.profiles add constraint profiles_pkey PRIMARY KEY (id);
alter table public.projects add constraint projects_pkey PRIMARY KEY (id);
alter table public.projects add constraint projects_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.projects add constraint projects_workspace_id_name_key UNIQUE (workspace_id, name);
alter table public.session_members add constraint session_members_pkey PRIMARY KEY (session_id, user_id);
alter table public.session_members add constraint session_members_role_check CHECK ((role = ANY (ARRAY['owner'::text, 'collaborator'::text, 'reader'::text])));
alter table public.session_members add constraint session_members_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id) ON DELETE CASCADE;
alter table public.session_members add constraint session_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;
alter table public.sessions add constraint sessions_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.sessions add constraint sessions_pkey PRIMARY KEY (id);
alter table public.sessions add constraint sessions_project_id_fkey FOREIGN KEY (project_id) REFERENCES public.projects(id) ON DELETE CASCADE;
alter table public.sessions add constraint sessions_project_id_slug_key UNIQUE (project_id, slug);
alter table public.sessions add constraint sessions_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.workspace_members add constraint workspace_members_pkey PRIMARY KEY (workspace_id, user_id);
alter table public.workspace_members add constraint workspace_members_role_check CHECK ((role = ANY (ARRAY['owner'::text, 'collaborator'::text, 'reader'::text])));
alter table public.workspace_members add constraint workspace_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;
alter table public.workspace_members add constraint workspace_members_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id) ON DELETE CASCADE;
alter table public.workspaces add constraint workspaces_created_by_fkey FOREIGN KEY (created_by) REFERENCES auth.users(id) ON DELETE SET NULL;
alter table public.workspaces add constraint workspaces_pkey PRIMARY KEY (id);
alter table public.workspaces add constraint workspaces_slug_check CHECK ((slug ~ '^[a-z0-9][a-z0-9._-]{0,62}$'::text));
alter table public.workspaces add constraint workspaces_slug_key UNIQUE (slug);
alter table syncd.schema_migrations add constraint schema_migrations_pkey PRIMARY KEY (version);

-- Indexes

CREATE INDEX activity_log_time ON public.activity_log USING btree (workspace_id, created_at);
CREATE INDEX activity_log_workspace ON public.activity_log USING btree (workspace_id, id);
CREATE INDEX document_versions_blob ON public.document_versions USING btree (workspace_id, ((content ->> 'sha256'::text))) WHERE ((content ->> 'encoding'::text) = 'blob'::text);
CREATE UNIQUE INDEX document_versions_commit ON public.document_versions USING btree (document_id, ((provenance ->> 'commit'::text))) WHERE (provenance ? 'commit'::text);
CREATE INDEX document_versions_imported_commit ON public.document_versions USING btree (workspace_id, ((provenance ->> 'commit'::text))) WHERE (provenance ? 'commit'::text);
CREATE INDEX document_versions_parent ON public.document_versions USING btree (document_id, parent_version);
CREATE INDEX document_versions_path ON public.document_versions USING btree (workspace_id, path, version);
CREATE INDEX documents_feed ON public.documents USING btree (workspace_id, seq);
CREATE INDEX documents_session ON public.documents USING btree (session_id);
CREATE INDEX documents_stage ON public.documents USING btree (session_id, stage, updated_at);
CREATE UNIQUE INDEX invitations_once ON public.invitations USING btree (workspace_id, COALESCE(session_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(github_login));

-- Row level security

alter table public.activity_log enable row level security;
alter table public.blob_chunks enable row level security;
alter table public.blobs enable row level security;
alter table public.devices enable row level security;
alter table public.document_versions enable row level security;
alter table public.documents enable row level security;
alter table public.invitations enable row level security;
alter table public.profiles enable row level security;
alter table public.projects enable row level security;
alter table public.session_members enable row level security;
alter table public.sessions enable row level security;
alter table public.workspace_members enable row level security;
alter table public.workspaces enable row level security;

-- Policies

create policy readers_read on public.activity_log as permissive for select to authenticated
  using (((workspace_id IN ( SELECT syncd.my_workspaces() AS my_workspaces)) OR (session_id IN ( SELECT syncd.my_sessions() AS my_sessions))));

create policy service_role_all on public.activity_log as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.devices as permissive for select to authenticated
  using (((user_id = ( SELECT auth.uid() AS uid)) OR (syncd.workspace_role(workspace_id) IS NOT NULL)));

create policy service_role_all on public.devices as permissive for all to service_role
  using (true)
  with check (true);

create policy readers_read on public.document_versions as permissive for select to authenticated
  using (((workspace_id IN ( SELECT syncd.my_workspaces() AS my_workspaces)) OR (document_id IN ( SELECT syncd.my_session_documents() AS my_session_documents))));

create policy service_role_all on public.document_versions as permissive for all to service_role
  using (true)
  with check (true);

create policy readers_read on public.documents as permissive for select to authenticated
  using (((workspace_id IN ( SELECT syncd.my_workspaces() AS my_workspaces)) OR (session_id IN ( SELECT syncd.my_sessions() AS my_sessions))));

create policy service_role_all on public.documents as permissive for all to service_role
  using (true)
  with check (true);

create policy owners_read on public.invitations as permissive for select to authenticated
  using (syncd.is_owner(workspace_id));

create policy service_role_all on public.invitations as permissive for all to service_role
  using (true)
  with check (true);

create policy co_members_read on public.profiles as permissive for select to authenticated
  using (((id = ( SELECT auth.uid() AS uid)) OR (EXISTS ( SELECT 1
   FROM public.workspace_members m
  WHERE ((m.user_id = profiles.id) AND syncd.can_see_workspace(m.workspace_id))))));

create policy service_role_all on public.profiles as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.projects as permissive for select to authenticated
  using (syncd.can_see_workspace(workspace_id));

create policy service_role_all on public.projects as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.session_members as permissive for select to authenticated
  using ((EXISTS ( SELECT 1
   FROM public.sessions s
  WHERE ((s.id = session_members.session_id) AND syncd.can_see_workspace(s.workspace_id)))));

create policy service_role_all on public.session_members as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.sessions as permissive for select to authenticated
  using (syncd.can_read(workspace_id, id));

create policy service_role_all on public.sessions as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.workspace_members as permissive for select to authenticated
  using (syncd.can_see_workspace(workspace_id));

create policy service_role_all on public.workspace_members as permissive for all to service_role
  using (true)
  with check (true);

create policy members_read on public.workspaces as permissive for select to authenticated
  using (syncd.can_see_workspace(id));

create policy service_role_all on public.workspaces as permissive for all to service_role
  using (true)
  with check (true);

-- Triggers

CREATE TRIGGER syncd_profile_from_auth AFTER INSERT OR UPDATE OF raw_user_meta_data, email ON auth.users FOR EACH ROW EXECUTE FUNCTION syncd.on_auth_user();
CREATE TRIGGER activity_log_actor BEFORE INSERT ON public.activity_log FOR EACH ROW WHEN ((new.actor_id IS NOT NULL)) EXECUTE FUNCTION syncd.activity_actor();
CREATE TRIGGER activity_log_notify AFTER INSERT ON public.activity_log REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION syncd.notify_changes('syncd-activity:');
CREATE TRIGGER document_versions_activity AFTER INSERT ON public.document_versions REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION syncd.versions_activity();
CREATE TRIGGER document_versions_author BEFORE INSERT ON public.document_versions FOR EACH ROW WHEN ((new.author_id IS NOT NULL)) EXECUTE FUNCTION syncd.version_author();
CREATE TRIGGER document_versions_notify AFTER INSERT ON public.document_versions REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION syncd.notify_changes();
CREATE TRIGGER documents_pipeline AFTER INSERT ON public.documents REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION syncd.refresh_new_pipelines();
CREATE TRIGGER documents_pipeline_update AFTER UPDATE ON public.documents REFERENCING OLD TABLE AS replaced NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION syncd.refresh_pipelines();
CREATE TRIGGER documents_project_files AFTER INSERT OR UPDATE OF content ON public.documents FOR EACH ROW WHEN (((NOT new.deleted) AND ((new.path ~~ '%/CURRENT_SESSION'::text) OR (new.path ~~ '%/session_state.json'::text)))) EXECUTE FUNCTION syncd.project_files();

-- Views

create view public.syncd_conflict_rates with (security_invoker=true) as
 SELECT e.workspace_id,
    e.project,
    e.edits,
    COALESCE(m.merged, 0::bigint) AS merged,
    COALESCE(c.conflicts, 0::bigint) AS conflicts,
    round((COALESCE(m.merged, 0::bigint) + COALESCE(c.conflicts, 0::bigint))::numeric / GREATEST(e.edits, 1::numeric), 4) AS rate
   FROM ( SELECT syncd_edits_per_day.workspace_id,
            syncd_edits_per_day.project,
            sum(syncd_edits_per_day.edits) AS edits
           FROM public.syncd_edits_per_day
          GROUP BY syncd_edits_per_day.workspace_id, syncd_edits_per_day.project) e
     LEFT JOIN ( SELECT v.workspace_id,
            p.name AS project,
            count(*) AS merged
           FROM public.document_versions v
             JOIN public.documents d ON d.id = v.document_id
             LEFT JOIN public.projects p ON p.id = d.project_id
          WHERE v.origin = 'merge'::text
          GROUP BY v.workspace_id, p.name) m ON m.workspace_id = e.workspace_id AND NOT m.project IS DISTINCT FROM e.project
     LEFT JOIN ( SELECT a.workspace_id,
            p.name AS project,
            count(*) AS conflicts
           FROM public.activity_log a
             LEFT JOIN public.projects p ON p.id = a.project_id
          WHERE a.kind = 'conflict'::text
          GROUP BY a.workspace_id, p.name) c ON c.workspace_id = e.workspace_id AND NOT c.project IS DISTINCT FROM e.project;

create view public.syncd_device_sync with (security_invoker=true) as
 SELECT d.workspace_id,
    d.id AS device_id,
    d.name AS device,
    d.hostname,
    COALESCE(pr.github_login, pr.display_name) AS owner,
        CASE
            WHEN d.state IS NULL THEN NULL::text
            WHEN d.state <> 'stopped'::text AND d.heartbeat_at < (now() - '00:02:00'::interval) THEN 'silent'::text
            ELSE d.state
        END AS status,
    d.reason,
    d.software_version,
    d.last_seen,
    d.heartbeat_at,
    d.applied_seq,
    b.behind,
        CASE
            WHEN b.behind > 0 THEN now() - b.oldest
            ELSE '00:00:00'::interval
        END AS lag
   FROM public.devices d
     LEFT JOIN public.profiles pr ON pr.id = d.user_id
     LEFT JOIN LATERAL ( SELECT count(*) AS behind,
            min(v.created_at) AS oldest
           FROM public.document_versions v
          WHERE v.workspace_id = d.workspace_id AND v.seq > d.applied_seq AND v.device_id IS DISTINCT FROM d.id) b ON d.applied_seq IS NOT NULL;

create view public.syncd_edits_per_day with (security_invoker=true) as
 SELECT v.workspace_id,
    p.name AS project,
    (v.created_at AT TIME ZONE 'UTC'::text)::date AS day,
    COALESCE(pr.github_login, v.author_login, pr.display_name, v.author_name, v.provenance ->> 'author_name'::text, dv.name, 'unknown'::text) AS author,
    count(*) AS edits
   FROM public.document_versions v
     JOIN public.documents d ON d.id = v.document_id
     LEFT JOIN public.projects p ON p.id = d.project_id
     LEFT JOIN public.profiles pr ON pr.id = v.author_id
     LEFT JOIN public.devices dv ON dv.id = v.device_id
  WHERE v.origin <> ALL (ARRAY['merge'::text, 'move'::text])
  GROUP BY v.workspace_id, p.name, ((v.created_at AT TIME ZONE 'UTC'::text)::date), (COALESCE(pr.github_login, v.author_login, pr.display_name, v.author_name, v.provenance ->> 'author_name'::text, dv.name, 'unknown'::text));

create view public.syncd_lead_times with (security_invoker=true) as
 SELECT workspace_id,
    project,
    session,
    min(started_at) FILTER (WHERE stage = 'intent'::text) AS intent_at,
    min(started_at) FILTER (WHERE stage = 'feedback'::text) AS feedback_at,
    min(started_at) FILTER (WHERE stage = 'feedback'::text) - min(started_at) FILTER (WHERE stage = 'intent'::text) AS lead_time
   FROM public.syncd_stage_times
  GROUP BY workspace_id, project, session
 HAVING count(*) FILTER (WHERE stage = 'intent'::text) > 0;

create view public.syncd_stage_completion with (security_invoker=true) as
 SELECT s.workspace_id,
    p.name AS project,
    st.stage,
    st.ord,
    count(*) AS sessions,
    count(*) FILTER (WHERE ((s.pipeline -> st.stage) ->> 'status'::text) = 'started'::text) AS started,
    round(count(*) FILTER (WHERE ((s.pipeline -> st.stage) ->> 'status'::text) = 'started'::text)::numeric / count(*)::numeric, 3) AS completion
   FROM public.sessions s
     JOIN public.projects p ON p.id = s.project_id
     CROSS JOIN syncd.stages() st(stage, ord)
  WHERE syncd.can_read(s.workspace_id, s.id) AND (EXISTS ( SELECT 1
           FROM public.documents d
          WHERE d.session_id = s.id AND NOT d.deleted))
  GROUP BY s.workspace_id, p.name, st.stage, st.ord;

create view public.syncd_stage_times with (security_invoker=true) as
 SELECT workspace_id,
    project,
    session,
    stage,
    ord,
    started_at,
    last_edited_at,
    COALESCE(lead(started_at) OVER by_stage, last_edited_at) - started_at AS time_spent
   FROM ( SELECT s.workspace_id,
            p.name AS project,
            s.slug AS session,
            st.stage,
            st.ord,
            min(v.created_at) FILTER (WHERE NOT v.deleted AND COALESCE(v.size, 0::bigint) > 0 AND NOT syncd.is_template(v.content ->> 'text'::text)) AS started_at,
            max(v.created_at) AS last_edited_at
           FROM public.sessions s
             JOIN public.projects p ON p.id = s.project_id
             CROSS JOIN syncd.stages() st(stage, ord)
             JOIN public.documents d ON d.session_id = s.id AND d.stage = st.stage
             JOIN public.document_versions v ON v.document_id = d.id
          WHERE syncd.can_read(s.workspace_id, s.id)
          GROUP BY s.workspace_id, p.name, s.slug, st.stage, st.ord) per_stage
  WHERE started_at IS NOT NULL
  WINDOW by_stage AS (PARTITION BY workspace_id, project, session ORDER BY ord);

-- Sequences

create sequence public.activity_log_id_seq as bigint increment 1 minvalue 1 maxvalue 9223372036854775807 start 1 cache 1 owned by public.activity_log.id;  -- its identity
create sequence public.document_versions_id_seq as bigint increment 1 minvalue 1 maxvalue 9223372036854775807 start 1 cache 1 owned by public.document_versions.id;  -- its identity
create sequence public.invitations_id_seq as bigint increment 1 minvalue 1 maxvalue 9223372036854775807 start 1 cache 1 owned by public.invitations.id;  -- its identity

-- Functions

CREATE OR REPLACE FUNCTION public.syncd_activity(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  lim integer := least(greatest(coalesce(($1 ->> 'limit')::integer, 200), 1), 2000);
  result jsonb;
begin
  select coalesce(jsonb_agg(item order by (item ->> 'id')::bigint), '[]'::jsonb) into result from (
    select jsonb_build_object(
             'id', a.id, 'kind', a.kind, 'at', a.created_at, 'details', a.details,
             'path', a.details ->> 'path', 'project', p.name, 'session', s.slug,
             'actor', coalesce(pr.github_login, a.actor_login, pr.display_name, a.details ->> 'author_name'),
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_blob_finish(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.blob_finish($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_blob_get(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$ select syncd.blob_get($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_blob_missing(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.blob_missing($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_blob_put(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.blob_put($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_changes(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
 SET enable_bitmapscan TO 'off'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_clock(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
  select jsonb_build_object('now', clock_timestamp())
$function$;

CREATE OR REPLACE FUNCTION public.syncd_commit(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.commit_changes($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_contents(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_documents(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  only_deleted boolean := coalesce(($1 ->> 'deleted')::boolean, false);
begin
  return jsonb_build_object('documents', coalesce((
    select jsonb_agg(syncd.version_json(v) order by v.path)
      from public.documents d
      join public.document_versions v on v.document_id = d.id and v.version = d.version
     where d.workspace_id = ws and (not only_deleted or d.deleted)), '[]'::jsonb));
end
$function$;

CREATE OR REPLACE FUNCTION public.syncd_feed_mark(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object(
    'change', (select jsonb_build_object('seq', v.seq, 'path', v.path, 'version', v.version,
                                         'sha256', v.sha256, 'deleted', v.deleted, 'created_at', v.created_at)
                 from public.document_versions v
                where v.workspace_id = ws and v.seq = ($1 ->> 'seq')::bigint));
end
$function$;

CREATE OR REPLACE FUNCTION public.syncd_heartbeat(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_history(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  result jsonb;
begin
  select jsonb_agg(syncd.version_json(v) order by v.version desc)
    into result
    from syncd.versions_at(ws, $1 ->> 'path') v;
  if result is null then
    raise exception 'no document "%" in workspace "%"', $1 ->> 'path', $1 ->> 'workspace'
      using errcode = 'PT404';
  end if;
  return jsonb_build_object('path', $1 ->> 'path', 'versions', result);
end
$function$;

CREATE OR REPLACE FUNCTION public.syncd_import_members(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
begin
  if not coalesce(($1 ->> 'dry_run')::boolean, false) then
    perform syncd.require_owner(syncd.workspace_id($1 ->> 'workspace'));
  end if;
  return syncd.import_members($1);
end
$function$;

CREATE OR REPLACE FUNCTION public.syncd_known_commit(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_layout_plan(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  with l as (select l.* from jsonb_array_elements_text($1 -> 'paths') p
               cross join lateral syncd.layout_under(p, syncd.layout_roots(
                 (select w.id from public.workspaces w where w.slug = $1 ->> 'workspace'))) l)
  select jsonb_build_object(
    'projects', coalesce((select jsonb_agg(distinct l.project) from l where l.project is not null), '[]'::jsonb),
    'sessions', coalesce((select jsonb_agg(distinct jsonb_build_object('project', l.project, 'session', l.session))
                            from l where l.session is not null), '[]'::jsonb))
$function$;

CREATE OR REPLACE FUNCTION public.syncd_layout_roots(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.set_layout_roots($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_match_versions(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_members(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.members($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_open(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.open_workspace($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_progress(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_record(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 SET search_path TO ''
AS $function$ select syncd.record_events($1) $function$;

CREATE OR REPLACE FUNCTION public.syncd_stats(jsonb)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.syncd_version(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  want integer := ($1 ->> 'version')::integer;
  result jsonb;
begin
  select syncd.version_json(v) || jsonb_build_object('content', v.content)
    into result
    from syncd.versions_at(ws, $1 ->> 'path') v
   where want is null or v.version = want
   order by v.version desc
   limit 1;
  if result is null then
    raise exception 'no version % of "%" in workspace "%"',
      coalesce(want::text, 'head'), $1 ->> 'path', $1 ->> 'workspace'
      using errcode = 'PT404';
  end if;
  return result;
end
$function$;

CREATE OR REPLACE FUNCTION public.syncd_versions(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
begin
  return jsonb_build_object('versions', coalesce((
    select jsonb_agg(syncd.version_json(v.x)
                     || jsonb_build_object('content', case when v.candidate and v.inline_so_far <= syncd.inline_budget()
                                                           then (v.x).content end)
                     order by v.ord)
      from (select c.*, sum(case when c.candidate then (c.x).size else 0 end) over (order by c.ord) as inline_so_far
              from (select x, w.ord, not x.deleted and x.size <= syncd.inline_item_max() as candidate
                      from jsonb_array_elements(coalesce($1 -> 'versions', '[]'::jsonb)) with ordinality w(item, ord)
                      join public.document_versions x
                        on x.workspace_id = ws and x.path = w.item ->> 'path'
                       and x.version = (w.item ->> 'version')::integer) c) v), '[]'::jsonb));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.activity_actor()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  select p.github_login into new.actor_login from public.profiles p where p.id = new.actor_id;
  return new;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.are_times(texts text[])
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  perform count(t::timestamptz) from unnest(texts) t;
  return true;
exception when others then
  return false;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_chunk_size()
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 4 * 1024 * 1024 $function$;

CREATE OR REPLACE FUNCTION syncd.blob_finish(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.blob_writer($1);
  digest text := $1 ->> 'sha256';
  known public.blobs;
  chunk integer := syncd.blob_chunk_size();
  found text;
  n integer;
  total bigint;
begin
  select * into known from public.blobs b where b.workspace_id = ws and b.sha256 = digest for update;
  if known.complete then
    return jsonb_build_object('sha256', digest, 'size', known.size);
  end if;
  select count(*), coalesce(sum(length(c.data)), 0) into n, total
    from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
  if known.sha256 is null or known.size <> ($1 ->> 'size')::bigint
     or n <> greatest(1, (known.size + chunk - 1) / chunk) or total <> known.size then
    raise exception 'blob %: not all of its % bytes were uploaded (% parts, % bytes)', digest,
      ($1 ->> 'size'), coalesce(n, 0), coalesce(total, 0) using errcode = '22023';
  end if;
  select encode(sha256(string_agg(c.data, ''::bytea order by c.part)), 'hex') into found
    from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
  if found <> digest then
    delete from public.blobs b where b.workspace_id = ws and b.sha256 = digest;
    raise exception 'blob %: the bytes uploaded hash to %; dropped', digest, found using errcode = '22023';
  end if;
  update public.blobs b set complete = true where b.workspace_id = ws and b.sha256 = digest;
  return jsonb_build_object('sha256', digest, 'size', known.size);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_get(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  digest text := $1 ->> 'sha256';
  found bytea;
begin
  if not syncd.trusted() and not exists (
       select 1 from public.document_versions v join public.documents d on d.id = v.document_id
        where v.workspace_id = ws and v.content ->> 'encoding' = 'blob' and v.content ->> 'sha256' = digest
          and syncd.can_read(ws, d.session_id)) then
    found := null;
  else
    select c.data into found from public.blob_chunks c join public.blobs b using (workspace_id, sha256)
     where c.workspace_id = ws and c.sha256 = digest and b.complete
       and c.part = case when coalesce($1 ->> 'part', '') ~ '^[0-9]{1,9}$' then ($1 ->> 'part')::integer end;
  end if;
  if found is null then
    raise exception 'blob % (part %) is not in the store, or no version you may read names it', digest, $1 ->> 'part'
      using errcode = 'PT404';
  end if;
  return jsonb_build_object('data', translate(encode(found, 'base64'), E'\n', ''));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_max_size()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 512 * 1024 * 1024::bigint $function$;

CREATE OR REPLACE FUNCTION syncd.blob_missing(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  wanted jsonb := coalesce($1 -> 'blobs', '[]'::jsonb);
begin
  if not syncd.can_write_somewhere(ws) then
    raise exception 'you may read but not write in this workspace' using errcode = '42501';
  end if;
  if jsonb_typeof(wanted) <> 'array' or jsonb_array_length(wanted) > syncd.commit_max_changes() then
    raise exception 'ask about at most % blobs per call', syncd.commit_max_changes() using errcode = 'PT413';
  end if;
  return jsonb_build_object('missing', coalesce((
    select jsonb_agg(distinct w.digest) from jsonb_array_elements_text(wanted) w(digest)
     where not syncd.has_blob(ws, w.digest, null)), '[]'::jsonb));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_object(object_name text)
 RETURNS TABLE(ws uuid, digest text)
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select case when object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
              then split_part(object_name, '/', 1)::uuid end,
         split_part(object_name, '/', 2)
   where object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_put(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.blob_writer($1);
  digest text := $1 ->> 'sha256';
  blob_size bigint := ($1 ->> 'size')::bigint;
  chunk integer := syncd.blob_chunk_size();
  parts integer := greatest(1, ((blob_size + chunk - 1) / chunk)::integer);
  piece integer;
  bytes_in bytea;
  known public.blobs;
begin
  if coalesce($1 ->> 'part', '') !~ '^[0-9]{1,9}$' or ($1 ->> 'part')::integer >= parts then
    raise exception 'a blob of % bytes has parts 0 to %', blob_size, parts - 1 using errcode = '22023';
  end if;
  piece := ($1 ->> 'part')::integer;
  begin
    bytes_in := decode($1 ->> 'data', 'base64');
  exception when others then
    raise exception 'a part''s "data" is its bytes in base64' using errcode = '22023';
  end;
  if bytes_in is null or length(bytes_in) <> least(chunk::bigint, blob_size - piece::bigint * chunk) then
    raise exception 'part % of a blob of % bytes is % bytes long, got %', piece, blob_size,
      least(chunk::bigint, blob_size - piece::bigint * chunk), coalesce(length(bytes_in), 0) using errcode = '22023';
  end if;
  insert into public.blobs (workspace_id, sha256, size, created_by) values (ws, digest, blob_size, auth.uid())
    on conflict (workspace_id, sha256) do nothing;
  select * into known from public.blobs b where b.workspace_id = ws and b.sha256 = digest for update;
  if known.size <> blob_size and known.complete then
    raise exception 'blob % is stored, with % bytes', digest, known.size using errcode = '22023';
  elsif known.size <> blob_size then
    -- begun with another size, by anyone who may write somewhere (a digest has one size, so
    -- it can never finish): it would keep the real bytes out for good; begun again here
    delete from public.blob_chunks c where c.workspace_id = ws and c.sha256 = digest;
    update public.blobs b set size = blob_size, created_by = auth.uid() where b.workspace_id = ws and b.sha256 = digest;
    known.complete := false;
  end if;
  if not known.complete then
    insert into public.blob_chunks (workspace_id, sha256, part, data) values (ws, digest, piece, bytes_in)
      on conflict on constraint blob_chunks_pkey do update set data = excluded.data;
  end if;
  return jsonb_build_object('part', piece);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.blob_writer(payload jsonb)
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id(payload ->> 'workspace');
begin
  if not syncd.can_write_somewhere(ws) then
    raise exception 'you may read but not write in this workspace: no blob is stored for you'
      using errcode = '42501';
  end if;
  if coalesce(payload ->> 'sha256', '') !~ '^[0-9a-f]{64}$' then
    raise exception 'a blob is named by its sha256: 64 lowercase hex digits' using errcode = '22023';
  end if;
  if coalesce(payload ->> 'size', '') !~ '^[0-9]{1,19}$' or (payload ->> 'size')::numeric > syncd.blob_max_size() then
    raise exception 'a blob''s size is a number of bytes up to % MiB', syncd.blob_max_size() / 1048576
      using errcode = '22023';
  end if;
  return ws;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.builtin_layout_roots()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select array['projects', '.idse/projects']
$function$;

CREATE OR REPLACE FUNCTION syncd.can_read(ws uuid, sess uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) is not null
                  or (sess is not null and syncd.session_role(sess) is not null), false)
$function$;

CREATE OR REPLACE FUNCTION syncd.can_read_blob(object_name text)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select exists (
    select 1 from syncd.blob_object(object_name) b
      join public.document_versions v on v.workspace_id = b.ws and v.content ->> 'encoding' = 'blob'
                                     and v.content ->> 'sha256' = b.digest
      join public.documents d on d.id = v.document_id
     where syncd.can_read(b.ws, d.session_id))
$function$;

CREATE OR REPLACE FUNCTION syncd.can_read_document(doc uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select syncd.can_read(d.workspace_id, d.session_id) from public.documents d where d.id = doc
$function$;

CREATE OR REPLACE FUNCTION syncd.can_see_workspace(ws uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select syncd.trusted() or syncd.workspace_role(ws) is not null
      or exists (select 1 from public.session_members m join public.sessions s on s.id = m.session_id
                  where s.workspace_id = ws and m.user_id = (select auth.uid()))
$function$;

CREATE OR REPLACE FUNCTION syncd.can_write(ws uuid, sess uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) in ('owner', 'collaborator')
                  or (sess is not null and syncd.session_role(sess) in ('owner', 'collaborator')), false)
$function$;

CREATE OR REPLACE FUNCTION syncd.can_write_blob(object_name text)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce((select syncd.can_write_somewhere(b.ws) from syncd.blob_object(object_name) b), false)
$function$;

CREATE OR REPLACE FUNCTION syncd.can_write_somewhere(ws uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select syncd.can_write(ws, null) or exists (
    select 1 from public.session_members m join public.sessions s on s.id = m.session_id
     where s.workspace_id = ws and m.user_id = (select auth.uid()) and m.role in ('owner', 'collaborator'))
$function$;

CREATE OR REPLACE FUNCTION syncd.claim_login(uid uuid, login text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  if login is null then
    return;
  end if;
  -- GitHub frees renamed logins: whoever holds it now is the one GitHub says
  update public.profiles set github_login = null where lower(github_login) = lower(login) and id <> uid;
  update public.profiles set github_login = login, display_name = coalesce(display_name, login) where id = uid;
  insert into public.workspace_members (workspace_id, user_id, role)
    select i.workspace_id, uid, i.role from public.invitations i
     where i.session_id is null and lower(i.github_login) = lower(login)
    on conflict do nothing;
  insert into public.session_members (session_id, user_id, role)
    select i.session_id, uid, i.role from public.invitations i
     where i.session_id is not null and lower(i.github_login) = lower(login)
    on conflict do nothing;
  delete from public.invitations i where lower(i.github_login) = lower(login);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.commit_batch(ws uuid, dev uuid, call_origin text, changes jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  pending syncd.pending_change[];
  accepted syncd.pending_change[];
  decided syncd.change_result[];
  written boolean;
  rounds integer;
  r integer;
  first_seq bigint;
  last_seq bigint;
  a syncd.pending_change;
  decision record;
  item syncd.change_result;
  result jsonb;
  results jsonb[] := '{}';
  head_size bigint;
  inline_bytes bigint := 0;
  owner boolean := syncd.is_owner(ws);  -- the loop asks for each import; the answer is the call's
  writer boolean := syncd.can_write(ws, null);  -- the workspace's rights, so a session's are asked once
  roots text[] := syncd.layout_roots(ws);
  times boolean;
begin
  select syncd.are_times(array_agg(e.change -> 'provenance' ->> 'at')) into times
    from jsonb_array_elements(changes) e(change) where e.change ? 'provenance';
  -- Every check before the head is read, in the order the loop and commit_one make them.
  with c as (
    select e.ord::integer as ord, e.change, e.change ->> 'path' as path,
           coalesce((e.change ->> 'deleted')::boolean, false) as is_delete,
           coalesce(e.change ->> 'origin', call_origin) as origin, e.change -> 'provenance' as prov
      from jsonb_array_elements(changes) with ordinality e(change, ord)
  ), laid as materialized (
    select c.*, l.project, l.session, l.stage, s.id as session_id
      from c  -- session_of (layout_ids), for the set: layout(ws, path) with the call's roots
      left join lateral syncd.layout_under(c.path, roots) l on true
      left join public.projects p on p.workspace_id = ws and p.name = l.project
      left join public.sessions s on s.project_id = p.id and s.slug = l.session
  ), rights as (  -- can_write(ws, session) for each session the call names, unless the workspace's answer
    select x.session_id, syncd.can_write(ws, x.session_id) as may
      from (select distinct la.session_id from laid la where la.session_id is not null) x
     where not writer
  ), checked as materialized (
    select la.*,
           case
             when octet_length(la.path) > 4096 then
               jsonb_build_object('path', la.path, 'status', 'invalid', 'message', 'a path takes at most 4096 bytes')
             when not coalesce(r.may, writer) then jsonb_build_object(
               'path', la.path, 'status', 'forbidden',
               'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)')
             when (la.change ? 'provenance' or la.origin = 'import') and not owner then
               jsonb_build_object('path', la.path, 'status', 'forbidden',
                                  'message', 'only an owner of the workspace imports history (syncd import)')
             when la.change ? 'activity' and jsonb_typeof(la.change -> 'activity') <> 'object' then
               jsonb_build_object('path', la.path, 'status', 'invalid',
                                  'message', 'activity: the details of an event are an object')
           end as refused
      from laid la
      left join rights r on r.session_id = la.session_id
  ), valid as materialized (
    select ch.*,
           ch.refused is null as locks,  -- the loop takes the lock at the first change past these
           coalesce(ch.refused, case
             when ch.path is null or ch.path = '' or ch.path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'path must be relative, without "." or ".." parts')
             when not ch.is_delete and lower(ch.path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'a name Git keeps for itself (.git) is never stored')
             when ch.origin is null or ch.origin not in ('sync', 'merge', 'restore', 'resolve', 'import') then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', format('unknown origin %L', ch.origin))
             when ch.prov is not null and (ch.origin <> 'import' or jsonb_typeof(ch.prov) <> 'object') then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', 'provenance is for imported versions only')
             when ch.prov is not null and not (times or syncd.is_time(ch.prov ->> 'at')) then
               jsonb_build_object('path', ch.path, 'status', 'invalid',
                                  'message', format('provenance "at" is not a time: %s', ch.prov ->> 'at'))
             when not ch.is_delete and syncd.entry_problem(ws, ch.path, ch.change -> 'content') is not null then
               jsonb_build_object('path', ch.path, 'status', 'invalid', 'message',
                                  'content: ' || syncd.entry_problem(ws, ch.path, ch.change -> 'content'))
           end) as verdict
      from checked ch
  ), ranked as (
    select v.*, row_number() over (partition by v.path, v.verdict is null order by v.ord) as round from valid v
  )
  select array_agg(row(v.ord, v.path, (v.change ->> 'base_version')::integer, v.is_delete,
                       case when v.is_delete then null else v.change -> 'content' end, v.origin, v.prov,
                       case when v.change ? 'activity'
                            then (v.change -> 'activity') - array['version', 'parent_version', 'merge_parent', 'deleted']
                       end,
                       case when v.prov is not null then coalesce((v.prov ->> 'at')::timestamptz, now()) else now() end,
                       e.identity, e.size, v.round, null, null, null, v.project, v.session, v.stage,
                       null, null)::syncd.pending_change order by v.ord)
           filter (where v.verdict is null),
         array_agg(row(v.ord, v.verdict)::syncd.change_result) filter (where v.verdict is not null),
         coalesce(bool_or(v.locks), false)
    into pending, decided, written
    from ranked v
    left join lateral (select x.identity, x.size from syncd.entry_of(v.change -> 'content') x
                        where v.verdict is null and not v.is_delete offset 0) e on true;  -- never for the refused
  pending := coalesce(pending, '{}');
  decided := coalesce(decided, '{}');

  perform set_config('syncd.pipeline', 'deferred', true);
  if written then
    first_seq := syncd.lock_workspace(ws);
    last_seq := first_seq;
  end if;
  select max(p.round) into rounds from unnest(pending) p;
  for r in 1 .. coalesce(rounds, 0) loop
    perform 1 from public.documents d
     where d.workspace_id = ws and d.path in (select p.path from unnest(pending) p where p.round = r)
     order by d.path for update;
    accepted := '{}';
    for decision in
      with h as (
        select p, d,
               case when p.prov is not null then d.version else p.base end as base,
               case when p.prov ? 'commit' and d.id is not null then
                 (select v.version from public.document_versions v
                   where v.document_id = d.id and v.provenance ? 'commit'
                     and v.provenance ->> 'commit' = p.prov ->> 'commit')
               end as imported
          from unnest(pending) p
          left join public.documents d on d.workspace_id = ws and d.path = p.path
         where p.round = r
      ), s as (
        select h.*, case
                 when h.imported is not null then 'imported'
                 when ((h.d).id is not null and (h.d).deleted = (h.p).is_delete
                       and (h.d).sha256 is not distinct from (h.p).digest)
                      or ((h.d).id is null and (h.p).is_delete) then 'unchanged'
                 when not (((h.d).id is null and h.base is null) or coalesce((h.d).version = h.base, false)) then 'behind'
                 else 'accepted' end as status
          from h
      )
      select row((s.p).ord, (s.p).path, (s.p).base, (s.p).is_delete, (s.p).content, (s.p).origin, (s.p).prov,
                 (s.p).activity, (s.p).stamp, (s.p).digest, (s.p).size, r,
                 coalesce((s.d).version, 0) + 1, (s.d).version,
                 case when s.status = 'accepted'
                      then last_seq + count(*) filter (where s.status = 'accepted') over (order by (s.p).ord) end,
                 (s.p).project, (s.p).session, (s.p).stage, null, null)::syncd.pending_change as change,
             case s.status
               when 'imported' then jsonb_build_object('path', (s.p).path, 'status', 'duplicate', 'version', s.imported,
                                      'sha256', (s.p).digest, 'deleted', (s.p).is_delete,
                                      'head', syncd.head_json(s.d, false))
               when 'unchanged' then jsonb_build_object('path', (s.p).path, 'status', 'unchanged',
                                      'version', (s.d).version, 'sha256', (s.p).digest, 'deleted', (s.p).is_delete)
               when 'behind' then coalesce(
                 -- A retried push whose first attempt was accepted: same parent, same content.
                 (select jsonb_build_object('path', (s.p).path, 'status', 'duplicate', 'version', v.version,
                                            'side_version', v.merge_parent,
                                            'sha256', (s.p).digest, 'deleted', (s.p).is_delete,
                                            'head', syncd.head_json(s.d, true))
                    from public.document_versions v
                   where v.document_id = (s.d).id and v.parent_version is not distinct from s.base
                     and v.sha256 is not distinct from (s.p).digest and v.deleted = (s.p).is_delete
                   order by v.version limit 1),
                 jsonb_build_object('path', (s.p).path, 'status', 'conflict',
                                    'head', case when (s.d).id is null then null else syncd.head_json(s.d, true) end))
             end as result
        from s
    loop
      if decision.result is null then
        accepted := accepted || decision.change;
      else
        decided := decided || row((decision.change).ord, decision.result)::syncd.change_result;
      end if;
    end loop;
    if cardinality(accepted) = 0 then
      continue;
    end if;

    -- ensure_layout for the round: its projects and sessions made, then found
    insert into public.projects (workspace_id, name)
      select distinct ws, x.project from unnest(accepted) x where x.project is not null
      on conflict (workspace_id, name) do nothing;
    insert into public.sessions (workspace_id, project_id, slug)
      select distinct ws, p.id, x.session from unnest(accepted) x
        join public.projects p on p.workspace_id = ws and p.name = x.project
       where x.session is not null
      on conflict on constraint sessions_project_id_slug_key do nothing;
    select array_agg(row(x.ord, x.path, x.base, x.is_delete, x.content, x.origin, x.prov, x.activity, x.stamp,
                         x.digest, x.size, x.round, x.version, x.parent, x.seq, x.project, x.session, x.stage,
                         p.id, s.id)::syncd.pending_change order by x.seq)
      into accepted
      from unnest(accepted) x
      left join public.projects p on p.workspace_id = ws and p.name = x.project
      left join public.sessions s on s.project_id = p.id and s.slug = x.session;
    -- one upsert of the heads, one insert of the versions
    with heads as (
      insert into public.documents as d (workspace_id, path, project_id, session_id, stage, version, content,
                                         sha256, size, deleted, seq, updated_by, device_id, updated_at)
      select ws, x.path, x.project_id, x.session_id, x.stage, x.version, x.content, x.digest, x.size,
             x.is_delete, x.seq, auth.uid(), dev, x.stamp
        from unnest(accepted) x
      on conflict (workspace_id, path) do update
        set version = excluded.version, content = excluded.content, sha256 = excluded.sha256,
            size = excluded.size, deleted = excluded.deleted, seq = excluded.seq,
            project_id = excluded.project_id, session_id = excluded.session_id, stage = excluded.stage,
            updated_by = excluded.updated_by, device_id = excluded.device_id, updated_at = excluded.updated_at
      returning d.id, d.path
    )
    insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                          merge_parent, content, sha256, size, deleted, origin,
                                          author_id, device_id, seq, provenance, created_at)
    select heads.id, ws, x.path, x.version, x.parent, null, x.content, x.digest, x.size, x.is_delete,
           x.origin, auth.uid(), dev, x.seq, x.prov, x.stamp
      from unnest(accepted) x join heads on heads.path = x.path
     order by x.seq;
    foreach a in array accepted loop
      if a.origin not in ('sync', 'import') then
        perform syncd.record_activity(ws, dev, a.origin, a.path,
          jsonb_strip_nulls(jsonb_build_object('version', a.version, 'parent_version', a.parent,
                                               'merge_parent', null, 'deleted', a.is_delete))
          || coalesce(a.activity, '{}'::jsonb));
      end if;
      decided := decided || row(a.ord, jsonb_build_object(
        'path', a.path, 'status', 'accepted', 'version', a.version, 'side_version', null,
        'sha256', a.digest, 'deleted', a.is_delete, 'seq', a.seq, 'created_at', a.stamp))::syncd.change_result;
    end loop;
    last_seq := last_seq + cardinality(accepted);
  end loop;

  -- the answers in the call's order, heads' contents within the inline budget as the loop kept them
  for item in select * from unnest(decided) d order by d.ord loop
    result := item.result;
    if result -> 'head' ? 'content' then
      head_size := coalesce((result -> 'head' ->> 'size')::bigint, 0);
      if head_size > syncd.inline_item_max() or inline_bytes + head_size > syncd.inline_budget() then
        result := result #- '{head,content}';
      else
        inline_bytes := inline_bytes + head_size;
      end if;
    end if;
    results := array_append(results, result);
  end loop;
  perform set_config('syncd.pipeline', '', true);
  if last_seq > first_seq then
    perform syncd.set_last_seq(ws, last_seq);
    -- refresh_stage for each stage touched, one update per session: a new session's whole
    -- pipeline, or the touched stages merged into it
    with touched as (
      select distinct d.session_id, d.stage from public.documents d
       where d.workspace_id = ws and d.seq > first_seq and d.session_id is not null
    )
    update public.sessions s
       set pipeline = case when s.pipeline = '{}'::jsonb then syncd.pipeline_of(s.id)
                           else s.pipeline || (select jsonb_object_agg(t.stage, syncd.stage_of_session(s.id, t.stage))
                                                 from touched t where t.session_id = s.id and t.stage is not null) end
     where s.id in (select t.session_id from touched t)
       and (s.pipeline = '{}'::jsonb or exists (select 1 from touched t where t.session_id = s.id and t.stage is not null));
  end if;
  if dev is not null then
    perform syncd.touch_device(dev);
  end if;
  return jsonb_build_object('results', to_jsonb(results));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.commit_caps(call jsonb)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
declare
  changes jsonb := coalesce(call -> 'changes', '[]'::jsonb);
begin
  if jsonb_typeof(changes) <> 'array' or jsonb_array_length(changes) > syncd.commit_max_changes() then
    raise exception 'a commit takes at most % changes per call, got %', syncd.commit_max_changes(),
      case when jsonb_typeof(changes) = 'array' then jsonb_array_length(changes)::text else jsonb_typeof(changes) end
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  if pg_column_size(call) > syncd.commit_max_bytes() then
    raise exception 'a commit takes at most % MiB per call, got % MiB', syncd.commit_max_bytes() / 1048576,
      round(pg_column_size(call) / 1048576.0, 1)
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.commit_changes(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := syncd.own_device(ws, nullif($1 ->> 'device', '')::uuid);
  changes jsonb := coalesce($1 -> 'changes', '[]'::jsonb);
begin
  perform syncd.commit_caps($1);
  if exists (select 1 from jsonb_array_elements(changes) e
              where jsonb_typeof(e) <> 'object' or e ? 'moved_from' or e ? 'side') then
    return syncd.commit_each($1);
  end if;
  return syncd.commit_batch(ws, dev, coalesce($1 ->> 'origin', 'sync'), changes);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.commit_each(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := syncd.own_device(ws, nullif($1 ->> 'device', '')::uuid);
  origin text := coalesce($1 ->> 'origin', 'sync');
  changes jsonb := coalesce($1 -> 'changes', '[]'::jsonb);
  change jsonb;
  result jsonb;
  results jsonb[] := '{}';
  first_seq bigint;
  last_seq bigint;
  head_size bigint;
  inline_bytes bigint := 0;
  touched record;
begin
  if jsonb_typeof(changes) <> 'array' or jsonb_array_length(changes) > syncd.commit_max_changes() then
    raise exception 'a commit takes at most % changes per call, got %', syncd.commit_max_changes(),
      case when jsonb_typeof(changes) = 'array' then jsonb_array_length(changes)::text else jsonb_typeof(changes) end
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  if pg_column_size($1) > syncd.commit_max_bytes() then
    raise exception 'a commit takes at most % MiB per call, got % MiB', syncd.commit_max_bytes() / 1048576,
      round(pg_column_size($1) / 1048576.0, 1)
      using errcode = 'PT413', hint = 'split the changes into several calls';
  end if;
  perform set_config('syncd.pipeline', 'deferred', true);
  for change in select value from jsonb_array_elements(changes) loop
    if octet_length(change ->> 'path') > 4096 then  -- PATH_MAX; and what is split below stays small
      results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'invalid',
        'message', 'a path takes at most 4096 bytes'));
      continue;
    end if;
    if not syncd.can_write(ws, syncd.session_of(ws, change ->> 'path')) then
      results := array_append(results, jsonb_build_object(
        'path', change ->> 'path', 'status', 'forbidden',
        'message', 'you may read but not write this document (a workspace owner can grant it: syncd members)'));
      continue;
    end if;
    if (change ? 'provenance' or coalesce(change ->> 'origin', origin) = 'import') and not syncd.is_owner(ws) then  -- names any author and date
      results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'forbidden',
        'message', 'only an owner of the workspace imports history (syncd import)'));
      continue;
    end if;
    if change ? 'activity' then  -- details of the event; what it says of the version is the contract's to say
      if jsonb_typeof(change -> 'activity') <> 'object' then
        results := array_append(results, jsonb_build_object('path', change ->> 'path', 'status', 'invalid',
          'message', 'activity: the details of an event are an object'));
        continue;
      end if;
      change := jsonb_set(change, '{activity}',
                          (change -> 'activity') - array['version', 'parent_version', 'merge_parent', 'deleted']);
    end if;
    if first_seq is null then  -- the lock, for those who write only: a reader never waits for it nor holds it
      first_seq := syncd.lock_workspace(ws);
      last_seq := first_seq;
    end if;
    if change ? 'moved_from' then
      result := syncd.move_one(ws, dev, change, last_seq);
    else
      result := syncd.commit_one(ws, dev, origin, change, last_seq);
    end if;
    last_seq := coalesce((result ->> 'seq')::bigint, last_seq);
    if result -> 'head' ? 'content' then
      head_size := coalesce((result -> 'head' ->> 'size')::bigint, 0);
      if head_size > syncd.inline_item_max() or inline_bytes + head_size > syncd.inline_budget() then
        result := result #- '{head,content}';
      else
        inline_bytes := inline_bytes + head_size;
      end if;
    end if;
    results := array_append(results, result);
  end loop;
  perform set_config('syncd.pipeline', '', true);
  if last_seq > first_seq then
    perform syncd.set_last_seq(ws, last_seq);
    for touched in select distinct d.session_id, d.stage from public.documents d
                    where d.workspace_id = ws and d.seq > first_seq and d.session_id is not null loop
      perform syncd.refresh_stage(touched.session_id, touched.stage);
    end loop;
  end if;
  if dev is not null then
    perform syncd.touch_device(dev);
  end if;
  return jsonb_build_object('results', to_jsonb(results));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.commit_max_bytes()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 64 * 1024 * 1024::bigint $function$;

CREATE OR REPLACE FUNCTION syncd.commit_max_changes()
 RETURNS integer
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 500 $function$;

CREATE OR REPLACE FUNCTION syncd.commit_one(ws uuid, dev uuid, call_origin text, change jsonb, last_seq bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  doc_path text := change ->> 'path';
  base integer := (change ->> 'base_version')::integer;
  is_delete boolean := coalesce((change ->> 'deleted')::boolean, false);
  new_content jsonb := case when is_delete then null else change -> 'content' end;
  origin text := coalesce(change ->> 'origin', call_origin);
  side jsonb := change -> 'side';
  prov jsonb := change -> 'provenance';
  stamp timestamptz := now();
  side_digest text;
  side_size bigint;
  problem text;
  side_version integer;
  body_size bigint;
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
  -- A name Git takes for its own .git (any case, trailing dots or spaces, the NTFS short
  -- name): written into a tree, it points Git at a config of the writer's choosing. Never
  -- stored; a delete of one stored before is let through.
  if not is_delete and lower(doc_path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then
    return jsonb_build_object('path', doc_path, 'status', 'invalid',
                              'message', 'a name Git keeps for itself (.git) is never stored');
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
    problem := syncd.entry_problem(ws, doc_path, new_content);
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'content: ' || problem);
    end if;
    select e.identity, e.size into digest, body_size from syncd.entry_of(new_content) e;
  end if;
  if side is not null then
    problem := syncd.entry_problem(ws, doc_path, side -> 'content');
    if problem is not null then
      return jsonb_build_object('path', doc_path, 'status', 'invalid', 'message', 'side content: ' || problem);
    end if;
    select e.identity, e.size into side_digest, side_size from syncd.entry_of(side -> 'content') e;
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
              side -> 'content', side_digest, side_size, false,
              'sync', auth.uid(), dev, last_seq + 1);
  end if;
  new_seq := last_seq + case when side is null then 1 else 2 end;
  if head.id is null then
    insert into public.documents (workspace_id, path, project_id, session_id, stage, version,
                                  content, sha256, size, deleted, seq, updated_by, device_id,
                                  updated_at)
      values (ws, doc_path, l.project_id, l.session_id, l.stage, new_version,
              new_content, digest, body_size, is_delete, new_seq, auth.uid(), dev, stamp)
      returning id into doc_id;
  else
    doc_id := head.id;
    update public.documents d
      set version = new_version, content = new_content, sha256 = digest,
          size = body_size, deleted = is_delete, seq = new_seq,
          project_id = l.project_id, session_id = l.session_id, stage = l.stage,
          updated_by = auth.uid(), device_id = dev, updated_at = stamp
      where d.id = doc_id;
  end if;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version,
                                        merge_parent, content, sha256, size, deleted, origin,
                                        author_id, device_id, seq, provenance, created_at)
    values (doc_id, ws, doc_path, new_version, head.version, side_version, new_content, digest,
            body_size, is_delete, origin, auth.uid(), dev, new_seq, prov, stamp);
  if origin not in ('sync', 'import') then
    perform syncd.record_activity(ws, dev, origin, doc_path,
      jsonb_strip_nulls(jsonb_build_object('version', new_version, 'parent_version', head.version,
                                           'merge_parent', side_version, 'deleted', is_delete))
      || coalesce(change -> 'activity', '{}'::jsonb));
  end if;
  return jsonb_build_object('path', doc_path, 'status', 'accepted', 'version', new_version,
                            'side_version', side_version,
                            'sha256', digest, 'deleted', is_delete, 'seq', new_seq, 'created_at', stamp);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.content_bytes(content jsonb)
 RETURNS bytea
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return case content ->> 'encoding'
    when 'utf-8' then convert_to(content ->> 'text', 'UTF8')
    when 'base64' then decode(content ->> 'data', 'base64')
  end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.content_problem(content jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return case
    when content is null or jsonb_typeof(content) <> 'object' then 'must be an object with an "encoding"'
    when content ? 'format' and jsonb_typeof(content -> 'format') <> 'string' then '"format" must be a string'
    when content ->> 'encoding' = 'utf-8' then
      case when jsonb_typeof(content -> 'text') is distinct from 'string' then 'utf-8 needs "text" as a string' end
    when content ->> 'encoding' = 'base64' then
      case when jsonb_typeof(content -> 'data') is distinct from 'string' then 'base64 needs "data" as a string'
           when length(content ->> 'data') % 4 <> 0 or content ->> 'data' !~ '^[A-Za-z0-9+/]*={0,2}$'
             then '"data" is not canonical base64 (no whitespace, padded with "=" to a multiple of 4)' end
    else format('unknown "encoding" %s: utf-8 (with "text") or base64 (with "data")',
                coalesce(content -> 'encoding', 'null'::jsonb))
  end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.derive_layout(ws uuid)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  roots text[] := syncd.layout_roots(ws);
  touched uuid[];
begin
  create temporary table pg_temp.derived on commit drop as
    select d.id, d.session_id as old_session, l.project, l.session, l.stage
      from public.documents d cross join lateral syncd.layout_under(d.path, roots) l
     where d.workspace_id = ws;
  insert into public.projects (workspace_id, name)
    select distinct ws, project from pg_temp.derived where project is not null
    on conflict (workspace_id, name) do nothing;
  insert into public.sessions (workspace_id, project_id, slug)
    select distinct ws, p.id, x.session from pg_temp.derived x
      join public.projects p on p.workspace_id = ws and p.name = x.project
     where x.session is not null
    on conflict on constraint sessions_project_id_slug_key do nothing;
  perform set_config('syncd.pipeline', 'deferred', true);
  with moved as (
    update public.documents d set project_id = p.id, session_id = s.id, stage = x.stage
      from pg_temp.derived x
      left join public.projects p on p.workspace_id = ws and p.name = x.project
      left join public.sessions s on s.project_id = p.id and s.slug = x.session
     where d.id = x.id and (d.project_id, d.session_id, d.stage) is distinct from (p.id, s.id, x.stage)
    returning d.session_id, x.old_session)
  select array_agg(distinct t) into touched
    from moved cross join lateral unnest(array[moved.session_id, moved.old_session]) t where t is not null;
  perform set_config('syncd.pipeline', '', true);
  update public.sessions set pipeline = syncd.pipeline_of(id) where id = any(touched);
  -- activity about a document at its path takes the document's; any other, its path's
  update public.activity_log a
     set project_id = d.project_id, session_id = d.session_id
    from public.documents d
   where a.workspace_id = ws and d.id = a.document_id and d.path = a.details ->> 'path'
     and (a.project_id, a.session_id) is distinct from (d.project_id, d.session_id);
  update public.activity_log a
     set project_id = l.project_id, session_id = l.session_id
    from public.activity_log x cross join lateral syncd.layout_ids(ws, x.details ->> 'path') l
   where x.id = a.id and x.workspace_id = ws and x.details ? 'path'
     and not exists (select 1 from public.documents d where d.id = x.document_id and d.path = x.details ->> 'path')
     and (a.project_id, a.session_id) is distinct from (l.project_id, l.session_id);
  update public.documents set content = content
   where workspace_id = ws and not deleted and (path like '%/CURRENT_SESSION' or path like '%/session_state.json');
  drop table pg_temp.derived;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.ensure_layout(ws uuid, path text, OUT project_id uuid, OUT session_id uuid, OUT stage text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  l record;
begin
  select * into l from syncd.layout(ws, path);
  stage := l.stage;
  if l.project is null then
    return;
  end if;
  insert into public.projects (workspace_id, name) values (ws, l.project)
    on conflict (workspace_id, name) do nothing;
  select id into project_id from public.projects where workspace_id = ws and name = l.project;
  if l.session is null then
    return;
  end if;
  insert into public.sessions (workspace_id, project_id, slug)
    values (ws, ensure_layout.project_id, l.session)
    on conflict on constraint sessions_project_id_slug_key do nothing;
  select id into session_id from public.sessions s
    where s.project_id = ensure_layout.project_id and s.slug = l.session;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.entry_of(content jsonb, OUT identity text, OUT size bigint)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  if content ->> 'encoding' = 'directory' then
    identity := encode(sha256(convert_to('040000 ' || encode(sha256(''::bytea), 'hex'), 'UTF8')), 'hex');
    size := 0;
  else
    select e.identity, e.size into identity, size from syncd.file_entry_of(content) e;
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.entry_problem(ws uuid, doc_path text, content jsonb)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return case
    when jsonb_typeof(content) = 'object' and content ->> 'encoding' = 'directory' then
      case when content <> '{"encoding": "directory", "format": "directory"}'::jsonb
             then 'a directory is {"encoding": "directory", "format": "directory"}, with nothing else'
      end
    else syncd.file_entry_problem(ws, doc_path, content)
  end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.file_entry_of(content jsonb, OUT identity text, OUT size bigint)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
declare
  body bytea;
begin
  if content ->> 'encoding' = 'blob' then
    identity := content ->> 'sha256';
    size := (content ->> 'size')::bigint;
  else
    body := case when content ->> 'encoding' = 'link' then convert_to(content ->> 'target', 'UTF8')
                 else syncd.content_bytes(content) end;
    identity := encode(sha256(body), 'hex');
    size := length(body);
  end if;
  identity := syncd.identity(identity, coalesce(content -> 'executable' = 'true'::jsonb, false),
                             content ->> 'encoding' = 'link');
end
$function$;

CREATE OR REPLACE FUNCTION syncd.file_entry_problem(ws uuid, doc_path text, content jsonb)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return case
    when content is null or jsonb_typeof(content) <> 'object' then 'must be an object with an "encoding"'
    when content ? 'executable' and content -> 'executable' <> 'true'::jsonb
      then '"executable" is true, or absent for a file that is not executable'
    when content ->> 'encoding' = 'blob' then
      case when content -> 'format' is distinct from '"binary"' then 'a blob''s "format" is "binary"'
           when jsonb_typeof(content -> 'sha256') is distinct from 'string' or content ->> 'sha256' !~ '^[0-9a-f]{64}$'
             then 'a blob needs "sha256": 64 lowercase hex digits'
           when jsonb_typeof(content -> 'size') is distinct from 'number' or (content ->> 'size') !~ '^[0-9]{1,19}$'
             then 'a blob needs "size": its number of bytes'
           when (content ->> 'size')::numeric > syncd.blob_max_size()
             then format('a blob takes at most %s MiB', syncd.blob_max_size() / 1048576)
           when not syncd.has_blob(ws, content ->> 'sha256', (content ->> 'size')::bigint)
             then format('the blob %s (%s bytes) is not in the store: upload it first (syncd_blob_put, syncd_blob_finish)',
                         content ->> 'sha256', content ->> 'size')
      end
    when content ->> 'encoding' = 'link' then
      case when content ? 'executable' then 'a link is never "executable"'
           when content -> 'format' is distinct from '"link"' then 'a link''s "format" is "link"'
           when jsonb_typeof(content -> 'target') is distinct from 'string' then 'a link needs "target" as a string'
           else syncd.link_problem(doc_path, content ->> 'target')
      end
    when content ->> 'encoding' in ('utf-8', 'base64') then syncd.content_problem(content)
    else format('unknown "encoding" %s: utf-8 (with "text"), blob (with "sha256" and "size"), link (with "target") '
                'or base64 (with "data")', coalesce(content -> 'encoding', 'null'::jsonb))
  end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.has_blob(ws uuid, digest text, blob_size bigint)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  if exists (select 1 from public.blobs b
              where b.workspace_id = ws and b.sha256 = digest and (blob_size is null or b.size = blob_size)
                and b.complete) then
    return true;
  end if;
  if to_regclass('storage.objects') is not null then
    return exists (select 1 from storage.objects o
                    where o.bucket_id = 'syncd-blobs' and o.name = ws::text || '/' || digest);
  end if;
  return false;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.head_json(d public.documents, with_content boolean)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object(
    'path', d.path, 'version', d.version, 'sha256', d.sha256, 'size', d.size,
    'deleted', d.deleted, 'seq', d.seq, 'updated_at', d.updated_at)
    || case when with_content then jsonb_build_object('content', d.content) else '{}'::jsonb end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.heartbeat(ws uuid, dev uuid, beat jsonb)
 RETURNS boolean
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  with touched as (
    update public.devices d
       set state = beat ->> 'state', reason = left(beat ->> 'reason', 1000),
           software_version = left(beat ->> 'version', 100), applied_seq = (beat ->> 'applied_seq')::bigint,
           heartbeat_at = now(), last_seen = now()
     where d.id = dev and d.workspace_id = ws
       and (syncd.trusted() or d.user_id = (select auth.uid()))
    returning 1)
  select exists (select 1 from touched)
$function$;

CREATE OR REPLACE FUNCTION syncd.identity(bytes_sha256 text, executable boolean, link boolean)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return case when link then encode(sha256(convert_to('120000 ' || bytes_sha256, 'UTF8')), 'hex')
              when executable then encode(sha256(convert_to('100755 ' || bytes_sha256, 'UTF8')), 'hex')
              else bytes_sha256 end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.import_members(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET jit TO 'off'
AS $function$
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
  if not dry then
    perform syncd.require_owner(ws);
  end if;
  for m in select * from syncd.legacy_members(coalesce($1 -> 'files', '[]'::jsonb), ws) loop
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
$function$;

CREATE OR REPLACE FUNCTION syncd.inline_budget()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 8 * 1024 * 1024::bigint $function$;

CREATE OR REPLACE FUNCTION syncd.inline_item_max()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$ select 1024 * 1024::bigint $function$;

CREATE OR REPLACE FUNCTION syncd.install_storage_policies()
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if to_regclass('storage.objects') is null then
    return;
  end if;
  -- private: `public` is false by default, and only the columns of Storage's first schema are
  -- named (`supabase db reset` may run this before Storage's own migrations add the others)
  insert into storage.buckets (id, name) values ('syncd-blobs', 'syncd-blobs') on conflict (id) do nothing;
  drop policy if exists syncd_blobs_read on storage.objects;
  drop policy if exists syncd_blobs_create on storage.objects;
  drop policy if exists syncd_blobs_only_readers on storage.objects;
  drop policy if exists syncd_blobs_only_writers on storage.objects;
  drop policy if exists syncd_blobs_unchanged on storage.objects;
  drop policy if exists syncd_blobs_kept on storage.objects;
  drop policy if exists syncd_blobs_not_anon on storage.objects;
  create policy syncd_blobs_read on storage.objects for select to authenticated
    using (bucket_id = 'syncd-blobs' and syncd.can_read_blob(name));
  create policy syncd_blobs_create on storage.objects for insert to authenticated
    with check (bucket_id = 'syncd-blobs' and syncd.can_write_blob(name));
  create policy syncd_blobs_only_readers on storage.objects as restrictive for select to authenticated
    using (bucket_id is distinct from 'syncd-blobs' or syncd.can_read_blob(name));
  create policy syncd_blobs_only_writers on storage.objects as restrictive for insert to authenticated
    with check (bucket_id is distinct from 'syncd-blobs' or syncd.can_write_blob(name));
  create policy syncd_blobs_unchanged on storage.objects as restrictive for update to authenticated
    using (bucket_id is distinct from 'syncd-blobs') with check (bucket_id is distinct from 'syncd-blobs');
  create policy syncd_blobs_kept on storage.objects as restrictive for delete to authenticated
    using (bucket_id is distinct from 'syncd-blobs');
  -- anon may not execute syncd's functions at all: its bound names no function
  create policy syncd_blobs_not_anon on storage.objects as restrictive for all to anon
    using (bucket_id is distinct from 'syncd-blobs') with check (bucket_id is distinct from 'syncd-blobs');
end
$function$;

CREATE OR REPLACE FUNCTION syncd.is_owner(ws uuid)
 RETURNS boolean
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select coalesce(syncd.trusted() or syncd.workspace_role(ws) = 'owner', false)
$function$;

CREATE OR REPLACE FUNCTION syncd.is_template(body text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return btrim(regexp_replace(regexp_replace(regexp_replace(coalesce(body, ''),
           '\A\ufeff?---\r?\n.*?\r?\n---[ \t]*(\r?\n|\Z)', '', 's'),   -- front matter
           '<!--.*?-->', '', 'gs'),                                     -- comments
           '(^|\n)[ \t]*(#+[^\n]*|[-*+][ \t]*(\[[ xX]?\])?[ \t]*|>?[ \t]*(TODO|TBD|FIXME|\.\.\.|…|<[^>\n]*>|\[[^\]\n]*\])?[:.]?[ \t]*)(?=\r?\n|$)',
           '', 'gi'), E' \t\r\n') = '';
end
$function$;

CREATE OR REPLACE FUNCTION syncd.is_time(t text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  perform t::timestamptz;
  return true;
exception when others then
  return false;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.layout(path text, OUT project text, OUT session text, OUT stage text)
 RETURNS record
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select l.project, l.session, l.stage from syncd.layout_under(path, syncd.builtin_layout_roots()) l
$function$;

CREATE OR REPLACE FUNCTION syncd.layout(ws uuid, path text, OUT root text, OUT project text, OUT session text, OUT stage text)
 RETURNS record
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select * from syncd.layout_under(path, syncd.layout_roots(ws))
$function$;

CREATE OR REPLACE FUNCTION syncd.layout_ids(ws uuid, doc_path text, OUT project_id uuid, OUT session_id uuid)
 RETURNS record
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select p.id, s.id from syncd.layout(ws, doc_path) l
    left join public.projects p on p.workspace_id = ws and p.name = l.project
    left join public.sessions s on s.project_id = p.id and s.slug = l.session
$function$;

CREATE OR REPLACE FUNCTION syncd.layout_roots(ws uuid)
 RETURNS text[]
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select syncd.builtin_layout_roots()
         || coalesce((select w.layout_roots from public.workspaces w where w.id = ws), '{}')
$function$;

CREATE OR REPLACE FUNCTION syncd.layout_under(path text, roots text[], OUT root text, OUT project text, OUT session text, OUT stage text)
 RETURNS record
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
declare
  r text;
  p text[];
  n int;
begin
  foreach r in array roots loop
    if starts_with(path, r || '/') and (root is null or length(r) > length(root)) then
      root := r;
    end if;
  end loop;
  p := string_to_array(substr(path, length(root) + 2), '/');
  n := coalesce(cardinality(p), 0);
  if n < 2 then
    root := null;
    return;
  end if;
  project := p[1];
  if n >= 4 and p[2] = 'sessions' then
    -- <root>/<P>/sessions/<S>/...
    session := p[3];
    if n >= 5 then
      stage := syncd.stage_of(p[4]);
    end if;
  elsif n >= 4 and (syncd.stage_of(p[3]) is not null or p[3] = 'metadata') then
    -- <root>/<P>/<S>/<stage dir>/... : a session without the sessions/ level
    session := p[2];
    stage := syncd.stage_of(p[3]);
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.legacy_login(line text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select m[1] from regexp_match(trim(split_part(line, '#', 1)),
                                '^(?:github\|)?@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))$') m
$function$;

CREATE OR REPLACE FUNCTION syncd.legacy_members(files jsonb, ws uuid)
 RETURNS TABLE(path text, login text, role text, project text, session text, user_id uuid)
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select f ->> 'path', syncd.legacy_login(line),
         case when f ->> 'path' ~ '(^|/)\.owner$' then 'owner' else 'collaborator' end,
         l.project, l.session,
         (select p.id from public.profiles p where lower(p.github_login) = lower(syncd.legacy_login(line)))
    from jsonb_array_elements(files) f
    cross join lateral syncd.layout(ws, f ->> 'path') l
    cross join lateral regexp_split_to_table(f ->> 'text', '\r?\n') line
   where syncd.legacy_login(line) is not null
     and (f ->> 'path' = '.owner' or l.session is not null)
$function$;

CREATE OR REPLACE FUNCTION syncd.link_problem(doc_path text, target text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
declare
  parts text[];
  ups integer := 0;
begin
  if target is null or target = '' then
    return 'a link needs a "target"';
  end if;
  if left(target, 1) = '/' then
    return 'a link''s target is relative, not an absolute path';
  end if;
  select coalesce(array_agg(p order by o), '{}') into parts
    from unnest(string_to_array(target, '/')) with ordinality u(p, o) where p not in ('', '.');
  while ups < cardinality(parts) and parts[ups + 1] = '..' loop
    ups := ups + 1;
  end loop;
  if ups = cardinality(parts) or '..' = any(parts[ups + 1:]) then
    return 'a link''s target is a run of ".." and then plain names';
  end if;
  if ups > length(doc_path) - length(replace(doc_path, '/', '')) then
    return 'a link''s target stays inside the root';
  end if;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.lock_workspace(ws uuid)
 RETURNS bigint
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select last_seq from public.workspaces where id = ws for no key update
$function$;

CREATE OR REPLACE FUNCTION syncd.members(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  action text := coalesce($1 ->> 'action', 'list');
  login text := $1 ->> 'login';
  new_role text := $1 ->> 'role';
  sess uuid;
  who uuid;
  n integer;
  m integer;
begin
  if not syncd.can_see_workspace(ws) then
    raise exception 'no access to this workspace' using errcode = '42501';
  end if;
  if action = 'list' then
    return jsonb_build_object('members', coalesce((
      select jsonb_agg(x order by x ->> 'session' nulls first, x ->> 'login') from (
        select jsonb_build_object('login', p.github_login, 'name', p.display_name, 'role', m.role,
                                  'session', null, 'project', null, 'pending', false) x
          from public.workspace_members m join public.profiles p on p.id = m.user_id
         where m.workspace_id = ws
        union all
        select jsonb_build_object('login', p.github_login, 'name', p.display_name, 'role', m.role,
                                  'session', s.slug, 'project', pr.name, 'pending', false)
          from public.session_members m join public.profiles p on p.id = m.user_id
          join public.sessions s on s.id = m.session_id join public.projects pr on pr.id = s.project_id
         where s.workspace_id = ws
        union all
        select jsonb_build_object('login', i.github_login, 'name', null, 'role', i.role,
                                  'session', s.slug, 'project', pr.name, 'pending', true)
          from public.invitations i left join public.sessions s on s.id = i.session_id
          left join public.projects pr on pr.id = s.project_id
         where i.workspace_id = ws and syncd.is_owner(ws)) y), '[]'::jsonb));
  end if;
  perform syncd.require_owner(ws);
  if login is null or login !~ '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$' then
    raise exception 'give a GitHub login, not %', coalesce(login, 'nothing') using errcode = '22023';
  end if;
  if action in ('add', 'role') and coalesce(new_role, '') not in ('owner', 'collaborator', 'reader') then
    raise exception 'role must be owner, collaborator or reader' using errcode = '22023';
  end if;
  if $1 ? 'session' then
    select s.id into sess from public.sessions s join public.projects p on p.id = s.project_id
     where s.workspace_id = ws and p.name = $1 ->> 'project' and s.slug = $1 ->> 'session';
    if sess is null then
      raise exception 'no session %/% in this workspace', $1 ->> 'project', $1 ->> 'session' using errcode = 'PT404';
    end if;
  end if;
  select p.id into who from public.profiles p where lower(p.github_login) = lower(login);
  if action in ('add', 'role') then
    if who is null then
      delete from public.invitations i where i.workspace_id = ws and i.session_id is not distinct from sess
        and lower(i.github_login) = lower(login);
      insert into public.invitations (workspace_id, session_id, github_login, role) values (ws, sess, login, new_role);
      return jsonb_build_object('invited', login, 'role', new_role);
    elsif sess is null then
      insert into public.workspace_members (workspace_id, user_id, role) values (ws, who, new_role)
        on conflict (workspace_id, user_id) do update set role = excluded.role;
    else
      insert into public.session_members (session_id, user_id, role) values (sess, who, new_role)
        on conflict (session_id, user_id) do update set role = excluded.role;
    end if;
    return jsonb_build_object('member', login, 'role', new_role);
  elsif action = 'remove' then
    if sess is null then
      delete from public.workspace_members m where m.workspace_id = ws and m.user_id = who;
    else
      delete from public.session_members m where m.session_id = sess and m.user_id = who;
    end if;
    get diagnostics n = row_count;
    delete from public.invitations i where i.workspace_id = ws and i.session_id is not distinct from sess
      and lower(i.github_login) = lower(login);
    get diagnostics m = row_count;
    return jsonb_build_object('removed', n + m);
  end if;
  raise exception 'unknown action %', action using errcode = '22023';
end
$function$;

CREATE OR REPLACE FUNCTION syncd.mode_of(content jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select case when content is null then null
              when content ->> 'encoding' = 'link' then '120000'
              when content ->> 'encoding' = 'directory' then '040000'
              when content -> 'executable' = 'true'::jsonb then '100755'
              else '100644' end
$function$;

CREATE OR REPLACE FUNCTION syncd.move_one(ws uuid, dev uuid, change jsonb, last_seq bigint)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  new_path text := change ->> 'path';
  old_path text := change ->> 'moved_from';
  base integer := (change ->> 'base_version')::integer;
  head public.documents;
  there public.documents;
  old_l record;
  new_l record;
  tomb uuid;
  new_version integer;
begin
  if old_path is null or old_path = '' or old_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))'
     or new_path is null or new_path = '' or new_path ~ '(^/|/$|//|(^|/)\.\.?(/|$))' or old_path = new_path then
    return jsonb_build_object('path', new_path, 'status', 'invalid',
                              'message', 'a move names two different relative paths, without "." or ".." parts');
  end if;
  if lower(new_path) ~ '(^|/)(\.git[. ]*|git~1)(/|$)' then  -- as commit_one: never stored
    return jsonb_build_object('path', new_path, 'status', 'invalid',
                              'message', 'a name Git keeps for itself (.git) is never stored');
  end if;
  if octet_length(old_path) > 4096 then
    return jsonb_build_object('path', new_path, 'status', 'invalid', 'message', 'a path takes at most 4096 bytes');
  end if;
  -- commit_changes checked the new path's session; the old one's must be writable too
  if not syncd.can_write(ws, syncd.session_of(ws, old_path)) then
    return jsonb_build_object('path', new_path, 'status', 'forbidden',
      'message', format('you may read but not write %s, the path moved from', old_path));
  end if;

  select * into head from public.documents d where d.workspace_id = ws and d.path = old_path for update;
  select * into there from public.documents d where d.workspace_id = ws and d.path = new_path for update;

  -- A retried move whose first attempt landed: OLD's tombstone says where it went.
  if head.deleted and there.id is not null and head.version = base + 1
     and exists (select 1 from public.document_versions v
                  where v.document_id = head.id and v.version = head.version and v.moved_to = new_path)
     and exists (select 1 from public.document_versions v
                  where v.document_id = there.id and v.version = head.version and v.moved_from = old_path) then
    return jsonb_build_object('path', new_path, 'status', 'duplicate', 'version', head.version,
                              'sha256', (select v.sha256 from public.document_versions v
                                          where v.document_id = there.id and v.version = head.version),
                              'deleted', false, 'head', syncd.head_json(there, true));
  end if;
  if there.id is not null then
    return jsonb_build_object('path', new_path, 'status', 'conflict', 'head', syncd.head_json(there, true),
                              'message', 'the path moved to has a history of its own');
  end if;
  if head.id is null or head.deleted or head.version is distinct from base then
    return jsonb_build_object('path', new_path, 'status', 'conflict', 'moved_from', old_path,
                              'head', case when head.id is not null then syncd.head_json(head, true) end);
  end if;

  if head.content ->> 'encoding' = 'link' and syncd.link_problem(new_path, head.content ->> 'target') is not null then
    -- a link's target is relative to where it is: at new_path it must still stay inside the root
    return jsonb_build_object('path', new_path, 'status', 'invalid', 'message',
      format('a link moved to %s: %s', new_path, syncd.link_problem(new_path, head.content ->> 'target')));
  end if;

  -- the tombstone takes the first seq, the version at new_path the second: the one this
  -- answer names, as every commit's answer names the change at its seq
  new_version := head.version + 1;
  select * into new_l from syncd.ensure_layout(ws, new_path);
  select * into old_l from syncd.ensure_layout(ws, old_path);
  update public.documents d
     set path = new_path, version = new_version, seq = last_seq + 2,
         project_id = new_l.project_id, session_id = new_l.session_id, stage = new_l.stage,
         updated_by = auth.uid(), device_id = dev, updated_at = now()
   where d.id = head.id;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version, content,
                                        sha256, size, deleted, origin, author_id, device_id, seq, moved_from)
    values (head.id, ws, new_path, new_version, head.version, head.content, head.sha256, head.size, false,
            'move', auth.uid(), dev, last_seq + 2, old_path);
  insert into public.documents (workspace_id, path, project_id, session_id, stage, version, content, sha256,
                                size, deleted, seq, updated_by, device_id)
    values (ws, old_path, old_l.project_id, old_l.session_id, old_l.stage, new_version, null, null,
            null, true, last_seq + 1, auth.uid(), dev)
    returning id into tomb;
  insert into public.document_versions (document_id, workspace_id, path, version, parent_version, content,
                                        sha256, size, deleted, origin, author_id, device_id, seq, moved_to)
    values (tomb, ws, old_path, new_version, head.version, null, null, null, true,
            'move', auth.uid(), dev, last_seq + 1, new_path);
  perform syncd.record_activity(ws, dev, 'move', new_path,
    jsonb_build_object('moved_from', old_path, 'version', new_version, 'parent_version', head.version));
  return jsonb_build_object('path', new_path, 'status', 'accepted', 'version', new_version,
                            'sha256', head.sha256, 'deleted', false, 'seq', last_seq + 2, 'created_at', now());
end
$function$;

CREATE OR REPLACE FUNCTION syncd.my_session_documents()
 RETURNS SETOF uuid
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select d.id from public.session_members m join public.documents d on d.session_id = m.session_id
   where m.user_id = (select auth.uid())
$function$;

CREATE OR REPLACE FUNCTION syncd.my_sessions()
 RETURNS SETOF uuid
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select m.session_id from public.session_members m where m.user_id = (select auth.uid())
$function$;

CREATE OR REPLACE FUNCTION syncd.my_workspaces()
 RETURNS SETOF uuid
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select m.workspace_id from public.workspace_members m where m.user_id = (select auth.uid())
$function$;

CREATE OR REPLACE FUNCTION syncd.notify_changes()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  perform pg_notify(coalesce(tg_argv[0], 'syncd:') || w.workspace_id::text, '')
     from (select distinct n.workspace_id from added n) w;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.on_auth_identity()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  if new.provider = 'github' then
    perform syncd.claim_login(new.user_id, coalesce(new.identity_data ->> 'user_name',
                                                    new.identity_data ->> 'preferred_username'));
  end if;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.on_auth_user()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  insert into public.profiles (id, display_name, avatar_url)
    values (new.id, coalesce(new.raw_user_meta_data ->> 'full_name', new.raw_user_meta_data ->> 'name'),
            new.raw_user_meta_data ->> 'avatar_url')
    on conflict (id) do update set display_name = excluded.display_name, avatar_url = excluded.avatar_url;
  if to_regclass('auth.identities') is null then
    perform syncd.claim_login(new.id, coalesce(new.raw_user_meta_data ->> 'user_name',
                                               new.raw_user_meta_data ->> 'preferred_username'));
  end if;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.open_workspace(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws_slug text := $1 ->> 'workspace';
  ws public.workspaces;
  dev jsonb := $1 -> 'device';
  me uuid := auth.uid();
begin
  if coalesce(($1 ->> 'create')::boolean, false) then
    if not syncd.trusted() and me is null then
      raise exception 'sign in to create a workspace' using errcode = '42501';
    end if;
    insert into public.workspaces (slug, name, created_by)
      values (ws_slug, coalesce($1 ->> 'name', ws_slug), me)
      on conflict on constraint workspaces_slug_key do nothing
      returning * into ws;
    if ws.id is not null and me is not null then
      insert into public.workspace_members (workspace_id, user_id, role) values (ws.id, me, 'owner');
    end if;
  end if;
  select * into ws from public.workspaces w where w.slug = ws_slug;
  if ws.id is null or not syncd.can_see_workspace(ws.id) then
    raise exception 'workspace "%" does not exist (or you are not a member of it)', ws_slug
      using errcode = 'PT404', hint = 'create it with `syncd init`, or ask its owner for access';
  end if;
  if dev is not null then
    insert into public.devices (id, workspace_id, user_id, name, hostname)
      values ((dev ->> 'id')::uuid, ws.id, me, left(coalesce(dev ->> 'name', dev ->> 'hostname', 'unnamed device'), 255),
              left(dev ->> 'hostname', 255))
      on conflict (id) do update  -- an open without a name keeps the device's name
        set name = coalesce(left(dev ->> 'name', 255), public.devices.name),
            hostname = coalesce(left(dev ->> 'hostname', 255), public.devices.hostname), last_seen = now()
        where public.devices.user_id is not distinct from me;
  end if;
  return jsonb_build_object(
    'workspace_id', ws.id, 'workspace', ws.slug, 'last_seq', ws.last_seq,
    'schema_version', (select max(version) from syncd.schema_migrations),
    'role', case when syncd.trusted() then 'service' else coalesce(syncd.workspace_role(ws.id), 'session member') end);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.own_device(ws uuid, dev uuid)
 RETURNS uuid
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select d.id from public.devices d
   where d.id = dev and d.workspace_id = ws and (syncd.trusted() or d.user_id = (select auth.uid()))
$function$;

CREATE OR REPLACE FUNCTION syncd.pipeline_of(sess uuid)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  return (select jsonb_object_agg(st.stage, syncd.stage_of_session(sess, st.stage) order by st.ord) from syncd.stages() st);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.project_files()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  l record;
  info jsonb;
begin
  select * into l from syncd.layout(new.workspace_id, new.path);
  if l.project is null or new.path not in (l.root || '/' || l.project || '/CURRENT_SESSION',
                                           l.root || '/' || l.project || '/session_state.json') then
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
$function$;

CREATE OR REPLACE FUNCTION syncd.record_activity(ws uuid, dev uuid, kind text, doc_path text, details jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  if jsonb_typeof(details) not in ('object', 'null') then
    raise exception 'an event''s details are an object, got %', jsonb_typeof(details) using errcode = '22023';
  end if;
  if octet_length(details::text) > 16384 then
    raise exception 'an event''s details take at most 16 KiB' using errcode = 'PT413';
  end if;
  if not syncd.can_read(ws, syncd.session_of(ws, doc_path)) then
    raise exception 'no access to %', coalesce(doc_path, 'this workspace') using errcode = '42501';
  end if;
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details)
  select ws, l.project_id, l.session_id,
         (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path),
         auth.uid(), syncd.own_device(ws, dev), kind,
         case when jsonb_typeof(details) = 'object' then details else '{}'::jsonb end || jsonb_build_object('path', doc_path)
    from syncd.layout_ids(ws, doc_path) l;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.record_events(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  dev uuid := nullif($1 ->> 'device', '')::uuid;
  event jsonb;
  n integer := 0;
begin
  if jsonb_typeof(coalesce($1 -> 'events', '[]'::jsonb)) <> 'array'
     or jsonb_array_length(coalesce($1 -> 'events', '[]'::jsonb)) > syncd.commit_max_changes() then
    raise exception 'a call records at most % events', syncd.commit_max_changes()
      using errcode = 'PT413', hint = 'split the events into several calls';
  end if;
  for event in select value from jsonb_array_elements(coalesce($1 -> 'events', '[]'::jsonb)) loop
    if coalesce(event ->> 'kind', '') !~ '^[a-z][a-z_-]{0,39}$' then
      raise exception 'an event needs a kind (lowercase word), got %', event -> 'kind'
        using errcode = '22023';
    end if;
    if not syncd.can_read(ws, syncd.session_of(ws, event ->> 'path')) then
      raise exception 'no access to %', coalesce(event ->> 'path', 'this workspace') using errcode = '42501';
    end if;
    if event ->> 'kind' in ('sync', 'merge', 'restore', 'resolve', 'move')  -- the contract's own, with the versions
       or (event ->> 'kind' = 'import' and not syncd.is_owner(ws))
       or (event ->> 'kind' = 'conflict' and not syncd.can_write(ws, syncd.session_of(ws, event ->> 'path'))) then
      raise exception 'you do not record "%" events', event ->> 'kind' using errcode = '42501';
    end if;
    perform syncd.record_activity(ws, dev, event ->> 'kind', event ->> 'path', event -> 'details');
    n := n + 1;
  end loop;
  return jsonb_build_object('recorded', n);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.refresh_new_pipelines()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  touched record;
begin
  if current_setting('syncd.pipeline', true) = 'deferred' then
    return null;
  end if;
  for touched in select distinct n.session_id, n.stage from added n where n.session_id is not null loop
    perform syncd.refresh_stage(touched.session_id, touched.stage);
  end loop;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.refresh_pipelines()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  touched record;
begin
  if current_setting('syncd.pipeline', true) = 'deferred' then
    return null;
  end if;
  for touched in
    select distinct n.session_id, n.stage from added n where n.session_id is not null
    union
    select o.session_id, o.stage from replaced o join added n on n.id = o.id
     where o.session_id is not null and o.stage is not null
       and (o.session_id, o.stage) is distinct from (n.session_id, n.stage)
  loop
    perform syncd.refresh_stage(touched.session_id, touched.stage);
  end loop;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.refresh_stage(sess uuid, stage_name text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  update public.sessions
     set pipeline = case when pipeline = '{}'::jsonb then syncd.pipeline_of(id)
                         else pipeline || jsonb_build_object(stage_name, syncd.stage_of_session(id, stage_name)) end
   where id = sess and (stage_name is not null or pipeline = '{}'::jsonb)
$function$;

CREATE OR REPLACE FUNCTION syncd.require_owner(ws uuid)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  if not syncd.is_owner(ws) then
    raise exception 'only an owner of the workspace can change its members' using errcode = '42501';
  end if;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.session_of(ws uuid, doc_path text)
 RETURNS uuid
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select session_id from syncd.layout_ids(ws, doc_path)
$function$;

CREATE OR REPLACE FUNCTION syncd.session_role(sess uuid)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select m.role from public.session_members m where m.session_id = sess and m.user_id = (select auth.uid())
$function$;

CREATE OR REPLACE FUNCTION syncd.session_state(sess uuid)
 RETURNS jsonb
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select jsonb_build_object('current', p.current_session = s.slug,
                            'stages', case when p.current_session = s.slug then p.state -> 'session_state' -> 'stages' end)
    from public.sessions s join public.projects p on p.id = s.project_id
   where s.id = sess and syncd.can_read(s.workspace_id, s.id)
$function$;

CREATE OR REPLACE FUNCTION syncd.set_last_seq(ws uuid, seq bigint)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  update public.workspaces set last_seq = greatest(last_seq, seq) where id = ws
$function$;

CREATE OR REPLACE FUNCTION syncd.set_layout_roots(jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid := syncd.workspace_id($1 ->> 'workspace');
  wanted text[];
  current text[];
begin
  if jsonb_typeof($1 -> 'roots') is distinct from 'array' then
    raise exception 'layout roots are a list of at most 32 directories' using errcode = '22023';
  end if;
  if jsonb_array_length($1 -> 'roots') > 32
     or exists (select 1 from jsonb_array_elements($1 -> 'roots') r where jsonb_typeof(r) <> 'string') then
    raise exception 'layout roots are a list of at most 32 directories' using errcode = '22023';
  end if;
  select coalesce(array_agg(distinct r order by r), '{}') into wanted
    from (select btrim(r, '/') as r from jsonb_array_elements_text($1 -> 'roots') r) x
   where r <> all (syncd.builtin_layout_roots());
  if exists (select 1 from unnest(wanted) r
              where length(r) > 255 or r !~ '^[^/]+(/[^/]+)*$' or r ~ '(^|/)\.\.?(/|$)'
                 or exists (select 1 from unnest(string_to_array(r, '/')) part where lower(part) = '.git')) then
    raise exception 'a layout root is a directory of the workspace, like docs/projects (no "..", ".", ".git" or empty parts)'
      using errcode = '22023';
  end if;
  current := (select w.layout_roots from public.workspaces w where w.id = ws);
  if current = wanted then
    return jsonb_build_object('roots', to_jsonb(current), 'changed', false);
  end if;
  if not syncd.is_owner(ws) then
    raise exception 'the workspace''s layout roots are [%]; only an owner of the workspace can change them',
      array_to_string(current, ', ') using errcode = '42501';
  end if;
  perform syncd.lock_workspace(ws);
  update public.workspaces set layout_roots = wanted where id = ws;
  perform syncd.derive_layout(ws);
  return jsonb_build_object('roots', to_jsonb(wanted), 'changed', true);
end
$function$;

CREATE OR REPLACE FUNCTION syncd.stage_of(dir text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return case lower(dir)
    when 'intents' then 'intent' when 'intent' then 'intent'
    when 'contexts' then 'context' when 'context' then 'context'
    when 'specs' then 'spec' when 'spec' then 'spec'
    when 'plans' then 'plan' when 'plan' then 'plan'
    when 'tasks' then 'tasks'
    when 'implementation' then 'implementation'
    when 'feedback' then 'feedback'
  end;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.stage_of_session(sess uuid, stage_name text)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  return coalesce(
    (select jsonb_build_object(
              'status', case when exists (select 1 from public.documents s
                                           where s.session_id = sess and s.stage = stage_name and not s.deleted
                                             and coalesce(s.size, 0) > 0 and not syncd.is_template(s.content ->> 'text'))
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
    jsonb_build_object('status', 'pending', 'documents', 0));
end
$function$;

CREATE OR REPLACE FUNCTION syncd.stages()
 RETURNS TABLE(stage text, ord integer)
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select s, p::integer from unnest(array['intent', 'context', 'spec', 'plan', 'tasks', 'implementation',
                                         'feedback']) with ordinality t(s, p)
$function$;

CREATE OR REPLACE FUNCTION syncd.touch_device(dev uuid)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  update public.devices set last_seen = now() where id = dev
$function$;

CREATE OR REPLACE FUNCTION syncd.trusted()
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select case when nullif(auth.role(), '') is not null then auth.role() = 'service_role'
              else coalesce(nullif(current_setting('role', true), ''), 'none') not in ('anon', 'authenticated') end
$function$;

CREATE OR REPLACE FUNCTION syncd.version_author()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  select p.github_login, p.display_name into new.author_login, new.author_name
    from public.profiles p where p.id = new.author_id;
  return new;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.version_json(v public.document_versions)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select jsonb_build_object(
    'path', v.path, 'version', v.version, 'parent_version', v.parent_version,
    'merge_parent', v.merge_parent, 'sha256', v.sha256, 'size', v.size, 'deleted', v.deleted,
    'mode', syncd.mode_of(v.content),
    'origin', v.origin, 'author_id', v.author_id,
    'author', coalesce(p.github_login, v.author_login, p.display_name, v.author_name, v.provenance ->> 'author_name'),
    'author_name', coalesce(p.display_name, v.author_name, p.github_login, v.author_login, v.provenance ->> 'author_name'),
    'author_email', coalesce(v.provenance ->> 'author_email',
                             coalesce(p.github_login, v.author_login) || '@users.noreply.github.com'),
    'device_id', v.device_id,
    'device', (select d.name from public.devices d where d.id = v.device_id),
    'provenance', v.provenance,
    'moved_from', v.moved_from, 'moved_to', v.moved_to,
    'seq', v.seq, 'created_at', v.created_at)
  from (select 1) one
  left join public.profiles p on p.id = v.author_id
$function$;

CREATE OR REPLACE FUNCTION syncd.versions_activity()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  insert into public.activity_log (workspace_id, project_id, session_id, document_id, actor_id,
                                   device_id, kind, details, created_at)
  select n.workspace_id, d.project_id, d.session_id, d.id, n.author_id, n.device_id, n.origin,
         jsonb_strip_nulls(jsonb_build_object('path', n.path, 'version', n.version,
                                              'parent_version', n.parent_version,
                                              'deleted', n.deleted, 'commit', n.provenance ->> 'commit',
                                              'author_name', n.provenance ->> 'author_name')),
         n.created_at
    from added n join public.documents d on d.id = n.document_id
   where n.origin in ('sync', 'import')
   order by n.id;
  return null;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.versions_at(ws uuid, doc_path text)
 RETURNS SETOF public.document_versions
 LANGUAGE sql
 STABLE
 SET search_path TO ''
AS $function$
  select v.* from public.document_versions v
   where v.workspace_id = ws
     and (v.path = doc_path
          or v.document_id = (select d.id from public.documents d where d.workspace_id = ws and d.path = doc_path))
$function$;

CREATE OR REPLACE FUNCTION syncd.workspace_id(ws_slug text)
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  ws uuid;
begin
  select w.id into ws from public.workspaces w where w.slug = ws_slug;
  if ws is null or not syncd.can_see_workspace(ws) then
    raise exception 'workspace "%" does not exist (or you are not a member of it)', ws_slug
      using errcode = 'PT404', hint = 'create it with `syncd init`, or ask its owner for access';
  end if;
  return ws;
end
$function$;

CREATE OR REPLACE FUNCTION syncd.workspace_role(ws uuid)
 RETURNS text
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
  select m.role from public.workspace_members m where m.workspace_id = ws and m.user_id = (select auth.uid())
$function$;

-- Grants

grant delete, insert, select, update on table public.activity_log to service_role;
grant select on table public.activity_log to authenticated;
grant usage on sequence public.activity_log_id_seq to service_role;
grant delete, insert, select, update on table public.blob_chunks to service_role;
grant delete, insert, select, update on table public.blobs to service_role;
grant delete, insert, select, update on table public.devices to service_role;
grant select on table public.devices to authenticated;
grant delete, insert, select, update on table public.document_versions to service_role;
grant select on table public.document_versions to authenticated;
grant usage on sequence public.document_versions_id_seq to service_role;
grant delete, insert, select, update on table public.documents to service_role;
grant select on table public.documents to authenticated;
grant delete, insert, select, update on table public.invitations to service_role;
grant select on table public.invitations to authenticated;
grant usage on sequence public.invitations_id_seq to service_role;
grant delete, insert, select, update on table public.profiles to service_role;
grant select on table public.profiles to authenticated;
grant delete, insert, select, update on table public.projects to service_role;
grant delete, insert, select, update on table public.session_members to service_role;
grant select on table public.session_members to authenticated;
grant delete, insert, select, update on table public.sessions to service_role;
grant select on table public.sessions to authenticated;
grant execute on function public.syncd_activity(jsonb) to authenticated, service_role;
grant execute on function public.syncd_blob_finish(jsonb) to authenticated, service_role;
grant execute on function public.syncd_blob_get(jsonb) to authenticated, service_role;
grant execute on function public.syncd_blob_missing(jsonb) to authenticated, service_role;
grant execute on function public.syncd_blob_put(jsonb) to authenticated, service_role;
grant execute on function public.syncd_changes(jsonb) to authenticated, service_role;
grant execute on function public.syncd_clock(jsonb) to authenticated, service_role;
grant execute on function public.syncd_commit(jsonb) to authenticated, service_role;
grant select on table public.syncd_conflict_rates to authenticated, service_role;
grant execute on function public.syncd_contents(jsonb) to authenticated, service_role;
grant select on table public.syncd_device_sync to authenticated, service_role;
grant execute on function public.syncd_documents(jsonb) to authenticated, service_role;
grant select on table public.syncd_edits_per_day to authenticated, service_role;
grant execute on function public.syncd_feed_mark(jsonb) to authenticated, service_role;
grant execute on function public.syncd_heartbeat(jsonb) to authenticated, service_role;
grant execute on function public.syncd_history(jsonb) to authenticated, service_role;
grant execute on function public.syncd_import_members(jsonb) to authenticated, service_role;
grant execute on function public.syncd_known_commit(jsonb) to authenticated, service_role;
grant execute on function public.syncd_layout_plan(jsonb) to authenticated, service_role;
grant execute on function public.syncd_layout_roots(jsonb) to authenticated, service_role;
grant select on table public.syncd_lead_times to authenticated, service_role;
grant execute on function public.syncd_match_versions(jsonb) to authenticated, service_role;
grant execute on function public.syncd_members(jsonb) to authenticated, service_role;
grant execute on function public.syncd_open(jsonb) to authenticated, service_role;
grant execute on function public.syncd_progress(jsonb) to authenticated, service_role;
grant execute on function public.syncd_record(jsonb) to authenticated, service_role;
grant select on table public.syncd_stage_completion to authenticated, service_role;
grant select on table public.syncd_stage_times to authenticated, service_role;
grant execute on function public.syncd_stats(jsonb) to authenticated, service_role;
grant execute on function public.syncd_version(jsonb) to authenticated, service_role;
grant execute on function public.syncd_versions(jsonb) to authenticated, service_role;
grant delete, insert, select, update on table public.workspace_members to service_role;
grant select on table public.workspace_members to authenticated;
grant delete, insert, select, update on table public.workspaces to service_role;
grant select on table public.workspaces to authenticated;
grant usage on schema syncd to authenticated, service_role;
grant execute on function syncd.blob_chunk_size() to authenticated, service_role;
grant execute on function syncd.blob_finish(jsonb) to authenticated, service_role;
grant execute on function syncd.blob_get(jsonb) to authenticated, service_role;
grant execute on function syncd.blob_max_size() to authenticated, service_role;
grant execute on function syncd.blob_missing(jsonb) to authenticated, service_role;
grant execute on function syncd.blob_put(jsonb) to authenticated, service_role;
grant execute on function syncd.blob_writer(jsonb) to authenticated, service_role;
grant execute on function syncd.builtin_layout_roots() to authenticated, service_role;
grant execute on function syncd.can_read(uuid,uuid) to authenticated, service_role;
grant execute on function syncd.can_read_blob(text) to authenticated, service_role;
grant execute on function syncd.can_read_document(uuid) to authenticated, service_role;
grant execute on function syncd.can_see_workspace(uuid) to authenticated, service_role;
grant execute on function syncd.can_write(uuid,uuid) to authenticated, service_role;
grant execute on function syncd.can_write_blob(text) to authenticated, service_role;
grant execute on function syncd.can_write_somewhere(uuid) to authenticated, service_role;
grant execute on function syncd.commit_changes(jsonb) to authenticated, service_role;
grant execute on function syncd.commit_max_bytes() to authenticated, service_role;
grant execute on function syncd.commit_max_changes() to authenticated, service_role;
grant execute on function syncd.content_bytes(jsonb) to authenticated, service_role;
grant execute on function syncd.content_problem(jsonb) to authenticated, service_role;
grant execute on function syncd.entry_of(jsonb) to authenticated, service_role;
grant execute on function syncd.file_entry_of(jsonb) to authenticated, service_role;
grant execute on function syncd.head_json(public.documents,boolean) to authenticated, service_role;
grant execute on function syncd.heartbeat(uuid,uuid,jsonb) to authenticated, service_role;
grant execute on function syncd.identity(text,boolean,boolean) to authenticated, service_role;
grant execute on function syncd.import_members(jsonb) to authenticated, service_role;
grant execute on function syncd.inline_budget() to authenticated, service_role;
grant execute on function syncd.inline_item_max() to authenticated, service_role;
grant execute on function syncd.is_owner(uuid) to authenticated, service_role;
grant execute on function syncd.is_template(text) to authenticated, service_role;
grant execute on function syncd.layout(text) to authenticated, service_role;
grant execute on function syncd.layout_roots(uuid) to authenticated, service_role;
grant execute on function syncd.layout_under(text,text[]) to authenticated, service_role;
grant execute on function syncd.legacy_login(text) to authenticated, service_role;
grant execute on function syncd.link_problem(text,text) to authenticated, service_role;
grant execute on function syncd.members(jsonb) to authenticated, service_role;
grant execute on function syncd.mode_of(jsonb) to authenticated, service_role;
grant execute on function syncd.my_session_documents() to authenticated, service_role;
grant execute on function syncd.my_sessions() to authenticated, service_role;
grant execute on function syncd.my_workspaces() to authenticated, service_role;
grant execute on function syncd.open_workspace(jsonb) to authenticated, service_role;
grant execute on function syncd.own_device(uuid,uuid) to authenticated, service_role;
grant execute on function syncd.record_events(jsonb) to authenticated, service_role;
grant execute on function syncd.require_owner(uuid) to authenticated, service_role;
grant select on table syncd.schema_migrations to authenticated, service_role;
grant execute on function syncd.session_of(uuid,text) to authenticated, service_role;
grant execute on function syncd.session_role(uuid) to authenticated, service_role;
grant execute on function syncd.session_state(uuid) to authenticated, service_role;
grant execute on function syncd.set_layout_roots(jsonb) to authenticated, service_role;
grant execute on function syncd.stage_of(text) to authenticated, service_role;
grant execute on function syncd.stages() to authenticated, service_role;
grant execute on function syncd.trusted() to authenticated, service_role;
grant execute on function syncd.version_json(public.document_versions) to authenticated, service_role;
grant execute on function syncd.versions_at(uuid,text) to authenticated, service_role;
grant execute on function syncd.workspace_id(text) to authenticated, service_role;
grant execute on function syncd.workspace_role(uuid) to authenticated, service_role;
