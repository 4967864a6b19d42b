"""One IDSE pipeline, scripted end to end on a real PostgreSQL: a Git history by three people
over five days (intent → … → feedback), imported; then live edits from two working copies
with a conflict, its resolution and a restore. The activity log, the stage statuses and
every analytics view must come out exactly as the script implies."""
from __future__ import annotations

import json

import psycopg
import pytest

from copies import Copy
from legacy_repo import ALICE, BOB, CAROL, git, write

pytestmark = pytest.mark.usefixtures("private_xdg")

S1, S2 = "projects/P/sessions/s1", "projects/P/sessions/s2"
HOUR, DAY = 3600, 86400
HISTORY = [  # (author, time, files): each a commit
    (ALICE, "2026-03-01T09:00:00Z", {f"{S1}/intents/intent.md": "# Intent\n\nSync the sessions.\n"}),
    (BOB, "2026-03-01T15:00:00Z", {f"{S1}/contexts/context.md": "# Context\n\nLegacy directories.\n",
                                   f"{S2}/intents/intent.md": "# Intent\n\nA weekly report.\n"}),
    (ALICE, "2026-03-02T09:00:00Z", {f"{S1}/specs/spec.md": "# Spec\n\nTwo-way sync.\n"}),
    (CAROL, "2026-03-02T10:00:00Z", {f"{S1}/plans/plan.md": "# Plan\n\n- [ ] \n\nTODO\n"}),  # a template
    (BOB, "2026-03-03T09:00:00Z", {f"{S1}/tasks/tasks.md": "# Tasks\n\n- [ ] write the engine\n"}),
    (CAROL, "2026-03-04T09:00:00Z", {f"{S1}/implementation/notes.md": "Done in syncd/.\n"}),
    (ALICE, "2026-03-05T09:00:00Z", {f"{S1}/feedback/feedback.md": "# Feedback\n\nIt works.\n"}),
    (BOB, "2026-03-05T12:00:00Z", {f"{S2}/contexts/context.md": "# Context\n\nThe team lead asked.\n"}),
]
SPEC2 = f"{S2}/specs/spec.md"


def activity(copy: Copy) -> list[tuple]:
    rows = [json.loads(line) for line in copy.cli("activity", "--json", "--limit", "2000").stdout.splitlines()]
    return [(r["kind"], r["path"], r["actor"], r["device"], r["details"].get("version")) for r in rows]


@pytest.fixture
def pipeline(tmp_path, dsn):
    alice, bob = Copy(tmp_path, "alice", dsn), Copy(tmp_path, "bob", dsn)
    alice.root.mkdir(parents=True)
    git(alice.root, "init", "-q", "-b", "main")
    for author, when, files in HISTORY:
        for path, text in files.items():
            write(alice.root, path, text)
        git(alice.root, "add", "-A")
        git(alice.root, "commit", "-q", "-m", "work", author=author, when=when)
    alice.init()
    alice.cli("import")
    alice.sync()
    bob.init()
    bob.sync()
    # live: both write the s2 spec's same line; bob keeps his, alice restores the first
    write(alice.root, SPEC2, "# Spec\n\nfirst\n")
    alice.sync()
    bob.sync()
    write(alice.root, SPEC2, "# Spec\n\nalice's\n")
    write(bob.root, SPEC2, "# Spec\n\nbob's\n")
    alice.sync()
    bob.sync(expect=3)
    bob.cli("resolve", SPEC2, "--keep", "local")
    alice.sync()
    alice.cli("restore", SPEC2, "--version", "1")
    bob.sync()
    return alice, bob


