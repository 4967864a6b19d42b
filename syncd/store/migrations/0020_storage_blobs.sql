-- Blobs in Supabase Storage: the bucket `syncd-blobs`, its objects named
-- `<workspace uuid>/<sha256 of the bytes>`, under the contract's read and write rules.
--
-- Over the Supabase transport a blob content's bytes (see syncd/content.py) live in Storage,
-- which keeps one row of storage.objects per object and runs every client request's
-- statements as the caller's role, so the policies below decide (as RLS on documents does):
--
--   read    a member who can read some version, in that workspace, whose content is a blob
--           with that digest (syncd.can_read of the version's document's session)
--   create  a member who can write somewhere in that workspace, for a name of that shape
--   change, delete  nobody (content-addressed objects never change); service_role and the
--           project's admin keep their own rights, as for every table
--   anon    nothing
--
-- The policies are permissive (they grant) and restrictive (they bound whatever else a
-- project allows on storage.objects: a project's own "authenticated may read every object"
-- stops at this bucket). Storage's schema exists on a Supabase project from its first day
-- (supabase/postgres init scripts); its tables belong to supabase_storage_admin, and
-- `postgres`, who runs `syncd db migrate`, may add policies to them (it is granted that role,
-- and hosted projects' supautils policy_grants name storage.objects). On plain PostgreSQL and
-- the embedded default there is no storage schema and this does nothing: blobs live in the
-- contract's own table there. A project that gets Storage later runs
-- `select syncd.install_storage_policies()` as postgres (SQL editor), which is safe to re-run.

-- The workspace and digest an object name stands for; no row for any other name. The cast
-- stands behind the same test in a `case`: PostgreSQL 18 plans a SQL function's statement
-- with its arguments as constants and folds the cast while planning, before the `where`
-- could drop a malformed name ('aaaa' failed "invalid input syntax for type uuid", a 500
-- instead of a refusal).
create function syncd.blob_object(object_name text) returns table (ws uuid, digest text)
  language sql immutable set search_path = '' as $$
  select case when object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
              then split_part(object_name, '/', 1)::uuid end,
         split_part(object_name, '/', 2)
   where object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
$$;

-- (0019's index document_versions_blob finds the versions naming a digest)
create function syncd.can_read_blob(object_name text) returns boolean
  language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from syncd.blob_object(object_name) b
      join public.document_versions v on v.workspace_id = b.ws and v.content ->> 'encoding' = 'blob'
                                     and v.content ->> 'sha256' = b.digest
      join public.documents d on d.id = v.document_id
     where syncd.can_read(b.ws, d.session_id))
$$;

-- Before the commit that names it, a blob belongs to no session yet: whoever may write any
-- document of the workspace may upload it (0019's rule for its own table).
create function syncd.can_write_blob(object_name text) returns boolean
  language sql stable security definer set search_path = '' as $$
  select coalesce((select syncd.can_write_somewhere(b.ws) from syncd.blob_object(object_name) b), false)
$$;

create function syncd.install_storage_policies() returns void
  language plpgsql set search_path = '' as $$
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
$$;

select syncd.install_storage_policies();

-- Privileges as 0017 sets them: the policies' checks for signed-in callers (and the
-- service key), nothing for anon; the name parser and the installer for the database's
-- owner alone.
revoke all on function syncd.blob_object(text), syncd.can_read_blob(text), syncd.can_write_blob(text),
  syncd.install_storage_policies() from public, anon, authenticated, service_role;
grant execute on function syncd.can_read_blob(text), syncd.can_write_blob(text) to authenticated, service_role;
