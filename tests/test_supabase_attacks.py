"""A hostile member, stranger or anon against a Supabase-shaped project (tests/supabase_database.py),
through what PostgREST exposes (tests/supabase_standin.py: the RPCs, with any JSON, and the
table API), and through the contract's own functions with SQL access as `authenticated`.

Each test is one kind of attack: the attempts the contract refuses (kept so they stay
refused), and the ones that got through when this file was written, asserting the safe
behaviour."""
from __future__ import annotations

import contextlib
import json
import uuid

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from supabase_database import gotrue_user
from supabase_standin import StandIn, rest, token
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

pytestmark = pytest.mark.parametrize("flavour", ["supabase"], indirect=True)

S1_DOC = "projects/P/sessions/s1/spec.md"
S2_DOC = "projects/P/sessions/s2/spec/secret.md"  # in a stage folder: the session's pipeline names its editor
PROJECT_DOC = "projects/P/README.md"
S2_COMMIT = "c0ffee" * 6 + "c0ff"
CLIENTS = ["owner", "collaborator", "session-collaborator", "reader", "stranger"]


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


class World:
    """A workspace `ws` with one member of each kind, a second session s2 that the session
    collaborator (a member of s1 only) must not see, a project-level session_state.json,
    an imported commit in s2, a pending invitation for `not-yet-here`, the owner's device;
    served by the stand-in."""

    def __init__(self, dsn: str, url: str):
        self.dsn, self.url = dsn, url
        admin = PostgresStore(dsn, "ws")
        admin.open(create=True)
        admin.commit([Change(S1_DOC, None, text("spec")), Change(PROJECT_DOC, None, text("readme")),
                      Change("projects/P/session_state.json", None,
                             {"encoding": "utf-8", "format": "json", "text": '{"plan": "project-level"}',
                              "value": {"plan": "project-level"}})])
        self.users = {c: gotrue_user(dsn, c, github_id=i + 1) for i, c in enumerate(CLIENTS)}
        for login, role, where in [("owner", "owner", {}), ("collaborator", "collaborator", {}),
                                   ("reader", "reader", {}),
                                   ("session-collaborator", "collaborator", {"project": "P", "session": "s1"})]:
            admin.members("add", login=login, role=role, **where)
        admin.members("add", login="not-yet-here", role="collaborator")  # an invitation
        admin.close()
        self.tokens = {c: token("authenticated", sub=uid) for c, uid in self.users.items()}
        self.tokens["anon"] = None
        assert self.commit("collaborator", [{"path": S2_DOC, "base_version": None, "content": text("s2 secret")}])
        assert self.commit("owner", [{"path": "projects/P/sessions/s2/imported.md", "base_version": None,
                                      "origin": "import", "content": text("old"),
                                      "provenance": {"commit": S2_COMMIT, "author_name": "Old",
                                                     "at": "2020-01-01T00:00:00Z"}}])
        self.device = str(uuid.uuid4())
        assert self.rpc("owner", "syncd_open", device={"id": self.device, "name": "owner-laptop",
                                                        "hostname": "owner-host"}).status_code == 200
        self.rpc("owner", "syncd_heartbeat", device=self.device, state="running", applied_seq=1)

    def call(self, client: str, method: str, path: str, **kwargs) -> httpx.Response:
        return rest(self.url, self.tokens[client], method, path, **kwargs)

    def rpc(self, client: str, function: str, **payload) -> httpx.Response:
        return self.call(client, "POST", f"rpc/{function}", json={"workspace": "ws", **payload})

    def commit(self, client: str, changes: list[dict], **payload) -> list[str]:
        reply = self.rpc(client, "syncd_commit", changes=changes, **payload)
        assert reply.status_code == 200, reply.text
        return [r["status"] for r in reply.json()["results"]]

    def rows(self, query: str, *args) -> list[tuple]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(query, args).fetchall()

    def user(self, login: str, github_id: int) -> str:
        """A new person signs up; their token joins the world's."""
        self.users[login] = gotrue_user(self.dsn, login, github_id=github_id)
        self.tokens[login] = token("authenticated", sub=self.users[login])
        return self.users[login]


