"""The two-tier permission model, enforced by row level security and the contract's
functions, on a real PostgreSQL: every role × every operation."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from supabase_database import sign_up
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change, NotFound, StoreError

pytestmark = pytest.mark.on_both_databases

SESSION_DOC = "projects/P/sessions/s1/specs/spec.md"
OTHER_DOC = "projects/P/README.md"
S2_DOC = "projects/P/sessions/s2/notes.md"  # another session
ROLES = ["owner", "collaborator", "session_collaborator", "reader", "stranger"]


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


class AsUser(PostgresStore):
    """What PostgREST does for a request with a user's JWT: `set role authenticated` and the
    claims in request.jwt.claims (here once per connection)."""

    def __init__(self, dsn: str, uid: str):
        super().__init__(dsn, "ws", str(uuid.uuid4()))
        self.uid = uid

    def _connection(self):
        fresh = self._conn is None
        conn = super()._connection()
        if fresh:
            conn.execute("select set_config('request.jwt.claims', %s, false)",
                         (json.dumps({"sub": self.uid, "role": "authenticated"}),))
            conn.execute("set role authenticated")
        return conn

    def rows(self, table: str) -> int:
        return self._connection().execute(f"select count(*) from public.{table}").fetchone()[0]


def make_user(dsn: str, login: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return sign_up(conn, login)


@pytest.fixture
def world(dsn):
    admin = PostgresStore(dsn, "ws")
    admin.open(create=True)
    admin.commit([Change(SESSION_DOC, None, text("spec")), Change(OTHER_DOC, None, text("readme")),
                  Change(S2_DOC, None, text("another session"))])
    admin.record([{"kind": "note", "path": SESSION_DOC}, {"kind": "note", "path": OTHER_DOC}])
    users = {role: make_user(dsn, role.replace("_", "-")) for role in ROLES}
    for login, role, where in [("owner", "owner", {}), ("collaborator", "collaborator", {}),
                               ("reader", "reader", {}),
                               ("session-collaborator", "collaborator", {"project": "P", "session": "s1"})]:
        admin.members("add", login=login, role=role, **where)
    stores = {role: AsUser(dsn, uid) for role, uid in users.items()}
    yield admin, stores
    for s in [admin, *stores.values()]:
        s.close()


def can(fn) -> bool:
    try:
        fn()
    except (NotFound, StoreError):
        return False
    return True


def write(admin: PostgresStore, store: PostgresStore, path: str, delete: bool = False) -> bool:
    head = admin.version(path)["version"]
    [result] = store.commit([Change(path, head, None if delete else text(f"edit {head}"))])
    assert result.status in ("accepted", "forbidden"), result
    return result.status == "accepted"


EXPECTED = {  # role: (read/history session doc, read/history other doc, write session, write other)
    "owner": (True, True, True, True),
    "collaborator": (True, True, True, True),
    "session_collaborator": (True, False, True, False),
    "reader": (True, True, False, False),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_members_see_and_change_what_their_role_allows(world, role):
    admin, stores = world
    store = stores[role]
    store.open(device_name=f"{role}-laptop")
    read_s, read_o, write_s, write_o = EXPECTED[role]
    assert can(lambda: store.version(SESSION_DOC)) is read_s
    assert can(lambda: store.version(OTHER_DOC)) is read_o
    assert can(lambda: store.history(SESSION_DOC)) is read_s
    assert can(lambda: store.history(OTHER_DOC)) is read_o
    feed = {e.path for e in store.changes(0)[0]}
    assert feed == {p for p, ok in [(SESSION_DOC, read_s), (OTHER_DOC, read_o), (S2_DOC, read_o)] if ok}
    # per document its version, plus a note on the first two
    assert store.rows("activity_log") == 2 * (read_s + read_o) + read_o
    assert [(s["project"], s["session"]) for s in store.progress()] == [("P", "s1"), ("P", "s2")][:1 + read_o]
    assert write(admin, store, SESSION_DOC) is write_s
    assert write(admin, store, OTHER_DOC) is write_o
    assert write(admin, store, SESSION_DOC, delete=True) is write_s
    assert write(admin, store, OTHER_DOC, delete=True) is write_o
    # nobody but the database itself changes rows behind the contract's back
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        store._connection().execute("delete from public.document_versions")



def loop_answers(dsn: str, uid: str, payload: dict) -> list[dict]:
    """What the change-by-change loop (commit_each) answers the user, rolled back."""
    with psycopg.connect(dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": uid, "role": "authenticated"}),))
        out = conn.execute("select syncd.commit_each(%s)", (Jsonb(payload),)).fetchone()[0]["results"]
        conn.rollback()
    return out


def answer(r: dict) -> dict:
    """Without what differs from one transaction to the next."""
    r = {k: v for k, v in r.items() if k not in ("seq", "created_at")}
    if isinstance(r.get("head"), dict):
        r["head"] = {k: v for k, v in r["head"].items() if k not in ("seq", "updated_at")}
    return r


BATCH_STATUSES = {  # role: a call of edits of the three documents, then new ones in s1, s3 (no such session yet)
    # and outside any session, then an import into s1
    "owner": ["accepted"] * 7,
    "collaborator": ["accepted"] * 6 + ["forbidden"],
    "session_collaborator": ["accepted", "forbidden", "forbidden", "accepted", "forbidden", "forbidden", "forbidden"],
    "reader": ["forbidden"] * 7,
}


@pytest.mark.parametrize("role", list(BATCH_STATUSES))
def test_a_call_of_many_changes_asks_the_rights_of_each_as_the_loop_does(world, dsn, role):
    """The set-based commit asks a session's rights once for all its changes (0024): each
    change still gets its own session's answer, with the loop's message."""
    admin, stores = world
    store = stores[role]
    store.open(device_name=f"{role}-laptop")
    at = "2021-03-04T05:06:07+00:00"
    changes = [Change(path, admin.version(path)["version"], text("edited")) for path in (SESSION_DOC, OTHER_DOC, S2_DOC)]
    changes += [Change("projects/P/sessions/s1/plans/plan.md", None, text("new")),
                Change("projects/P/sessions/s3/intents/intent.md", None, text("new")),
                Change("notes.md", None, text("new")),
                Change("projects/P/sessions/s1/tasks/tasks.md", None, text("imported"), "import",
                       provenance={"commit": "c1", "author_name": "Ada", "author_email": "a@example.com", "at": at})]
    payload = {"workspace": "ws", "device": store.device_id, "changes": [c.payload() for c in changes]}
    expected = loop_answers(dsn, store.uid, payload)
    out = store._call("syncd_commit", payload)["results"]
    assert [r["status"] for r in out] == BATCH_STATUSES[role]
    assert [answer(r) for r in out] == [answer(r) for r in expected]
    messages = {r["message"] for r in out if r["status"] == "forbidden"}
    assert messages <= {"you may read but not write this document (a workspace owner can grant it: syncd members)",
                        "only an owner of the workspace imports history (syncd import)"}

def test_a_stranger_gets_nothing_at_all(world):
    admin, stores = world
    stranger = stores["stranger"]
    for attempt in (lambda: stranger.open(), lambda: stranger.version(SESSION_DOC),
                    lambda: stranger.history(OTHER_DOC), lambda: stranger.changes(0),
                    lambda: stranger.commit([Change("x.md", None, text("x"))])):
        with pytest.raises(NotFound):
            attempt()
    for table in ("documents", "document_versions", "activity_log", "devices", "workspaces",
                  "workspace_members", "projects", "sessions", "invitations"):
        assert stranger.rows(table) == 0, table


def test_devices_are_visible_to_workspace_members_and_to_their_owner(world):
    admin, stores = world
    for role in ("owner", "session_collaborator"):
        stores[role].open(device_name=role)
    assert stores["owner"].rows("devices") == 2
    assert stores["session_collaborator"].rows("devices") == 1  # only its own
    assert stores["reader"].rows("devices") == 2


def test_only_owners_manage_members_and_invitations_become_memberships(world, dsn):
    admin, stores = world
    with pytest.raises(StoreError, match="only an owner"):
        stores["collaborator"]._call("syncd_members", {"workspace": "ws", "action": "add",
                                                       "login": "mallory", "role": "owner"})
    out = stores["owner"]._call("syncd_members", {"workspace": "ws", "action": "add",
                                                  "login": "dave", "role": "collaborator"})
    assert out == {"invited": "dave", "role": "collaborator"}
    dave = AsUser(dsn, make_user(dsn, "dave"))  # signs in for the first time
    assert can(lambda: dave.version(OTHER_DOC)) and write(admin, dave, OTHER_DOC)
    members = stores["reader"]._call("syncd_members", {"workspace": "ws"})["members"]
    assert {(m["login"], m["role"], m["session"]) for m in members} >= {
        ("owner", "owner", None), ("dave", "collaborator", None), ("session-collaborator", "collaborator", "s1")}
    stores["owner"]._call("syncd_members", {"workspace": "ws", "action": "remove", "login": "reader"})
    assert not can(lambda: stores["reader"].version(OTHER_DOC))
    dave.close()


def test_creating_a_workspace_makes_the_user_its_owner(world, dsn):
    _, stores = world
    mine = AsUser(dsn, stores["stranger"].uid)
    mine.workspace = "strangers-own"
    mine.open(create=True)
    [result] = mine.commit([Change("a.md", None, text("mine"))])
    assert result.status == "accepted"
    assert mine._call("syncd_members", {"workspace": "strangers-own"})["members"][0]["role"] == "owner"
    mine.close()


def test_the_members_command(copies, dsn, private_xdg):
    a, _ = copies
    assert "no members yet" in a.cli("members").output
    assert "invited alice as owner" in a.cli("members", "add", "alice", "--role", "owner").output
    make_user(dsn, "alice")
    (a.root / "projects/P/sessions/s1").mkdir(parents=True)
    (a.root / "projects/P/sessions/s1/x.md").write_text("x\n")
    a.sync()
    make_user(dsn, "bob")
    assert "bob is now reader of session P/s1" in a.cli("members", "add", "bob", "--role", "reader",
                                                        "--session", "P/s1").output
    listed = json.loads(a.cli("members", "--json").stdout)
    assert [(m["login"], m["role"], m["session"], m["pending"]) for m in listed] == \
        [("alice", "owner", None, False), ("bob", "reader", "s1", False)]
    assert "bob is now collaborator" in a.cli("members", "role", "bob", "--role", "collaborator",
                                              "--session", "P/s1").output
    assert "removed bob" in a.cli("members", "remove", "bob", "--session", "P/s1").output
    assert "PROJECT/SESSION" in a.cli("members", "add", "x", "--role", "reader", "--session", "nope", expect=2).output
    assert "no session P/s9" in a.cli("members", "add", "x", "--role", "reader", "--session", "P/s9", expect=1).output


ANALYTICS_VIEWS = ("syncd_stage_completion", "syncd_stage_times", "syncd_lead_times", "syncd_edits_per_day",
                   "syncd_conflict_rates", "syncd_device_sync")


def test_a_session_reader_sees_that_sessions_progress_activity_and_figures_only(world, dsn):
    admin, stores = world
    admin.members("add", login="reader-of-s1", role="reader", project="P", session="s1")
    session_reader = AsUser(dsn, make_user(dsn, "reader-of-s1"))
    session_reader.open(device_name="reader-laptop")
    workspace_reader = stores["reader"]
    # one session's figures: its progress, its single document's edit and activity
    assert [s["session"] for s in session_reader.progress()] == ["s1"]
    rows, _ = session_reader.activity()
    assert {r["path"] for r in rows} == {SESSION_DOC}
    f = session_reader.stats()
    assert {r["sessions"] for r in f["stage_completion"]} == {1}
    assert [(r["edits"], r["project"]) for r in f["conflict_rates"]] == [(1, "P")]
    assert sum(r["edits"] for r in f["edits_per_day"]) == 1
    assert [r["device"] for r in f["devices"]] == ["reader-laptop"]  # its own only
    assert session_reader._connection().execute(
        "select distinct session from public.syncd_stage_times").fetchall() == [("s1",)]
    # a workspace reader sees both sessions and the project's own document
    assert [s["session"] for s in workspace_reader.progress()] == ["s1", "s2"]
    f = workspace_reader.stats()
    assert {r["sessions"] for r in f["stage_completion"]} == {2}
    assert sum(r["edits"] for r in f["edits_per_day"]) == 3
    session_reader.close()


def test_strangers_get_no_figures_and_nobody_beats_for_another_device(world, dsn):
    admin, stores = world
    stranger = stores["stranger"]
    with pytest.raises(NotFound):
        stranger.stats()
    for view in ANALYTICS_VIEWS:
        assert stranger.rows(view) == 0, view
    owner = stores["owner"]
    owner.open(device_name="owner-laptop")
    owner.heartbeat("running", None, "0.1.0", 0)
    collaborator = stores["collaborator"]
    collaborator.device_id = owner.device_id  # claims the owner's device
    with pytest.raises(NotFound, match="not one of yours"):
        collaborator.heartbeat("stopped", None, "0.1.0", 0)
    [device] = owner.stats()["devices"]
    assert (device["device"], device["status"], device["behind"]) == ("owner-laptop", "running", 3)
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set role anon")
        conn.execute("select * from public.syncd_device_sync")
