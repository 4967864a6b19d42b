"""Where projects live: `projects/`, the newer IDSE tooling's `.idse/projects/`, and a
workspace's own roots (`layout.roots`), derived by the store on both databases."""
from __future__ import annotations

import json
import logging

import psycopg
import pytest

from syncd.config import Config
from syncd.store.connect import agree_layout
from syncd.store.migrate import latest_version, migrate
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change, StoreError

from test_rls import AsUser, make_user

pytestmark = pytest.mark.on_both_databases

IDSE = ".idse/projects/Alpha"


def text(s: str) -> dict:
    return {"encoding": "utf-8", "format": "text", "text": s}


def state(s: dict) -> dict:
    return {**text(json.dumps(s)), "value": s}


def derived(dsn) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select d.path, p.name, s.slug, d.stage from documents d "
            "left join projects p on p.id = d.project_id left join sessions s on s.id = d.session_id "
            "order by d.path").fetchall()


def project_state(dsn, name: str) -> tuple:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select current_session, state -> 'session_state' from projects where name = %s",
                            (name,)).fetchone()


def test_the_idse_layout_is_read_like_projects(dsn, store):
    store.commit([
        Change(f"{IDSE}/sessions/s1/specs/spec.md", None, text("spec")),
        Change(f"{IDSE}/sessions/s1/metadata/session.json", None, text("{}")),
        Change(f"{IDSE}/legacy-session/intents/intent.md", None, text("intent")),
        Change(f"{IDSE}/README.md", None, text("readme")),
        Change(".idse/projects/README.md", None, text("not a project's")),
        Change(".idse/other/x.md", None, text("elsewhere")),
        Change(f"{IDSE}/CURRENT_SESSION", None, text("session_id: s1\n")),
        Change(f"{IDSE}/session_state.json", None, state({"stages": {"intent": "completed"}})),
        Change(f"{IDSE}/sessions/s1/session_state.json", None, state({"not": "the project's"})),
    ])
    assert derived(dsn) == [
        (".idse/other/x.md", None, None, None),
        (f"{IDSE}/CURRENT_SESSION", "Alpha", None, None),
        (f"{IDSE}/README.md", "Alpha", None, None),
        (f"{IDSE}/legacy-session/intents/intent.md", "Alpha", "legacy-session", "intent"),
        (f"{IDSE}/session_state.json", "Alpha", None, None),
        (f"{IDSE}/sessions/s1/metadata/session.json", "Alpha", "s1", None),
        (f"{IDSE}/sessions/s1/session_state.json", "Alpha", "s1", None),
        (f"{IDSE}/sessions/s1/specs/spec.md", "Alpha", "s1", "spec"),
        (".idse/projects/README.md", None, None, None),
    ]
    assert project_state(dsn, "Alpha") == ("s1", {"stages": {"intent": "completed"}})
    [s1] = [s for s in store.progress() if s["session"] == "s1"]
    assert (s1["project"], s1["current"], s1["stages"]["spec"]["status"]) == ("Alpha", True, "started")
    assert store.layout_plan([f"{IDSE}/sessions/s2/plans/p.md"]) == \
        {"projects": ["Alpha"], "sessions": [{"project": "Alpha", "session": "s2"}]}


def test_an_owner_names_further_roots_and_every_row_is_derived_again(dsn, store):
    store.commit([Change("docs/work/Beta/sessions/s1/plans/plan.md", None, text("plan")),
                  Change("docs/work/Beta/CURRENT_SESSION", None, text("session_id: s1\n")),
                  Change("docs/work/Beta/sessions/s1/feedback/f.md", None, text("ok"))])
    store.record([{"kind": "note", "path": "docs/work/Beta/sessions/s1/feedback/f.md"}])
    assert {row[1] for row in derived(dsn)} == {None}
    assert store.set_layout_roots(["/docs/work/", "projects"]) == {"roots": ["docs/work"], "changed": True}
    assert derived(dsn) == [("docs/work/Beta/CURRENT_SESSION", "Beta", None, None),
                            ("docs/work/Beta/sessions/s1/feedback/f.md", "Beta", "s1", "feedback"),
                            ("docs/work/Beta/sessions/s1/plans/plan.md", "Beta", "s1", "plan")]
    assert project_state(dsn, "Beta")[0] == "s1"
    with psycopg.connect(dsn) as conn:
        activity = conn.execute("select a.kind, p.name, s.slug from activity_log a left join projects p on p.id = a.project_id"
                                " left join sessions s on s.id = a.session_id where a.details ->> 'path' like '%f.md'"
                                " order by a.id").fetchall()
    assert activity == [("sync", "Beta", "s1"), ("note", "Beta", "s1")]
    store.commit([Change("docs/work/Beta/sessions/s2/tasks/t.md", None, text("tasks"))])
    assert ("docs/work/Beta/sessions/s2/tasks/t.md", "Beta", "s2", "tasks") in derived(dsn)
    assert {r["project"] for r in store.stats()["conflict_rates"]} == {"Beta"}
    assert store.set_layout_roots(["docs/work"]) == {"roots": ["docs/work"], "changed": False}
    assert store.set_layout_roots([])["changed"]
    assert {row[1] for row in derived(dsn)} == {None}  # back as they were: outside projects


