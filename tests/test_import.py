"""`syncd import` of a legacy workspace with its Git history, and the Git mirror that keeps
recording afterwards; real Git, real PostgreSQL."""
from __future__ import annotations

import json

import psycopg
import pytest

from syncd.store import rpc as rpc_module
from syncd.store.postgres import PostgresStore

from copies import Copy
from legacy_repo import PLAN, PLAN_V2, SPEC, git, make_legacy_repo, show
from supabase_database import sign_up

pytestmark = pytest.mark.usefixtures("private_xdg")


@pytest.fixture
def legacy(tmp_path, dsn):
    """Copy a: a legacy Git workspace with syncd initialised on it (nothing imported yet)."""
    a = Copy(tmp_path, "a", dsn)
    make_legacy_repo(a.root)
    a.init()
    return a


def count_versions(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*) from public.document_versions").fetchone()[0]


def repo_state(root) -> dict:
    """What the user's own Git state is made of: must never change under the mirror."""
    return {"head": git(root, "rev-parse", "HEAD"), "branch": git(root, "symbolic-ref", "HEAD"),
            "index": (root / ".git/index").read_bytes(),
            "refs": git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main")}


def test_import_replays_history_with_authors_and_dates_once(legacy, dsn):
    a = legacy
    out = a.cli("import").output
    assert "3 commits of" in out and "imported" in out
    versions = json.loads(a.cli("log", SPEC, "--json").stdout)["versions"]
    assert [(v["version"], v["origin"], v["author"]) for v in versions] == [
        (3, "import", "a"), (2, "import", "Bob Builder"), (1, "import", "Alice Archer")]
    assert versions[2]["created_at"].startswith("2024-03-01T08:00:00")  # 09:00+01:00
    assert versions[1]["provenance"]["commit"] == git(a.root, "rev-parse", "HEAD~1")
    assert versions[1]["author_email"] == "bob@example.com"
    assert versions[0]["provenance"]["working_tree"] is True
    text = a.cli("log", SPEC).output
    assert "Bob Builder" in text and "2024-03-0" in text
    # the rename is followed: plan-v2.md carries plan.md's history, plan.md is deleted
    follow = json.loads(a.cli("log", PLAN_V2, "--json").stdout)["versions"]
    assert [(v["author"], v["provenance"].get("renamed_from")) for v in follow] == \
        [("Carol Chen", None), ("Alice Archer", PLAN)]
    assert json.loads(a.cli("log", PLAN, "--json").stdout)["versions"][0]["deleted"] is True
    deleted = {d["path"] for d in json.loads(a.cli("log", "--deleted", "--json").stdout)}
    assert deleted == {PLAN, "projects/P/sessions/s1/tasks/old.md"}
    # a second run changes nothing
    before = count_versions(dsn)
    again = json.loads(a.cli("import", "--json").stdout)
    assert (again["versions"], again["working_tree"], again["added"], again["invited"]) == (0, 0, 0, 0)
    assert again["already"] > 0 and count_versions(dsn) == before


def test_the_second_copy_gets_the_tree_and_edits_come_back_as_mirror_commits(legacy, tmp_path, dsn):
    a = legacy
    git(a.root, "add", "projects/P/sessions/s1/feedback/notes.md")  # the user has staged work
    a.cli("import")
    a.sync()
    state = repo_state(a.root)
    b = Copy(tmp_path, "b", dsn)
    b.init()
    b.sync()
    expected = {p: d for p, d in a.files().items()}
    assert b.files() == expected  # byte-exact, CRLF included
    (b.root / SPEC).write_bytes(b"# Spec\r\n\r\nEdited in b.\r\n")
    b.sync()
    a.sync()
    assert (a.root / SPEC).read_bytes() == b"# Spec\r\n\r\nEdited in b.\r\n"
    log = git(a.root, "log", "--format=%an <%ae>|%s|%b", "syncd/mirror", "-1")
    assert log.startswith("b <b@syncd.invalid>|syncd: update " + SPEC)
    assert f"Syncd-Version: {SPEC}@4" in log
    assert show(a.root, f"syncd/mirror:{SPEC}") == b"# Spec\r\n\r\nEdited in b.\r\n"
    assert git(a.root, "rev-parse", "syncd/mirror~1") == state["head"]  # grown from the user's HEAD
    assert repo_state(a.root) == state  # HEAD, branch, index: exactly as before
    # a pass that moves nothing makes no commit
    tip = git(a.root, "rev-parse", "syncd/mirror")
    a.sync()
    assert git(a.root, "rev-parse", "syncd/mirror") == tip


def test_legacy_permission_files_become_members_and_invitations(legacy, dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        sign_up(conn, "alice")  # a profile by trigger
    out = legacy.cli("import").output
    assert "add 2 (alice)" in out and "invite 3 without a syncd account yet (bob, carol, dave)" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select role from workspace_members").fetchall() == [("owner",)]
        assert conn.execute("select s.slug, m.role from session_members m "
                            "join sessions s on s.id = m.session_id").fetchall() == [("s1", "owner")]
        assert sorted(conn.execute("select github_login, role from invitations").fetchall()) == \
            [("bob", "collaborator"), ("carol", "owner"), ("dave", "collaborator")]
        current, state = conn.execute("select current_session, state from projects where name = 'P'").fetchone()
    assert current == "s1" and state["session_state"]["stages"]["spec"] == "in_progress"


def test_dry_run_reports_and_creates_nothing(legacy, dsn):
    out = json.loads(legacy.cli("import", "--dry-run", "--json").stdout)
    assert out["commits"] == 3 and out["documents"] >= 8 and out["projects"] == ["P"]
    assert out["sessions"] == [{"project": "P", "session": "s1"}]
    assert {m["login"] for m in out["members"]} == {"alice", "bob", "carol", "dave"}
    assert count_versions(dsn) == 0
    text = legacy.cli("import", "--dry-run").stdout
    assert text.startswith("dry run: 3 commits of") and "would replay" in text


def test_an_interrupted_import_resumes_without_duplicates(legacy, dsn, monkeypatch):
    a = legacy
    with monkeypatch.context() as patched:
        patched.setattr(rpc_module, "COMMIT_MAX_CHANGES", 2)  # batches of two
        calls = []
        real = PostgresStore.commit

        def cut_after_two_batches(self, changes, *args, **kwargs):
            calls.append(len(changes))
            if len(calls) == 3:
                raise KeyboardInterrupt("killed")
            return real(self, changes, *args, **kwargs)
        patched.setattr(PostgresStore, "commit", cut_after_two_batches)
        assert a.cli("import", expect=None).exit_code != 0
    partial = count_versions(dsn)
    assert 0 < partial
    a.cli("import")
    versions = json.loads(a.cli("log", SPEC, "--json").stdout)["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    with psycopg.connect(dsn) as conn:
        dupes = conn.execute("select count(*) from (select path, provenance->>'commit' from document_versions "
                             "where provenance ? 'commit' group by 1, 2 having count(*) > 1) d").fetchone()[0]
    assert dupes == 0


def test_import_without_git_takes_the_working_tree(tmp_path, dsn):
    a = Copy(tmp_path, "plain", dsn)
    (a.root / "notes").mkdir(parents=True)
    (a.root / "notes/n.md").write_text("hello\n")
    a.init()
    out = a.cli("import").output
    assert "no Git history" in out and "1 from the working tree" in out
    assert json.loads(a.cli("log", "notes/n.md", "--json").stdout)["versions"][0]["origin"] == "import"


def test_ref_mode_leaves_a_rebase_in_progress_and_staged_changes_alone(legacy, tmp_path, dsn):
    a = legacy
    a.cli("import")
    a.sync()
    # a conflicting rebase stops half-way, and the user stages something on top
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "wip")
    git(a.root, "checkout", "-q", "-b", "topic", "HEAD~3")
    (a.root / SPEC).write_text("topic version\n")
    git(a.root, "commit", "-q", "-am", "topic edit")
    git(a.root, "rebase", "main", check=False)
    assert (a.root / ".git/rebase-merge").is_dir()
    (a.root / "staged.md").write_text("staged by the user\n")
    git(a.root, "add", "staged.md")
    before = {"head": git(a.root, "rev-parse", "HEAD"), "index": (a.root / ".git/index").read_bytes(),
              "rebase": sorted(p.name for p in (a.root / ".git/rebase-merge").iterdir()),
              "status": git(a.root, "status", "--porcelain=v2")}
    b = Copy(tmp_path, "b", dsn)
    b.init()
    b.sync()
    (b.root / "projects/P/README.md").write_text("new from b\n")
    b.sync()
    a.sync(expect=None)
    assert (a.root / "projects/P/README.md").read_text() == "new from b\n"
    assert show(a.root, "syncd/mirror:projects/P/README.md") == b"new from b\n"
    after = {"head": git(a.root, "rev-parse", "HEAD"), "index": (a.root / ".git/index").read_bytes(),
             "rebase": sorted(p.name for p in (a.root / ".git/rebase-merge").iterdir()),
             "status": git(a.root, "status", "--porcelain=v2")}
    assert after["head"] == before["head"] and after["index"] == before["index"]
    assert after["rebase"] == before["rebase"]
    assert set(after["status"].splitlines()) == set(before["status"].splitlines()) | {"? projects/P/README.md"}


def test_a_rename_without_edits_then_an_edit_imports_once(legacy, dsn):
    """Regression (found by bench/import_bench.py): a pure rename added no version in the
    first run, but a second run, seeing a newer head, added one."""
    a = legacy
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "wip", when="2024-03-05T10:00:00Z")
    git(a.root, "mv", SPEC, SPEC.replace("spec.md", "spec-final.md"))
    git(a.root, "commit", "-qm", "rename only", when="2024-03-06T10:00:00Z")
    (a.root / SPEC.replace("spec.md", "spec-final.md")).write_text("edited after the rename\n")
    git(a.root, "commit", "-qam", "edit", when="2024-03-07T10:00:00Z")
    first = json.loads(a.cli("import", "--json").stdout)
    second = json.loads(a.cli("import", "--json").stdout)
    assert first["versions"] > 0 and second["versions"] == 0 and second["already"] == first["versions"]
    moved = json.loads(a.cli("log", SPEC.replace("spec.md", "spec-final.md"), "--json").stdout)["versions"]
    head, _, wip, _, bob, alice = git(a.root, "log", "--format=%H", "-n", "6").split()
    assert [v["provenance"]["commit"] for v in moved] == [head, wip, bob, alice]  # the rename adds none


def test_branch_mode_versions_wait_out_a_rebase_and_conflict_copies_stay_out(legacy, tmp_path, dsn):
    a = legacy
    with a.config.open("a") as f:
        f.write("git: {mirror: branch}\n")
    a.cli("import")
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "wip")
    a.sync()
    b = Copy(tmp_path, "b", dsn)
    b.init()
    b.sync()
    (a.root / ".git/MERGE_HEAD").write_text(git(a.root, "rev-parse", "HEAD") + "\n")  # a merge in progress
    head = git(a.root, "rev-parse", "HEAD")
    (b.root / "projects/P/README.md").write_text("from b\n")
    b.sync()
    a.sync()
    assert git(a.root, "rev-parse", "HEAD") == head  # waited
    (a.root / ".git/MERGE_HEAD").unlink()
    # a conflict settled with --keep both: its copy is synced, never mirrored
    (a.root / SPEC).write_text("a's line\n")
    (b.root / SPEC).write_text("b's line\n")
    b.sync()
    a.sync(expect=3)
    a.cli("resolve", SPEC, "--keep", "both")
    log = git(a.root, "log", "--format=%an %s%n%b", f"{head}..HEAD")
    assert "b syncd: update projects/P/README.md" in log and "Syncd-Version: projects/P/README.md@1" in log
    assert "conflict from" not in git(a.root, "ls-tree", "-r", "--name-only", "HEAD")
    assert any("conflict from" in p for p in a.files())


