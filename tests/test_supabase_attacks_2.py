"""A second hostile round against a Supabase-shaped project, on the contract as the first
round left it (tests/test_supabase_attacks.py: its `world` is used here): the activity feed
anyone who may read can write to, the workspace lock a commit takes, what a device row
holds, and where logins come from.

Each test is one kind of attack: the attempts that got through when this file was written
(asserting the safe behaviour) and, marked so, the ones the contract refuses (kept so that
they stay refused)."""
from __future__ import annotations

import threading
import uuid

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from supabase_database import gotrue_user
from syncd.cli.activity import _line
from test_supabase_attacks import PROJECT_DOC, S1_DOC, S2_DOC, gotrue_updates_metadata, text, world  # noqa: F401

pytestmark = pytest.mark.parametrize("flavour", ["supabase"], indirect=True)


def newest(world, n: int = 1) -> list[dict]:
    return world.rpc("owner", "syncd_activity", newest=True, limit=n).json()["activity"]


def activity_count(world) -> int:
    return world.rows("select count(*) from activity_log")[0][0]


# Holes found: each asserts the safe behaviour.

def test_an_events_details_are_an_object_about_the_path_checked(world):
    """`details` that is not an object turns the event into a JSON array (`array || object`):
    the path checked is lost from the feed, the path a reader named stays in it, and
    `syncd activity` fails for every member on that row (details.get on a list)."""
    before = activity_count(world)
    for details in ([{"path": S2_DOC}], "a string", 7):
        reply = world.rpc("reader", "syncd_record", events=[{"kind": "note", "path": PROJECT_DOC, "details": details}])
        assert (reply.status_code, reply.json().get("code")) == (400, "22023"), (details, reply.text)
    (version,) = world.rows("select version from documents where path = %s", PROJECT_DOC)[0]
    reply = world.rpc("collaborator", "syncd_commit", changes=[{"path": PROJECT_DOC, "base_version": version,
                                                               "origin": "restore", "content": text("r"),
                                                               "activity": [{"path": S2_DOC}]}])
    assert [r["status"] for r in reply.json()["results"]] == ["invalid"], reply.text  # that change only
    assert activity_count(world) == before
    assert [_line(row) for row in newest(world, 20)]  # every member's `syncd activity` still reads the feed


def test_a_versions_event_tells_the_version_it_made(world):
    """A restore's or a merge's `activity` adds details to the event; it must not replace the
    contract's own: here a restore made v2 and its event said "v1 (deleted)"."""
    (version,) = world.rows("select version from documents where path = %s", PROJECT_DOC)[0]
    assert world.commit("collaborator", [{"path": PROJECT_DOC, "base_version": version, "origin": "restore",
                                          "content": text("restored"),
                                          "activity": {"restored_version": 1, "version": 1, "deleted": True,
                                                       "parent_version": 99}}]) == ["accepted"]
    (event,) = newest(world)
    assert (event["kind"], event["path"]) == ("restore", PROJECT_DOC)
    assert {k: event["details"].get(k) for k in ("version", "parent_version", "deleted", "restored_version")} == \
        {"version": version + 1, "parent_version": version, "deleted": False, "restored_version": 1}, event


def test_only_an_owner_labels_a_version_imported(world):
    """The first round kept provenance for owners; the label alone passed. An `import` version
    reads in the feed and history as history brought in by an owner, and `syncd import`
    treats an imported head as its own (importer.py: not left alone), so the owner's next
    import puts Git's version over the collaborator's."""
    assert world.commit("collaborator", [{"path": "projects/P/label.md", "base_version": None, "origin": "import",
                                          "content": text("x")}]) == ["forbidden"]
    assert world.commit("collaborator", [{"path": "projects/P/label2.md", "base_version": None,
                                          "content": text("x")}], origin="import") == ["forbidden"]
    assert world.commit("session-collaborator", [{"path": "projects/P/sessions/s1/label.md", "base_version": None,
                                                  "origin": "import", "content": text("x")}]) == ["forbidden"]
    assert world.rows("select count(*) from document_versions where origin = 'import' and author_id <> %s",
                      world.users["owner"]) == [(0,)]
    assert world.commit("collaborator", [{"path": "projects/P/label.md", "base_version": None, "origin": "merge",
                                          "content": text("x")}]) == ["accepted"]  # other labels stay a writer's


