-- Wake listeners when a commit adds versions. The channel is per workspace; the payload is
-- empty so PostgreSQL folds every notification of one transaction into one, delivered at
-- commit. A notification is only a hint: the feed cursor stays the truth, and a listener
-- that missed one (disconnected) catches up by pulling the feed.

create function syncd.notify_change() returns trigger
  language plpgsql set search_path = '' as $$
begin
  perform pg_notify('syncd:' || new.workspace_id::text, '');
  return null;
end
$$;

create trigger document_versions_notify
  after insert on public.document_versions
  for each row execute function syncd.notify_change();