@pytest.fixture
def world(dsn):
    with StandIn(dsn) as url:
        yield World(dsn, url)


@contextlib.contextmanager
def sql_as(dsn: str, uid: str):
    """A connection as PostgREST's request would have it (authenticator, role authenticated, the
    user's claims), for the contract's non-exposed functions: what a client with SQL access,
    or a project that exposes the `syncd` schema, could call. Rolled back at the end."""
    with psycopg.connect(make_conninfo(dsn, user="authenticator"), autocommit=True) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"role": "authenticated", "sub": uid}),))
            yield conn


def gotrue_updates_metadata(dsn: str, uid: str, data: dict) -> None:
    """What GoTrue does for `PUT /auth/v1/user {"data": ...}`, which every signed-in user may
    call with their own token (supabase-js `updateUser({data})`: "maps to the
    auth.users.raw_user_meta_data column"): it merges the keys into raw_user_meta_data."""
    with psycopg.connect(make_conninfo(dsn, user="supabase_auth_admin"), autocommit=True) as conn:
        conn.execute("update auth.users set raw_user_meta_data = raw_user_meta_data || %s, updated_at = now()"
                     " where id = %s", (Jsonb(data), uid))


def membership(world: World) -> list[tuple]:
    return world.rows("select 'w', workspace_id::text, user_id::text, role from workspace_members"
                      " union all select 's', session_id::text, user_id::text, role from session_members"
                      " union all select 'i', workspace_id::text, github_login, role from invitations order by 1, 2, 3")


# Holes found: each asserts the safe behaviour.

def test_a_github_login_is_not_taken_from_metadata_its_user_can_edit(world):
    """raw_user_meta_data is the user's to write (GoTrue, PUT /auth/v1/user). A profile's login
    taken from it lets anyone claim a pending invitation, or be the one `members add LOGIN`
    finds, or lock the real person out of signing up (profiles.github_login is unique)."""
    gotrue_updates_metadata(world.dsn, world.users["stranger"],
                            {"user_name": "not-yet-here", "preferred_username": "not-yet-here"})
    claimed = world.rpc("stranger", "syncd_open")
    assert claimed.status_code == 404, f"the stranger took not-yet-here's invitation: {claimed.text}"
    gotrue_updates_metadata(world.dsn, world.users["stranger"], {"user_name": "carol", "preferred_username": "carol"})
    added = world.rpc("owner", "syncd_members", action="add", login="carol", role="reader").json()
    assert added == {"invited": "carol", "role": "reader"}, added  # carol has not signed up: nobody is her
    world.user("not-yet-here", 40)  # the real people sign up; their invitations make them members
    world.user("carol", 41)
    assert world.rpc("not-yet-here", "syncd_open").json()["role"] == "collaborator"
    assert world.rpc("carol", "syncd_open").json()["role"] == "reader"


def test_no_one_reads_another_persons_email_through_the_table_api(world):
    """Anyone signed in can make a workspace and add any login to it (syncd_members add), which
    makes them co-members: profiles' read policy then shows that person's e-mail address."""
    assert world.rpc("stranger", "syncd_open", workspace="mine", create=True).status_code == 200
    assert world.rpc("stranger", "syncd_members", workspace="mine", action="add", login="owner",
                     role="reader").status_code == 200
    for client in ("stranger", "reader", "session-collaborator"):
        reply = world.call(client, "GET", "profiles?select=id,github_login,email")
        assert (reply.status_code, reply.json()["code"]) == (400, "42703"), reply.text  # a profile has no e-mail
        seen = world.call(client, "GET", "profiles?select=*").json()
        assert seen and not any("@" in json.dumps(row) for row in seen), (client, seen)


def test_a_session_member_reads_nothing_of_other_sessions_or_project_files_through_the_table_api(world):
    """syncd_progress shows a session member their own sessions only, and documents hide the
    project's files from them; the tables behind both must not show more."""
    assert [s["session"] for s in world.rpc("session-collaborator", "syncd_progress").json()["sessions"]] == ["s1"]
    sessions = world.call("session-collaborator", "GET", "sessions?select=*").json()
    leaked = [(s["slug"], s.get("pipeline")) for s in sessions if s["slug"] != "s1"]
    assert leaked == [], f"another session's pipeline (who edited what, when): {leaked}"
    projects = world.call("session-collaborator", "GET", "projects?select=*")
    state = [p.get("state") for p in projects.json()] if projects.status_code == 200 else []
    assert "project-level" not in json.dumps(state), f"session_state.json's content: {state}"


