"""The journal's stat cache as a pass reads it (`Journal.stat_rows`): which files are
unchanged since they last synced, and every other path the journal knows."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from syncd.engine.entries import Stat, packed_stat
from syncd.engine.journal import Journal

PATHS = ["a.md", "b.md", "d/c.md", "d/e.md", "f"]
_SHA = st.sampled_from(["x", "y"])
_ROWS = st.dictionaries(st.sampled_from(PATHS), st.tuples(st.sampled_from([1, 2]), st.one_of(st.none(), _SHA)))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(PATHS), _SHA), _ROWS, _ROWS)
def test_the_clean_paths_and_the_others_are_what_the_three_tables_say(stats, bases, remotes):
    """Clean: a cached hash that is the base's, and a known head that is the base. Other:
    every other path with a cached stat, a base or a head; whichever tables hold which paths
    (the pass over the bases and heads is skipped only when each of them has a cached stat)."""
    with tempfile.TemporaryDirectory() as state:
        journal = Journal(Path(state) / "journal.sqlite3")
        for path, sha in stats.items():
            journal.db.execute("insert into stat_cache values (?, 1, 2, 3, 4, ?)", (path, sha))
        for path, (version, sha) in bases.items():
            journal.db.execute("insert into base values (?, ?, ?)", (path, version, sha))
        for path, (version, sha) in remotes.items():
            journal.db.execute("insert into remote values (?, ?, ?, null)", (path, version, sha))
        clean = {p for p, sha in stats.items() if p in bases and p in remotes
                 and bases[p][1] == sha and remotes[p] == bases[p]}
        found, other, _ = journal.stat_rows()
        assert found == {p: packed_stat(1, 2, 3, 4) for p in clean}
        assert other == (stats.keys() | bases.keys() | remotes.keys()) - clean
        journal.close()


def test_a_journal_of_the_release_before_keeps_its_rows_in_tables_clustered_by_path(tmp_path):
    """The upgrade to WITHOUT ROWID tables copies the three tables a pass reads by path."""
    import sqlite3

    from syncd.engine.journal import _UPGRADES
    from syncd.engine.reconcile import Remote

    journal = Journal(tmp_path / "j.sqlite3")
    journal.db.close()
    with sqlite3.connect(tmp_path / "j.sqlite3") as db:  # as the release before left it
        for table in ("base", "remote", "stat_cache"):
            columns = [row[1] for row in db.execute(f"pragma table_info({table})")]
            db.execute(f"drop table {table}")
            db.execute(f"create table {table} ({', '.join(columns)}, primary key (path))")
        db.execute("insert into base values ('a.md', 3, 'x')")
        db.execute("insert into remote values ('a.md', 4, null, 'b.md')")
        db.execute("insert into stat_cache values ('a.md', 1, 2, 3, 4, 'x')")
        db.execute(f"pragma user_version = {len(_UPGRADES) - 1}")
    journal = Journal(tmp_path / "j.sqlite3")
    assert journal.bases_of(["a.md"])["a.md"].version == 3
    assert journal.remotes_of(["a.md"]) == {"a.md": Remote(4, None, "b.md")}
    assert journal.get("a.md")[1] == "x"
    for table in ("base", "remote", "stat_cache"):
        sql = journal.db.execute("select sql from sqlite_master where name = ?", (table,)).fetchone()[0]
        assert sql.rstrip().endswith("without rowid"), sql
    journal.record_synced("c.md", Remote(1, "y"))
    assert journal.bases_of(["c.md"])["c.md"].version == 1


def test_an_inode_number_past_2_63_is_cached_and_found_clean(tmp_path):
    """Inode numbers are unsigned 64-bit (overlayfs with xino and NFS hand out ones with the
    top bit set) and SQLite's integers signed: such a file's stat is kept, read back as it
    was, and a rescan finds it unchanged."""
    journal = Journal(tmp_path / "j.sqlite3")
    stat = Stat(1, 2, 2**64 - 3, 4)
    journal.put("a.md", stat, "x")
    journal.flush_stats()
    assert journal.get("a.md") == (stat, "x")
    journal.db.execute("insert into base values ('a.md', 1, 'x')")
    journal.db.execute("insert into remote values ('a.md', 1, 'x', null)")
    found, _, _ = journal.stat_rows()
    assert found == {"a.md": packed_stat(1, 2, 2**64 - 3, 4)}
    journal.close()


def test_a_stat_past_signed_64_bit_integers_is_kept_without_raising(tmp_path):
    """A ctime past 2262 (a clock set far ahead when the file changed): the row is kept
    wrapped; read back, it is not the file's stat, so the file is read again, never taken
    for clean on a stat it does not have."""
    journal = Journal(tmp_path / "j.sqlite3")
    stat = Stat(1, 2, 3, 2**63 + 4)
    journal.put("a.md", stat, "x")
    journal.flush_stats()
    assert journal.get("a.md")[0] != stat
    journal.close()