def test_a_configured_mirror_repository_records_a_plain_working_copy(tmp_path, dsn):
    bare = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = Copy(tmp_path, "plain", dsn)
    a.init()
    with a.config.open("a") as f:
        f.write(f"git: {{repository: {json.dumps(str(bare))}, branch: idse/history}}\n")
    (a.root / "specs").mkdir()
    (a.root / "specs/spec.md").write_text("spec\n")
    a.sync()
    assert show(bare, "idse/history:specs/spec.md") == b"spec\n"
    assert "Syncd-Version: specs/spec.md@1" in git(bare, "log", "--format=%b", "idse/history")


def test_build_output_committed_by_mistake_is_left_out_without_a_line_per_file(legacy, dsn):
    """The history of a real workspace held `__pycache__/*.pyc`: one warning each, before."""
    a = legacy
    for i in range(5):
        (a.root / f"tools/__pycache__/m{i}.cpython-311.pyc").parent.mkdir(parents=True, exist_ok=True)
        (a.root / f"tools/__pycache__/m{i}.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x00\x00" + bytes([i]))
    (a.root / "tools/check.py").write_text("print('ok')\n")
    git(a.root, "add", "-A")
    git(a.root, "commit", "-q", "-m", "tools (and their bytecode, by mistake)")
    git(a.root, "rm", "-rq", "--cached", "tools/__pycache__")
    git(a.root, "commit", "-q", "-m", "no bytecode")
    out = a.cli("import").output
    assert "pyc" not in out and "__pycache__" not in out
    stored = {d["path"] for d in PostgresStore(dsn, "team").documents()}
    assert "tools/check.py" in stored and not any("__pycache__" in p for p in stored)
