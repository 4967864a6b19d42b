"""The store contract's bounds (issue 16, items 4-6): content that matches the document
schema only, feed pages bounded in bytes, commits capped per call."""
from __future__ import annotations

import hashlib
from collections import Counter

import psycopg
import pytest
from psycopg.types.json import Jsonb

from syncd.content import decode
from syncd.engine.executor import SyncReport
from syncd.engine.journal import Journal
from syncd.engine.reconcile import Remote
from syncd.git.mirror import Mirror
from syncd.git.recorder import Recorder
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import COMMIT_MAX_CHANGES, Change, Side, StoreError

from legacy_repo import git, show

pytestmark = pytest.mark.on_both_databases

MiB = 1024 * 1024


def text(s: str) -> dict:
    return {"encoding": "utf-8", "text": s, "format": "text"}


@pytest.fixture
def store(dsn):
    s = PostgresStore(dsn, "w1")
    s.open(create=True)
    yield s
    s.close()


BAD_CONTENTS = {
    "text a number": {"encoding": "utf-8", "format": "text", "text": 42},
    "text a list": {"encoding": "utf-8", "format": "text", "text": ["a"]},
    "text an object": {"encoding": "utf-8", "format": "text", "text": {"a": 1}},
    "text a bool": {"encoding": "utf-8", "format": "text", "text": True},
    "no text": {"encoding": "utf-8", "format": "text"},
    "format a number": {"encoding": "utf-8", "format": 1, "text": "x"},
    "base64 with a line break": {"encoding": "base64", "format": "binary", "data": "AAEC\n/w=="},
    "base64 with spaces": {"encoding": "base64", "format": "binary", "data": "AA EC /w=="},
    "base64 unpadded": {"encoding": "base64", "format": "binary", "data": "AAEC/w"},
    "base64 a number": {"encoding": "base64", "format": "binary", "data": 7},
    "unknown encoding": {"encoding": "latin-1", "text": "x"},
    "not an object": "just a string",
}


@pytest.mark.parametrize("bad", BAD_CONTENTS, ids=list(BAD_CONTENTS))
def test_commit_refuses_content_that_does_not_match_the_schema_and_takes_the_rest(store, bad):
    results = store.commit([Change("bad.bin", None, BAD_CONTENTS[bad]), Change("ok.md", None, text("fine"))])
    assert [r.status for r in results] == ["invalid", "accepted"]
    assert results[0].message.startswith("content: ")
    assert [d["path"] for d in store.documents()] == ["ok.md"]
    if bad != "format a number":  # the format is a label: a client decodes the bytes without it
        with pytest.raises(ValueError):  # and no client would take it either
            decode(BAD_CONTENTS[bad])


def test_a_merge_side_is_checked_like_any_content(store):
    store.commit([Change("a.md", None, text("one"))])
    [r] = store.commit([Change("a.md", 1, text("merged"), "merge", Side(BAD_CONTENTS["text a number"], None))])
    assert r.status == "invalid" and r.message.startswith("side content: ")
    assert [v["version"] for v in store.history("a.md")] == [1]


def test_canonical_base64_is_accepted(store):
    for i, data in enumerate(("", "AA==", "AAE=", "AAEC", "AAEC/w==", "+/+/")):
        [r] = store.commit([Change(f"b{i}.bin", None, {"encoding": "base64", "format": "binary", "data": data})])
        assert r.status == "accepted", data


