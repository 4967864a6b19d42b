"""The journal's stat cache as a pass reads it (`Journal.stat_rows`): which files are
unchanged since they last synced, and every other path the journal knows."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

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
        found, other = journal.stat_rows()
        assert {p: found.get(p) for p in found} == {p: (1, 2, 3, 4) for p in clean}
        assert other == (stats.keys() | bases.keys() | remotes.keys()) - clean
        journal.close()
