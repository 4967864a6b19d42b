"""The SQL contract on a real PostgreSQL: commits, the feed, history, layout, migrations."""
from __future__ import annotations

import hashlib
import random
import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb

from supabase_database import sign_up
from syncd.store.migrate import applied, bundled, migrate
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change, NotFound, Side, StoreError

pytestmark = pytest.mark.on_both_databases


def text(s: str) -> dict:
    return {"encoding": "utf-8", "text": s, "format": "text"}


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def test_migrate_is_idempotent_and_recorded(empty_dsn):
    first = migrate(empty_dsn)
    assert [m.version for m in first] == [m.version for m in bundled()]
    assert migrate(empty_dsn) == []
    with psycopg.connect(empty_dsn) as conn:
        assert applied(conn) == {m.version: m.checksum for m in bundled()}


def test_compat_migration_leaves_an_existing_auth_schema_alone(empty_dsn, flavour):
    """On Supabase auth.* exists already (the Supabase-shaped database has GoTrue's); the
    compat migration must not replace it."""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        if flavour == "plain":
            conn.execute("create schema auth")
            conn.execute("create table auth.users (id uuid primary key, email text, raw_user_meta_data jsonb, marker int)")
            conn.execute("create function auth.uid() returns uuid language sql stable as "
                         "$$ select '00000000-0000-0000-0000-00000000abcd'::uuid $$")
        before = auth_schema(conn)
    migrate(empty_dsn)
    with psycopg.connect(empty_dsn) as conn:
        columns, functions = auth_schema(conn)
    assert columns == before[0]
    assert {name: functions[name] for name in before[1]} == before[1]  # what was missing is added


def auth_schema(conn) -> tuple[list, dict]:
    columns = conn.execute("select table_name, column_name, data_type from information_schema.columns "
                           "where table_schema = 'auth' order by table_name, ordinal_position").fetchall()
    functions = dict(conn.execute("select p.proname, pg_get_functiondef(p.oid) from pg_proc p "
                                  "where p.pronamespace = 'auth'::regnamespace").fetchall())
    return columns, functions


def test_auth_helpers_read_jwt_claims_like_postgrest(dsn):
    with psycopg.connect(dsn) as conn:
        uid = "5f0c0c59-93a7-4f4b-9d1e-1a1c0e0b3c11"
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (f'{{"sub": "{uid}", "role": "authenticated"}}',))
        assert conn.execute("select auth.uid()::text, auth.role()").fetchone() == (uid, "authenticated")


def test_every_table_has_rls_and_explicit_grants(dsn):
    tables = ["profiles", "workspaces", "workspace_members", "projects", "sessions",
              "session_members", "documents", "document_versions", "activity_log", "devices"]
    with psycopg.connect(dsn) as conn:
        rls = dict(conn.execute(
            "select relname, relrowsecurity from pg_class where relnamespace = 'public'::regnamespace "
            "and relkind = 'r'").fetchall())
        assert {t: True for t in tables} == {t: rls.get(t) for t in tables}
        for t in tables:
            privileges = {role: conn.execute(
                "select array_agg(p order by p) filter (where has_table_privilege(%s, %s, p)) from unnest("
                "array['select', 'insert', 'update', 'delete', 'truncate']) p", (role, f"public.{t}")).fetchone()[0]
                for role in ("anon", "authenticated", "service_role")}
            assert privileges == {"anon": None, "authenticated": None if t == "projects" else ["select"],
                                  "service_role": ["delete", "insert", "select", "update"]}, t
        # a project's name for every member, its files' state (session_state.json) through the contract
        assert conn.execute("select has_column_privilege('authenticated', 'public.projects', 'name', 'select'),"
                            " has_column_privilege('authenticated', 'public.projects', 'state', 'select')"
                            ).fetchone() == (True, False)
        assert not conn.execute("select has_function_privilege('anon', 'public.syncd_commit(jsonb)', "
                                "'execute')").fetchone()[0]


