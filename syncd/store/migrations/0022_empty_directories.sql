-- Empty directories are entries too (issue 18): a new session's empty stage folders reach
-- the other copies, as in Syncthing and Dropbox. Only a directory that holds nothing is one;
-- a directory with anything in it is its entries' parent, made and removed with them.
--
--   {"encoding": "directory", "format": "directory"}
--
-- nothing else in it. Its identity is, as Git's tree mode would say it, the sha256 of
-- "040000 " || the sha256 of no bytes, and its size 0 (see syncd.content.identity).

-- 0019's checks and identities go on for every other kind, under the names they had: the
-- new ones below take the directory first and hand the rest on.
alter function syncd.entry_problem(uuid, text, jsonb) rename to file_entry_problem;
alter function syncd.entry_of(jsonb) rename to file_entry_of;

create function syncd.entry_problem(ws uuid, doc_path text, content jsonb) returns text
  language sql stable set search_path = '' as $$
  select case
    when jsonb_typeof(content) = 'object' and content ->> 'encoding' = 'directory' then
      case when content <> '{"encoding": "directory", "format": "directory"}'::jsonb
             then 'a directory is {"encoding": "directory", "format": "directory"}, with nothing else'
      end
    else syncd.file_entry_problem(ws, doc_path, content)
  end
$$;

create function syncd.entry_of(content jsonb, out identity text, out size bigint)
  language plpgsql immutable set search_path = '' as $$
begin
  if content ->> 'encoding' = 'directory' then
    identity := encode(sha256(convert_to('040000 ' || encode(sha256(''::bytea), 'hex'), 'UTF8')), 'hex');
    size := 0;
  else
    select e.identity, e.size into identity, size from syncd.file_entry_of(content) e;
  end if;
end
$$;

create or replace function syncd.mode_of(content jsonb) returns text
  language sql immutable set search_path = '' as $$
  select case when content is null then null
              when content ->> 'encoding' = 'link' then '120000'
              when content ->> 'encoding' = 'directory' then '040000'
              when content -> 'executable' = 'true'::jsonb then '100755'
              else '100644' end
$$;

-- As 0019 granted the functions these stand in for: the check only by the contract's owner.
revoke all on function syncd.entry_problem(uuid, text, jsonb), syncd.entry_of(jsonb)
  from public, anon, authenticated, service_role;
grant execute on function syncd.entry_of(jsonb) to authenticated, service_role;
