"""`--config`, `-v` and `--log-level` are taken where people type them: before or after the
command, for every command (issue 19: `syncd status --config F` and `syncd init ROOT
--config F` were refused, though the README says every command takes it)."""
from __future__ import annotations

import json
import logging

from click.testing import CliRunner

from syncd.cli.main import main
from test_cli_errors import commands


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def test_config_before_or_after_the_command(tmp_path, dsn, private_xdg):
    config = tmp_path / "a.yaml"
    run("init", str(tmp_path / "root"), "--workspace", "team", "--database-url", dsn, "--config", str(config))
    assert config.is_file()
    for args in (["status", "--json", "--config", str(config)], ["--config", str(config), "status", "--json"],
                 ["--config", str(tmp_path / "elsewhere.yaml"), "status", "--json", "--config", str(config)]):
        assert json.loads(run(*args).stdout)["config"] == str(config)  # after the command wins
    assert run("db", "migrate", "--config", str(config)).stdout.strip() == "schema up to date"
    assert run("conflicts", "--config", str(config)).stdout.strip() == "no conflicts"


def test_log_level_and_verbose_after_the_command(tmp_path, dsn, private_xdg):
    config = tmp_path / "a.yaml"
    run("--config", str(config), "init", str(tmp_path / "root"), "--workspace", "team", "--database-url", dsn)
    run("status", "--config", str(config), "-vv")
    assert logging.getLogger().level == logging.DEBUG
    run("-v", "status", "--config", str(config))
    assert logging.getLogger().level == logging.INFO
    run("status", "--log-level", "error", "--config", str(config))
    assert logging.getLogger().level == logging.ERROR
    run("status", "--log-level", "loud", "--config", str(config), expect=2)


def test_every_command_shows_them_in_its_help(private_xdg):
    for words, _ in commands():
        shown = run(*words, "--help").stdout
        assert all(option in shown for option in ("--config PATH", "-v, --verbose", "--log-level")), words