@pytest.mark.parametrize("roots", [["../up"], ["a/./b"], ["a//b"], ["x/.git/y"], [""], "docs", [1]])
def test_a_root_that_is_no_directory_of_the_workspace_is_refused(store, roots):
    with pytest.raises(StoreError, match="layout root"):
        store.set_layout_roots(roots)


def test_only_an_owner_changes_the_roots_and_a_member_sending_them_gets_one_line(dsn, store):
    store.set_layout_roots(["docs/work"])
    bob = make_user(dsn, "bob")
    store.members("add", login="bob", role="collaborator")
    as_bob = AsUser(dsn, bob)
    assert as_bob.set_layout_roots(["docs/work/"]) == {"roots": ["docs/work"], "changed": False}  # the same
    with pytest.raises(StoreError, match=r"layout roots are \[docs/work\]; only an owner"):
        as_bob.set_layout_roots(["elsewhere"])
    as_bob.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select layout_roots from workspaces").fetchone()[0] == ["docs/work"]


def test_the_migration_derives_the_rows_an_idse_workspace_already_has(empty_dsn):
    migrate(empty_dsn, upto=17)
    old = PostgresStore(empty_dsn, "ws")
    old.open(create=True)
    old.commit([Change(f"{IDSE}/sessions/s1/intents/intent.md", None, text("# Intent\n\nShip it.\n")),
                Change(f"{IDSE}/CURRENT_SESSION", None, text("session_id: s1\n")),
                Change(f"{IDSE}/session_state.json", None, state({"stages": {"intent": "completed"}}))])
    old.record([{"kind": "note", "path": f"{IDSE}/sessions/s1/intents/intent.md"}])
    old.close()
    assert {row[1] for row in derived(empty_dsn)} == {None}
    assert [m.version for m in migrate(empty_dsn)] == list(range(18, latest_version() + 1))
    assert derived(empty_dsn) == [(f"{IDSE}/CURRENT_SESSION", "Alpha", None, None),
                                  (f"{IDSE}/session_state.json", "Alpha", None, None),
                                  (f"{IDSE}/sessions/s1/intents/intent.md", "Alpha", "s1", "intent")]
    assert project_state(empty_dsn, "Alpha") == ("s1", {"stages": {"intent": "completed"}})
    store = PostgresStore(empty_dsn, "ws")
    [s1] = store.progress()
    assert (s1["project"], s1["session"], s1["stages"]["intent"]["status"], s1["state"]) == \
        ("Alpha", "s1", "started", {"intent": "completed"})
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select count(*) from activity_log a join projects p on p.id = a.project_id"
                            " where p.name = 'Alpha'").fetchone()[0] == 4  # three syncs and the note
    store.close()


def test_a_config_naming_other_roots_than_an_owners_is_said_in_one_line(dsn, store, caplog, tmp_path):
    store.set_layout_roots(["docs/work"])
    bob = make_user(dsn, "bob")
    store.members("add", login="bob", role="collaborator")
    as_bob = AsUser(dsn, bob)
    cfg = Config(path=tmp_path / "bob.yaml", root=tmp_path, workspace="ws", database_url=dsn, device_name="bob",
                 layout_roots=("elsewhere",))
    with caplog.at_level(logging.WARNING, logger="syncd"):
        agree_layout(as_bob, cfg)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'bob.yaml'}: key 'layout.roots' not applied: syncd_layout_roots failed: the workspace's "
        "layout roots are [docs/work]; only an owner of the workspace can change them"]
    caplog.clear()
    agree_layout(as_bob, Config(**{**cfg.__dict__, "layout_roots": None}))  # a config that names none sends none
    assert caplog.records == []
    as_bob.close()