def test_an_event_is_about_the_path_it_was_checked_for(world):
    """syncd_record checks the reader may read the event's path, then lets `details` replace
    that path: a member of s1 plants a conflict on s2's document in everyone's feed."""
    reply = world.rpc("session-collaborator", "syncd_record", events=[
        {"kind": "conflict", "path": S1_DOC, "details": {"path": S2_DOC}}])
    assert reply.status_code == 200, reply.text
    feed = world.rpc("owner", "syncd_activity", newest=True, limit=1).json()["activity"]
    assert [(a["kind"], a["path"]) for a in feed] == [("conflict", S1_DOC)], feed


def test_only_an_owner_imports_history(world):
    """A version with provenance carries an author's e-mail (the Git mirror commits under it)
    and a time of the caller's choosing: the history of someone else, made up."""
    forged = {"path": "projects/P/forged.md", "base_version": None, "origin": "import", "content": text("x"),
              "provenance": {"commit": "f" * 40, "author_name": "Owner", "author_email": "owner@example.com",
                             "at": "2001-01-01T00:00:00Z"}}
    for client in ("collaborator", "session-collaborator"):
        path = forged["path"] if client == "collaborator" else "projects/P/sessions/s1/forged.md"
        assert world.commit(client, [{**forged, "path": path}]) == ["forbidden"], client
    assert world.rows("select count(*) from document_versions where provenance ->> 'commit' = %s", "f" * 40) == [(0,)]


def test_the_contracts_own_functions_check_rights_when_called_directly(world):
    """`syncd` is not exposed by PostgREST, but its functions are granted to authenticated:
    a SECURITY DEFINER one must check the caller itself, or not be callable."""
    me = world.users["session-collaborator"]
    (s2,) = world.rows("select id from sessions where slug = 's2'")[0]
    with sql_as(world.dsn, me) as conn:
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            with conn.transaction():
                conn.execute("select syncd.import_members(%s)", (Jsonb(
                    {"workspace": "ws", "files": [{"path": ".owner", "text": "session-collaborator"}]}),))
        roles = conn.execute("select role from workspace_members where user_id = %s", (me,)).fetchall()
        assert roles == [], "a session member made themselves an owner of the workspace"
        leaked = []
        for function in ("syncd.stage_of_session(s.id, 'spec')", "syncd.pipeline_of(s.id)"):
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    leaked += conn.execute(f"select {function} from (select %s::uuid as id) s", (s2,)).fetchall()
        assert "collaborator" not in json.dumps(leaked), f"s2's editors, to a member of s1: {leaked}"


# Attempts refused: kept so that they stay refused.

def test_no_one_acts_for_another_members_device(world):
    before = world.rows("select name, hostname, state, applied_seq from devices where id = %s", world.device)
    for client in ("collaborator", "reader", "session-collaborator"):
        world.rpc(client, "syncd_open", device={"id": world.device, "name": "pwned", "hostname": "evil"})
        beat = world.rpc(client, "syncd_heartbeat", device=world.device, state="stopped", applied_seq=999)
        assert (beat.status_code, beat.json()["code"]) == (404, "PT404"), (client, beat.text)
    assert world.commit("collaborator", [{"path": "projects/P/by-me.md", "base_version": None,
                                          "content": text("x")}], device=world.device) == ["accepted"]
    assert world.rpc("reader", "syncd_record", device=world.device,
                     events=[{"kind": "note", "path": PROJECT_DOC}]).status_code == 200
    assert world.rows("select name, hostname, state, applied_seq from devices where id = %s", world.device) == before
    assert world.rows("select count(*) from document_versions where device_id = %s", world.device) == [(0,)]
    assert world.rows("select count(*) from activity_log where device_id = %s", world.device) == [(0,)]


