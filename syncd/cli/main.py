"""The `syncd` command line.

Exit codes (README, "Exit codes"; `status` ends as `sync` would): 0 done (in sync), 1 error
(one line), 2 usage, 3 conflicts or deletes are held, 4 files changed during the pass (run
again), 5 some paths cannot be synced (each was named on stderr: a full disk, a name refused,
a file that cannot be read, a change the store refused), or the daemon is degraded.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import click
from click.utils import make_default_short_help

from syncd import __version__
from syncd.cli import errors
from syncd.cli.errors import EXIT_CONFLICTS, EXIT_NOT_SYNCED, EXIT_UNSETTLED  # noqa: F401 (the codes, named here)

ENV_CONFIG = "SYNCD_CONFIG"
LOG_LEVELS = ["debug", "info", "warning", "error"]  # (syncd.logs, and logging, load when a command runs)


def _default_config() -> Path:
    from syncd.config import default_config_path  # only when a command runs (not for --version, --help)
    return default_config_path()


def shared_options() -> list[click.Option]:
    """`--config`, `-v` and `--log-level` for a subcommand: typed after it, they do what they
    do before it (and win over the same option given before it)."""
    return [
        click.Option(["--config", "config_path"], type=click.Path(path_type=Path), expose_value=False,
                     callback=_given, help="This working copy's config file (before or after the command; "
                     "env SYNCD_CONFIG; default: the XDG config dir's syncd/syncd.yaml)."),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_given,
                     help="More log output (-v info, -vv debug)."),
        click.Option(["--log-level"], type=click.Choice(LOG_LEVELS), expose_value=False, callback=_given,
                     help="The log level (default: warning; info for `syncd run`)."),
    ]


def _given(ctx: click.Context, param: click.Parameter, value):
    obj = ctx.find_root().obj
    if value and obj is not None:  # None: completing a word in the shell, where the group did not run
        if param.name == "config_path":
            obj["config_path"] = Path(value).expanduser().absolute()
        elif param.name == "verbose":
            obj["verbose"] += value
        else:
            obj["log_level_option"] = value
        _set_up_logging(obj)
    return value


def _set_up_logging(obj: dict) -> None:
    verbose = obj["verbose"]
    obj["log_level"] = obj["log_level_option"] or (["warning", "info", "debug"][min(verbose, 2)] if verbose else None)
    from syncd import logs
    logs.setup(obj["log_level"] or "warning")


def _sharing(command: click.Command) -> click.Command:
    """`command` (and its subcommands) with the shared options."""
    if not any(p.name == "config_path" for p in command.params):
        command.params.extend(shared_options())
    for sub in getattr(command, "commands", {}).values():
        _sharing(sub)
    return command


class Syncd(click.Group):
    """Every command is kept in a module of its own and imported when it runs: a command pays
    only for what it uses (the engine, the Supabase client, Git, the report) at start-up, and
    `syncd --version` and `syncd --help` for none of them (the list below carries each
    command's summary, its docstring's first sentence: tests/test_cli_options.py keeps them
    equal). Every command takes the shared options, and any error it raises ends as one line
    (syncd.cli.errors)."""

    COMMANDS = {  # name → (module[:attribute], summary)
        "activity": ("activity",
                     "The workspace's activity: versions (edits, merges, restores, imports), "
                     "conflicts, resolutions, daemon starts and stops."),
        "allow": ("allow",
                  "Push PATHS although their content looks like a private key or a token; without "
                  "PATHS, list the paths allowed."),
        "conflicts": ("conflicts",
                      "List held conflicts (`conflicts show PATH` for one of them)."),
        "dashboard": ("dashboard",
                      "A live page in the browser: pipeline, activity, this copy's state, devices, "
                      "conflicts to resolve and the report's charts."),
        "db": ("database",
               "Database administration."),
        "diff": ("history",
                 "What changed in PATH: between two versions, or from a version to the local file."),
        "doctor": ("doctor",
                   "Check the config, root, watch limits, disk, credentials, store, schema, clock "
                   "and Git mirror; say what is wrong and how to fix it."),
        "import": ("imports:import_command",
                   "Import the working copy's legacy workspace: projects, sessions, members and "
                   "every version its Git history holds (authors and dates kept)."),
        "init": ("working_copy",
                 "Create a working copy's config for ROOT and register it with the store."),
        "log": ("history:log_command",
                "The versions of PATH, newest first: who, from which device, how, when, size, "
                "hash."),
        "login": ("account",
                  "Sign in with GitHub through the project's Supabase Auth (OAuth PKCE)."),
        "logout": ("account",
                   "End the Supabase session (revoked on the server) and delete the stored "
                   "credentials."),
        "members": ("members",
                    "List the workspace's members and pending invitations (owners manage them)."),
        "pause": ("working_copy",
                  "Stop syncing this working copy until `syncd resume` (the daemon keeps running)."),
        "progress": ("progress",
                     "Sessions × stages: ● started (a document with more than a template), · pending."),
        "report": ("stats",
                   "Write the analytics as one self-contained HTML page with charts."),
        "resolve": ("conflicts",
                    "Settle the conflict held on PATH."),
        "restore": ("history",
                    "Make an old version's content the newest one (a new version; history is kept)."),
        "resume": ("working_copy",
                   "Undo `syncd pause` and ask for a pass now; with --allow-deletes, let a held mass "
                   "delete through."),
        "run": ("working_copy",
                "Keep this working copy in sync until stopped (SIGTERM/SIGINT; SIGHUP reloads)."),
        "service": ("service",
                    "Run this working copy as a systemd user service."),
        "show": ("history",
                 "Print a version of PATH exactly as it was written (bytes to stdout)."),
        "stats": ("stats",
                  "Stage completion, time per stage, lead times, edits, concurrent edits and "
                  "devices."),
        "status": ("working_copy",
                   "The daemon's state, pending changes, conflicts and held deletes (no network, but "
                   "before the first pass: then it asks the store what that pass would do)."),
        "sync": ("working_copy",
                 "Sync this working copy with the store, then exit: another pass right away while "
                 "files changed during one (at most 5 in all), so that it ends settled; --once: "
                 "one pass."),
        "whoami": ("account",
                   "Who this working copy is signed in as."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.COMMANDS:
            return None
        module, _, attribute = self.COMMANDS[name][0].partition(":")
        return _sharing(getattr(importlib.import_module(f"syncd.cli.{module}"), attribute or name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click lists them, from the summaries: no command is imported to say what it does."""
        limit = formatter.width - 6 - max(map(len, self.COMMANDS))
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(summary, limit))
                                for name, (_, summary) in sorted(self.COMMANDS.items())])

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes a line
            raise errors.said(exc, (ctx.obj or {}).get("config_path")) from None


@click.group(cls=Syncd, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncd")
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar=ENV_CONFIG,
              default=_default_config, show_default="the XDG config dir's syncd/syncd.yaml",
              help="This working copy's config file (env SYNCD_CONFIG); also after the command.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help="The log level (default: warning; "
              "info for `syncd run`).")
@click.pass_context
def main(ctx: click.Context, config_path: Path, verbose: int, log_level: str | None) -> None:
    """Sync IDSE session directories with versioned documents in PostgreSQL/Supabase."""
    ctx.obj = {"config_path": Path(config_path).expanduser().absolute(), "verbose": verbose,
               "log_level_option": log_level}
    _set_up_logging(ctx.obj)