def test_rls_lets_service_role_through_and_no_one_else(dsn, store):
    store.commit([Change("a.md", None, text("x"))])
    with psycopg.connect(dsn) as conn:
        conn.execute("set role service_role")
        assert conn.execute("select count(*) from documents").fetchone()[0] == 1
        conn.execute("reset role")
        conn.execute("set role authenticated")
        assert conn.execute("select count(*) from documents").fetchone()[0] == 0


def test_commit_accepts_new_then_requires_the_head_as_base(store):
    [r] = store.commit([Change("notes.md", None, text("one"))])
    assert (r.status, r.version, r.sha256) == ("accepted", 1, sha("one"))
    [r] = store.commit([Change("notes.md", 1, text("two"))])
    assert (r.status, r.version) == ("accepted", 2)
    [r] = store.commit([Change("notes.md", 1, text("stale"))])
    assert r.status == "conflict"
    assert (r.head.version, r.head.sha256, r.head.content["text"]) == (2, sha("two"), "two")
    # a second "new file" on an existing path is a conflict too, never an overwrite
    [r] = store.commit([Change("notes.md", None, text("other"))])
    assert r.status == "conflict"
    assert store.version("notes.md")["content"]["text"] == "two"


def test_identical_content_is_accepted_whatever_the_base(store):
    store.commit([Change("a.txt", None, text("same"))])
    [r] = store.commit([Change("a.txt", None, text("same"))])
    assert (r.status, r.version) == ("unchanged", 1)
    assert len(store.history("a.txt")) == 1


def test_a_retried_push_is_recognised_not_duplicated(store):
    store.commit([Change("a.txt", None, text("v1"))])
    store.commit([Change("a.txt", 1, text("v2"))])       # first attempt landed...
    store.commit([Change("a.txt", 2, text("v3 by someone else"))])
    [r] = store.commit([Change("a.txt", 1, text("v2"))])  # ...its retry comes late
    assert (r.status, r.version) == ("duplicate", 2)
    assert r.head.version == 3
    assert [v["version"] for v in store.history("a.txt")] == [3, 2, 1]


def test_deletes_are_tombstones_and_every_version_stays(store):
    store.commit([Change("a.md", None, text("keep me"))])
    [r] = store.commit([Change("a.md", 1, None)])
    assert (r.status, r.version, r.sha256) == ("accepted", 2, None)
    versions = store.history("a.md")
    assert [(v["version"], v["deleted"]) for v in versions] == [(2, True), (1, False)]
    assert store.version("a.md", 1)["content"]["text"] == "keep me"
    # deleting what is already deleted, or was never there, makes no version
    assert store.commit([Change("a.md", 2, None)])[0].status == "unchanged"
    assert store.commit([Change("never.md", None, None)])[0].status == "unchanged"
    # recreating after a delete continues the version line
    [r] = store.commit([Change("a.md", 2, text("back"))])
    assert (r.status, r.version) == ("accepted", 3)


def test_server_computes_hash_and_size_and_keeps_bytes_exact(store):
    s = "\ufeffline one\r\nline two\r\nno final newline – ünïcödé"
    [r] = store.commit([Change("x/spaced name ü.md", None, text(s))])
    assert r.sha256 == hashlib.sha256(s.encode("utf-8")).hexdigest()
    got = store.version("x/spaced name ü.md")
    assert got["content"]["text"] == s and got["size"] == len(s.encode("utf-8"))
    binary = {"encoding": "base64", "data": "AAEC/w==", "format": "binary"}
    [r] = store.commit([Change("b.bin", None, binary)])
    assert r.sha256 == hashlib.sha256(b"\x00\x01\x02\xff").hexdigest()


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", ""])
def test_hostile_paths_are_refused_per_change(store, path):
    results = store.commit([Change(path, None, text("x")), Change("ok.md", None, text("y"))])
    assert results[0].status == "invalid"
    assert results[1].status == "accepted"


