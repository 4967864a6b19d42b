"""The contract on a database shaped like a real Supabase project (tests/supabase_database.py),
driven as PostgREST drives it (tests/supabase_standin.py): the contract is the only way
to write, anon gets nothing, a refusal tells nothing about which workspaces exist, and a
person can be deleted."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import psycopg
import pytest

from copies import Copy
from supabase_database import gotrue_user
from supabase_standin import StandIn, rest, token
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

SESSION_DOC = "projects/P/sessions/s1/spec.md"
OTHER_DOC = "projects/P/README.md"
CLIENTS = ["owner", "collaborator", "session_collaborator", "reader", "stranger", "anon"]
READABLE_DOCUMENTS = {"owner": 2, "collaborator": 2, "reader": 2, "session_collaborator": 1, "stranger": 0}


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


def syncd_objects(conn) -> tuple[set[str], set[str]]:
    """(relations, functions) as regclass/regprocedure text, of the migrated database."""
    relations = {r for (r,) in conn.execute(
        "select c.oid::regclass::text from pg_class c where c.relkind in ('r', 'v', 'm', 'S', 'p')"
        " and c.relnamespace::regnamespace::text in ('public', 'syncd')")}
    functions = {f for (f,) in conn.execute(
        "select p.oid::regprocedure::text from pg_proc p"
        " where p.pronamespace::regnamespace::text in ('public', 'syncd')")}
    return relations, functions


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_db_migrate_runs_twice_as_the_demoted_postgres_and_anon_can_use_nothing(empty_dsn):
    project = empty_dsn
    with psycopg.connect(project) as conn:
        assert conn.execute("select current_user, rolsuper from pg_roles where rolname = current_user"
                            ).fetchone() == ("postgres", False)
        before = syncd_objects(conn)
    for _ in range(2):
        run = subprocess.run([sys.executable, "-m", "syncd", "db", "migrate", "--database-url", project],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    with psycopg.connect(project) as conn:
        after = syncd_objects(conn)
        relations, functions = after[0] - before[0], after[1] - before[1]
        assert len(relations) >= 15 and len(functions) >= 60  # the migrations' own objects
        def held(role: str, privileges: list[str]) -> list:
            return conn.execute(
                "select r, p from unnest(%s::text[]) r, unnest(%s::text[]) p where case"
                " when (select relkind from pg_class where oid = r::regclass) = 'S'"
                " then p in ('usage', 'select', 'update') and has_sequence_privilege(%s, r, p)"
                " else p <> 'usage' and has_table_privilege(%s, r, p) end",
                (sorted(relations), privileges, role, role)).fetchall()

        every = ["select", "insert", "update", "delete", "truncate", "references", "trigger", "usage"]
        anon_functions = conn.execute("select f from unnest(%s::text[]) f where has_function_privilege('anon', f, 'execute')",
                                      (sorted(functions),)).fetchall()
        assert (held("anon", every), anon_functions) == ([], [])
        assert held("authenticated", ["insert", "update", "delete", "truncate", "usage"]) == []
        # Supabase's linter, lints 0028/0029: a SECURITY DEFINER function in an exposed schema
        # that the API roles can execute
        exposed_definers = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'public'::regnamespace"
            " and p.prosecdef and p.oid::regprocedure::text = any(%s)"
            " and (has_function_privilege('anon', p.oid, 'execute')"
            "      or has_function_privilege('authenticated', p.oid, 'execute'))", (sorted(functions),)).fetchall()
        assert exposed_definers == []
        # What runs as the contract's owner and a client may call: each checks the caller's
        # rights itself (writes) or answers only about the caller (the checks RLS uses).
        # A new one is added here on purpose, after reading it.
        callable_definers = {f for (f,) in conn.execute(
            "select p.proname from pg_proc p where p.pronamespace = 'syncd'::regnamespace and p.prosecdef"
            " and has_function_privilege('authenticated', p.oid, 'execute')")}
        assert callable_definers == {
            "commit_changes", "open_workspace", "members", "record_events", "import_members", "heartbeat",
            "workspace_id", "own_device", "session_state", "can_read", "can_read_document", "can_see_workspace",
            "can_write", "is_owner", "workspace_role", "session_role", "session_of", "my_workspaces",
            "my_sessions", "my_session_documents", "set_layout_roots", "blob_missing", "blob_put", "blob_finish",
            "blob_get", "can_read_blob", "can_write_blob"}


@pytest.fixture
def world(request, dsn):
    """A workspace with one member of each kind, on a Supabase-shaped database, and the
    stand-in serving it: (standin url, {client: bearer token or None}, workspace id)."""
    admin = PostgresStore(dsn, "ws")
    admin.open(create=True)
    admin.commit([Change(SESSION_DOC, None, text("spec")), Change(OTHER_DOC, None, text("readme"))])
    admin.record([{"kind": "note", "path": OTHER_DOC}])
    users = {client: gotrue_user(dsn, client.replace("_", "-"), github_id=i + 1)
             for i, client in enumerate(CLIENTS[:-1])}
    for login, role, where in [("owner", "owner", {}), ("collaborator", "collaborator", {}), ("reader", "reader", {}),
                               ("session-collaborator", "collaborator", {"project": "P", "session": "s1"})]:
        admin.members("add", login=login, role=role, **where)
    admin.members("add", login="not-yet-here", role="reader")  # an invitation
    tokens = {client: token("authenticated", sub=uid) for client, uid in users.items()}
    tokens["anon"] = None
    with psycopg.connect(dsn) as conn:
        ws = str(conn.execute("select id from public.workspaces where slug = 'ws'").fetchone()[0])
    with StandIn(dsn) as url:
        yield url, tokens, ws
    admin.close()


def everything(dsn: str) -> dict[str, list]:
    """Every row of every syncd table, as the database's owner sees it."""
    with psycopg.connect(dsn) as conn:
        tables = [t for (t,) in conn.execute(
            "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' order by 1")]
        return {t: conn.execute(f"select coalesce(jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text), '[]')"
                                f" from public.{t} x").fetchone()[0] for t in tables}


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_every_write_through_the_table_api_is_refused_for_every_client(world, dsn):
    url, tokens, ws = world
    before = everything(dsn)
    with psycopg.connect(dsn) as conn:
        columns = {t: conn.execute(
            "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s"
            " and is_identity = 'NO' and is_generated = 'NEVER' order by ordinal_position", (t,)).fetchall()
            for t in before}
    refused = 0
    for table, rows in before.items():
        names = [c for (c,) in columns[table]]
        sample = rows[0] if rows else {"workspace_id": ws}
        # the tampering issue 17 found, and its like for every table: a row copied with a
        # new sequence number, a head moved, everything deleted
        insert = {k: v for k, v in sample.items() if k in names} | ({"seq": 100000} if "seq" in names else {})
        update = {"version": 99, "sha256": "tampered"} if table == "documents" else {names[-1]: sample.get(names[-1])}
        for client in CLIENTS:
            for method, kwargs in (("POST", {"json": insert}), ("PATCH", {"json": update}), ("DELETE", {})):
                reply = rest(url, tokens[client], method, f"{table}?workspace_id=eq.{ws}"
                                if "workspace_id" in names and method != "POST" else table, **kwargs)
                assert reply.status_code == (401 if client == "anon" else 403), (client, method, table, reply.text)
                assert reply.json()["code"] == "42501", (client, method, table, reply.text)
                refused += 1
    assert refused == len(before) * len(CLIENTS) * 3
    assert everything(dsn) == before
    # and the contract still writes for those allowed to
    for client, status in (("collaborator", "accepted"), ("session_collaborator", "accepted"),
                           ("reader", "forbidden")):
        reply = rest(url, tokens[client], "POST", "rpc/syncd_commit", json={
            "workspace": "ws", "changes": [{"path": SESSION_DOC, "base_version": None, "content": text(client)}]})
        results = reply.json()["results"]
        assert [r["status"] for r in results] in ([status], ["conflict"]), results
        if results[0]["status"] == "conflict":  # the head moved on: commit on top of it
            reply = rest(url, tokens[client], "POST", "rpc/syncd_commit", json={
                "workspace": "ws", "changes": [{"path": SESSION_DOC, "base_version": results[0]["head"]["version"],
                                                "content": text(client)}]})
            assert reply.json()["results"][0]["status"] == status, reply.text


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_reads_through_the_table_api_show_what_row_level_security_allows(world, dsn):
    url, tokens, ws = world
    for client in CLIENTS:
        documents = rest(url, tokens[client], "GET", "documents?select=*")
        if client == "anon":
            assert (documents.status_code, documents.json()["code"]) == (401, "42501")
            continue
        assert documents.status_code == 200, documents.text
        assert len(documents.json()) == READABLE_DOCUMENTS[client], client
        versions = rest(url, tokens[client], "GET", "document_versions?select=*").json()
        assert len(versions) == READABLE_DOCUMENTS[client], client
        invitations = rest(url, tokens[client], "GET", "invitations?select=*").json()
        assert len(invitations) == (1 if client == "owner" else 0), client
    for table in everything(dsn):
        columns = "id,workspace_id,name,created_at" if table == "projects" else "*"  # a project's files are not for all
        seen = rest(url, tokens["stranger"], "GET", f"{table}?select={columns}").json()
        if table in ("blobs", "blob_chunks"):  # no client role may read them but through the contract
            assert seen["code"] == "42501", table
            continue
        own = [row for row in seen if row.get("id") == json.loads(
            httpx.get(f"{url}/auth/v1/user", headers={"Authorization": f"Bearer {tokens['stranger']}"}).text)["id"]]
        assert seen == own, table  # a stranger sees only their own profile


