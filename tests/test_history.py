"""Every version reachable from the CLI: log, diff, show, restore, log --deleted."""
from __future__ import annotations

import json
import re

import psycopg
import pytest

pytestmark = pytest.mark.usefixtures("private_xdg")


@pytest.fixture
def three_versions(copies):
    """spec.md written by a (v1), edited by b (v2), then by a (v3), seen by both."""
    a, b = copies
    (a.root / "spec.md").write_bytes(b"first\r\n")
    a.sync()
    b.sync()
    (b.root / "spec.md").write_text("second\n")
    b.sync()
    a.sync()
    (a.root / "spec.md").write_text("third\n")
    a.sync()
    b.sync()
    return a, b


def test_log_lists_every_version_with_author_and_time(three_versions):
    a, b = three_versions
    out = b.cli("log", "spec.md").output.splitlines()
    assert out[0] == "spec.md"
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    for line, (n, who) in zip(out[1:], [(3, "a"), (2, "b"), (1, "a")]):
        assert re.match(rf"v{n}\s+{stamp}\s+{who}\s+sync\s+\d+ B\s+[0-9a-f]{{10}}$", line), line
    assert len(out) == 4
    versions = json.loads(b.cli("log", "spec.md", "--json").output)["versions"]
    assert [(v["version"], v["device"], v["size"]) for v in versions] == [(3, "a", 6), (2, "b", 7), (1, "a", 7)]
    assert all(v["created_at"] for v in versions)


def test_restore_brings_the_first_content_back_to_every_copy(three_versions, dsn):
    a, b = three_versions
    out = b.cli("restore", "spec.md", "--version", "1").output
    assert "restored spec.md to the content of v1, as v4" in out
    assert (b.root / "spec.md").read_bytes() == b"first\r\n"  # this copy at once
    a.sync()
    assert (a.root / "spec.md").read_bytes() == b"first\r\n"
    head = json.loads(a.cli("log", "spec.md", "--json").output)["versions"][0]
    assert (head["version"], head["origin"], head["parent_version"]) == (4, "restore", 3)
    # restoring what is already the newest content adds nothing
    again = json.loads(b.cli("restore", "spec.md", "--version", "1", "--json").output)
    assert (again["status"], again["version"]) == ("unchanged", 4)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select details from public.activity_log where kind = 'restore'").fetchall()
    assert rows == [({"path": "spec.md", "version": 4, "parent_version": 3, "deleted": False,
                      "restored_version": 1},)]


def test_a_deleted_file_is_found_and_restored(three_versions):
    a, b = three_versions
    (a.root / "spec.md").unlink()
    a.sync()
    b.sync()
    assert not (b.root / "spec.md").exists()
    out = b.cli("log", "--deleted").output
    assert out.startswith("spec.md  deleted in v4 ") and "by a" in out
    assert 'syncd restore "spec.md" --version 3' in out
    [doc] = json.loads(b.cli("log", "--deleted", "--json").output)
    assert (doc["path"], doc["version"], doc["deleted"]) == ("spec.md", 4, True)
    b.cli("restore", "spec.md", "--version", "3")
    a.sync()
    assert (a.root / "spec.md").read_text() == (b.root / "spec.md").read_text() == "third\n"
    assert b.cli("log", "--deleted").output.strip() == "no deleted documents"


def test_show_prints_a_version_byte_exact(three_versions):
    a, b = three_versions
    assert b.cli("show", "spec.md", "--version", "1").stdout_bytes == b"first\r\n"
    assert b.cli("show", "spec.md").stdout_bytes == b"third\n"
    shown = json.loads(b.cli("show", "spec.md", "--version", "2", "--json").output)
    assert (shown["version"], shown["device"], shown["content"]["text"]) == (2, "b", "second\n")


def test_diff_between_versions_and_against_the_local_file(three_versions):
    a, b = three_versions
    out = b.cli("diff", "spec.md", "--from", "2", "--to", "3").output
    assert out == "--- spec.md (v2)\n+++ spec.md (v3)\n@@ -1 +1 @@\n-second\n+third\n"
    assert b.cli("diff", "spec.md", "--to", "2").output.startswith("--- spec.md (v1)\n+++ spec.md (v2)\n")
    assert b.cli("diff", "spec.md").output == "no differences\n"
    (b.root / "spec.md").write_text("third\nand a local line")
    out = b.cli("diff", "spec.md").output
    assert out == ("--- spec.md (v3)\n+++ spec.md (this working copy)\n@@ -1 +1,2 @@\n third\n"
                   "+and a local line\n\\ No newline at end of file\n")
    assert json.loads(b.cli("diff", "spec.md", "--json").output) == {
        "path": "spec.md", "from": 3, "to": "local", "differs": True, "binary": False, "diff": out}
    assert json.loads(b.cli("diff", "spec.md", "--to", "3", "--from", "3", "--json").output)["differs"] is False


def test_history_errors_are_clear(three_versions):
    a, b = three_versions
    assert 'no document "nope.md"' in b.cli("log", "nope.md", expect=1).output
    assert 'no version 99 of "spec.md"' in b.cli("show", "spec.md", "--version", "99", expect=1).output
    assert "there is no version 99" in b.cli("restore", "spec.md", "--version", "99", expect=1).output
    nope = b.cli("restore", "nope.md", "--version", "1", expect=1).output  # not `syncd log nope.md`, which fails
    assert "nope.md: the store has no such path (`syncd log --deleted` lists" in nope and "log nope.md" not in nope
    assert "give a PATH, or --deleted" in b.cli("log", expect=2).output
    assert "version 1 is the first" in b.cli("diff", "spec.md", "--to", "1", expect=1).output
    assert "Missing option '--version'" in b.cli("restore", "spec.md", expect=2).output
    (a.root / "spec.md").unlink()
    a.sync()
    assert "is a delete" in a.cli("show", "spec.md", expect=1).output
    assert "version 4 is a delete" in a.cli("restore", "spec.md", "--version", "4", expect=1).output
    assert "not inside the working copy" in a.cli("log", "/tmp/elsewhere.md", expect=1).output
