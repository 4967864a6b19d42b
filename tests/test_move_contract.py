"""Moves in the SQL contract: the document keeps its id and history, the old path a tombstone
that says where it went, the feed carries both, and a move is checked like any commit."""
from __future__ import annotations

import hashlib

import psycopg
import pytest

from test_rls import AsUser, make_user
from syncd.store.rpc import Change, StoreError

pytestmark = pytest.mark.on_both_databases

OLD, NEW = "projects/P/sessions/s1/specs/spec.md", "projects/P/sessions/s2/specs/spec.md"


def text(s: str) -> dict:
    return {"encoding": "utf-8", "text": s, "format": "markdown"}


def doc_id(dsn: str, path: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select id::text from documents where path = %s", (path,)).fetchone()
    return row and row[0]


def test_a_move_keeps_the_document_its_id_and_history(store, dsn):
    store.commit([Change(OLD, None, text("one\n"))])
    store.commit([Change(OLD, 1, text("two\n"))])
    before = doc_id(dsn, OLD)
    cursor = store.changes(0)[1]
    [moved] = store.commit([Change(NEW, 2, None, moved_from=OLD)])
    assert (moved.status, moved.version, moved.sha256) == ("accepted", 3, hashlib.sha256(b"two\n").hexdigest())
    assert doc_id(dsn, NEW) == before and doc_id(dsn, OLD) not in (None, before)
    history = store.history(NEW)
    assert [(v["path"], v["version"], v["origin"]) for v in history] == [
        (NEW, 3, "move"), (OLD, 2, "sync"), (OLD, 1, "sync")]
    assert history[0]["moved_from"] == OLD
    old_history = store.history(OLD)
    assert [(v["version"], v["deleted"], v.get("moved_to")) for v in old_history] == [
        (3, True, NEW), (2, False, None), (1, False, None)]
    assert store.version(NEW, 2)["content"] == text("two\n")  # versions from before the move, at the new path
    entries = {e.path: e for e in store.changes(cursor)[0]}
    assert (entries[OLD].sha256, entries[OLD].moved_to, entries[OLD].version) == (None, NEW, 3)
    assert (entries[NEW].sha256, entries[NEW].version, entries[NEW].is_head) == (moved.sha256, 3, True)
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute("select d.path, s.slug from documents d join sessions s on s.id = d.session_id"
                                " order by d.path").fetchall()
        kinds = conn.execute("select kind, details ->> 'moved_from' from activity_log where kind = 'move'").fetchall()
    assert sessions == [(OLD, "s1"), (NEW, "s2")]
    assert kinds == [("move", OLD)]


def test_a_move_is_checked_like_a_commit_and_a_retry_is_a_duplicate(store):
    store.commit([Change(OLD, None, text("one\n")), Change("elsewhere.md", None, text("x\n"))])
    [stale] = store.commit([Change(NEW, 0, None, moved_from=OLD)])
    assert stale.status == "conflict" and stale.head.path == OLD and stale.head.version == 1
    [taken] = store.commit([Change("elsewhere.md", 1, None, moved_from=OLD)])
    assert taken.status == "conflict" and taken.head.path == "elsewhere.md"
    [missing] = store.commit([Change(NEW, 1, None, moved_from="nowhere.md")])
    assert missing.status == "conflict" and missing.head is None
    [bad] = store.commit([Change(NEW, 1, None, moved_from="../x")])
    assert bad.status == "invalid"
    [first] = store.commit([Change(NEW, 1, None, moved_from=OLD)])
    [again] = store.commit([Change(NEW, 1, None, moved_from=OLD)])
    assert (first.status, again.status, again.version, again.sha256) == ("accepted", "duplicate", 2, first.sha256)
    # the old path is a path again: a file made there later continues its numbers
    [revived] = store.commit([Change(OLD, 2, text("new\n"))])
    assert (revived.status, revived.version) == ("accepted", 3)


def test_a_move_needs_the_right_to_write_both_paths(store, dsn):
    store.commit([Change(OLD, None, text("one\n")), Change("projects/P/sessions/s2/x.md", None, text("x\n"))])
    movers = {}
    for session in ("s1", "s2"):
        uid = make_user(dsn, f"only-{session}")
        store.members("add", login=f"only-{session}", role="collaborator", project="P", session=session)
        movers[session] = AsUser(dsn, uid)
    [out_of_reach] = movers["s1"].commit([Change(NEW, 1, None, moved_from=OLD)])  # may not write s2
    [not_theirs] = movers["s2"].commit([Change(NEW, 1, None, moved_from=OLD)])  # may not write s1
    assert (out_of_reach.status, not_theirs.status) == ("forbidden", "forbidden")
    assert "moved from" in not_theirs.message
    assert [v["version"] for v in store.history(OLD)] == [1] and doc_id(dsn, NEW) is None
    for s in movers.values():
        s.close()


def test_a_move_event_is_the_contracts_to_record(store):
    store.commit([Change(OLD, None, text("one\n"))])
    with pytest.raises(StoreError, match='"move" events'):
        store.record([{"kind": "move", "path": OLD, "details": {"moved_from": "elsewhere.md"}}])