def test_bad_content_is_refused_per_change(store):
    [r] = store.commit([Change("a.md", None, {"format": "text"})])
    assert r.status == "invalid" and "encoding" in r.message


def test_layout_metadata_and_rows_created_on_first_sight(dsn, store):
    store.commit([
        Change("projects/Alpha/sessions/s1/specs/spec.md", None, text("spec")),
        Change("projects/Alpha/sessions/s1/metadata/session.json", None, text("{}")),
        Change("projects/Alpha/legacy-session/intents/intent.md", None, text("intent")),
        Change("projects/Alpha/README.md", None, text("readme")),
        Change("somewhere/else/odd.bin.txt", None, text("odd")),
    ])
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select d.path, p.name, s.slug, d.stage from documents d "
            "left join projects p on p.id = d.project_id left join sessions s on s.id = d.session_id "
            "order by d.path").fetchall()
        assert rows == [
            ("projects/Alpha/README.md", "Alpha", None, None),
            ("projects/Alpha/legacy-session/intents/intent.md", "Alpha", "legacy-session", "intent"),
            ("projects/Alpha/sessions/s1/metadata/session.json", "Alpha", "s1", None),
            ("projects/Alpha/sessions/s1/specs/spec.md", "Alpha", "s1", "spec"),
            ("somewhere/else/odd.bin.txt", None, None, None),
        ]
        assert conn.execute("select count(*) from projects").fetchone()[0] == 1
        assert conn.execute("select count(*) from sessions").fetchone()[0] == 2


def test_feed_pages_every_version_in_order_with_content_only_for_heads(store):
    store.commit([Change(f"f{i}.md", None, text(f"v1 {i}")) for i in range(5)])
    store.commit([Change("f0.md", 1, text("v2 0"))])
    seen = []
    for entries, _cursor in store.feed(0, limit=2):
        seen += entries
    assert [(e.path, e.version) for e in seen] == [
        ("f0.md", 1), ("f1.md", 1), ("f2.md", 1), ("f3.md", 1), ("f4.md", 1), ("f0.md", 2)]
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)
    assert seen[0].content is None and not seen[0].is_head
    assert seen[-1].content["text"] == "v2 0"
    entries, cursor, more = store.changes(seen[-1].seq)
    assert (entries, cursor, more) == ([], seen[-1].seq, False)


def test_unknown_workspace_and_missing_schema_give_clear_errors(dsn, empty_dsn):
    with pytest.raises(NotFound, match='workspace "nope" does not exist'):
        PostgresStore(dsn, "nope").open()
    with pytest.raises(StoreError, match="run `syncd db migrate`"):
        PostgresStore(empty_dsn, "ws").open()


def test_feed_has_no_gaps_under_concurrent_commits(dsn, store):
    """Writers hold their transaction open after committing; a reader pages meanwhile.

    If sequence numbers were taken without serializing commits, a reader could pass a
    number whose transaction was still open and never see that version.
    """
    writers, commits_each = 4, 25
    done = threading.Event()
    seen: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            with psycopg.connect(dsn) as conn:
                heads: dict[str, int] = {}
                for i in range(commits_each):
                    path = f"w{n}/doc{rng.randrange(5)}.md"
                    change = {"path": path, "base_version": heads.get(path),
                              "content": text(f"{n}-{i}")}
                    with conn.transaction():
                        out = conn.execute("select syncd_commit(%s)", (Jsonb(
                            {"workspace": "ws", "changes": [change]}),)).fetchone()[0]
                        conn.execute("select pg_sleep(%s)", (rng.random() * 0.02,))
                    [r] = out["results"]
                    assert r["status"] == "accepted", r
                    heads[path] = r["version"]
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def read() -> None:
        reader = PostgresStore(dsn, "ws")
        cursor = 0
        try:
            while True:
                last_round = done.is_set()
                for entries, cursor in reader.feed(cursor, limit=7):
                    seen.extend((e.path, e.version, e.seq) for e in entries)
                if last_round:
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            reader.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors

    with psycopg.connect(dsn) as conn:
        every = conn.execute("select path, version, seq from document_versions order by seq").fetchall()
    assert len(every) == writers * commits_each
    assert seen == every  # each version once, in commit order, none skipped


