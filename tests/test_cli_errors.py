"""No traceback, ever, for what a user typed or the machine they run on (issue 19): every
command, listed from the click group (a new command is covered as it is added), run with a
bad database URL, an unreachable store, a config that cannot be read, no config, a state
directory that cannot be made, an embedded server whose data directory cannot be made;
each says one line on stderr and exits with a documented code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from syncd.cli import errors
from syncd.cli.main import main
from syncd.config import ConfigError

DOCUMENTED_EXIT_CODES = {0, 1, 3, 4, 5}  # README, "Exit codes"; 2 is a usage error, and every call here is valid
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
UNREACHABLE = "postgresql://syncd@127.0.0.1:1/syncd"


def commands(group: click.Group = main, ctx: click.Context | None = None, prefix: tuple[str, ...] = ()):
    """Every command line syncd has, as (words, command)."""
    ctx = ctx or click.Context(main, info_name="syncd")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, click.Context(command, parent=ctx, info_name=name), (*prefix, name))


def arguments(words: tuple[str, ...], base: Path, url: str | None) -> list[str]:
    """Valid arguments for a command that needs them."""
    given = {
        ("init",): [str(base / "new-root"), "--workspace", "team", *(["--database-url", url] if url else [])],
        ("conflicts", "show"): ["notes.md"], ("diff",): ["notes.md"], ("log",): ["notes.md"],
        ("show",): ["notes.md"], ("restore",): ["notes.md", "--version", "1"],
        ("resolve",): ["notes.md", "--keep", "local"], ("db", "supabase"): [str(base / "project")],
        ("members", "add"): ["bob", "--role", "reader"], ("members", "role"): ["bob", "--role", "reader"],
        ("members", "remove"): ["bob"], ("report",): ["--html", str(base / "report.html")],
    }
    return given.get(words, [])


def write_config(path: Path, root: Path, **keys) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"root": str(root), "workspace": "team", **keys}))  # JSON is YAML
    return path


def scenario(name: str, base: Path, dsn: str) -> tuple[Path, dict, str | None]:
    """(config path, environment, the URL `init` is given) for one kind of trouble."""
    config, root = base / "syncd.yaml", base / "root"
    if name in ("notaurl", "mysql://x"):
        return write_config(config, root, database_url=name), {}, name
    if name == "unreachable store":
        return write_config(config, root, database_url=UNREACHABLE), {}, UNREACHABLE
    if name == "unreadable config":
        write_config(config, root, database_url=dsn)
        if os.geteuid() == 0:  # root reads any file: a directory cannot be read as one
            config.unlink()
            config.mkdir()
        else:
            config.chmod(0)
        return config, {}, dsn
    if name == "config not YAML":
        config.write_text("root: [where\nworkspace: team\n")
        return config, {}, dsn
    if name == "no config":
        return config, {}, dsn
    blocker = base / "a-file"
    blocker.write_text("a file where a directory should be\n")
    if name == "unwritable state directory":
        return write_config(config, root, database_url=dsn), {"XDG_STATE_HOME": str(blocker / "state")}, dsn
    assert name == "unwritable embedded data directory"
    return write_config(config, root), {"XDG_DATA_HOME": str(blocker / "data")}, None


# A daemon started while its store is away waits for it (README, "Started offline"; tested in
# test_daemon.py): not an error to say.
WAITS = {("run",): {"unreachable store"}}

SCENARIOS = ["notaurl", "mysql://x", "unreachable store", "unreadable config",
             "config not YAML", "no config", "unwritable state directory", "unwritable embedded data directory"]


def said_in_one_line(result, what: str) -> None:
    assert "Traceback" not in result.stdout + result.stderr, (what, result.stdout, result.stderr)
    assert result.exit_code in DOCUMENTED_EXIT_CODES, (what, result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    if result.exit_code == 0:
        assert lines == [], (what, lines)
    else:
        assert len(lines) == 1 and lines[0].startswith("Error: "), (what, lines)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_command_says_trouble_in_one_line(tmp_path, dsn, private_xdg, name):
    failed = []
    for words, command in commands():
        if name in WAITS.get(words, ()) or isinstance(command, click.Group) and not command.invoke_without_command:
            continue  # a group that only holds its commands is run through them
        base = tmp_path / "-".join(words)  # each its own: `init` makes a missing config
        base.mkdir()
        config, env, url = scenario(name, base, dsn)
        args = ["--config", str(config), *words, *arguments(words, base, url)]
        result = CliRunner().invoke(main, args, env=env)
        said_in_one_line(result, f"{name}: syncd {' '.join(args)}")
        if result.exit_code:
            failed.append(" ".join(words))
            assert "unexpected" not in result.stderr, (name, words, result.stderr)
    assert {"sync", "log"} <= set(failed), failed  # and `status`, but for the store: it works offline


def test_an_unreachable_supabase_project_is_one_line(tmp_path, private_xdg):
    """Once, not for every command: the Supabase client retries for seconds before it gives up."""
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root", supabase_url="http://127.0.0.1:1")
    result = CliRunner().invoke(main, ["sync", "--config", str(config)], env={"SYNCD_SUPABASE_SERVICE_KEY": SERVICE_KEY})
    said_in_one_line(result, "sync over Supabase")
    assert result.stderr.startswith("Error: cannot reach Supabase at 127.0.0.1:1"), result.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_is_in_the_log(tmp_path, dsn, private_xdg):
    """A journal that is a directory: nothing syncd knows how to explain."""
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root", database_url=dsn,
                          state_dir=str(tmp_path / "state"))
    (tmp_path / "state" / "journal.sqlite3").mkdir(parents=True)
    result = CliRunner().invoke(main, ["status", "--config", str(config)])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    log = tmp_path / "state" / "syncd.log"
    assert line.startswith("Error: unexpected OperationalError: unable to open database file") and str(log) in line
    assert "Traceback (most recent call last)" in log.read_text() and "Traceback" not in result.output


def test_a_password_in_an_error_is_masked_on_its_line(tmp_path, private_xdg):
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root", state_dir=str(tmp_path / "state"))
    failure = errors.said(RuntimeError("lost postgresql://syncd:hunter2secret@db.internal/syncd"), config)
    assert "hunter2secret" not in failure.message and "postgresql://***@db.internal" in failure.message
    assert "hunter2secret" not in (tmp_path / "state" / "syncd.log").read_text()


def test_with_the_state_directory_unwritable_the_traceback_goes_to_a_temporary_file(tmp_path, dsn, private_xdg):
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root", database_url=dsn,
                          state_dir=str(tmp_path / "state"))
    (tmp_path / "state" / "journal.sqlite3").mkdir(parents=True)
    (tmp_path / "state" / "syncd.log").mkdir()
    result = CliRunner().invoke(main, ["status", "--config", str(config)])
    [line] = result.stderr.splitlines()
    assert f"the state directory {tmp_path / 'state'} cannot be written" in line, line
    spare = Path(line.split(" (the full traceback is in ", 1)[1].split(":", 1)[0])
    try:
        assert "Traceback (most recent call last)" in spare.read_text()
    finally:
        spare.unlink()


def test_an_expected_error_of_several_lines_keeps_the_first_and_logs_the_rest(tmp_path, private_xdg):
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root", state_dir=str(tmp_path / "state"))
    failure = errors.said(ConfigError("the server did not start\nFATAL: its log, line 2"), config)
    assert failure.message == f"the server did not start (the rest is in {tmp_path / 'state' / 'syncd.log'})"
    assert "FATAL: its log, line 2" in (tmp_path / "state" / "syncd.log").read_text()


def test_the_real_command_says_one_line(tmp_path, private_xdg):
    """The installed entry point, as a user runs it, with its real streams."""
    result = subprocess.run([sys.executable, "-m", "syncd", "status", "--config", str(tmp_path / "none.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f"Error: {tmp_path / 'none.yaml'}: no such config file; create one with `syncd init ROOT --workspace SLUG`"]


HIDE_SERVER_BINARIES = """
import json, os, subprocess, sys
from syncd.store.local_server import ServerError, find_bindir
empty, config, new_config, root = sys.argv[1:]
for _ in range(20):  # every place binaries are found, covered by an empty directory
    try:
        subprocess.run(["mount", "--bind", empty, str(find_bindir())], check=True)
    except ServerError:
        break
