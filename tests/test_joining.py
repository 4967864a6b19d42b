"""Joining with files already on disk: a teammate's Git clone weeks behind, a pull cut
short by a kill, a lost journal, the copy that ran the import. With no base in the
journal, the store's history (and the clone's Git) names the base, so nothing that the
store already has is a conflict or is pushed back. Real Git, real PostgreSQL, real
`syncd` processes where a kill is involved."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from copies import Copy
from syncd import config as configuration
from legacy_repo import ALICE, BOB, CAROL, git, write

pytestmark = pytest.mark.usefixtures("private_xdg")

S1 = "projects/P/sessions/s1"
SPEC, PLAN, CONTEXT, TASKS = f"{S1}/specs/spec.md", f"{S1}/plans/plan.md", f"{S1}/contexts/context.md", f"{S1}/tasks/tasks.md"
S2, S2_MOVED = "projects/P/sessions/s2", "projects/P/sessions/s2-renamed"
FLIP, TODO, DONE = "notes/flip.md", "notes/todo.md", "notes/done.md"
PLAN_TEXT = "# Plan\n\nStep one.\n\n## Later\n\nStep two.\n"


def make_history(root) -> str:
    """Seven commits by three people: adds, edits, a delete, a single-file move, a whole
    session folder moved with `git mv`, a file changed back to an earlier content, CRLF
    files. Returns the commit a teammate's clone stays at (the third)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, f"{S1}/intents/intent.md", "# Intent\n\nSync the team.\n")
    write(root, SPEC, "# Spec\r\n\r\nFirst draft.\r\n")
    write(root, CONTEXT, "# Context\r\n\r\nThe legacy layout.\r\n")
    write(root, PLAN, PLAN_TEXT)
    write(root, f"{S2}/intents/intent.md", "# Intent of s2\n")
    write(root, f"{S2}/contexts/context.md", "# Context of s2\n")
    write(root, TODO, "- write the spec\n")
    write(root, FLIP, "first\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start", when="2024-03-01T09:00:00+01:00")
    write(root, SPEC, "# Spec\r\n\r\nSecond draft.\r\n")
    write(root, FLIP, "second\n")
    git(root, "commit", "-q", "-am", "spec: second draft", author=BOB, when="2024-03-02T10:00:00+01:00")
    write(root, TASKS, "- [ ] one\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tasks", author=CAROL, when="2024-03-03T10:00:00+01:00")
    behind = git(root, "rev-parse", "HEAD")
    git(root, "mv", S2, S2_MOVED)
    git(root, "commit", "-q", "-m", "rename s2", author=ALICE, when="2024-03-04T10:00:00+01:00")
    git(root, "mv", TODO, DONE)
    git(root, "rm", "-q", TASKS)
    write(root, CONTEXT, "# Context\r\n\r\nThe legacy layout, and .idse.\r\n")
    git(root, "commit", "-q", "-am", "todo is done", author=BOB, when="2024-03-05T10:00:00+01:00")
    write(root, FLIP, "first\n")  # back to what it was
    write(root, PLAN, PLAN_TEXT.replace("Step two.", "Step two, reviewed."))
    write(root, SPEC, "# Spec\r\n\r\nThird draft, by Carol.\r\n")
    git(root, "commit", "-q", "-am", "review", author=CAROL, when="2024-03-06T10:00:00+01:00")
    write(root, f"{S2_MOVED}/contexts/context.md", "# Context of s2, after the move\n")
    git(root, "commit", "-q", "-am", "s2 context", author=ALICE, when="2024-03-07T10:00:00+01:00")
    return behind


def heads(dsn: str) -> dict[str, bytes | None]:
    from syncd.content import decode
    with psycopg.connect(dsn) as conn:
        return {p: None if c is None else decode(c)
                for p, c in conn.execute("select path, content from public.documents")}


def versions_by(dsn: str, device_name: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "select v.path, v.version, v.origin from public.document_versions v "
            "join public.devices d on d.id = v.device_id where d.name = %s order by v.seq",
            (device_name,)).fetchall()