def _plant(dsn: str, path: str, content: dict, digest_of: bytes, workspace: str = "team") -> None:
    """A version the contract would refuse, written straight into the tables as a damaged
    or older store could hold it: the next sequence number, the document's head moved on."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        ws, seq = conn.execute("update workspaces set last_seq = last_seq + 1 where slug = %s"
                               " returning id, last_seq", (workspace,)).fetchone()
        digest, size = hashlib.sha256(digest_of).hexdigest(), len(digest_of)
        row = conn.execute("select id, version from documents where workspace_id = %s and path = %s",
                           (ws, path)).fetchone()
        if row is None:
            doc, parent = conn.execute(
                "insert into documents (workspace_id, path, version, content, sha256, size, seq)"
                " values (%s, %s, 1, %s, %s, %s, %s) returning id, null::integer",
                (ws, path, Jsonb(content), digest, size, seq)).fetchone()
        else:
            doc, parent = row
            conn.execute("update documents set version = version + 1, content = %s, sha256 = %s, size = %s,"
                         " seq = %s where id = %s", (Jsonb(content), digest, size, seq, doc))
        conn.execute("insert into document_versions (document_id, workspace_id, path, version, parent_version,"
                     " content, sha256, size, origin, seq) values (%s, %s, %s, %s, %s, %s, %s, %s, 'sync', %s)",
                     (doc, ws, path, (parent or 0) + 1, parent, Jsonb(content), digest, size, seq))


def test_a_damaged_version_in_the_store_skips_its_path_only(copies, dsn):
    a, b = copies
    (a.root / "notes").mkdir(parents=True)
    for name in ("one.md", "two.md", "three.md"):
        (a.root / "notes" / name).write_text(f"{name} v1\n")
    a.sync()
    _plant(dsn, "notes/two.md", BAD_CONTENTS["text a number"], b"42")
    _plant(dsn, "notes/new.bin", BAD_CONTENTS["base64 with a line break"], b"\x00\x01\x02\xff")
    (a.root / "notes" / "one.md").write_text("one.md v2\n")

    joined = b.sync(expect=5)  # a copy pulling everything: all but the two damaged paths, named
    assert set(joined["skipped"]) == {"notes/two.md", "notes/new.bin"}
    assert "version 2 in the store cannot be decoded" in joined["skipped"]["notes/two.md"]
    assert b.files() == {"notes/one.md": b"one.md v1\n", "notes/three.md": b"three.md v1\n"}

    again = a.sync(expect=5)  # the copy that holds the older version: pushes its edit, keeps its file
    assert set(again["skipped"]) == {"notes/two.md", "notes/new.bin"}
    assert again["pushed"] == 1
    assert a.files()["notes/two.md"] == b"two.md v1\n"
    assert b.sync(expect=5)["pulled"] == 1  # and every later pass goes on
    assert b.files()["notes/one.md"] == b"one.md v2\n"


def test_the_git_mirror_leaves_out_a_damaged_version_and_records_the_rest(store, dsn, tmp_path):
    store.commit([Change("good.md", None, text("good\n")), Change("bad.md", None, text("fine at first\n"))])
    _plant(dsn, "bad.md", BAD_CONTENTS["text a number"], b"42", workspace="w1")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    journal = Journal(tmp_path / "journal.db")
    journal.record_synced("good.md", Remote(1, hashlib.sha256(b"good\n").hexdigest()))
    journal.record_synced("bad.md", Remote(2, hashlib.sha256(b"42").hexdigest()))
    Recorder(Mirror(repo), journal, store).after_pass(SyncReport(pulled=["good.md", "bad.md"]))
    assert git(repo, "ls-tree", "-r", "--name-only", "syncd/mirror").split() == ["good.md"]
    assert show(repo, "syncd/mirror:good.md") == b"good\n"
    journal.close()


def test_a_feed_page_carries_at_most_8_mib_of_content_and_a_copy_gets_the_rest(copies, dsn):
    a, b = copies
    big = {f"big/{i}.txt": (f"{i}" * (3 * MiB)).encode() for i in range(4)}
    for path, data in big.items():
        (a.root / path).parent.mkdir(parents=True, exist_ok=True)
        (a.root / path).write_bytes(data)
    (a.root / "small.md").write_text("small\n")
    a.sync()

    feed = PostgresStore(dsn, "team")
    entries, _, more = feed.changes(0)
    feed.close()
    assert not more and {e.path for e in entries} == {*big, "small.md"}  # every entry, in one page
    assert sum(len(decode(e.content)) for e in entries if e.content) <= 8 * MiB
    assert [e.path for e in entries if e.content and len(decode(e.content)) > MiB] == []
    assert b.sync()["skipped"] == {}
    assert b.files() == {**big, "small.md": b"small\n"}


def test_the_feed_leaves_the_contents_out_when_asked_and_says_the_rest_as_ever(store):
    store.commit([Change(f"doc{i}.md", None, text(f"body {i}")) for i in range(3)])
    with_contents, cursor, more = store.changes(0)
    without, cursor_without, more_without = store.changes(0, contents=False)
    assert [e.content for e in with_contents] == [text(f"body {i}") for i in range(3)]
    assert [e.content for e in without] == [None, None, None]
    assert [(e.path, e.version, e.sha256, e.seq, e.size) for e in without] == \
        [(e.path, e.version, e.sha256, e.seq, e.size) for e in with_contents]
    assert (cursor_without, more_without) == (cursor, more)
    assert [e.size for e in without] == [len(f"body {i}") for i in range(3)]


def test_a_feed_page_reads_the_versions_it_gives_on_tables_never_analyzed(store, dsn):
    """Right after a first push (before autovacuum's analyze, or where autovacuum is off) the
    planner guesses a handful of versions past the cursor; a bitmap scan then read every
    version after it and sorted them, for each page: the next pass's feed of its own 100k
    versions took 16 s, quadratic. A page now reads its versions from the index in order."""
    with psycopg.connect(dsn, autocommit=True) as conn:  # (no autovacuum visit analyzes it mid-test)
        conn.execute("alter table public.document_versions set (autovacuum_enabled = off)")
    store.commit([Change(f"doc{i}.md", None, text(f"body {i}")) for i in range(0, 2000)])
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select reltuples from pg_class where oid = 'public.document_versions'::regclass"
                            ).fetchone()[0] < 0  # never analyzed
        ws = store.workspace
        page = conn.execute("select public.syncd_changes(%s)", [Jsonb({"workspace": ws, "since": 0, "limit": 50})]
                            ).fetchone()[0]
        read = conn.execute("select coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) from "
                            "pg_stat_xact_user_tables where relid = 'public.document_versions'::regclass").fetchone()[0]
    assert len(page["changes"]) == 50 and page["more"]
    assert read <= 100


def test_a_pull_gets_the_contents_syncd_versions_gives_without_the_authors(store, dsn):
    """syncd_contents (0027): each asked version that exists, in the order asked, with the
    content syncd_versions gives (a tombstone's none; one over the inline budget fetched
    alone), and nothing else of it."""
    with psycopg.connect(dsn, autocommit=True) as conn:  # this database's inline budget: 10 kB
        conn.execute("create or replace function syncd.inline_budget() returns bigint language sql "
                     "immutable set search_path = '' as $$ select 10000::bigint $$")
    store.commit([Change(f"doc{i}.md", None, text(f"{i}" * 3000)) for i in range(5)])
    store.commit([Change("doc1.md", 1, None)])
    wanted = [("doc3.md", 1), ("doc1.md", 2), ("missing.md", 1), ("doc0.md", 1), ("doc1.md", 1), ("doc4.md", 1),
              ("doc2.md", 1)]
    kept = ("path", "version", "sha256", "size", "deleted", "content")
    with psycopg.connect(dsn) as conn:
        ask = Jsonb({"workspace": store.workspace, "versions": [{"path": p, "version": v} for p, v in wanted]})
        raw = conn.execute("select public.syncd_contents(%s)", [ask]).fetchone()[0]["versions"]
        full = conn.execute("select public.syncd_versions(%s)", [ask]).fetchone()[0]["versions"]
    assert [v["content"] is None for v in raw] == [v["content"] is None for v in full] == \
        [False, True, False, False, True, True]  # a tombstone; missing.md left out; past the budget
    assert raw == [{k: v[k] for k in kept} for v in full]
    got = store.contents(wanted)
    assert [(v["path"], v["version"]) for v in got] == [w for w in wanted if w[0] != "missing.md"]
    assert [{k: v[k] for k in kept} for v in got] == [{k: v[k] for k in kept} for v in store.versions(wanted)]
    assert [v["content"] for v in got if not v["deleted"]] == [text(f"{i}" * 3000) for i in (3, 0, 1, 4, 2)]


@pytest.mark.slow
def test_thirty_files_just_under_the_size_limit_reach_another_copy(copies):
    a, b = copies
    files = {f"large/{i:02d}.txt": (chr(65 + i % 26) * int(9.9 * MiB)).encode() for i in range(30)}
    (a.root / "large").mkdir(parents=True)
    for path, data in files.items():
        (a.root / path).write_bytes(data)
    assert a.sync()["pushed"] == 30
    report = b.sync()
    assert report["skipped"] == {} and report["pulled"] == 30
    assert b.files() == files


def test_a_call_over_the_cap_is_refused_and_a_large_batch_goes_in_capped_calls(store):
    over = [Change(f"over/{i}.md", None, text(f"{i}")).payload() for i in range(COMMIT_MAX_CHANGES + 1)]
    with pytest.raises(StoreError, match=f"a commit takes at most {COMMIT_MAX_CHANGES} changes per call, "
                                         f"got {COMMIT_MAX_CHANGES + 1}"):
        store._call("syncd_commit", {"workspace": "w1", "changes": over})
    assert store.changes(0)[0] == []  # nothing of it landed

    n = 2 * COMMIT_MAX_CHANGES + 7
    batch = [Change(f"projects/P/sessions/s{i % 3}/specs/f{i:05d}.md", None, text(f"spec {i}")) for i in range(n)]
    batch[5] = Change("../escape.md", None, text("x"))
    results = store.commit(batch)
    assert [r.path for r in results] == [c.path for c in batch]
    assert [r.status for r in results] == ["accepted"] * 5 + ["invalid"] + ["accepted"] * (n - 6)
    assert all(r.version == 1 and r.sha256 == hashlib.sha256(f"spec {i}".encode()).hexdigest()
               for i, r in enumerate(results) if r.status == "accepted")
    seqs = [e.seq for page, _ in store.feed(0) for e in page]
    assert seqs == list(range(1, n))  # one sequence number each, in order, none lost between calls
    assert store.open().last_seq == n - 1
    # each session stage the calls touched is counted once it is all in
    stages = {s["session"]: s["stages"]["spec"]["documents"] for s in store.progress("P")}
    assert stages == Counter(c.path.split("/")[3] for c in batch if c.path.startswith("projects/"))



def test_a_call_the_server_finds_too_large_is_split_and_one_too_large_change_is_refused_alone(store, dsn):
    """The server measures a call as stored (jsonb), which can be a few times the JSON the
    client measured: a parsed JSON file of numbers is 2.8 times its text. A refused call
    goes in halves; a change too large alone is refused alone, and the rest lands."""
    with psycopg.connect(dsn, autocommit=True) as conn:  # this database's cap: 40 kB a call
        conn.execute("create or replace function syncd.commit_max_bytes() returns bigint language sql "
                     "immutable set search_path = '' as $$ select 40000::bigint $$")
    changes = [Change(f"n{i}.md", None, text(f"{i}" * 6000)) for i in range(12)]
    changes.insert(5, Change("huge.md", None, text("h" * 50_000)))
    results = store.commit(changes)
    assert [r.path for r in results] == [c.path for c in changes]
    assert {r.path for r in results if r.status != "accepted"} == {"huge.md"}
    assert "at most" in results[5].message and "files.max_size" in results[5].message
    assert {d["path"] for d in store.documents()} == {f"n{i}.md" for i in range(12)}


def test_an_edit_goes_on_top_of_a_damaged_head_and_reaches_the_others(copies, dsn):
    """Nothing can be merged with a head no client can read, and nothing is lost by leaving
    it in the history: an edit made over it becomes the head, or the path stays stuck on
    every copy for good."""
    a, b = copies
    (a.root / "notes.md").write_text("v1\n")
    a.sync(), b.sync()
    _plant(dsn, "notes.md", BAD_CONTENTS["text a number"], b"42")
    assert "notes.md" in b.sync(expect=5)["failed"]
    (b.root / "notes.md").write_text("v1, and an edit\n")
    report = b.sync()
    assert report["resolved"] == ["notes.md"] and not report["failed"], report
    a.sync()
    assert (a.root / "notes.md").read_text() == "v1, and an edit\n"
    assert [v["version"] for v in PostgresStore(dsn, "team").history("notes.md")] == [3, 2, 1]
