-- A database that held projects before 0006 never read their CURRENT_SESSION and
-- session_state.json into the project rows (0006's trigger fires on writes only). Touching
-- those documents' content runs that one trigger over them (found by the upgrade tests).
update public.documents set content = content
 where path ~ '^projects/[^/]+/(CURRENT_SESSION|session_state\.json)$' and not deleted;