def test_simultaneous_pushes_of_one_path_give_one_head_and_one_conflict(dsn, store):
    store.commit([Change("shared.md", None, text("base"))])
    for round_ in range(10):
        barrier = threading.Barrier(2)
        base = store.history("shared.md")[0]["version"]
        results: dict[str, object] = {}

        def push(who: str) -> None:
            s = PostgresStore(dsn, "ws")
            try:
                s.open()
                barrier.wait()
                [results[who]] = s.commit([Change("shared.md", base, text(f"{who} {round_}"))])
            finally:
                s.close()

        threads = [threading.Thread(target=push, args=(w,)) for w in ("left", "right")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status for r in results.values())
        assert statuses == ["accepted", "conflict"]
        winner = next(w for w, r in results.items() if r.status == "accepted")
        loser = next(r for r in results.values() if r.status == "conflict")
        assert loser.head.content["text"] == f"{winner} {round_}"
        assert store.version("shared.md")["version"] == base + 1


def test_a_commit_notifies_its_workspace_once(dsn, store):
    ws = store.open().id
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f'listen "syncd:{ws}"')
        store.commit([Change(f"n{i}.md", None, text(str(i))) for i in range(5)])
        store.commit([Change("n0.md", 1, text("again"))])
        got = list(listener.notifies(timeout=1.0))
    assert [n.channel for n in got] == [f"syncd:{ws}", f"syncd:{ws}"]  # one per commit


def activity(dsn: str) -> list[tuple[str, dict]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select kind, details from public.activity_log order by id").fetchall()


def test_a_merge_keeps_its_side_as_a_version_with_both_parents(dsn, store):
    store.commit([Change("a.md", None, text("base"))])
    store.commit([Change("a.md", 1, text("remote edit"))])
    merged = Change("a.md", 2, text("merged"), origin="merge", side=Side(text("local edit"), 1),
                    activity={"how": "text"})
    [r] = store.commit([merged])
    assert (r.status, r.side_version, r.version) == ("accepted", 3, 4)
    versions = {v["version"]: v for v in store.history("a.md")}
    assert (versions[3]["parent_version"], versions[3]["origin"], versions[3]["sha256"]) == (1, "sync", sha("local edit"))
    assert (versions[4]["parent_version"], versions[4]["merge_parent"], versions[4]["origin"]) == (2, 3, "merge")
    assert store.version("a.md")["content"]["text"] == "merged"
    # only the result is the head: the feed carries content for it alone
    feed, _, _ = store.changes(0)
    assert [(e.version, e.is_head, e.content is not None) for e in feed if e.path == "a.md"][-2:] == \
        [(3, False, False), (4, True, True)]
    # a retry after a lost answer is recognised, side and all
    [again] = store.commit([merged])
    assert (again.status, again.version, again.side_version) == ("duplicate", 4, 3)
    assert [row for row in activity(dsn) if row[0] == "merge"] == [("merge", {"path": "a.md", "version": 4, "parent_version": 2,
                                        "merge_parent": 3, "deleted": False, "how": "text"})]


def test_a_side_is_kept_even_when_the_result_equals_the_head(store):
    store.commit([Change("a.md", None, text("theirs"))])
    [r] = store.commit([Change("a.md", 1, text("theirs"), origin="resolve", side=Side(text("mine"), None))])
    assert (r.status, r.side_version, r.version) == ("accepted", 2, 3)
    assert store.version("a.md", 2)["content"]["text"] == "mine"


def test_bad_origins_and_sides_are_refused_per_change(store):
    r = store.commit([Change("a.md", None, text("x"), origin="magic"),
                      Change("b.md", None, text("x"), side=Side(text("y"), None)),
                      Change("c.md", None, text("x"), side=Side({"encoding": "rot13"}, None)),
                      Change("d.md", None, text("fine"))])
    assert [x.status for x in r] == ["invalid", "invalid", "invalid", "accepted"]
    assert "origin" in r[0].message and "head" in r[1].message


def test_client_events_are_recorded_with_their_layout(dsn, store):
    store.commit([Change("projects/P/sessions/s1/specs/spec.md", None, text("x"))])
    store.record([{"kind": "conflict", "path": "projects/P/sessions/s1/specs/spec.md",
                   "details": {"remote_version": 1}}])
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select a.kind, a.details, p.name, s.slug, d.path from public.activity_log a "
            "join public.projects p on p.id = a.project_id join public.sessions s on s.id = a.session_id "
            "join public.documents d on d.id = a.document_id where a.kind = 'conflict'").fetchone()
    assert row == ("conflict", {"path": "projects/P/sessions/s1/specs/spec.md", "remote_version": 1},
                   "P", "s1", "projects/P/sessions/s1/specs/spec.md")
    with pytest.raises(StoreError, match="kind"):
        store.record([{"kind": "DROP TABLE", "path": "x"}])


