"""A first sync of a big tree holds a bounded part of it in memory (issue 20: memory flat in
the tree size): the feed's contents up to a budget, the rest fetched a page at a time as
they are written; the stat cache's changes written a few thousand at a time. The bounds
are made small here so that a tree of a few hundred files crosses them."""
from __future__ import annotations

import sqlite3

import pytest

from syncd import config as configuration
from syncd.engine import journal as journal_module
from syncd.engine.executor import Executor, _ContentsHeld
from syncd.engine.journal import Journal
from syncd.store.rpc import RpcStore

from aged_files import put

FILES = 1_200  # three feed pages of 500


def make_files(root, n: int = FILES) -> dict[str, bytes]:
    """Old enough that their stats are cached (a file changed this instant is not)."""
    files = {f"projects/P{i % 3}/sessions/s{i // 10}/specs/f{i % 10}.md": f"# spec {i}\n\nbody {i}\n".encode()
             for i in range(n)}
    for path, data in files.items():
        put(root, path, data)
    return files


@pytest.fixture
def feed_pages(monkeypatch) -> list[bool]:
    """Whether each feed page read was asked for its contents."""
    asked: list[bool] = []
    changes = RpcStore.changes

    def recorded(self, since, limit=500, contents=True):
        asked.append(contents)
        return changes(self, since, limit, contents)

    monkeypatch.setattr(RpcStore, "changes", recorded)
    return asked


def test_a_first_pull_past_the_budget_holds_a_page_of_contents_and_every_file_arrives(
        copies, monkeypatch, feed_pages):
    a, b = copies
    files = make_files(a.root)
    assert a.sync()["pushed"] == FILES
    monkeypatch.setattr(_ContentsHeld, "BUDGET", 40 * 600)  # about 40 of these small files
    held: list[int] = []
    apply_remote = Executor._apply_remote

    def counted(self, *args, **kwargs):
        held.append(len(self._contents))
        return apply_remote(self, *args, **kwargs)

    monkeypatch.setattr(Executor, "_apply_remote", counted)
    feed_pages.clear()
    report = b.sync()
    assert report["pulled"] == FILES and report["skipped"] == {}
    assert b.files() == files
    # the first page brought its contents (40 kept), the others none: not each content twice
    assert feed_pages == [True, False, False]
    # at most what the feed left plus one fetched page, where the whole tree was held before
    assert max(held) <= 40 + 500
    assert b.sync()["pulled"] == 0


def test_a_copy_reading_back_its_own_pushes_asks_the_feed_for_no_contents_after_a_page(copies, feed_pages):
    a, _ = copies
    make_files(a.root)
    assert a.sync()["pushed"] == FILES
    feed_pages.clear()
    report = a.sync()
    assert report["pushed"] == report["pulled"] == 0
    assert feed_pages == [True, False, False]  # the first page's contents were all this copy's


def test_the_stat_cache_is_written_a_few_thousand_rows_at_a_time_and_the_next_pass_reads_nothing(
        copies, monkeypatch):
    a, _ = copies
    make_files(a.root, 300)
    monkeypatch.setattr(journal_module, "STATS_HELD", 50)
    most = 0
    cache = Journal.put

    def measured(self, *args):
        nonlocal most
        cache(self, *args)
        most = max(most, len(self._stats_dirty))

    monkeypatch.setattr(Journal, "put", measured)
    assert a.sync()["pushed"] == 300
    assert 0 < most <= 50
    with sqlite3.connect(configuration.load(a.config).journal_path) as db:
        assert db.execute("select count(*) from stat_cache").fetchone()[0] == 300
    read = []
    monkeypatch.setattr(Journal, "put", lambda self, *args: read.append(args[0]) or cache(self, *args))
    assert a.sync()["pushed"] == 0
    assert read == []  # every file found unchanged by its cached stat: none hashed again


