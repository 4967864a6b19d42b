"""A database URL that is no PostgreSQL connection string is said in one line, naming where
it came from, before anything is written (issue 19: `notaurl` and `mysql://...` gave a
50-line traceback from init and sync, and init left the bad URL in a config)."""
from __future__ import annotations

import pytest

from copies import Copy

BAD = {"notaurl": 'missing "="', "mysql://me@db.example.com/team": "mysql:// is not PostgreSQL"}


def said_in_one_line(result, *expected: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(text in lines[0] for text in expected), lines[0]


@pytest.mark.parametrize("url", sorted(BAD))
def test_init_says_a_bad_url_and_writes_no_config(tmp_path, dsn, private_xdg, url):
    copy = Copy(tmp_path, "a", url)
    said_in_one_line(copy.cli("init", str(copy.root), "--workspace", "team", "--database-url", url, expect=None),
                     "--database-url", BAD[url], "postgresql://")
    assert not copy.config.exists()
    good = Copy(tmp_path, "a", dsn)  # the same config path: init again, with the right URL, works
    assert good.config == copy.config
    good.init()
    assert good.sync()["pushed"] == 0


@pytest.mark.parametrize("url", sorted(BAD))
def test_a_bad_url_in_a_config_is_said_by_every_command(tmp_path, dsn, private_xdg, url):
    copy = Copy(tmp_path, "a", dsn)
    copy.init()
    copy.config.write_text(copy.config.read_text().replace(dsn, url))
    for command in (["sync", "--once"], ["status"], ["db", "migrate"]):
        said_in_one_line(copy.cli(*command, expect=None), str(copy.config), "database_url", BAD[url])


def test_db_migrate_says_a_bad_url_given_on_the_command_line(tmp_path, private_xdg):
    copy = Copy(tmp_path, "a", "notaurl")
    said_in_one_line(copy.cli("db", "migrate", "--database-url", "mysql://me@db/x", expect=None),
                     "--database-url", "mysql:// is not PostgreSQL")