def test_many_events_go_in_as_many_calls_as_the_servers_cap_needs(dsn, store):
    """A pass with more conflicts than one call takes (0017: 500 events) records them all."""
    store.record([{"kind": "conflict", "path": f"c{n}.md"} for n in range(1201)])
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from public.activity_log where kind = 'conflict'").fetchone()[0] == 1201
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("select public.syncd_record(%s)", (Jsonb({"workspace": "ws", "events": [
                {"kind": "conflict", "path": "x.md"}] * 501}),))
        assert refused.value.sqlstate == "PT413"


def test_history_names_the_device_and_deleted_documents_are_listed(dsn):
    s = PostgresStore(dsn, "ws", "7d0f3a52-5d1c-4d7e-9a53-0a6c1e1c1a01")
    s.open(create=True, device_name="alice-laptop", hostname="h")
    s.commit([Change("gone.md", None, text("x")), Change("kept.md", None, text("y"))])
    s.commit([Change("gone.md", 1, None)])
    [v2, v1] = s.history("gone.md")
    assert (v2["device"], v2["deleted"], v1["device"]) == ("alice-laptop", True, "alice-laptop")
    assert [d["path"] for d in s.documents(deleted=True)] == ["gone.md"]
    assert [d["path"] for d in s.documents()] == ["gone.md", "kept.md"]
    s.close()


def imported(path: str, content: str | None, commit: str, at: str, author: str = "Alice") -> Change:
    return Change(path, None, None if content is None else text(content), "import",
                  provenance={"commit": commit, "author_name": author,
                              "author_email": f"{author.lower()}@example.com", "at": at})


def test_imported_versions_keep_their_commit_author_and_date_and_never_repeat(store):
    batch = [imported("a.md", "one", "c1", "2024-03-01T10:00:00+05:30"),
             imported("a.md", "two", "c2", "2024-03-02T09:00:00Z", "Bob"),
             imported("a.md", None, "c3", "2024-03-03T09:00:00Z")]
    assert [r.status for r in store.commit(batch)] == ["accepted"] * 3  # no base needed: appended
    v3, v2, v1 = store.history("a.md")
    assert (v1["author"], v1["author_email"], v1["created_at"][:19]) == ("Alice", "alice@example.com", "2024-03-01T04:30:00")
    assert (v2["author"], v2["provenance"]["commit"], v3["deleted"]) == ("Bob", "c2", True)
    assert [r.status for r in store.commit(batch)] == ["duplicate"] * 3  # a re-run adds nothing
    assert len(store.history("a.md")) == 3
    [bad] = store.commit([Change("b.md", None, text("x"), provenance={"commit": "c9"})])
    assert bad.status == "invalid" and "imported versions only" in bad.message
    [bad] = store.commit([Change("b.md", None, text("x"), "import", provenance={"at": "yesterday-ish"})])
    assert bad.status == "invalid" and "not a time" in bad.message


