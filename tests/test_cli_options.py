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


def test_the_help_lists_every_command_with_its_own_summary_without_importing_one():
    """`syncd --help` reads the summaries from syncd.cli.main's table (so it imports no
    command): each must be what the command's own help says."""
    import subprocess
    import sys

    import click

    from syncd.cli.main import Syncd, main
    ctx = click.Context(main)
    for name, (_, summary) in Syncd.COMMANDS.items():
        assert main.get_command(ctx, name).get_short_help_str(limit=10**6) == summary, name
    probe = ("import sys, syncd.cli.main as m; from click.testing import CliRunner; "
             "CliRunner().invoke(m.main, ['--help']); "
             "print(sorted(n for n in sys.modules if n.startswith('syncd.') and n not in "
             "('syncd.cli', 'syncd.cli.main', 'syncd.cli.errors', 'syncd.logs')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
