"""Every kind of file arrives as it was (issue 18): bytes PostgreSQL text cannot hold (as
blobs), the executable bit, symbolic links that stay inside the root. Real copies, real
PostgreSQL, over each transport; real Git for the mirror and import."""
from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from syncd.content import FilePolicy, encode, identity, sha256_hex
from syncd.daemon.watcher import ChangeQueue, Watcher
from syncd.engine.ignore import IgnoreRules
from syncd.engine.journal import _UPGRADES, Journal
from syncd.engine.scanner import Stat
from syncd.engine.writer import LocalChanged, UnsafePath, write_link
from syncd.store.blobs import BlobMismatch, TableBlobStore
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change, StoreError

from copies import Copy
from supabase_standin import rest, token
from test_supabase_shape import world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("private_xdg")

MIB = 1024 * 1024
# the big file: past text size and over several chunks; SYNCD_BIG_MIB=50 is the issue's 50 MiB (13 s
# on the postgres transport, 24 s on the Supabase one here)
BIG = int(float(os.environ.get("SYNCD_BIG_MIB", "9")) * MIB)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
SESSION = "projects/P/sessions/s1"


def tree(root: Path) -> dict[str, tuple]:
    """What is under root (but .git/): a link's target, a file's bytes and executable bit."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = ("file", bool(path.stat().st_mode & stat.S_IXUSR), sha256_hex(path.read_bytes()))
    return out


def put(root: Path, rel: str, data: bytes, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def link(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def make_kinds_tree(root: Path) -> None:
    put(root, "projects/P/assets/diagram.png", PNG)
    put(root, f"{SESSION}/specs/spec.md", b"# Spec\n\nbefore\x00after\n")  # valid UTF-8, with U+0000
    put(root, f"{SESSION}/implementation/latin1.md", "caf\xe9\n".encode("latin-1"))  # not UTF-8
    put(root, "projects/P/data/big.bin", random.Random(18).randbytes(BIG))
    put(root, "scripts/validate-fast.sh", b"#!/bin/sh\necho ok\n", 0o755)
    put(root, f"{SESSION}/plans/test-plan.md", b"# Test plan\n")
    link(root, f"{SESSION}/plans/current/test-plan.md", "../test-plan.md")
    link(root, "projects/P/escape.md", "../../../outside.md")
    link(root, "projects/P/absolute.md", "/etc/hostname")
    put(root, ".env", b"TOKEN=not-for-the-store\n")
    put(root, ".env.example", b"TOKEN=\n")
    put(root, "__pycache__/x.pyc", b"\x42\x0d\x0d\x0a\x00\x00\x00\x00")


OUTSIDE = {"projects/P/escape.md": "a symbolic link pointing outside the sync root (../../../outside.md)",
           "projects/P/absolute.md": "a symbolic link to an absolute path (/etc/hostname)"}


def test_every_kind_of_file_reaches_the_second_copy_as_it_was(copies):
    """Regressions (issue 18): a markdown file with a NUL byte was skipped as "not UTF-8
    text", binaries were skipped, `scripts/validate-fast.sh` arrived 0644, symlinks were
    left out. Now every file arrives byte-identical with its mode, every link with its
    target; a link that leaves the root is reported once, with the reason."""
    a, b = copies
    make_kinds_tree(a.root)
    rules = IgnoreRules()
    wanted = {p: e for p, e in tree(a.root).items() if p not in OUTSIDE and not rules.ignores(p)}
    report = a.sync()
    assert {p: m for p, m in report["skipped"].items()} == {
        p: f"{p}: {why}; not synced (only relative links that stay inside the root are)" for p, why in OUTSIDE.items()}
    assert report["pushed"] == len(wanted)
    report = b.sync()
    assert report["pulled"] == len(wanted) and report["skipped"] == {}
    assert tree(b.root) == wanted
    assert (b.root / "projects/P/data/big.bin").stat().st_size == BIG
    # nothing echoes back: the entries written are the entries synced
    assert a.sync()["pushed"] == 0 and b.sync()["pushed"] == 0
    assert not [p for p in b.root.rglob(".syncd-*")]  # no temporary file left


def test_regression_markdown_with_a_nul_byte_arrives(copies):
    """Issue 18: skipped as "not UTF-8 text; skipped (set files.binary: base64 to sync it)"."""
    a, b = copies
    put(a.root, "notes.md", b"# notes\n\x00\n")
    assert a.sync()["skipped"] == {}
    b.sync()
    assert (b.root / "notes.md").read_bytes() == b"# notes\n\x00\n"


def test_regression_the_executable_bit_arrives(copies):
    """Issue 18: scripts/validate-fast.sh is 0755 in Git and arrived as 0644."""
    a, b = copies
    put(a.root, "scripts/validate-fast.sh", b"#!/bin/sh\n", 0o755)
    a.sync()
    b.sync()
    assert (b.root / "scripts/validate-fast.sh").stat().st_mode & 0o777 == 0o755


def test_regression_a_symlink_inside_the_root_arrives_as_a_link(copies):
    """Issue 18: plans/current/test-plan.md → ../test-plan.md was reported and left out."""
    a, b = copies
    put(a.root, "plans/test-plan.md", b"plan\n")
    link(a.root, "plans/current/test-plan.md", "../test-plan.md")
    a.sync()
    b.sync()
    assert os.readlink(b.root / "plans/current/test-plan.md") == "../test-plan.md"


def test_a_mode_change_alone_is_a_new_version_shown_by_log(copies):
    a, b = copies
    put(a.root, "scripts/run.sh", b"#!/bin/sh\n")
    a.sync()
    b.sync()
    (a.root / "scripts/run.sh").chmod(0o755)
    assert a.sync()["pushed"] == 1
    assert b.sync()["pulled"] == 1
    assert (b.root / "scripts/run.sh").stat().st_mode & 0o777 == 0o755
    versions = json.loads(a.cli("log", "scripts/run.sh", "--json").stdout)["versions"]
    digest = sha256_hex(b"#!/bin/sh\n")
    assert [(v["version"], v["mode"], v["sha256"], v["size"]) for v in versions] == [
        (2, "100755", identity(digest, executable=True), 10), (1, "100644", digest, 10)]
    lines = a.cli("log", "scripts/run.sh").output.splitlines()
    assert lines[1].endswith("100755 executable") and not lines[2].endswith("executable")
    (b.root / "scripts/run.sh").chmod(0o644)  # and back, from the other side
    b.sync()
    a.sync()
    assert (a.root / "scripts/run.sh").stat().st_mode & 0o777 == 0o644


def test_a_link_retargeted_or_replaced_by_a_file_follows_on_the_other_copy(copies):
    a, b = copies
    put(a.root, "docs/v1.md", b"one\n")
    put(a.root, "docs/v2.md", b"two\n")
    link(a.root, "docs/current.md", "v1.md")
    a.sync()
    b.sync()
    assert os.readlink(b.root / "docs/current.md") == "v1.md"
    (a.root / "docs/current.md").unlink()
    link(a.root, "docs/current.md", "v2.md")
    assert a.sync()["pushed"] == 1
    assert b.sync()["pulled"] == 1 and os.readlink(b.root / "docs/current.md") == "v2.md"
    (b.root / "docs/current.md").unlink()
    put(b.root, "docs/current.md", b"a file now\n")
    b.sync()
    a.sync()
    assert not (a.root / "docs/current.md").is_symlink()
    assert (a.root / "docs/current.md").read_bytes() == b"a file now\n"


def test_a_blob_or_a_link_changed_on_both_sides_is_held_never_merged(copies):
    a, b = copies
    put(a.root, "img.png", PNG)
    link(a.root, "now.md", "img.png")
    a.sync()
    b.sync()
    put(a.root, "img.png", PNG + b"a")
    put(b.root, "img.png", PNG + b"b")
    (a.root / "now.md").unlink()
    link(a.root, "now.md", "x.md")
    (b.root / "now.md").unlink()
    link(b.root, "now.md", "y.md")
    a.sync()
    report = b.sync(expect=None)
    assert sorted(report["conflicts"]) == ["img.png", "now.md"]
    assert (b.root / "img.png").read_bytes() == PNG + b"b" and os.readlink(b.root / "now.md") == "y.md"


def test_the_exec_bit_merges_three_way_beside_a_text_merge(copies):
    a, b = copies
    put(a.root, "tool.sh", b"#!/bin/sh\none\ntwo\nthree\n")
    a.sync()
    b.sync()
    put(a.root, "tool.sh", b"#!/bin/sh\nONE\ntwo\nthree\n", 0o755)  # an edit, and executable
    put(b.root, "tool.sh", b"#!/bin/sh\none\ntwo\nTHREE\n")  # another edit
    a.sync()
    b.sync()
    a.sync()
    for copy in (a, b):
        assert (copy.root / "tool.sh").read_bytes() == b"#!/bin/sh\nONE\ntwo\nTHREE\n"
        assert (copy.root / "tool.sh").stat().st_mode & 0o777 == 0o755


def test_bytes_that_do_not_match_their_hash_never_land_in_a_file(copies, dsn, transport):
    a, b = copies
    put(a.root, "img.png", PNG)
    a.sync()
    with psycopg.connect(dsn, autocommit=True) as conn:  # the store's bytes, damaged
        if transport:  # in Storage: replaced with the service key
            ws = conn.execute("select id from public.workspaces").fetchone()[0]
            reply = httpx.post(f"{transport}/storage/v1/object/syncd-blobs/{ws}/{sha256_hex(PNG)}",
                               content=PNG[:19] + b"\0" + PNG[20:], headers={
                                   "apikey": token("anon"), "Authorization": f"Bearer {token('service_role')}",
                                   "x-upsert": "true"})
            assert reply.status_code == 200, reply.text
        else:
            conn.execute("update public.blob_chunks set data = overlay(data placing '\\x00'::bytea from 20)")
    report = b.sync(expect=None)
    assert "img.png" in report["skipped"] and "cannot be had" in report["skipped"]["img.png"]
    assert not (b.root / "img.png").exists() and not [p for p in b.root.rglob(".syncd-*")]


def test_files_binary_skip_says_the_real_reason(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    with a.config.open("a") as f:
        f.write("files:\n  binary: skip\n")
    put(a.root, "notes.md", b"a\x00b\n")
    put(a.root, "latin1.md", b"caf\xe9\n")
    report = a.sync()
    assert report["skipped"] == {
        "notes.md": "notes.md: contains NUL bytes; skipped because files.binary: skip "
                    "(remove that setting to sync it as bytes)",
        "latin1.md": "latin1.md: not UTF-8; skipped because files.binary: skip (remove that setting to sync it as bytes)"}


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def test_import_and_the_mirror_keep_git_modes_100755_and_120000(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.root.mkdir(parents=True)
    git(a.root, "init", "-q", "-b", "main")
    put(a.root, "scripts/validate-fast.sh", b"#!/bin/sh\n", 0o755)
    put(a.root, f"{SESSION}/plans/test-plan.md", b"# plan\n")
    link(a.root, f"{SESSION}/plans/current/test-plan.md", "../test-plan.md")
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "a script and a link")
    a.init()
    a.cli("import")
    log = json.loads(a.cli("log", "scripts/validate-fast.sh", "--json").stdout)["versions"]
    assert [(v["origin"], v["mode"]) for v in log] == [("import", "100755")]
    log = json.loads(a.cli("log", f"{SESSION}/plans/current/test-plan.md", "--json").stdout)["versions"]
    assert [(v["origin"], v["mode"]) for v in log] == [("import", "120000")]
    b = Copy(tmp_path, "b", dsn)
    b.init()
    b.sync()
    assert tree(b.root) == tree(a.root)
    # an edit of each kind on b comes back to a's mirror with its mode
    (b.root / "scripts/validate-fast.sh").write_bytes(b"#!/bin/sh\necho fast\n")
    put(b.root, "scripts/new.sh", b"#!/bin/sh\n", 0o755)
    link(b.root, "latest.md", f"{SESSION}/plans/test-plan.md")
    b.sync()
    a.sync()
    listing = git(a.root, "ls-tree", "-r", "syncd/mirror")
    modes = {line.split("\t")[1]: line.split()[0] for line in listing.splitlines()}
    assert modes == {"scripts/validate-fast.sh": "100755", "scripts/new.sh": "100755", "latest.md": "120000",
                     f"{SESSION}/plans/test-plan.md": "100644", f"{SESSION}/plans/current/test-plan.md": "120000"}
    assert git(a.root, "cat-file", "blob", "syncd/mirror:latest.md") == f"{SESSION}/plans/test-plan.md"


# the contract, called as clients call it


@pytest.mark.on_both_databases
def test_a_commit_naming_a_blob_the_store_lacks_is_refused(dsn):
    store = PostgresStore(dsn, "ws")
    store.open(create=True)
    data = PNG
    content = encode("a.png", data, FilePolicy())
    [refused] = store.commit([Change("a.png", None, content)])
    assert refused.status == "invalid" and "is not in the store: upload it first" in refused.message
    blobs = TableBlobStore(store)
    assert blobs.missing([content["sha256"]]) == {content["sha256"]}
    blobs.put(content["sha256"], len(data), io.BytesIO(data))
    assert blobs.missing([content["sha256"]]) == set()
    [accepted] = store.commit([Change("a.png", None, content)])
    assert (accepted.status, accepted.sha256) == ("accepted", sha256_hex(data))
    out = io.BytesIO()
    blobs.get(content["sha256"], len(data), out)
    assert out.getvalue() == data


@pytest.mark.on_both_databases
@pytest.mark.parametrize("content,why", [
    ({"encoding": "link", "format": "link", "target": "../../x"}, "stays inside the root"),
    ({"encoding": "link", "format": "link", "target": "/etc/passwd"}, "not an absolute path"),
    ({"encoding": "link", "format": "link", "target": "a/../../b"}, "a run of"),
    ({"encoding": "link", "format": "link", "target": "x", "executable": True}, "never \"executable\""),
    ({"encoding": "utf-8", "format": "text", "text": "x", "executable": False}, "\"executable\" is true"),
    ({"encoding": "blob", "format": "binary", "sha256": "AB" * 32, "size": 3}, "64 lowercase hex"),
    ({"encoding": "blob", "format": "binary", "sha256": "ab" * 32, "size": -1}, "its number of bytes"),
])
def test_the_contract_refuses_contents_no_client_could_write_back(dsn, content, why):
    store = PostgresStore(dsn, "ws")
    store.open(create=True)
    [result] = store.commit([Change("docs/l.md", None, content)])
    assert result.status == "invalid" and why in result.message, result.message


@pytest.mark.on_both_databases
def test_bytes_that_are_not_what_their_hash_says_are_never_stored(dsn):
    store = PostgresStore(dsn, "ws")
    store.open(create=True)
    blobs = TableBlobStore(store)
    with pytest.raises(BlobMismatch):  # caught before the server is asked to finish
        blobs.put(sha256_hex(b"abc"), 3, io.BytesIO(b"abd"))
    digest = sha256_hex(b"abc")  # a client that lies all the way: the server's own check
    store._call("syncd_blob_put", {"workspace": "ws", "sha256": digest, "size": 3, "part": 0, "data": "YWJk"})
    with pytest.raises(StoreError, match="the bytes uploaded hash to"):
        store._call("syncd_blob_finish", {"workspace": "ws", "sha256": digest, "size": 3})
    assert blobs.missing([digest]) == {digest}
    with pytest.raises(StoreError, match="is 3 bytes long, got 2"):
        store._call("syncd_blob_put", {"workspace": "ws", "sha256": digest, "size": 3, "part": 0, "data": "YWI="})


@pytest.mark.on_both_databases
def test_an_entry_identity_is_the_same_in_python_and_in_the_contract(dsn):
    with psycopg.connect(dsn) as conn:
        for digest in (sha256_hex(b"x"), sha256_hex(b"")):
            for executable, is_link in ((False, False), (True, False), (False, True)):
                [server] = conn.execute("select syncd.identity(%s, %s, %s)", (digest, executable, is_link)).fetchone()
                assert server == identity(digest, executable=executable, link=is_link)


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_blob_is_read_only_by_who_may_read_a_version_naming_it(world, dsn):
    url, tokens, ws = world
    admin = PostgresStore(dsn, "ws")
    data = random.Random(4).randbytes(300)
    digest = sha256_hex(data)
    TableBlobStore(admin).put(digest, len(data), io.BytesIO(data))
    [landed] = admin.commit([Change("projects/P/logo.bin", None, encode("projects/P/logo.bin", data, FilePolicy()))])
    assert landed.status == "accepted"

    def get(client: str) -> int:
        return rest(url, tokens[client], "POST", "rpc/syncd_blob_get",
                    json={"workspace": "ws", "sha256": digest, "part": 0}).status_code

    # outside session s1: the session collaborator may not read it, nor a stranger, nor anon
    assert {c: get(c) for c in tokens} == {"owner": 200, "collaborator": 200, "reader": 200,
                                           "session_collaborator": 404, "stranger": 404, "anon": 401}

    def put_part(client: str) -> int:
        return rest(url, tokens[client], "POST", "rpc/syncd_blob_put", json={
            "workspace": "ws", "sha256": sha256_hex(b"new"), "size": 3, "part": 0, "data": "bmV3"}).status_code

    # uploading takes the right to write somewhere in the workspace
    assert {c: put_part(c) for c in tokens} == {"owner": 200, "collaborator": 200, "session_collaborator": 200,
                                                "reader": 403, "stranger": 404, "anon": 401}


# the writer, at write time


def test_the_writer_makes_a_link_only_inside_the_root_and_only_over_what_it_saw(tmp_path):
    with pytest.raises(UnsafePath, match="pointing outside the sync root"):
        write_link(tmp_path, "a/l.md", "../../x", None, temp_prefix=".syncd-t-")
    write_link(tmp_path, "a/l.md", "../x.md", None, temp_prefix=".syncd-t-")
    assert os.readlink(tmp_path / "a/l.md") == "../x.md"
    seen = identity(sha256_hex(b"../x.md"), link=True)
    (tmp_path / "a/l.md").unlink()
    (tmp_path / "a/l.md").symlink_to("elsewhere.md")  # retargeted by the user meanwhile
    with pytest.raises(LocalChanged):
        write_link(tmp_path, "a/l.md", "y.md", seen, temp_prefix=".syncd-t-")
    assert os.readlink(tmp_path / "a/l.md") == "elsewhere.md" and not list(tmp_path.rglob(".syncd-t-*"))


def test_a_journal_from_before_modes_reads_every_file_once_more(tmp_path):
    """Its stat cache holds plain hashes: trusted, an executable synced before would never
    have its mode pushed."""
    journal = Journal(tmp_path / "j.sqlite")
    journal.put("run.sh", Stat(10, 1, 2, 3), sha256_hex(b"#!/bin/sh\n"))
    journal.flush_stats()
    journal.db.close()
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        # as the journal of the release before: every upgrade up to the one that drops the cache
        db.execute(f"pragma user_version = {_UPGRADES.index('delete from stat_cache;')}")
    assert Journal(tmp_path / "j.sqlite").get("run.sh") is None


def test_the_watcher_sees_a_mode_change_and_a_link_retargeted(tmp_path):
    put(tmp_path, "run.sh", b"#!/bin/sh\n")
    link(tmp_path, "current.md", "a.md")

    def retarget():
        link(tmp_path, "next.tmp", "b.md")
        os.replace(tmp_path / "next.tmp", tmp_path / "current.md")

    queue = ChangeQueue(debounce=0.05, max_delay=0.5)
    watcher = Watcher(tmp_path, IgnoreRules(), queue, wake=lambda: None)
    assert watcher.start()
    try:
        for change in (lambda: (tmp_path / "run.sh").chmod(0o755), retarget):
            queue.take()
            change()
            deadline = time.monotonic() + 10  # a bound on waiting, not a timed assertion
            while queue.due_in(time.monotonic()) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert queue.due_in(time.monotonic()) is not None
    finally:
        watcher.close()


def test_the_issues_tree_in_a_git_work_tree_syncs_what_should_and_says_why_for_the_rest(copies):
    """Issue 18, what it must show (1): the tree of every kind, in a Git work tree with a
    `.gitignore`d file. Whatever should sync arrives as it was (bytes, mode, link target);
    everything else is reported once each, with the real reason."""
    a, b = copies
    make_kinds_tree(a.root)
    git(a.root, "init", "-q", "-b", "main")
    put(a.root, ".gitignore", b"local-notes.md\n")
    put(a.root, "local-notes.md", b"mine only\n")
    wanted = {p: e for p, e in tree(a.root).items()
              if p not in OUTSIDE and p not in (".env", "__pycache__/x.pyc", "local-notes.md")}
    report = a.sync()
    assert report["ignored"] == {
        ".env": ".env: a file that holds credentials by its name; never synced (a template of it syncs "
                "when named *.example, *.template or *.sample)",
        "__pycache__": "__pycache__/: build output or OS clutter; never synced (a `!` pattern in the config's "
                       "ignore brings it back)",
        "local-notes.md": "local-notes.md: ignored by the repository's .gitignore rules (git check-ignore -v "
                          "local-notes.md says which)"}
    assert set(report["skipped"]) == set(OUTSIDE)
    b.sync()
    assert tree(b.root) == wanted
    assert (b.root / ".env.example").read_bytes() == b"TOKEN=\n"
    assert tree(b.root)["scripts/validate-fast.sh"][1] is True
    assert os.readlink(b.root / f"{SESSION}/plans/current/test-plan.md") == "../test-plan.md"
    again = a.sync()
    assert again["pushed"] == 0 and again["ignored"] == report["ignored"]