def test_no_one_changes_membership_without_being_an_owner(world):
    before = membership(world)
    attempts = [("syncd_members", {"action": "add", "login": "stranger", "role": "owner"}),
                ("syncd_members", {"action": "role", "login": "collaborator", "role": "owner"}),
                ("syncd_members", {"action": "remove", "login": "owner"}),
                ("syncd_members", {"action": "add", "login": "newcomer", "role": "owner"}),  # an invitation
                ("syncd_members", {"action": "add", "login": "session-collaborator", "role": "owner",
                                   "project": "P", "session": "s1"}),
                ("syncd_import_members", {"files": [{"path": ".owner", "text": "stranger\nnewcomer"}]}),
                ("syncd_import_members", {"dry_run": "no", "files": [{"path": ".owner", "text": "stranger"}]}),
                ("syncd_open", {"create": True, "name": "taken over"})]
    for client in ("collaborator", "reader", "session-collaborator", "stranger", "anon"):
        for function, payload in attempts:
            reply = world.rpc(client, function, **payload)
            allowed = function == "syncd_open" and client not in ("stranger", "anon")  # opens what they have
            assert reply.status_code == 200 if allowed else reply.status_code in (401, 403, 404), \
                (client, function, payload, reply.text)
    assert membership(world) == before
    assert world.rows("select name, created_by::text from workspaces where slug = 'ws'") == [("ws", None)]


def test_a_session_member_and_a_reader_write_nothing_they_may_not(world):
    before = world.rows("select path, version from documents order by 1")
    outside = [S2_DOC, PROJECT_DOC, "projects/P/sessions/s3/new.md", "projects/P/s2/spec/other.md",
               "projects/P/CURRENT_SESSION", "top.md"]
    assert world.commit("session-collaborator", [{"path": p, "base_version": None, "content": text("x")}
                                                 for p in outside]) == ["forbidden"] * len(outside)
    assert world.commit("reader", [{"path": p, "base_version": None, "content": text("x")}
                                   for p in outside + [S1_DOC]]) == ["forbidden"] * (len(outside) + 1)
    for path in (S2_DOC, PROJECT_DOC, None):
        reply = world.rpc("session-collaborator", "syncd_record", events=[{"kind": "note", "path": path}])
        assert (reply.status_code, reply.json()["code"]) == (403, "42501"), (path, reply.text)
    assert world.rows("select path, version from documents order by 1") == before


def test_a_session_member_reads_nothing_of_other_sessions_through_the_rpcs(world):
    client = "session-collaborator"
    s2_seqs = {seq for (seq,) in world.rows("select seq from document_versions where path like %s",
                                             "projects/P/sessions/s2/%")}
    s2_sha = world.rows("select sha256 from documents where path = %s", S2_DOC)[0][0]
    changes = world.rpc(client, "syncd_changes", since=0).json()["changes"]
    assert {c["path"] for c in changes} == {S1_DOC}, changes
    assert [d["path"] for d in world.rpc(client, "syncd_documents").json()["documents"]] == [S1_DOC]
    for function, payload in (("syncd_history", {"path": S2_DOC}), ("syncd_version", {"path": S2_DOC}),
                              ("syncd_version", {"path": S2_DOC, "version": 1})):
        hidden = world.rpc(client, function, **payload)
        missing = world.rpc(client, function, **{**payload, "path": S2_DOC + ".missing"})
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["message"].replace(S2_DOC, "<path>") == \
            missing.json()["message"].replace(S2_DOC + ".missing", "<path>")
    for function in ("syncd_versions", "syncd_contents"):
        assert world.rpc(client, function, versions=[{"path": S2_DOC, "version": 1}]).json() == {"versions": []}
    assert [v["path"] for v in world.rpc(client, "syncd_contents", versions=[
        {"path": S1_DOC, "version": 1}]).json()["versions"]] == [S1_DOC]  # (what it may read, it gets)
    for seq in s2_seqs:
        assert world.rpc(client, "syncd_feed_mark", seq=seq).json() == {"change": None}
    assert world.rpc(client, "syncd_match_versions", files=[{"path": S2_DOC, "sha256": s2_sha}]).json() == \
        {"matches": []}
    assert world.rpc(client, "syncd_known_commit", commits=[S2_COMMIT]).json() == {"commit": None}
    activity = world.rpc(client, "syncd_activity").json()["activity"]
    assert {a["session"] for a in activity} == {"s1"}, activity
    stats = json.dumps(world.rpc(client, "syncd_stats").json())
    assert "s2" not in stats and "owner-laptop" not in stats, stats
    for view in ("syncd_stage_completion", "syncd_stage_times", "syncd_lead_times", "syncd_edits_per_day",
                 "syncd_conflict_rates", "syncd_device_sync"):
        rows = world.call(client, "GET", f"{view}?select=*").json()
        assert "s2" not in json.dumps(rows) and "owner-laptop" not in json.dumps(rows), (view, rows)