def test_no_one_records_the_contracts_own_events(world):
    """syncd_record takes any lowercase kind: a reader wrote "restore", "merge", "sync",
    "import" and "conflict" events (the feed showed the reader restoring a file they may not
    write, and syncd_conflict_rates counted the made-up conflicts). The contract writes
    those kinds itself; a client records only its own: conflicts where it may write,
    an import as an owner."""
    before = activity_count(world)
    for kind in ("sync", "merge", "restore", "resolve", "import", "conflict"):
        reply = world.rpc("reader", "syncd_record", events=[{"kind": kind, "path": PROJECT_DOC,
                                                              "details": {"version": 7, "restored_version": 1}}])
        assert reply.status_code in (400, 403), (kind, reply.text)
    for kind in ("sync", "restore"):
        reply = world.rpc("collaborator", "syncd_record", events=[{"kind": kind, "path": PROJECT_DOC}])
        assert reply.status_code in (400, 403), (kind, reply.text)
    assert activity_count(world) == before
    rates = world.call("owner", "GET", "syncd_conflict_rates?select=project,conflicts").json()
    assert all(r["conflicts"] == 0 for r in rates), rates
    # what clients do record (executor.py, service.py, identity.py, importer.py) still lands
    for client, kind, path in (("collaborator", "conflict", PROJECT_DOC), ("session-collaborator", "conflict", S1_DOC),
                               ("reader", "daemon_running", None), ("reader", "copy_rebuilt", None),
                               ("owner", "import", None)):
        reply = world.rpc(client, "syncd_record", events=[{"kind": kind, "path": path, "details": {"why": "x"}}])
        assert reply.status_code == 200, (client, kind, reply.text)


def test_a_reader_cannot_hold_the_workspace_lock(world):
    """A commit locked the workspace's row before any rights check, and a path was split into
    its parts before any length check: a reader's commit of 500 forbidden changes with
    100 KB paths held the lock 4.4 s, a session member's 4.8 s. And syncd_record took any
    number of events, each insert holding a KEY SHARE lock on the same row (its foreign key)
    that a commit's FOR UPDATE waits for: a reader's 20,000 events ran 8.1 s (until the
    statement timeout) and kept a collaborator's one-file commit waiting 7.1 s."""
    with psycopg.connect(world.dsn) as holder:  # an event or a device row being written: a KEY SHARE lock
        holder.execute("select 1 from workspaces where slug = 'ws' for key share")
        changes = [{"path": f"projects/P/x{i}.md", "base_version": None, "content": text("x")} for i in range(3)]
        for client, expected in (("reader", "forbidden"), ("collaborator", "accepted")):
            try:
                reply = httpx.post(f"{world.url}/rest/v1/rpc/syncd_commit", timeout=3,
                                   json={"workspace": "ws", "changes": changes},
                                   headers={"apikey": world.tokens[client],
                                            "Authorization": f"Bearer {world.tokens[client]}"})
            except httpx.ReadTimeout:
                pytest.fail(f"the {client}'s commit waited for another member's event to be recorded")
            assert [r["status"] for r in reply.json()["results"]] == [expected] * 3, (client, reply.text)
    long_path = "projects/P/sessions/s1/" + "a/" * 2100 + "x.md"  # longer than any PATH_MAX
    assert world.commit("session-collaborator", [{"path": long_path, "base_version": None,
                                                  "content": text("x")}]) == ["invalid"]
    before = activity_count(world)
    reply = world.rpc("reader", "syncd_record", events=[{"kind": "note", "path": PROJECT_DOC}] * 501)
    assert (reply.status_code, reply.json()["code"]) == (413, "PT413"), reply.text[:300]
    reply = world.rpc("reader", "syncd_record", events=[{"kind": "note", "path": PROJECT_DOC,
                                                          "details": {"x": "y" * 100_000}}])
    assert reply.status_code in (400, 413), reply.text[:300]  # 20 of these made the feed 20 MB for everyone
    assert activity_count(world) == before
    assert world.rpc("reader", "syncd_record", events=[{"kind": "note", "path": PROJECT_DOC}] * 500).status_code == 200


