"""Upgrades: a database at every earlier schema version, populated the way that version
could be, migrated to the latest with its data intact and the whole contract working on
it; and a newer syncd against an older schema refusing to sync."""
from __future__ import annotations

import hashlib
import json
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from copies import Copy
from syncd.content import FilePolicy, encode
from syncd.store.migrate import MigrationError, bundled, latest_version, migrate
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change
from test_rls import AsUser

SPEC = "projects/P/sessions/s1/specs/spec.md"
INTENT = "projects/P/sessions/s1/intents/intent.md"
README = "projects/P/README.md"
GONE = "projects/P/sessions/s1/tasks/old.md"
STATE = "projects/P/session_state.json"
ALICE = "00000000-0000-0000-0000-0000000a11ce"


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


def call(conn, function: str, payload: dict):
    return conn.execute(f"select public.{function}(%s)", (Jsonb(payload),)).fetchone()[0]


def populate(conn: psycopg.Connection, version: int) -> None:
    """What a team could have stored under schema `version`."""
    conn.execute("insert into auth.users (id, email, raw_user_meta_data) values (%s, 'alice@example.com', %s)",
                 (ALICE, Jsonb({"user_name": "alice"})))
    if version == 2:  # tables, no functions yet: rows as a client of that time would have made them
        ws = conn.execute("insert into workspaces (slug, last_seq) values ('ws', 2) returning id").fetchone()[0]
        conn.execute("insert into workspace_members values (%s, %s, 'owner')", (ws, ALICE))
        project = conn.execute("insert into projects (workspace_id, name) values (%s, 'P') returning id",
                               (ws,)).fetchone()[0]
        session = conn.execute("insert into sessions (workspace_id, project_id, slug) values (%s, %s, 's1') "
                               "returning id", (ws, project)).fetchone()[0]
        for seq, (path, body, stage) in enumerate([(SPEC, "# Spec\n\nOld.\n", "spec"),
                                                   (INTENT, "# Intent\n\nOld.\n", "intent")], 1):
            digest = hashlib.sha256(body.encode()).hexdigest()
            doc = conn.execute(
                "insert into documents (workspace_id, path, project_id, session_id, stage, version, content, "
                "sha256, size, seq) values (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s) returning id",
                (ws, path, project, session, stage, Jsonb(text(body)), digest, len(body), seq)).fetchone()[0]
            conn.execute("insert into document_versions (document_id, workspace_id, path, version, content, "
                         "sha256, size, origin, seq) values (%s, %s, %s, 1, %s, %s, %s, 'sync', %s)",
                         (doc, ws, path, Jsonb(text(body)), digest, len(body), seq))
        return
    if version < 3:
        return
    device = str(uuid.uuid4())
    call(conn, "syncd_open", {"workspace": "ws", "create": True,
                              "device": {"id": device, "name": "old-laptop", "hostname": "h"}})
    ws = conn.execute("select id from workspaces where slug = 'ws'").fetchone()[0]
    conn.execute("insert into workspace_members values (%s, %s, 'owner') on conflict do nothing", (ws, ALICE))

    def commit(*changes: dict, origin: str = "sync") -> list[dict]:
        return call(conn, "syncd_commit", {"workspace": "ws", "device": device, "origin": origin,
                                           "changes": list(changes)})["results"]

    def change(path: str, base: int | None, body: str | None) -> dict:
        content = None if body is None else encode(path, body.encode(), FilePolicy())  # as a client sends it
        return {"path": path, "base_version": base, "content": content, "deleted": body is None}
    commit(change(SPEC, None, "# Spec\n\nOld.\n"), change(INTENT, None, "# Intent\n\nOld.\n"),
           change(README, None, "readme\n"), change(GONE, None, "obsolete\n"),
           change("projects/P/CURRENT_SESSION", None, "session_id: s1\n"),
           change(STATE, None, json.dumps({"stages": {"intent": "completed"}})))
    commit(change(SPEC, 1, "# Spec\n\nOld, edited.\n"), change(GONE, 1, None))
    if version >= 5:  # merges keep the local side; imports carry provenance; client events
        merged = change(README, 1, "readme, merged\n") | {
            "origin": "merge", "side": {"content": text("readme, local\n"), "parent_version": 1}}
        commit(merged)
        commit(change("projects/P/sessions/s1/plans/plan.md", None, "# Plan\n\nImported.\n") | {
            "provenance": {"commit": "a" * 40, "author_name": "Alice", "author_email": "a@example.com",
                           "at": "2024-01-02T03:04:05+00:00"}}, origin="import")
        call(conn, "syncd_record", {"workspace": "ws", "device": device,
                                    "events": [{"kind": "conflict", "path": SPEC, "details": {}}]})


