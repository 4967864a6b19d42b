-- The tables of the sync contract. Document heads carry a per-workspace change sequence
-- (`seq`); every version ever written stays in document_versions.

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  github_login text unique,
  display_name text,
  email text,
  avatar_url text,
  created_at timestamptz not null default now()
);

create table public.workspaces (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  name text,
  created_by uuid references auth.users (id),
  created_at timestamptz not null default now(),
  -- the last change sequence handed out; updated under the row lock that serializes
  -- commits per workspace, so commit order equals sequence order
  last_seq bigint not null default 0
);

create table public.workspace_members (
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'collaborator', 'reader')),
  created_at timestamptz not null default now(),
  primary key (workspace_id, user_id)
);

create table public.projects (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  name text not null,
  current_session text,
  state jsonb,
  created_at timestamptz not null default now(),
  unique (workspace_id, name)
);

create table public.sessions (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  slug text not null,
  owner_id uuid references auth.users (id),
  status text not null default 'active',
  pipeline jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  unique (project_id, slug)
);

create table public.session_members (
  session_id uuid not null references public.sessions (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'collaborator', 'reader')),
  created_at timestamptz not null default now(),
  primary key (session_id, user_id)
);

create table public.devices (
  id uuid primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  user_id uuid references auth.users (id),
  name text not null,
  hostname text,
  created_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);

create table public.documents (
  id uuid primary key default gen_random_uuid(),
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  path text not null check (path <> '' and path !~ '(^/|/$|//|(^|/)\.\.?(/|$))'),
  project_id uuid references public.projects (id),
  session_id uuid references public.sessions (id),
  stage text,
  version integer not null check (version >= 1),
  content jsonb,
  sha256 text,
  size bigint,
  deleted boolean not null default false,
  seq bigint not null,
  updated_by uuid references auth.users (id),
  device_id uuid references public.devices (id),
  updated_at timestamptz not null default now(),
  unique (workspace_id, path),
  check (deleted = (content is null))
);
create index documents_feed on public.documents (workspace_id, seq);
create index documents_session on public.documents (session_id);

create table public.document_versions (
  id bigint generated always as identity primary key,
  document_id uuid not null references public.documents (id) on delete cascade,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  path text not null,
  version integer not null,
  parent_version integer,
  content jsonb,
  sha256 text,
  size bigint,
  deleted boolean not null default false,
  origin text not null check (origin in ('sync', 'merge', 'restore', 'resolve', 'import')),
  author_id uuid references auth.users (id),
  device_id uuid references public.devices (id),
  seq bigint not null,
  created_at timestamptz not null default now(),
  unique (document_id, version),
  unique (workspace_id, seq),
  check (deleted = (content is null))
);
create index document_versions_parent on public.document_versions (document_id, parent_version);

create table public.activity_log (
  id bigint generated always as identity primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  project_id uuid references public.projects (id) on delete set null,
  session_id uuid references public.sessions (id) on delete set null,
  document_id uuid references public.documents (id) on delete set null,
  actor_id uuid references auth.users (id),
  device_id uuid references public.devices (id),
  kind text not null,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index activity_log_workspace on public.activity_log (workspace_id, id);

-- Row level security: on for every table now; the two-tier member policies come with the
-- Supabase work. Until then only service_role (and the owner, which RLS does not bind)
-- gets through.
do $$
declare
  t text;
begin
  foreach t in array array['profiles', 'workspaces', 'workspace_members', 'projects',
                           'sessions', 'session_members', 'devices', 'documents',
                           'document_versions', 'activity_log'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('create policy service_role_all on public.%I for all to service_role using (true) with check (true)', t);
    -- Supabase no longer grants on new tables by default: say it explicitly
    execute format('grant select, insert, update, delete on public.%I to authenticated, service_role', t);
  end loop;
end
$$;

grant usage on schema public to anon, authenticated, service_role;
grant usage on all sequences in schema public to authenticated, service_role;
