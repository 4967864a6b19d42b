-- {} → {now}: the server's clock, which `syncd doctor` compares with the local one
-- (version times, `newest` merges and heartbeats all mix the two).
create function public.syncd_clock(jsonb) returns jsonb
  language sql volatile set search_path = '' as $$
  select jsonb_build_object('now', clock_timestamp())
$$;
revoke execute on function public.syncd_clock(jsonb) from public;
grant execute on function public.syncd_clock(jsonb) to anon, authenticated, service_role;