def snapshot(conn: psycopg.Connection) -> dict:
    if conn.execute("select to_regclass('public.document_versions')").fetchone()[0] is None:
        return {"versions": [], "heads": [], "activity": [], "members": []}
    return {
        "versions": conn.execute("select path, version, parent_version, sha256, deleted, origin, content, seq "
                                 "from document_versions order by seq").fetchall(),
        "heads": conn.execute("select path, version, sha256, deleted, seq from documents order by path").fetchall(),
        "activity": conn.execute("select kind, details from activity_log order by id").fetchall(),
        "members": conn.execute("select user_id, role from workspace_members order by user_id").fetchall(),
    }


EARLIER = [m.version for m in bundled()][:-1]


@pytest.mark.parametrize("start", EARLIER)
def test_every_earlier_schema_upgrades_to_the_latest_with_its_data_intact(empty_dsn, start):
    migrate(empty_dsn, upto=start)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        populate(conn, start)
        before = snapshot(conn)
    applied = migrate(empty_dsn)
    assert [m.version for m in applied] == [m.version for m in bundled() if m.version > start]
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        after = snapshot(conn)
    assert after["versions"] == before["versions"] and after["heads"] == before["heads"]
    assert after["members"] == before["members"]
    assert after["activity"][:len(before["activity"])] == before["activity"]
    if start < 2:
        return  # nothing could be stored yet
    # the latest contract on the old data
    store = PostgresStore(empty_dsn, "ws", str(uuid.uuid4()))
    assert store.open(device_name="new-laptop").schema_version == latest_version()
    heads = {e.path: e.version for e in store.changes(0)[0]}
    assert heads[SPEC] == (2 if start >= 3 else 1)
    [result] = store.commit([Change(SPEC, heads[SPEC], text("# Spec\n\nNew.\n"))])
    assert (result.status, result.version) == ("accepted", heads[SPEC] + 1)
    assert [v["version"] for v in store.history(SPEC)] == list(range(heads[SPEC] + 1, 0, -1))
    [s1] = store.progress()
    assert (s1["session"], s1["stages"]["intent"]["status"], s1["stages"]["spec"]["status"]) == \
        ("s1", "started", "started")
    if start >= 3:  # the project's CURRENT_SESSION and session_state.json, read from documents
        assert (s1["current"], s1["state"]) == (True, {"intent": "completed"})
    assert store.stats()["stage_completion"][0]["started"] == 1
    assert store.activity()[0][-1]["kind"] == "sync"  # the new commit, logged
    alice = AsUser(empty_dsn, ALICE)  # the owner from before signs in: row level security lets her in
    assert alice.version(SPEC)["version"] == heads[SPEC] + 1
    alice.close()
    store.close()


def test_an_edited_migration_is_refused(empty_dsn):
    migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("update syncd.schema_migrations set checksum = 'edited' where version = 4")
    with pytest.raises(MigrationError, match="0004_change_notify differs .* forward-only"):
        migrate(empty_dsn)


def test_a_newer_syncd_refuses_an_older_schema_until_migrated(empty_dsn, tmp_path, private_xdg):
    migrate(empty_dsn, upto=EARLIER[-1])
    a = Copy(tmp_path, "a", empty_dsn)
    a.init()
    (a.root / "notes.md").write_text("waits for the migration\n")
    out = a.cli("sync", expect=1).output
    assert f"has schema version {EARLIER[-1]}" in out and "run `syncd db migrate`" in out
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select count(*) from documents").fetchone()[0] == 0
    assert "1 migration(s) applied" in a.cli("db", "migrate").output
    a.sync()
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select path from documents").fetchall() == [("notes.md",)]
