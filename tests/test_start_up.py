"""What a command loads: `syncd status` connects to nothing, so it loads no database driver
and no Git (issue 19's start-up, issue 20's quiet rescan)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

def test_status_after_a_pass_loads_neither_psycopg_nor_gitpython(tmp_path, private_xdg, dsn):
    """`syncd status` reads the journal and the tree, and connects to nothing once a pass
    has run: psycopg's import alone is about a seventh of its instructions."""
    from copies import Copy
    copy = Copy(tmp_path, "a", dsn)
    copy.init()
    copy.root.mkdir(parents=True, exist_ok=True)
    (copy.root / "a.md").write_text("a\n")
    copy.sync()
    probe = ("import sys; from click.testing import CliRunner; import syncd.cli.main as m; "
             f"r = CliRunner().invoke(m.main, ['status', '--config', {str(copy.config)!r}]); "
             "print(r.exit_code, r.output.count('no conflicts'), sorted({n.split('.')[0] for n in sys.modules} & {'psycopg', 'git'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    code, shown, loaded = out.split(" ", 2)
    assert code == "0" and shown == "1" and loaded.strip() == "[]", out


def test_a_quiet_pass_loads_no_gitpython_and_one_that_moves_a_file_records_it(tmp_path, private_xdg, dsn):
    """The mirror is loaded for a pass with something to record (a sixth of a quiet
    `sync --once` at 10k files was importing GitPython to find nothing to do)."""
    from copies import Copy
    from legacy_repo import git
    copy = Copy(tmp_path, "a", dsn)
    copy.root.mkdir(parents=True)
    git(copy.root, "init", "-q", "-b", "main")
    copy.init()
    (copy.root / "a.md").write_text("a\n")
    copy.sync()
    probe = ("import json, sys; from click.testing import CliRunner; import syncd.cli.main as m; "
             f"r = CliRunner().invoke(m.main, ['sync', '--once', '--json', '--config', {str(copy.config)!r}]); "
             "print(json.loads(r.stdout)['pushed'], 'git' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split() \
        == ["0", "False"]
    (copy.root / "a.md").write_text("edited\n")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split() \
        == ["1", "True"]
    log = subprocess.run(["git", "-C", str(copy.root), "log", "--all", "--format=%s"], capture_output=True, text=True)
    assert log.stdout.count("\n") >= 2, log.stdout  # both passes that moved a file are in the mirror


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/postgres", "postgres://u:secret@db.example.com/team",
    "postgresql://localhost", "postgresql://", "postgresql:///syncd", "postgresql://u@[::1]:6543/d%20b",
    "postgresql://u@[::1]:6543/db", "postgresql://h:notaport/x", "postgresql://h1,h2/x", "postgresql:///x?host=/tmp",
    "dbname=x host=/tmp port=6000", "user=u dbname=' a b' password=secret", "not a dsn at all =",
    "postgresql://u:p%zz@h/d", "postgresql://h:/d",
])
def test_a_database_url_is_described_as_libpq_reads_it_and_never_with_its_password(url):
    from syncd.store.dsn import describe_dsn
    assert describe_dsn(url) == libpq_describes(url) and "secret" not in describe_dsn(url)


def libpq_describes(url: str) -> str:
    import psycopg
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured database"
    return f"{info.get('dbname') or info.get('user') or ''}@{info.get('host') or 'localhost'}:{info.get('port') or 5432}"


_PIECE = st.sampled_from(["", "u", "u:pw", "u:p%zz", "u:p@x", "h", "db.example.com", "[::1]", "[x]", ":", ":5432",
                          ":99999", ":0", ":12a", "/", "/d", "/d.b-c_1", "/d b", "?", "?host=/tmp", "@", ",h2", "%41", "#"])


_PAIRS = st.lists(st.tuples(st.sampled_from(["host", "port", "dbname", "user", "password", "host", "dbname", "sslmode"]),
                            st.sampled_from(["=", "=", "=", " = ", "=="]),
                            st.sampled_from(["h", "/tmp/s", "5432", "a.b-c_d", "h", "'q'", "a b", "\\x", ""])),
                  min_size=1, max_size=3)


@given(st.sampled_from(["postgresql://", "postgres://", "postgresql:/", "mysql://", ""]), st.lists(_PIECE, max_size=5))
def test_the_plain_url_reading_agrees_with_libpq_on_every_url_it_takes(scheme, pieces):
    """Read without psycopg only where libpq would read the same: everything else is libpq's."""
    agrees_with_libpq(scheme + "".join(pieces))


@settings(max_examples=300)
@given(_PAIRS, st.sampled_from([" ", "  ", "\t"]))
def test_the_plain_pairs_reading_agrees_with_libpq_on_every_string_it_takes(pairs, gap):
    agrees_with_libpq(gap.join(k + eq + v for k, eq, v in pairs))


def agrees_with_libpq(url: str) -> None:
    from syncd.store.dsn import _PLAIN, _PLAIN_PAIRS, conninfo
    if _PLAIN.fullmatch(url) or _PLAIN_PAIRS.fullmatch(url):
        import psycopg
        assert conninfo(url) == psycopg.conninfo.conninfo_to_dict(url), url
