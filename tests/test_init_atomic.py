"""`syncd init` is atomic (issue 19): the config is in force only once the store has answered
and the workspace is registered; a failure leaves nothing behind, so the same command runs
again once the cause is fixed."""
from __future__ import annotations

import os
import stat

import pytest

from copies import Copy

pytestmark = pytest.mark.usefixtures("private_xdg")


def everything_under(path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


def test_a_failed_init_leaves_no_config_no_journal_and_no_root_it_made(tmp_path, dsn):
    before = everything_under(tmp_path)
    copy = Copy(tmp_path / "new", "a", "postgresql://nobody@127.0.0.1:1/nowhere")
    result = copy.cli("init", str(copy.root), "--workspace", "team", "--database-url", copy.dsn, expect=1)
    assert result.output.count("Error:") == 1
    assert everything_under(tmp_path) == before  # no config, no temporary one, no state dir, no root
    # fixed, the same command works, and leaves only what it should
    copy.dsn = dsn
    copy.init()
    assert copy.config.exists() and stat.S_IMODE(os.stat(copy.config).st_mode) == 0o600
    assert not [p for p in copy.config.parent.iterdir() if p.name.startswith(".")]
    assert copy.sync()["pushed"] == 0


def test_init_never_replaces_a_config_there_already(tmp_path, dsn):
    copy = Copy(tmp_path, "a", dsn)
    copy.config.parent.mkdir(parents=True)
    copy.config.write_text("# mine\n")
    result = copy.cli("init", str(copy.root), "--workspace", "team", "--database-url", dsn, expect=1)
    assert "already exists" in result.output
    assert copy.config.read_text() == "# mine\n" and not copy.root.exists()