said = {}
for words in (["--config", new_config, "init", root, "--workspace", "team"], ["sync"], ["status"], ["doctor"],
              ["run"]):
    done = subprocess.run([sys.executable, "-m", "syncd", "--config", config, *words], capture_output=True,
                          text=True, timeout=60)
    said[" ".join(words)] = [done.returncode, done.stdout, done.stderr]
print(json.dumps(said))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="hiding the server binaries takes a mount namespace (root)")
def test_without_server_binaries_the_embedded_default_is_one_line(tmp_path, private_xdg):
    """The real command, in a mount namespace where no PostgreSQL binaries are to be found."""
    (tmp_path / "empty").mkdir()
    config = write_config(tmp_path / "syncd.yaml", tmp_path / "root")
    new_config = tmp_path / "new.yaml"
    try:
        done = subprocess.run(["unshare", "-m", sys.executable, "-c", HIDE_SERVER_BINARIES, str(tmp_path / "empty"),
                               str(config), str(new_config), str(tmp_path / "root")],
                              capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        pytest.skip("no unshare here")
    if done.returncode and "unshare" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()}")
    said = json.loads(done.stdout)
    for command, (code, stdout, stderr) in said.items():
        assert "Traceback" not in stdout + stderr, (command, stderr)
        if command != "status":  # status works without its store, and says so on stdout
            assert code == 1 and len(stderr.splitlines()) == 1 and stderr.startswith("Error: "), (command, stderr)
    assert "no PostgreSQL server binaries" in said["sync"][2], said["sync"]
    assert "no PostgreSQL server binaries" in said["status"][1], said["status"]
    assert not new_config.exists()  # init wrote nothing