def store_state(dsn: str):
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*), coalesce(max(seq), 0) from public.document_versions").fetchone()


@pytest.fixture
def team(tmp_path, dsn, transport):
    """Copy a imported the legacy history; copy b (over each transport) is a teammate's
    clone four commits behind with two uncommitted edits: one that merges cleanly with
    upstream, one that overlaps an upstream edit."""
    a = Copy(tmp_path, "a", dsn)
    behind = make_history(a.root)
    a.init()
    a.cli("import")
    b = Copy(tmp_path, "b", dsn, supabase_url=transport)
    git(tmp_path, "clone", "-q", str(a.root), str(b.root))
    git(b.root, "checkout", "-q", behind)
    write(b.root, PLAN, PLAN_TEXT.replace("Step one.", "Step one, by the teammate."))  # merges
    write(b.root, SPEC, "# Spec\r\n\r\nSecond draft, edited offline.\r\n")  # overlaps Carol's
    b.init()
    return a, b


def test_a_clone_behind_syncs_with_no_false_conflict_and_resurrects_nothing(team, dsn):
    a, b = team
    report = b.sync(expect=3)  # 3: a conflict is held
    assert report["conflicts"] == [SPEC]
    assert report["merged"] == [PLAN]
    # nothing B pushed but its clean merge (its own side, then the merge on top)
    assert {path for path, _, _ in versions_by(dsn, "b")} == {PLAN}
    store = heads(dsn)
    for gone in (f"{S2}/intents/intent.md", f"{S2}/contexts/context.md", TODO, TASKS):
        assert store[gone] is None, f"{gone} came back"
    files = b.files()
    assert {p: d for p, d in files.items() if p != SPEC} == {p: d for p, d in store.items() if d is not None and p != SPEC}
    assert files[SPEC] == b"# Spec\r\n\r\nSecond draft, edited offline.\r\n"  # kept as the user left it
    assert files[FLIP] == b"first\n" and files[CONTEXT].endswith(b"and .idse.\r\n")
    assert b"by the teammate" in files[PLAN] and b"reviewed" in files[PLAN]
    a.sync()
    assert {p: d for p, d in a.files().items() if p != SPEC} == {p: d for p, d in files.items() if p != SPEC}


def test_local_commits_the_store_never_saw_merge_from_the_newest_imported_commit(team, dsn):
    """The teammate committed their edit locally before joining: the clone's HEAD is not
    in the store, so the base is the newest commit of its history that the import knows."""
    a, b = team
    git(b.root, "commit", "-q", "-am", "offline work", author=BOB)
    write(b.root, PLAN, (b.root / PLAN).read_text().replace("# Plan", "# Plan, uncommitted too"))
    report = b.sync(expect=3)
    assert report["merged"] == [PLAN] and report["conflicts"] == [SPEC]
    assert b"by the teammate" in (b.root / PLAN).read_bytes() and b"uncommitted too" in (b.root / PLAN).read_bytes()
    assert b"reviewed" in (b.root / PLAN).read_bytes()


def test_a_dry_run_counts_what_the_first_pass_would_do_and_changes_nothing(team, dsn):
    a, b = team
    before_store, before_files = store_state(dsn), b.files()
    out = json.loads(b.cli("sync", "--once", "--dry-run", "--json").stdout)
    assert store_state(dsn) == before_store and b.files() == before_files
    assert sorted(out["pulled"]) == sorted([DONE, f"{S2_MOVED}/contexts/context.md", f"{S2_MOVED}/intents/intent.md"])
    assert sorted(out["fast_forwarded"]) == sorted([CONTEXT, FLIP])
    assert sorted(out["deleted_upstream"]) == sorted(
        [TODO, TASKS, f"{S2}/contexts/context.md", f"{S2}/intents/intent.md"])
    assert out["merged"] == [PLAN] and out["held"] == [SPEC]
    assert out["pushed"] == [] and out["held_back"] == []
    text = b.cli("sync", "--once", "--dry-run").output
    assert "dry run: nothing was changed" in text and "2 fast-forwarded" in text
    status = b.status()  # before the first pass, status says the same
    assert status["first_pass"]["fast_forwarded"] == out["fast_forwarded"]
    assert store_state(dsn) == before_store and b.files() == before_files
    b.sync(expect=3)
    assert b.status()["first_pass"] is None