def normalized(reply: httpx.Response, slug: str) -> tuple:
    body = reply.json()
    return reply.status_code, body.get("code"), re.sub(re.escape(slug), "<slug>", json.dumps(body))


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_refusal_reads_the_same_for_a_workspace_that_exists_and_one_that_does_not(world, dsn):
    url, tokens, _ = world
    with psycopg.connect(dsn) as conn:
        functions = [f for (f,) in conn.execute(
            "select proname from pg_proc where pronamespace = 'public'::regnamespace and proname like 'syncd\\_%'"
            " order by 1")]
    payload = {"path": OTHER_DOC, "version": 1, "seq": 1, "since": 0, "changes": [], "events": [],
               "files": [], "versions": [], "commits": [], "action": "list", "device": None, "state": "running"}
    compared = 0
    for client in ("stranger", "anon"):
        for function in functions:
            if function in ("syncd_clock", "syncd_layout_plan"):
                continue  # about no workspace
            existing = rest(url, tokens[client], "POST", f"rpc/{function}", json={**payload, "workspace": "ws"})
            missing = rest(url, tokens[client], "POST", f"rpc/{function}", json={**payload, "workspace": "nope"})
            assert existing.status_code >= 400, (client, function, existing.text)
            assert normalized(existing, "ws") == normalized(missing, "nope"), (client, function)
            compared += 1
    assert compared >= 2 * 14


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_deleted_person_leaves_their_versions_named_and_a_lone_owner_can_be_replaced(
        tmp_path, dsn, private_xdg, monkeypatch):
    """GoTrue deletes a user with `delete from auth.users where id = $1`, as its own login."""
    alice, bob = gotrue_user(dsn, "alice", "Alice Archer", 11), gotrue_user(dsn, "bob", "Bob Baker", 12)
    monkeypatch.setenv("SYNCD_SUPABASE_SERVICE_KEY", token("service_role"))
    with StandIn(dsn) as url:
        def as_user(uid: str, function: str, **payload) -> httpx.Response:
            return rest(url, token("authenticated", sub=uid), "POST", f"rpc/{function}", json=payload)

        assert as_user(alice, "syncd_open", workspace="team", create=True).status_code == 200
        assert as_user(alice, "syncd_members", workspace="team", action="add", login="bob",
                       role="owner").status_code == 200
        reply = as_user(alice, "syncd_commit", workspace="team", changes=[
            {"path": "notes.md", "base_version": None, "content": text("alice wrote this\n")}])
        assert reply.json()["results"][0]["status"] == "accepted", reply.text

        def gotrue_deletes(uid: str) -> None:
            with psycopg.connect(psycopg.conninfo.make_conninfo(dsn, user="supabase_auth_admin"), autocommit=True) as c:
                c.execute("delete from auth.users where id = $1".replace("$1", "%s"), (uid,))

        gotrue_deletes(alice)
        copy = Copy(tmp_path, "a", dsn, supabase_url=url)
        copy.init()
        copy.sync()
        log = copy.cli("log", "notes.md").output
        assert "alice" in log, log
        activity = [json.loads(line) for line in copy.cli("activity", "--json").output.splitlines()]
        assert [a["actor"] for a in activity if a.get("path") == "notes.md"] == ["alice"], activity
        edits = json.loads(copy.cli("stats", "--json").output)["edits_per_day"]
        assert [e["author"] for e in edits] == ["alice"], edits
        members = as_user(bob, "syncd_members", workspace="team").json()["members"]
        assert [(m["login"], m["role"]) for m in members] == [("bob", "owner")]

        gotrue_deletes(bob)  # the last owner: nobody signed in can manage the workspace now
        # the README's recovery: the admin, with the service key (the copy's, here)
        assert "carol" in copy.cli("members", "add", "carol", "--role", "owner").output
        carol = gotrue_user(dsn, "carol", "Carol Cole", 13)  # signs in: the invitation makes her owner
        members = as_user(carol, "syncd_members", workspace="team").json()["members"]
        assert [(m["login"], m["role"]) for m in members] == [("carol", "owner")]
