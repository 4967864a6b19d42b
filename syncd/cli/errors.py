"""The last word on any error a command raises: one line on stderr, never a traceback.

An error a user can fix (a config, a store, a journal, the embedded server: each says what
to do) is its message. Anything else is a line saying what went wrong and where its full
traceback was written: the working copy's log in its state directory, or, when that cannot
be written, a temporary file, said so. The error classes are looked up only when one is
raised, so that a command pays nothing for this at start-up.
"""
from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

import click

# the errors whose message names the fix (module, class)
EXPECTED = (
    ("syncd.config", "ConfigError"),
    ("syncd.store.rpc", "StoreError"),
    ("syncd.store.local_server", "ServerError"),
    ("syncd.engine.executor", "Paused"),
    ("syncd.engine.journal", "JournalLocked"),
    ("syncd.engine.journal", "JournalUnwritable"),
)


# exit codes beside 0, 1 (an error, one line) and 2 (usage): the README's table
EXIT_CONFLICTS = 3
EXIT_UNSETTLED = 4
EXIT_NOT_SYNCED = 5


class Failure(click.ClickException):
    """A one-line error; click prints it as `Error: ...` and exits 1."""


def expected(exc: BaseException) -> bool:
    return any(isinstance(exc, getattr(importlib.import_module(module), name)) for module, name in EXPECTED)


def said(exc: Exception, config_path: Path | None) -> Failure:
    """The one line for `exc`, secrets masked as in the log; what does not fit on it goes to the log."""
    from syncd import logs
    if expected(exc):
        first, _, rest = logs.mask(str(exc)).strip().partition("\n")
        if not rest.strip():
            return Failure(first)
        return Failure(f"{first} (the rest is {_written(config_path, str(exc))})")
    message = logs.mask(str(exc)).strip().partition("\n")[0]
    import traceback  # the error path only: a command does not pay for it at start-up
    details = "".join(traceback.format_exception(exc))
    return Failure(f"unexpected {type(exc).__name__}{': ' + message if message else ''} "
                   f"(the full traceback is {_written(config_path, details)})")


def _written(config_path: Path | None, text: str) -> str:
    """Append `text` to the working copy's log; says where it went ("in PATH")."""
    from syncd import logs
    entry = f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR syncd.cli: {logs.mask(text).rstrip()}\n"
    directory = _state_directory(config_path)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(directory / logs.FILE_NAME, "a", encoding="utf-8") as f:
            f.write(entry)
        return f"in {directory / logs.FILE_NAME}"
    except OSError as exc:
        import tempfile
        fd, spare = tempfile.mkstemp(prefix="syncd-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(entry)
        return f"in {spare}: the state directory {directory} cannot be written ({exc.strerror})"


def _state_directory(config_path: Path | None) -> Path:
    from syncd import config as configuration
    if config_path is None:
        config_path = configuration.default_config_path()
    try:
        return configuration.load(config_path).state_directory
    except configuration.ConfigError:  # a config that cannot be read: where it would have its state
        return configuration.default_state_directory(config_path)