def test_a_malformed_commit_leaves_nothing_behind_and_the_workspace_goes_on(world):
    last_seq = world.rows("select last_seq from workspaces where slug = 'ws'")
    counts = world.rows("select (select count(*) from document_versions), (select count(*) from activity_log)")
    good = {"path": "projects/P/fine.md", "base_version": None, "content": text("fine")}
    for bad in ({"base_version": "one"}, {"deleted": "perhaps"}, {"side": {"content": text("s"), "parent_version": "x"},
                                                                 "path": PROJECT_DOC, "base_version": 1}):
        reply = world.rpc("collaborator", "syncd_commit", changes=[good, {**good, "path": "projects/P/bad.md", **bad}])
        assert reply.status_code == 400, (bad, reply.text)
    for changes, code in (([good] * 501, "PT413"), ("not a list", "PT413")):
        reply = world.rpc("collaborator", "syncd_commit", changes=changes)
        assert (reply.status_code, reply.json()["code"]) == (413, code), reply.text
    weird = [{"path": p, "base_version": None, "content": text("x")}
             for p in ("projects/P/../x", "/etc/passwd", "a//b", "projects/P/.git/config", "projects/P/.GIT./hooks")]
    weird.append({"path": "projects/P/x.md", "base_version": None, "content": {"encoding": "rot13", "text": "x"}})
    weird.append({"path": "projects/P/y.md", "base_version": None, "content": text("x"), "origin": "superuser"})
    assert world.commit("collaborator", weird) == ["invalid"] * len(weird)
    assert world.rows("select last_seq from workspaces where slug = 'ws'") == last_seq
    assert world.rows("select (select count(*) from document_versions), (select count(*) from activity_log)") == counts
    assert world.commit("reader", [good]) == ["forbidden"]
    assert world.commit("collaborator", [good]) == ["accepted"]  # and the next commit by anyone lands
    feed = world.rpc("reader", "syncd_changes", since=last_seq[0][0]).json()["changes"]
    assert [(c["path"], c["seq"]) for c in feed] == [("projects/P/fine.md", last_seq[0][0] + 1)]


def test_the_views_take_no_writes_and_the_contract_no_sql(world):
    for view in ("syncd_stage_completion", "syncd_device_sync", "syncd_edits_per_day"):
        for method, kwargs in (("POST", {"json": {"workspace_id": str(uuid.uuid4())}}),
                               ("PATCH", {"json": {"workspace_id": str(uuid.uuid4())}}), ("DELETE", {})):
            reply = world.call("owner", method, view, **kwargs)
            # no privilege, or a view PostgreSQL cannot write through: refused either way
            assert (reply.status_code, reply.json()["code"]) in ((403, "42501"), (400, "55000")), (view, method,
                                                                                                  reply.text)
    # JSON is data to the contract: quotes, comments and statements are names like any other
    hostile = "projects/P/x'); delete from documents; --.md"
    assert world.commit("collaborator", [{"path": hostile, "base_version": None, "content": text("x")}]) == ["accepted"]
    assert world.rpc("collaborator", "syncd_history", path=hostile).json()["versions"][0]["path"] == hostile
    reply = world.rpc("owner", "syncd_members", action="add", login="x' or '1'='1", role="owner")
    assert (reply.status_code, reply.json()["code"]) == (400, "22023"), reply.text
    assert world.rows("select count(*) from documents where path = %s", hostile) == [(1,)]
