"""Where syncd's log lines go and what they may contain.

Under systemd (stderr is the journal's stream, $JOURNAL_STREAM says so) a line is
`<priority>component: message`: journald adds the time and reads the priority prefix
(sd-daemon(3)). Elsewhere stderr gets `syncd: LEVEL: message`, and the daemon also writes
`time level component: message` lines to a rotating file in the working copy's state
directory. Every line, on every handler, passes a filter that masks secrets: tokens and
keys the process registered, anything shaped like a JWT, and passwords in URLs and DSNs.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

FILE_NAME = "syncd.log"  # in the working copy's state directory
FILE_BYTES = 5 * 1024 * 1024
FILE_BACKUPS = 4
_JOURNAL_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_PATTERNS = [
    re.compile(r"eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]*"),  # a JWT (access tokens, anon and service keys)
    re.compile(r"(?<=://)[^/\s:@]*:[^/\s@]+(?=@)"),  # user:password@ in a URL
    re.compile(r"(?i)(?<=password=)[^\s&'\"]+"),  # password=... in a DSN or query
]
_secrets: set[str] = set()


def secret(value: str | None) -> None:
    """Never log this value (a token or key this process holds)."""
    if value and len(value) >= 8:
        _secrets.add(value)


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True


def mask(text: str) -> str:
    for value in sorted(_secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    for pattern in _PATTERNS:
        text = pattern.sub("***", text)
    return text


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_JOURNAL_PRIORITY.get(record.levelno, 6)}>"
        # one entry per line: a traceback's lines keep the priority of their record
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def under_journald() -> bool:
    """stderr is the stream systemd connected to the journal (not merely inherited from it)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(n) for n in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def setup(level: str, log_file: Path | None = None) -> None:
    """Configure the root logger once per process; `log_file` for the daemon off systemd."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    handlers: list[logging.Handler] = []
    stderr = logging.StreamHandler(sys.stderr)
    if under_journald():
        stderr.setFormatter(JournalFormatter("%(name)s: %(message)s"))
        log_file = None  # the journal keeps it, rotated and indexed
    else:
        stderr.setFormatter(logging.Formatter("syncd: %(levelname)s: %(message)s"))
    handlers.append(stderr)
    if log_file is not None:
        from logging.handlers import RotatingFileHandler  # its sockets and queues only for a log file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = RotatingFileHandler(log_file, maxBytes=FILE_BYTES, backupCount=FILE_BACKUPS, encoding="utf-8")
        rotating.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(rotating)
    for handler in handlers:
        handler.addFilter(Redact())
        root.addHandler(handler)
    for chatty in ("httpx", "httpcore", "hpack", "websockets", "git", "watchdog"):
        # a line per request or event: only when debugging (then masked like the rest)
        logging.getLogger(chatty).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)


class OncePerChange:
    """Says each path's problem once, not once per pass: a daemon retrying a full disk every
    few seconds would otherwise log the same lines hundreds of times. A problem that goes
    away and comes back, or changes, is said again."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._said: dict[str, str] = {}

    def say(self, level: int, path: str, message: str) -> None:
        if self._said.get(path) != message:
            self._said[path] = message
            self.logger.log(level, "%s", message)

    def keep_only(self, paths, scope=None) -> None:
        """Forget what was said of paths that no longer have a problem (of those in `scope`,
        the paths a partial pass looked at; None: every path)."""
        self._said = {p: m for p, m in self._said.items() if p in paths or (scope is not None and p not in scope)}
