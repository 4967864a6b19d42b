"""Both sides changed: automatic merges, held conflicts and every way to settle them, through
the real CLI against a real PostgreSQL."""
from __future__ import annotations

import datetime
import json
import os
import sqlite3
import sys

import psycopg
import pytest

from syncd.cli.common import Failure, document_path
from syncd.cli.errors import EXIT_CONFLICTS, EXIT_UNSETTLED
from syncd.config import load
from syncd.content import decode
from syncd.engine import executor as executor_module
from syncd.engine.journal import Journal
from syncd.engine.policy import MergePolicies, Policy
from syncd.engine.resolution import conflict_copy_name
from syncd.store.postgres import PostgresStore

from copies import Copy

pytestmark = pytest.mark.usefixtures("private_xdg")

DOC = "# Spec\n\nIntro paragraph.\n\n## Goals\n\nGoal one.\n\n## Risks\n\nRisk one.\n"


@pytest.fixture
def store(dsn):
    s = PostgresStore(dsn, "team")
    yield s
    s.close()


def every_content(store: PostgresStore, path: str) -> set[bytes]:
    return {decode(store.version(path, v["version"])["content"])
            for v in store.history(path) if not v["deleted"]}


def activity(dsn: str) -> list[tuple[str, dict, str | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select a.kind, a.details, d.name from public.activity_log a "
                            "left join public.devices d on d.id = a.device_id order by a.id").fetchall()


def diverge(a: Copy, b: Copy, path: str, base: str, mine: str, theirs: str) -> None:
    """Both copies synced at `base`; then a writes `theirs` and syncs, b writes `mine`."""
    target = a.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(base)
    a.sync()
    b.sync()
    target.write_text(theirs)
    a.sync()
    (b.root / path).write_text(mine)


# 1. edits that do not overlap are merged

def test_edits_to_different_parts_of_a_document_are_merged(copies, store):
    a, b = copies
    mine = DOC.replace("Goal one.", "Goal one.\nGoal two, from b.")
    theirs = DOC.replace("Risk one.", "Risk one.\nRisk two, from a.")
    diverge(a, b, "specs/spec.md", DOC, mine, theirs)
    report = b.sync()
    assert (report["merged"], report["conflicts"]) == (["specs/spec.md"], [])
    a.sync()
    expected = DOC.replace("Goal one.", "Goal one.\nGoal two, from b.").replace(
        "Risk one.", "Risk one.\nRisk two, from a.")
    assert (a.root / "specs/spec.md").read_text() == (b.root / "specs/spec.md").read_text() == expected
    # the merge has both parents, and b's own edit is a version of its own under it
    head, side, *_ = store.history("specs/spec.md")
    assert (head["origin"], head["parent_version"], head["merge_parent"]) == ("merge", 2, side["version"])
    assert decode(store.version("specs/spec.md", side["version"])["content"]).decode() == mine
    assert side["device"] == "b" and side["parent_version"] == 1


def test_different_keys_of_a_json_file_are_merged(copies):
    a, b = copies
    base = '{\n  "stage": "spec",\n  "owner": "alice"\n}\n'
    diverge(a, b, "session_state.json", base, base.replace('"spec"', '"plan"'),
            base.replace('"alice"\n', '"alice",\n  "reviewer": "bob"\n'))
    assert b.sync()["merged"] == ["session_state.json"]
    a.sync()
    for copy in (a, b):
        assert json.loads((copy.root / "session_state.json").read_text()) == \
            {"stage": "plan", "owner": "alice", "reviewer": "bob"}
    assert a.files() == b.files()


# 2. overlapping edits are held, listed, shown, and settled without losing anything

def hold_conflict(a: Copy, b: Copy) -> None:
    diverge(a, b, "specs/spec.md", DOC, DOC.replace("Goal one.", "Goal one, says b."),
            DOC.replace("Goal one.", "Goal one, says a."))
    assert b.sync(expect=EXIT_CONFLICTS)["conflicts"] == ["specs/spec.md"]


def test_a_held_conflict_is_listed_and_shown(copies):
    a, b = copies
    hold_conflict(a, b)
    assert "conflict (held): specs/spec.md" in b.cli("status", expect=EXIT_CONFLICTS).output  # as `sync` exits
    assert a.cli("status").exit_code == 0
    out = b.cli("conflicts").output
    assert "specs/spec.md" in out and "base v1" in out and "remote v2 by a" in out
    [row] = json.loads(b.cli("conflicts", "--json").output)
    assert (row["path"], row["base_version"], row["remote_version"], row["remote_device"], row["state"]) == \
        ("specs/spec.md", 1, 2, "a", "held")
    shown = b.cli("conflicts", "show", "specs/spec.md").output
    assert "<<<<<<< local (this working copy)\nGoal one, says b.\n" in shown
    assert "||||||| base (v1)\nGoal one.\n=======\nGoal one, says a.\n>>>>>>> remote (v2 by a)" in shown
    detail = json.loads(b.cli("conflicts", "show", "specs/spec.md", "--json").output)
    assert detail["local"].count("says b") == 1 and detail["remote"].count("says a") == 1
    assert detail["clean"] is False and "|||||||" in detail["merged"]
    assert a.cli("conflicts").output.strip() == "no conflicts"


@pytest.mark.parametrize("keep", ["local", "remote", "both"])
def test_each_resolution_converges_and_loses_nothing(copies, store, dsn, keep):
    a, b = copies
    hold_conflict(a, b)
    written = {DOC, DOC.replace("Goal one.", "Goal one, says a."), DOC.replace("Goal one.", "Goal one, says b.")}
    result = b.cli("resolve", str(b.root / "specs/spec.md"), "--keep", keep)  # a filesystem path works
    assert f"resolved specs/spec.md: kept {keep}" in result.output
    if keep == "both":
        assert "this copy's content is in specs/spec (conflict from b " in result.output
    a.sync()
    b.sync()
    assert a.files() == b.files()
    assert b.status()["conflicts"] == [] and b.cli("conflicts").output.strip() == "no conflicts"
    files = a.files()
    winner = {"local": "b", "remote": "a", "both": "a"}[keep]
    assert files["specs/spec.md"].decode() == DOC.replace("Goal one.", f"Goal one, says {winner}.")
    if keep == "both":
        [copy] = [p for p in files if p != "specs/spec.md"]
        assert copy.startswith("specs/spec (conflict from b ") and copy.endswith(").md")
        assert files[copy].decode() == DOC.replace("Goal one.", "Goal one, says b.")
    kept = every_content(store, "specs/spec.md") | {c.decode() for c in files.values()} \
        | {c for p in files for c in every_content(store, p)}
    assert written <= {c if isinstance(c, str) else c.decode() for c in kept}
    conflict, resolution = [(k, d) for k, d, _ in activity(dsn) if k in ("conflict", "resolve")]
    assert conflict[1]["base_version"] == 1 and conflict[1]["remote_version"] == 2
    assert resolution[1]["keep"] == keep and resolution[1].get("remote_version", 2) == 2
    assert [name for k, _, name in activity(dsn) if k in ("conflict", "resolve")] == ["b", "b"]


def test_keep_merged_writes_markers_and_publishes_once_they_are_gone(copies, store):
    a, b = copies
    hold_conflict(a, b)
    result = b.cli("resolve", "specs/spec.md", "--keep", "merged", "--json", expect=EXIT_CONFLICTS)
    assert json.loads(result.output) == {"path": "specs/spec.md", "keep": "merged", "resolved": False,
                                         "file": str(b.root / "specs/spec.md")}
    result = b.cli("resolve", "specs/spec.md", "--keep", "merged", expect=EXIT_CONFLICTS)  # again: same file
    assert "conflict markers" in result.output
    marked = (b.root / "specs/spec.md").read_text()
    assert "<<<<<<< local" in marked and ">>>>>>> remote (v2 by a)" in marked
    assert b.sync(expect=EXIT_CONFLICTS)["pushed"] == 0  # markers still there: nothing published
    assert json.loads(b.cli("conflicts", "--json").output)[0]["state"].startswith("waiting")
    final = DOC.replace("Goal one.", "Goal one, says a and b.")
    (b.root / "specs/spec.md").write_text(final)
    assert b.sync()["resolved"] == ["specs/spec.md"]
    a.sync()
    assert (a.root / "specs/spec.md").read_text() == final
    # b's content from before the markers became a version under the resolution
    assert DOC.replace("Goal one.", "Goal one, says b.").encode() in every_content(store, "specs/spec.md")
    assert store.history("specs/spec.md")[0]["merge_parent"] is not None


def test_keep_merged_with_edit_opens_the_editor(copies, tmp_path, monkeypatch):
    a, b = copies
    hold_conflict(a, b)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, re\np = sys.argv[1]\ns = open(p).read()\n"
                      "s = re.sub(r'<<<<<<< .*?\\n(.*?)=======\\n.*?>>>>>>> [^\\n]*\\n', r'\\1', s, flags=re.S)\n"
                      "open(p, 'w').write(s)\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    result = b.cli("resolve", "specs/spec.md", "--keep", "merged", "--edit")
    assert "resolved specs/spec.md: kept merged" in result.output
    a.sync()
    assert (a.root / "specs/spec.md").read_text() == DOC.replace("Goal one.", "Goal one, says b.")


def test_merge_policies_from_the_config(copies, store):
    a, b = copies
    with b.config.open("a") as f:
        f.write('merge:\n  "*.lock": prefer-remote\n  "notes/**": manual\n  "*.txt": prefer-local\n')
    paths = ("deps.lock", "notes/n.md", "mine.txt")
    (a.root / "notes").mkdir()
    for path in paths:
        (a.root / path).write_text("one\ntwo\nthree\n")
    a.sync()
    b.sync()
    for path in paths:
        (a.root / path).write_text("one\ntwo\nthree (a)\n")
        (b.root / path).write_text("one\ntwo (b)\nthree\n")
    a.sync()
    report = b.sync(expect=EXIT_CONFLICTS)
    assert report["conflicts"] == ["notes/n.md"]  # mergeable, but a person decides
    assert sorted(report["resolved"]) == ["deps.lock", "mine.txt"]
    a.sync()
    assert a.files()["deps.lock"] == b.files()["deps.lock"] == b"one\ntwo\nthree (a)\n"
    assert a.files()["mine.txt"] == b.files()["mine.txt"] == b"one\ntwo (b)\nthree\n"
    assert b"one\ntwo (b)\nthree\n" in every_content(store, "deps.lock")  # the loser is a version


def test_newest_policy_keeps_the_side_written_last(copies):
    a, b = copies
    with b.config.open("a") as f:
        f.write('merge:\n  "*.md": newest\n')
    diverge(a, b, "n.md", "x\n", "b's\n", "a's\n")
    os.utime(b.root / "n.md", (1, 1))  # b's edit is older than a's version
    assert b.sync()["resolved"] == ["n.md"]
    assert (b.root / "n.md").read_text() == "a's\n"
    (b.root / "n.md").write_text("b again\n")
    diverge(a, b, "n.md", "y\n", "b's newer\n", "a's older\n")
    assert b.sync()["resolved"] == ["n.md"]
    assert (b.root / "n.md").read_text() == "b's newer\n"


def test_resolve_errors(copies):
    a, b = copies
    (b.root / "x.md").write_text("x\n")
    b.sync()
    assert "no conflict is held" in b.cli("resolve", "x.md", "--keep", "local", expect=1).output
    assert "no conflict is held" in b.cli("resolve", "nope.md", "--keep", "local", expect=1).output
    assert "not inside the working copy" in b.cli("resolve", "/etc/passwd", "--keep", "local", expect=1).output
    assert "--edit goes with --keep merged" in b.cli("resolve", "x.md", "--keep", "local", "--edit", expect=2).output
    assert "'mine' is not one of" in b.cli("resolve", "x.md", "--keep", "mine", expect=2).output
    assert "no conflict" in b.cli("conflicts", "show", "x.md", expect=1).output


# crashes and races inside a merge

def disjoint_edits(a: Copy, b: Copy) -> tuple[str, str]:
    mine = DOC.replace("Goal one.", "Goal one, by b.")
    theirs = DOC.replace("Risk one.", "Risk one, by a.")
    diverge(a, b, "spec.md", DOC, mine, theirs)
    return mine, DOC.replace("Goal one.", "Goal one, by b.").replace("Risk one.", "Risk one, by a.")


def test_a_crash_between_committing_a_merge_and_writing_it_converges(copies, store, monkeypatch):
    a, b = copies
    _, merged = disjoint_edits(a, b)

    def power_cut(*args, **kwargs):
        raise KeyboardInterrupt("power cut")
    with monkeypatch.context() as patched:
        patched.setattr(executor_module, "write_atomic", power_cut)
        assert b.cli("sync", "--once", expect=None).exit_code != 0
    assert store.version("spec.md")["content"]["text"] == merged  # committed, not yet written
    report = b.sync()
    assert (b.root / "spec.md").read_text() == merged and report["conflicts"] == []
    assert [v["version"] for v in store.history("spec.md")] == [4, 3, 2, 1]  # nothing twice


def test_an_edit_during_the_merge_write_is_merged_next_pass(copies, store, monkeypatch):
    a, b = copies
    mine, merged = disjoint_edits(a, b)
    real = executor_module.write_atomic

    def user_types_first(root, path, data, expected, **kwargs):
        (root / path).write_text(mine.replace("Intro paragraph.", "Intro, typed late."))
        return real(root, path, data, expected, **kwargs)
    with monkeypatch.context() as patched:
        patched.setattr(executor_module, "write_atomic", user_types_first)
        report = b.sync(expect=EXIT_UNSETTLED)
    assert report["deferred"] == ["spec.md"]
    assert (b.root / "spec.md").read_text() == mine.replace("Intro paragraph.", "Intro, typed late.")
    b.sync()
    a.sync()
    assert (a.root / "spec.md").read_text() == (b.root / "spec.md").read_text() == merged.replace("Intro paragraph.", "Intro, typed late.")


# the pieces

def test_the_journal_gains_the_conflict_columns_on_upgrade(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("create table conflicts (path text primary key, local_sha256 text, "
                      "base_version integer, remote_version integer, remote_sha256 text, "
                      "detected_at real not null);"
                      "insert into conflicts values ('x.md', 'aa', 1, 2, 'bb', 0);")
    old.close()
    journal = Journal(path)
    journal.request("x.md", "local")
    assert journal.conflict("x.md").request == "local"
    journal.close()
    assert Journal(path).conflict("x.md").base_version == 1  # a second open changes nothing


def test_conflict_copy_names_are_readable_and_unique():
    day = datetime.date(2026, 11, 25)
    taken = {"specs/spec (conflict from alice-laptop 2026-11-25).md"}
    assert conflict_copy_name("specs/spec.md", "alice laptop:syncd", day, taken.__contains__) == \
        "specs/spec (conflict from alice-laptop-syncd 2026-11-25).md"
    assert conflict_copy_name("specs/spec.md", "alice-laptop", day, taken.__contains__) == \
        "specs/spec (conflict from alice-laptop 2026-11-25 2).md"
    assert conflict_copy_name("Makefile", "/", day, lambda p: False) == "Makefile (conflict from unknown 2026-11-25)"
    assert conflict_copy_name(".env.example", "b", day, lambda p: False) == ".env (conflict from b 2026-11-25).example"
    long = conflict_copy_name("d/" + "é" * 120 + ".md", "b", day, lambda p: False)
    assert len(long.split("/")[1].encode()) <= 255 and long.endswith(" (conflict from b 2026-11-25).md")


def test_merge_policies_match_first_pattern_first():
    policies = MergePolicies({"notes/**": "manual", "*.md": "prefer-local"})
    assert policies.for_path("notes/a.md") is Policy.MANUAL
    assert policies.for_path("specs/a.md") is Policy.PREFER_LOCAL
    assert policies.for_path("a.json") is Policy.MERGE


def test_a_bad_merge_policy_is_a_clear_config_error(copies):
    a, _ = copies
    with a.config.open("a") as f:
        f.write('merge:\n  "*.md": theirs\n')
    out = a.cli("status", expect=1).output
    assert "key 'merge.*.md': 'theirs' is not one of: merge, manual, prefer-local" in out


def test_paths_given_as_the_user_sees_them(copies, monkeypatch, tmp_path):
    a, _ = copies
    cfg = load(a.config)
    (a.root / "projects/P").mkdir(parents=True)
    assert document_path(cfg, "projects/P/spec.md") == "projects/P/spec.md"  # from outside: root-relative
    assert document_path(cfg, str(a.root / "projects/P/spec.md")) == "projects/P/spec.md"
    monkeypatch.chdir(a.root / "projects/P")
    assert document_path(cfg, "spec.md") == "projects/P/spec.md"
    assert document_path(cfg, "../Q/x.md") == "projects/Q/x.md"
    for bad in ("../../../x.md", str(tmp_path)):
        with pytest.raises(Failure, match="not inside the working copy"):
            document_path(cfg, bad)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Failure, match="inside the working copy"):
        document_path(cfg, "../x.md")


def test_sync_without_once_passes_again_until_nothing_changed_during_a_pass(copies, store, monkeypatch):
    """issue 19: `sync` did exactly what `sync --once` does."""
    a, b = copies
    mine, merged = disjoint_edits(a, b)
    real, typed = executor_module.write_atomic, []

    def user_types_once(root, path, data, expected, **kwargs):
        if not typed:
            typed.append(path)
            (root / path).write_text(mine.replace("Intro paragraph.", "Intro, typed late."))
        return real(root, path, data, expected, **kwargs)
    with monkeypatch.context() as patched:
        patched.setattr(executor_module, "write_atomic", user_types_once)
        report = json.loads(b.cli("sync", "--json").stdout)
    assert (report["passes"], report["deferred"], report["merged"]) == (2, [], ["spec.md", "spec.md"])
    assert (b.root / "spec.md").read_text() == merged.replace("Intro paragraph.", "Intro, typed late.")
    assert store.version("spec.md")["content"]["text"] == (b.root / "spec.md").read_text()