def test_a_device_row_holds_what_a_device_is(world):
    """Any member's device appears in every member's `syncd stats`: a reader stored a 5 MB
    heartbeat reason and a 3 MB device name, and every member's syncd_stats became 8 MB."""
    device = str(uuid.uuid4())
    assert world.rpc("reader", "syncd_open", device={"id": device, "name": "n" * 3_000_000,
                                                      "hostname": "h" * 100_000}).status_code in (200, 400)
    world.rpc("reader", "syncd_open", device={"id": device, "name": "reader-laptop"})
    world.rpc("reader", "syncd_heartbeat", device=device, state="running", reason="r" * 5_000_000,
              version="v" * 100_000, applied_seq=1)
    sizes = world.rows("select coalesce(length(name), 0) + coalesce(length(hostname), 0) + coalesce(length(reason), 0)"
                       " + coalesce(length(software_version), 0) from devices where id = %s", device)
    assert sizes and sizes[0][0] <= 4096, sizes
    assert len(world.rpc("owner", "syncd_stats").content) < 100_000


# Attempts refused: kept so that they stay refused.

def test_a_login_is_the_one_github_gives_now(world):
    """Logins come from GitHub identities only: metadata and other providers' identities name
    no one; a login GitHub gave to someone else after a rename moves to them (their
    invitations with it, in any case) while the old holder keeps their memberships."""
    world.rpc("owner", "syncd_members", action="add", login="Dana", role="reader")  # invited, capitalised
    mail = world.user("mail-user", 50)
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        conn.execute("delete from auth.identities where user_id = %s", (mail,))
        conn.execute("update profiles set github_login = null where id = %s", (mail,))
        conn.execute("insert into auth.identities (provider_id, user_id, identity_data, provider) values"
                     " (%s, %s, %s, 'email')", (mail, mail, Jsonb({"sub": mail, "user_name": "dana"})))
    gotrue_updates_metadata(world.dsn, mail, {"user_name": "dana", "preferred_username": "dana"})
    assert world.rpc("mail-user", "syncd_open").status_code == 404  # an e-mail account names no login
    with psycopg.connect(world.dsn, autocommit=True) as conn:  # ... until it links its GitHub identity
        conn.execute("insert into auth.identities (provider_id, user_id, identity_data, provider) values"
                     " ('51', %s, %s, 'github')", (mail, Jsonb({"user_name": "dana", "sub": "51"})))
    assert world.rpc("mail-user", "syncd_open").json()["role"] == "reader"
    # the reader renames on GitHub; someone else takes "reader" there and signs in
    reader = world.users["reader"]
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        conn.execute("update auth.identities set identity_data = identity_data || %s where user_id = %s",
                     (Jsonb({"user_name": "reader-renamed", "preferred_username": "reader-renamed"}), reader))
    newcomer = gotrue_user(world.dsn, "READER", github_id=60)
    assert world.rows("select id::text, github_login from profiles where id in (%s, %s) order by github_login",
                      reader, newcomer) == sorted([(newcomer, "READER"), (reader, "reader-renamed")],
                                                  key=lambda r: r[1])
    assert world.rpc("reader", "syncd_open").json()["role"] == "reader"  # memberships are the person's
    assert world.rows("select count(*) from workspace_members where user_id = %s", newcomer) == [(0,)]


def test_a_session_move_shows_no_one_more(world):
    """Policies read membership sets (my_sessions, my_session_documents): a document that
    lands in a session by its path (either layout) is the session's; a file beside the
    sessions, or a session a member is not in, stays hidden however it is named."""
    for path in ("projects/P/s1/spec/flat.md", "projects/P/sessions/s2/notes.md", "projects/P/sessions/s1x/a.md",
                 "projects/P/s2/spec/flat.md", "projects/P/sessions.md"):
        assert world.commit("owner", [{"path": path, "base_version": None, "content": text(path)}]) == ["accepted"]
    seen = {d["path"] for d in world.call("session-collaborator", "GET", "documents?select=path").json()}
    versions = {d["path"] for d in world.call("session-collaborator", "GET", "document_versions?select=path").json()}
    activity = world.call("session-collaborator", "GET", "activity_log?select=details").json()
    assert seen == versions == {S1_DOC, "projects/P/s1/spec/flat.md"}, (seen, versions)
    assert {a["details"].get("path") for a in activity} <= seen, activity
    done = threading.Event()  # a commit moving documents while a member reads: never more than the set
    leaked = []

    def read() -> None:
        while not done.is_set():
            rows = world.call("session-collaborator", "GET", "documents?select=path").json()
            leaked.extend(r["path"] for r in rows if r["path"] not in seen)
    reader = threading.Thread(target=read)
    reader.start()
    for i in range(5):
        world.commit("owner", [{"path": f"projects/P/sessions/s2/more{i}.md", "base_version": None,
                                "content": text("x")}])
    done.set()
    reader.join()
    assert leaked == [] and S2_DOC not in seen
