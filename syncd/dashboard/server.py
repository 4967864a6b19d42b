"""The dashboard served: a socket on 127.0.0.1 (bound first, so its port is known and a
port in use is said at once), the working copy's store opened (so a store that does not
answer is said before any browser opens), a fresh token, and uvicorn until stopped, in the
foreground for `syncd dashboard` or on a thread of its own inside `syncd run`."""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
from html import escape
from pathlib import Path

import uvicorn

from syncd.cli.errors import Failure
from syncd.config import Config
from syncd.dashboard.app import create_app
from syncd.dashboard.snapshot import Reader
from syncd.dashboard.wakeups import Wakeups
from syncd.engine.journal import Journal
from syncd.store.connect import connect, open_workspace

log = logging.getLogger("syncd.dashboard")

URL_FILE = "dashboard.url"  # in the state directory, readable by its owner only: the URL with its token
OPENER_FILE = "dashboard.html"  # beside it: what the browser is given, so the token is in no command line


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise Failure(f"the dashboard cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another "
                      "port (--port, daemon.dashboard_port), or 0 for a free one") from None
    sock.listen(64)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT or SIGTERM ends `serve()` and no more: uvicorn raises
    the signal again once stopped, which would end `syncd dashboard` as killed (or "Aborted!")."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Dashboard:
    """`with Dashboard(cfg, port) as board: board.serve()`: the page until stopped."""

    def __init__(self, cfg: Config, port: int = 0):
        self.cfg = cfg
        self.token = secrets.token_urlsafe(24)
        self._stack = contextlib.ExitStack()
        self.sock = self._stack.enter_context(contextlib.closing(bind(port)))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/?token={self.token}"
        self.server: uvicorn.Server | None = None
        self.opener: Path | None = None  # the page that sends a browser to `url`, once entered

    def __enter__(self) -> Dashboard:
        try:
            journal = self._stack.enter_context(contextlib.closing(Journal(self.cfg.journal_path)))
            store = self._stack.enter_context(connect(self.cfg, journal))
            workspace = open_workspace(store, self.cfg, journal)
            wakeups = Wakeups(self.cfg, store, workspace.id)
            wakeups.start()
            self._stack.callback(wakeups.stop)
            app = create_app(Reader(self.cfg, store), wakeups, self.token, self.port)
            self.server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                        timeout_graceful_shutdown=2))
            self._write_url()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _write_url(self) -> None:
        self._private(URL_FILE, self.url + "\n")
        target = escape(self.url)
        self.opener = self._private(OPENER_FILE, (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" '
            f'content="0;url={target}"><title>syncd dashboard</title></head><body><p><a href="{target}">'
            f'the dashboard</a></p></body></html>\n'))

    def _private(self, name: str, text: str) -> Path:
        """A file of the state directory that only its owner may read, made afresh (a file
        left by a killed run keeps no mode of its own), removed when the page stops."""
        path = self.cfg.state_directory / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self._stack.callback(lambda: path.unlink(missing_ok=True))
        return path

    def serve(self) -> None:
        """Until stopped: SIGINT/SIGTERM in the foreground, `stop()` from another thread."""
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True


class InDaemon(threading.Thread):
    """The dashboard inside `syncd run` (daemon.dashboard: true): whatever happens to it, the
    daemon syncs on; the URL with its token is in the state directory's dashboard.url."""

    def __init__(self, cfg: Config):
        super().__init__(name="syncd-dashboard", daemon=True)
        self.cfg = cfg
        self.board: Dashboard | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            with Dashboard(self.cfg, self.cfg.daemon.dashboard_port) as board:
                self.board = board
                if self._stopping.is_set():
                    return
                log.info("dashboard at http://127.0.0.1:%d/ (its URL with the token: %s)", board.port,
                         self.cfg.state_directory / URL_FILE)
                board.serve()
        except Exception as exc:  # noqa: BLE001 - the page is a view: syncing goes on without it
            log.error("the dashboard is not served: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        if self.board is not None:
            self.board.stop()
        self.join(timeout=10)
