"""The Supabase transport over supabase-py against the loopback PostgREST stand-in:
error mapping, retries, and that syncing really travels over it."""
from __future__ import annotations

import pytest

from syncd.store.rpc import Change, NotFound, StoreError
from syncd.store.supabase import PermissionDenied, SupabaseStore

from copies import Copy
from supabase_standin import StandIn, token

pytestmark = pytest.mark.on_both_databases


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


@pytest.fixture
def standin(dsn):
    server = StandIn(dsn)
    with server:
        yield server


def test_a_sync_travels_as_rpc_calls_with_the_service_role(standin, tmp_path, dsn, private_xdg, monkeypatch):
    monkeypatch.setenv("SYNCD_SUPABASE_SERVICE_KEY", token("service_role"))
    a = Copy(tmp_path, "a", dsn, supabase_url=standin.url)
    a.init()
    (a.root / "x.md").write_text("x\n")
    a.sync()
    assert ("syncd_commit", "service_role") in standin.calls
    assert "Supabase 127.0.0.1:" in a.status()["store"] or a.status()["store"].startswith("Supabase")


def test_errors_become_clear_messages(standin, empty_dsn):
    store = SupabaseStore(standin.url, token("service_role"), "ws", backoff=0)
    store.open(create=True)
    with pytest.raises(NotFound, match='no document "nope.md"'):
        store.history("nope.md")
    stranger = SupabaseStore(standin.url, token("authenticated", sub="00000000-0000-0000-0000-000000000001"), "ws")
    with pytest.raises(NotFound, match="not a member"):
        stranger.open()
    expired = SupabaseStore(standin.url, token("service_role", expires_in=-10), "ws")
    with pytest.raises(PermissionDenied, match="run `syncd login`"):
        expired.open()
    anon = SupabaseStore(standin.url, "not-a-jwt", "ws")
    with pytest.raises(PermissionDenied, match="run `syncd login`"):
        anon.open()
    with StandIn(empty_dsn) as bare_url:  # a project without the migrations
        with pytest.raises(StoreError, match="run `syncd db migrate"):
            SupabaseStore(bare_url, token("service_role"), "ws").open()


def test_transient_failures_are_retried_permission_errors_are_not(standin):
    store = SupabaseStore(standin.url, token("service_role"), "ws", backoff=0)
    store.open(create=True)
    standin.fail_next[:] = [503, 502]
    [result] = store.commit([Change("a.md", None, text("a"))])
    assert result.status == "accepted" and not standin.fail_next
    before = len(standin.calls)
    anon_key = SupabaseStore(standin.url, token("anon"), "ws", backoff=0)
    with pytest.raises(PermissionDenied, match="permission denied"):
        anon_key.history("a.md")
    assert len(standin.calls) == before + 1  # asked once, not retried
    standin.fail_next[:] = [503] * 10
    with pytest.raises(StoreError, match="unavailable"):
        store.history("a.md")
    standin.fail_next.clear()