def test_versions_come_back_in_the_order_asked_with_content(store):
    store.commit([Change("a.md", None, text("a1")), Change("b.md", None, text("b1"))])
    store.commit([Change("a.md", 1, text("a2"))])
    got = store.versions([("a.md", 2), ("b.md", 1), ("a.md", 1), ("none.md", 1)])
    assert [(v["path"], v["version"], v["content"]["text"]) for v in got] == \
        [("a.md", 2, "a2"), ("b.md", 1, "b1"), ("a.md", 1, "a1")]


def test_a_signed_in_author_gets_the_github_noreply_address(dsn, store):
    with psycopg.connect(dsn, autocommit=True) as conn:
        uid = sign_up(conn, "alice", "Alice A.")
        conn.execute("select set_config('request.jwt.claims', %s, false)", (f'{{"sub": "{uid}"}}',))
        conn.execute("select public.syncd_commit(%s)", (Jsonb({"workspace": "ws", "changes": [
            {"path": "a.md", "base_version": None, "content": text("x")}]}),))
    [v] = store.history("a.md")
    assert (v["author"], v["author_name"], v["author_email"]) == ("alice", "Alice A.", "alice@users.noreply.github.com")


def test_legacy_permission_files_become_members_and_invitations(dsn, store):
    with psycopg.connect(dsn, autocommit=True) as conn:
        sign_up(conn, "Alice")
    files = [{"path": ".owner", "text": "github|alice\ncarol # the founder\n"},
             {"path": "projects/P/sessions/s1/.owner", "text": "alice\n"},
             {"path": "projects/P/sessions/s1/.collaborators", "text": "# people\n@bob\n\nnot a login!\n"},
             {"path": "projects/P/s2/metadata/.collaborators", "text": "dave\r\n"},
             {"path": "projects/P/.owner", "text": "mallory\n"}]  # not a session: grants nothing
    plan = store.import_members(files, dry_run=True)
    assert sorted((m["login"], m["role"], m["session"] or "-", m["known"]) for m in plan["members"]) == [
        ("alice", "owner", "-", True), ("alice", "owner", "s1", True), ("bob", "collaborator", "s1", False),
        ("carol", "owner", "-", False), ("dave", "collaborator", "s2", False)]
    assert (plan["added"], plan["invited"]) == (0, 0)
    done = store.import_members(files)
    assert (done["added"], done["invited"]) == (2, 3)
    assert (store.import_members(files)["added"], store.import_members(files)["invited"]) == (0, 0)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select role from public.workspace_members").fetchall() == [("owner",)]
        assert conn.execute("select s.slug, m.role from public.session_members m "
                            "join public.sessions s on s.id = m.session_id").fetchall() == [("s1", "owner")]
        assert sorted(conn.execute(
            "select i.github_login, i.role, s.slug from public.invitations i "
            "left join public.sessions s on s.id = i.session_id").fetchall()) == \
            [("bob", "collaborator", "s1"), ("carol", "owner", None), ("dave", "collaborator", "s2")]


def test_current_session_and_session_state_are_read_into_the_project(dsn, store):
    store.commit([Change("projects/P/CURRENT_SESSION", None, text("session_id: s-002\r\ncanonical_root: ./sessions\n")),
                   Change("projects/P/session_state.json", None,
                          {**text('{"stages": {"intent": "completed"}}'), "value": {"stages": {"intent": "completed"}}})])
    with psycopg.connect(dsn) as conn:
        current, state = conn.execute("select current_session, state from public.projects where name = 'P'").fetchone()
    assert current == "s-002"
    assert state == {"current_session_file": {"session_id": "s-002", "canonical_root": "./sessions"},
                     "session_state": {"stages": {"intent": "completed"}}}
    assert store.layout_plan(["projects/P/sessions/s1/specs/a.md", "projects/Q/x.md", "other.md"]) == \
        {"projects": ["P", "Q"], "sessions": [{"project": "P", "session": "s1"}]}