def test_the_activity_log_holds_exactly_the_pipelines_events(pipeline):
    alice, bob = pipeline
    imported = [("import", path, author[0], "alice", 1) for author, _, files in HISTORY for path in files]
    assert activity(bob) == imported + [
        ("import", None, None, "alice", None),  # the run itself: commits, versions, members
        ("sync", SPEC2, None, "alice", 1),
        ("sync", SPEC2, None, "alice", 2),
        ("conflict", SPEC2, None, "bob", None),
        ("resolve", SPEC2, None, "bob", 3),
        ("restore", SPEC2, None, "alice", 4),
    ]
    assert (alice.root / SPEC2).read_text() == (bob.root / SPEC2).read_text() == "# Spec\n\nfirst\n"


def test_stage_statuses_follow_the_documents_and_a_template_stage_is_pending(pipeline):
    alice, _ = pipeline
    s1, s2 = json.loads(alice.cli("progress", "--json").stdout)
    assert {k: v["status"] for k, v in s1["stages"].items()} == {
        "intent": "started", "context": "started", "spec": "started", "plan": "pending",
        "tasks": "started", "implementation": "started", "feedback": "started"}
    assert s1["stages"]["plan"]["documents"] == 1  # present, but an untouched template
    assert {k for k, v in s2["stages"].items() if v["status"] == "started"} == {"intent", "context", "spec"}


def test_the_analytics_views_measure_the_pipeline(pipeline, dsn):
    alice, _ = pipeline
    f = json.loads(alice.cli("stats", "--json").stdout)
    assert [(r["stage"], r["started"], r["sessions"], float(r["completion"])) for r in f["stage_completion"]] == [
        ("intent", 2, 2, 1.0), ("context", 2, 2, 1.0), ("spec", 2, 2, 1.0), ("plan", 0, 2, 0.0),
        ("tasks", 1, 2, 0.5), ("implementation", 1, 2, 0.5), ("feedback", 1, 2, 0.5)]
    with psycopg.connect(dsn) as conn:
        spent = {(s, stage): t.total_seconds() for s, stage, t in conn.execute(
            "select session, stage, time_spent from public.syncd_stage_times where session = 's1'")}
    # the template plan never started: the spec's time runs until the tasks began
    assert spent == {("s1", "intent"): 6 * HOUR, ("s1", "context"): 18 * HOUR, ("s1", "spec"): DAY,
                     ("s1", "tasks"): DAY, ("s1", "implementation"): DAY, ("s1", "feedback"): 0}
    intent = next(r for r in f["stage_times"] if r["stage"] == "intent")
    # s1: 6 h; s2: from 1 March 15:00 to its context on 5 March 12:00
    assert (intent["sessions"], float(intent["median_seconds"])) == (2, (6 * HOUR + 3 * DAY + 21 * HOUR) / 2)
    assert [(r["session"], r["seconds"]) for r in f["lead_times"]] == [("s1", 4 * DAY), ("s2", None)]
    history = [(r["day"], r["author"], r["edits"]) for r in f["edits_per_day"] if r["day"] < "2026-04"]
    assert history == [("2026-03-01", "Alice Archer", 1), ("2026-03-01", "Bob Builder", 2),
                       ("2026-03-02", "Alice Archer", 1), ("2026-03-02", "Carol Chen", 1),
                       ("2026-03-03", "Bob Builder", 1), ("2026-03-04", "Carol Chen", 1),
                       ("2026-03-05", "Alice Archer", 1), ("2026-03-05", "Bob Builder", 1)]
    today = {r["author"]: r["edits"] for r in f["edits_per_day"] if r["day"] > "2026-04"}
    assert today == {"alice": 3, "bob": 1}  # v1, v2 and the restore; the resolution keeping bob's
    [rate] = f["conflict_rates"]
    assert (rate["project"], rate["edits"], rate["merged"], rate["conflicts"]) == ("P", 13, 0, 1)
    assert float(rate["rate"]) == round(1 / 13, 4)
    text = alice.cli("stats").stdout
    assert "P/s1: 4d" in text and "P/s2: no feedback yet" in text
    assert "P: 13 edits, 0 merged, 1 held as conflicts (8%)" in text
