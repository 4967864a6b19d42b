"""Pipeline progress derived from the documents, kept current by commits, reconciled with
session_state.json; through the CLI on a real PostgreSQL."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("private_xdg")

S1 = "projects/P/sessions/s1"


def write(copy, rel: str, text: str) -> None:
    target = copy.root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_stages_follow_the_documents_and_disagreements_are_reported(copies):
    a, b = copies
    write(a, f"{S1}/intents/intent.md", "# Intent\n\nShip the sync daemon.\n")
    write(a, f"{S1}/contexts/context.md", "# Context\n\n<describe the context>\n- [ ] \n")  # a template
    write(a, f"{S1}/specs/spec.md", "")  # empty
    write(a, "projects/P/sessions/s2/intents/intent.md", "# Intent\n\nAnother one.\n")
    write(a, "projects/P/CURRENT_SESSION", "session_id: s1\n")
    write(a, "projects/P/session_state.json",
          json.dumps({"stages": {"intent": "completed", "context": "completed", "spec": "pending"}}))
    a.sync()
    [s1, s2] = json.loads(b.cli("progress", "--json").stdout)
    status = {stage: v["status"] for stage, v in s1["stages"].items()}
    assert status == {"intent": "started", "context": "pending", "spec": "pending", "plan": "pending",
                      "tasks": "pending", "implementation": "pending", "feedback": "pending"}
    assert s1["stages"]["intent"]["last_edited_by"] == "a" and s1["stages"]["context"]["documents"] == 1
    assert (s1["current"], s2["current"]) == (True, False)
    assert s1["disagreements"] == [{"stage": "context", "documents": "pending", "session_state": "completed"}]
    # b fills the spec in: the commit path brings the session's progress up to date
    b.sync()
    write(b, f"{S1}/specs/spec.md", "# Spec\n\nThe real thing.\n")
    b.sync()
    [s1, _] = json.loads(a.cli("progress", "P", "--json").stdout)
    assert s1["stages"]["spec"]["status"] == "started" and s1["stages"]["spec"]["last_edited_by"] == "b"
    assert {d["stage"] for d in s1["disagreements"]} == {"context", "spec"}  # the state says pending
    table = a.cli("progress").stdout.splitlines()
    assert table[0].split() == ["inte", "cont", "spec", "plan", "task", "impl", "feed"]
    assert table[1].startswith("* P/s1") and table[1].split()[2:5] == ["●", "·", "●"]
    assert "context: session_state.json says completed, the documents say pending" in "\n".join(table)
    assert a.cli("progress", "Nope").stdout.strip() == "no sessions yet in project Nope"


def test_an_idse_workspace_shows_its_sessions_stages_and_edits_under_its_projects(copies):
    """The newest IDSE tooling's layout: everything under .idse/projects/ (it imported with
    "no sessions yet", and all of its activity was "(outside projects)")."""
    a, b = copies
    root = ".idse/projects/Alpha"
    write(a, f"{root}/sessions/s1/intents/intent.md", "# Intent\n\nShip it.\n")
    write(a, f"{root}/sessions/s1/specs/spec.md", "# Spec\n\nThe real thing.\n")
    write(a, f"{root}/sessions/s2/plans/plan.md", "# Plan\n\nLater.\n")
    write(a, f"{root}/CURRENT_SESSION", "session_id: s1\n")
    write(a, f"{root}/session_state.json", json.dumps({"stages": {"intent": "completed", "spec": "in_progress"}}))
    a.sync()
    [s1, s2] = json.loads(b.cli("progress", "--json").stdout)
    assert (s1["project"], s1["session"], s1["current"], s2["session"], s2["current"]) == \
        ("Alpha", "s1", True, "s2", False)
    assert (s1["stages"]["intent"]["status"], s1["stages"]["spec"]["status"], s2["stages"]["plan"]["status"]) == \
        ("started", "started", "started")
    assert s1["state"] == {"intent": "completed", "spec": "in_progress"}
    assert b.cli("progress").stdout.splitlines()[1].startswith("* Alpha/s1")
    stats = b.cli("stats").stdout
    assert "Alpha: 5 edits" in stats and "(outside projects)" not in stats


def test_an_owners_layout_roots_reach_the_store_with_a_sync(copies):
    a, b = copies
    write(a, "work/Beta/sessions/s1/tasks/tasks.md", "# Tasks\n\n- [x] one\n")
    a.sync()
    assert b.cli("progress").stdout.strip() == "no sessions yet"
    with a.config.open("a") as f:
        f.write("layout:\n  roots: [work]\n")
    a.sync()
    [s1] = json.loads(b.cli("progress", "--json").stdout)
    assert (s1["project"], s1["session"], s1["stages"]["tasks"]["status"]) == ("Beta", "s1", "started")


def test_a_session_whose_files_are_all_deleted_is_no_longer_listed(copies):
    """A session folder removed (its documents deleted in the store, their history kept)
    leaves `progress`; a file of it restored brings it back."""
    import shutil
    a, b = copies
    write(a, f"{S1}/intents/intent.md", "# Intent\n\nStays.\n")
    write(a, "projects/P/sessions/s2/intents/intent.md", "# Intent\n\nGoes.\n")
    write(a, "projects/P/sessions/s2/specs/spec.md", "# Spec\n\nGoes too.\n")
    a.sync()
    assert [s["session"] for s in json.loads(b.cli("progress", "--json").stdout)] == ["s1", "s2"]
    shutil.rmtree(a.root / "projects/P/sessions/s2")
    assert a.sync()["deleted_remote"] == 2
    assert [s["session"] for s in json.loads(b.cli("progress", "--json").stdout)] == ["s1"]
    completion = json.loads(b.cli("stats", "--json").stdout)["stage_completion"]
    assert {(r["stage"], r["sessions"]) for r in completion if r["stage"] in ("intent", "spec")} == \
        {("intent", 1), ("spec", 1)}
    a.cli("restore", "projects/P/sessions/s2/specs/spec.md", "--version", "1")
    assert [s["session"] for s in json.loads(b.cli("progress", "--json").stdout)] == ["s1", "s2"]
