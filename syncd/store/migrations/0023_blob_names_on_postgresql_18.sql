-- A malformed Storage object name is refused (403), not an error (500), on PostgreSQL 18 too.
--
-- PostgreSQL 18 plans a SQL function's statement with its arguments as constants, and folds
-- constant expressions while planning: 0020's `split_part(object_name, '/', 1)::uuid` was cast
-- before the `where` that keeps only well-formed names could drop the row, so a name such as
-- 'aaaa' failed with "invalid input syntax for type uuid" instead of naming no blob. The cast
-- now stands behind the same test in a `case`, whose arm a false condition drops unevaluated.
create or replace function syncd.blob_object(object_name text) returns table (ws uuid, digest text)
  language sql immutable set search_path = '' as $$
  select case when object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
              then split_part(object_name, '/', 1)::uuid end,
         split_part(object_name, '/', 2)
   where object_name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{64}$'
$$;
