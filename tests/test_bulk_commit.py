"""A call of plain changes is committed by the set (0023): its answers and every row it
makes (heads, versions, activity, session stages, projects' state files) are those of the
change-by-change loop, and of the same changes sent one call each."""
from __future__ import annotations

import json

import psycopg
from psycopg.types.json import Jsonb

from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change

S1 = "projects/P/sessions/s1"
S2 = "projects/P/sessions/s2"


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "markdown", "text": s}


def imported(commit: str, at: str) -> dict:
    return {"commit": commit, "author_name": "Ada", "author_email": "ada@example.com", "at": at}


def calls() -> list[list[Change]]:
    """Two calls: new documents, imports naming one path several times, refusals; then
    edits on top, a conflict, a retry and a delete."""
    first = [
        Change(f"{S1}/specs/spec.md", None, text("# Spec\n\nreal words\n")),
        Change(f"{S1}/plans/plan.md", None, text("")),
        Change("projects/P/CURRENT_SESSION", None, text("session_id: s1\n")),
        Change(f"{S2}/intents/intent.md", None, text("v1\n"), "import", provenance=imported("c1", "2020-01-01T00:00:00Z")),
        Change(f"{S2}/intents/intent.md", None, text("v2\n"), "import", provenance=imported("c2", "2020-01-02T00:00:00Z")),
        Change(f"{S2}/intents/intent.md", None, text("v2\n"), "import", provenance=imported("c3", "2020-01-03T00:00:00Z")),
        Change(f"{S2}/intents/intent.md", None, None, "import", provenance=imported("c4", "2020-01-04T00:00:00Z")),
        Change(f"{S2}/intents/intent.md", None, text("v5\n"), "import", provenance=imported("c5", "2020-01-05T00:00:00Z")),
        Change(f"{S2}/tasks/tasks.md", None, text("restored\n"), "restore", activity={"version": 9, "from": 1}),
        Change("../outside.md", None, text("no")),
        Change("a/.git/config", None, text("no")),
        Change("odd.md", None, text("no"), "teleport"),
        Change("bad.md", None, {"encoding": "base64", "data": "AAA"}),
        Change("late.md", None, text("t"), "import", provenance={"at": "not a time"}),
        Change(f"{S1}/specs/none.md", None, None),
    ]
    second = [
        Change(f"{S1}/specs/spec.md", 1, text("# Spec\n\nmore words\n")),
        Change(f"{S1}/plans/plan.md", 7, text("behind\n")),
        Change(f"{S1}/specs/spec.md", 1, text("# Spec\n\nmore words\n")),  # again: the head has it
        Change("projects/P/CURRENT_SESSION", 1, None),
        Change(f"{S2}/intents/intent.md", None, text("v2\n"), "import", provenance=imported("c2", "2020-01-02T00:00:00Z")),
    ]
    return [first, second]


def rows(conn: psycopg.Connection, ws: str) -> dict:
    q = lambda sql: sorted(tuple(json.dumps(v, sort_keys=True, default=str) for v in r)
                           for r in conn.execute(sql, {"ws": ws}))
    return {
        "heads": q("select d.path, d.version, d.sha256, d.deleted, d.content, d.stage, p.name, s.slug"
                   " from documents d left join projects p on p.id = d.project_id"
                   " left join sessions s on s.id = d.session_id where d.workspace_id = %(ws)s"),
        "versions": q("select path, version, parent_version, merge_parent, sha256, size, deleted, origin, provenance,"
                      " case when origin = 'import' then created_at end"
                      " from document_versions where workspace_id = %(ws)s"),
        "activity": q("select a.kind, a.details, p.name, s.slug, a.document_id is null,"
                      " case when a.kind = 'import' then a.created_at end"
                      " from activity_log a left join projects p on p.id = a.project_id"
                      " left join sessions s on s.id = a.session_id where a.workspace_id = %(ws)s"),
        "stages": q("select p.name, s.slug, s.pipeline - 'x' from sessions s join projects p on p.id = s.project_id"
                    " where s.workspace_id = %(ws)s"),
        "projects": q("select name, current_session, state from projects where workspace_id = %(ws)s"),
    }


def stable(results: list[dict]) -> list[dict]:
    """An answer without what differs from one transaction to the next."""
    def strip(r: dict) -> dict:
        r = {k: v for k, v in r.items() if k not in ("seq", "created_at")}
        if isinstance(r.get("head"), dict):
            r["head"] = {k: v for k, v in r["head"].items() if k not in ("seq", "updated_at")}
        return r
    return [strip(r) for r in results]


def without_times(found: dict) -> dict:
    """Session stages say when they were last edited: now(), in each workspace's own calls."""
    out = dict(found)
    stages = []
    for name, slug, pipeline in found["stages"]:
        p = json.loads(pipeline)
        for stage in p.values():
            stage.pop("last_edited_at", None)
        stages.append((name, slug, p))
    out["stages"] = sorted(stages, key=str)
    return out


def run(dsn: str, slug: str, how: str) -> tuple[list[list[dict]], dict]:
    store = PostgresStore(dsn, slug)
    ws = store.open(create=True).id
    answers = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for changes in calls():
            payloads = [c.payload() for c in changes]
            if how == "batch":
                out = store._call("syncd_commit", {"workspace": slug, "changes": payloads})["results"]
            elif how == "loop":
                out = conn.execute("select syncd.commit_each(%s)",
                                   (Jsonb({"workspace": slug, "changes": payloads}),)).fetchone()[0]["results"]
            else:
                out = [store._call("syncd_commit", {"workspace": slug, "changes": [p]})["results"][0]
                       for p in payloads]
            answers.append(stable(out))
        found = without_times(rows(conn, ws))
    store.close()
    return answers, found


def test_a_batch_commit_makes_the_rows_and_answers_of_the_loop_and_of_one_call_per_change(dsn):
    batch = run(dsn, "batch", "batch")
    assert batch == run(dsn, "loop", "loop")
    assert batch == run(dsn, "single", "single")
    answers, found = batch
    assert [r["status"] for r in answers[0]] == [
        "accepted", "accepted", "accepted", "accepted", "accepted", "unchanged", "accepted", "accepted",
        "accepted", "invalid", "invalid", "invalid", "invalid", "invalid", "unchanged"]
    assert [r["status"] for r in answers[1]] == ["accepted", "conflict", "unchanged", "accepted", "duplicate"]
    assert [json.loads(v) for v in found["projects"][0]] == ["P", "s1", {"current_session_file": {"session_id": "s1"}}]


def test_a_batch_gives_its_versions_consecutive_sequence_numbers_each_path_in_order(store):
    results = store.commit([Change("a.md", None, text("1")), Change("b.md", None, text("1")),
                            Change("a.md", 1, text("2")), Change("c.md", None, text("1"))])
    assert [r.status for r in results] == ["accepted"] * 4
    seqs = {(r.path, r.version): r.seq for r in results}
    assert sorted(seqs.values()) == [1, 2, 3, 4]
    assert seqs[("a.md", 1)] < seqs[("a.md", 2)]
    entries, _, _ = store.changes(0)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