def test_a_pass_view_of_the_journal_keeps_the_pass_own_path_strings(tmp_path):
    """The heads and bases a pass loads are keyed by the strings of the paths it asked for,
    not by a second copy of each read back from SQLite: a first pull of 100k files holds
    100k paths once (8 MiB less at its peak)."""
    from syncd.engine.reconcile import Remote
    journal = Journal(tmp_path / "j.sqlite3")
    made = [f"projects/P{i % 3}/sessions/s{i}/specs/f.md" for i in range(1_200)]  # past a query's 500
    journal.record_feed({p: Remote(1, f"{i:064x}") for i, p in enumerate(made)}, 1)
    for p in made[:700]:
        journal.record_synced(p, Remote(1, "0" * 64))
    asked = ["".join(p) for p in made]  # equal strings, other objects (as a scan's are)
    remotes, bases = journal.remotes_of(asked), journal.bases_of(asked)
    by_id = {id(p) for p in asked}
    assert len(remotes) == 1_200 and len(bases) == 700
    assert all(id(p) in by_id for p in [*remotes, *bases])


def test_a_first_push_and_pull_hold_no_head_or_base_for_each_file_they_synced(copies, monkeypatch):
    """The pass's view of the journal keeps what the pass loaded to decide, not one more head
    (a push) or base (a pull) a file synced: a first sync of 100k files held 22 MiB more
    after a push, 4 MiB more after a pull. Whatever is decided again reads the journal."""
    a, b = copies
    files = make_files(a.root)
    (a.root / "projects/empty").mkdir()  # an empty folder's entry is kept: it `_stays`
    seen: list[tuple[int, int]] = []
    record = Executor._record_conflicts

    def measured(self, report):
        seen.append((len(self._bases), len(self._remotes)))
        return record(self, report)

    monkeypatch.setattr(Executor, "_record_conflicts", measured)
    assert a.sync()["pushed"] == FILES + 1
    assert seen[-1] == (1, 1)  # the folder's alone
    assert b.sync()["pulled"] == FILES + 1
    assert seen[-1][0] == 1 and seen[-1][1] == FILES + 1  # the heads it pulled, loaded to decide
    assert b.files() == files and (b.root / "projects/empty").is_dir()
    assert a.sync()["pulled"] == b.sync()["pushed"] == 0


def test_the_pass_after_a_first_pull_holds_none_of_the_files_it_reads_in_sync(copies, monkeypatch):
    """A pull's files have no cached stat (syncd never trusts the stat of a file it wrote in
    the last 2 s), so the next pass reads each again. One that holds its base, which is its
    head, is in sync: counted (its stat cached once old enough), not held with a base and a
    head to decide
    (a second `sync` after a first pull of 100k files peaked at 167 MiB). An edited one is
    pushed; none is forgotten by the journal."""
    a, b = copies
    files = make_files(a.root, 300)
    assert a.sync()["pushed"] == 300
    assert b.sync()["pulled"] == 300
    (b.root / "projects/P0/sessions/s0/specs/f0.md").write_text("edited in b\n")
    decided: list[int] = []
    plan = Executor._plan
    monkeypatch.setattr(Executor, "_plan", lambda self, paths, *rest: decided.append(len(paths)) or
                        plan(self, paths, *rest))
    report = b.sync()
    assert report["pushed"] == 1 and report["pulled"] == 0 and decided[0] == 1
    with sqlite3.connect(configuration.load(b.config).journal_path) as db:
        assert db.execute("select count(*) from base").fetchone()[0] == 300
    (a.root / "projects/P1/sessions/s1/specs/f1.md").write_text("edited in a\n")
    report = a.sync()
    assert report["pushed"] == 1 and report["pulled"] == 1  # (its own edit out, b's in)
    assert b.sync()["pulled"] == 1
    files["projects/P0/sessions/s0/specs/f0.md"] = b"edited in b\n"
    files["projects/P1/sessions/s1/specs/f1.md"] = b"edited in a\n"
    assert a.files() == b.files() == files