def test_the_importing_copy_takes_another_copys_edit_as_a_plain_pull(team, dsn):
    a, b = team
    c = Copy(a.root.parent.parent, "c", dsn)
    c.init()
    c.sync()
    write(c.root, FLIP, "edited on c\n")
    c.sync()
    report = a.sync()
    assert report["pulled"] == 1 and report["pushed"] == 0 and report["conflicts"] == []
    assert (a.root / FLIP).read_bytes() == b"edited on c\n"


def test_many_files_that_the_store_deleted_are_held_back_not_revived(tmp_path, dsn):
    """A copy holding 60 files the store deleted, with contents the store never had (so no
    base can be inferred), does not bring them back without being told to."""
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init()
    for n in range(60):
        write(a.root, f"old/{n}.md", f"{n}\n")
    a.sync()
    for n in range(60):
        (a.root / f"old/{n}.md").unlink()
    a.cli("resume", "--allow-deletes")
    a.sync()
    for n in range(60):
        write(b.root, f"old/{n}.md", f"{n} edited elsewhere\n")
    b.init()
    report = b.sync(expect=3)
    assert len(report["held_deletes"]) == 60 and report["pushed"] == 0
    assert b.cli("status", expect=3).output.count("held deletes: 60") == 1  # exits as the pass did
    assert all(v is None for p, v in heads(dsn).items() if p.startswith("old/"))
    b.cli("resume", "--allow-deletes")
    assert b.sync()["pushed"] == 60


# ----- a pull cut short, a journal lost

def _syncd(copy: Copy, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()}
    return subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(copy.config), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _count(root) -> int:
    return sum(len([n for n in names if not n.startswith(".syncd-tmp-")]) for _, _, names in os.walk(root))


def test_kills_mid_pull_then_the_store_moves_on_leave_no_conflict(tmp_path, dsn):
    """`kill -9` of B's pass at random points while it pulls 1,000 new files; A then
    rewrites every one of them; B's next pass pulls them all, holding nothing."""
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init()
    b.init()
    for n in range(1000):
        write(a.root, f"d{n % 10}/f{n}.md", f"file {n}, first\n")
    a.sync()
    killed_at = []
    for _ in range(3):
        target = _count(b.root) + rng.randrange(20, 300)
        process = _syncd(b, "sync", "--once")
        deadline = time.monotonic() + 60
        while _count(b.root) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at.append(_count(b.root))
    assert killed_at[0] < 1000, f"the first kill came too late (seed {seed})"
    for n in range(1000):
        write(a.root, f"d{n % 10}/f{n}.md", f"file {n}, rewritten\n")
    a.sync()
    report = b.sync()
    assert report["conflicts"] == [] and report["pushed"] == 0, (seed, killed_at)
    assert b.files() == a.files()


def test_a_lost_journal_after_others_edited_gives_no_conflict_and_no_push(tmp_path, dsn):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init()
    b.init()
    for n in range(200):
        write(a.root, f"f{n}.md", f"file {n}\n")
    a.sync()
    b.sync()
    for n in range(0, 200, 3):
        write(a.root, f"f{n}.md", f"file {n}, edited on a\n")
    for n in range(1, 200, 30):
        (a.root / f"f{n}.md").unlink()
    write(a.root, "new.md", "new on a\n")
    a.sync()
    journal = configuration.load(b.config).journal_path
    for suffix in ("", "-wal", "-shm"):
        journal.with_name(journal.name + suffix).unlink(missing_ok=True)
    report = b.sync()
    assert report["conflicts"] == [] and report["pushed"] == 0 and report["deleted_remote"] == 0
    assert report["deleted_local"] == 7
    assert b.files() == a.files()
