"""Remote wake-ups over LISTEN/NOTIFY: a hint that the feed has something new.

A lost notification costs only latency: the daemon also polls the feed, and after every
reconnect it asks for a pass, since whatever was committed meanwhile went unannounced.
The thread sleeps in select() on the connection's socket and a pipe that `stop` writes to:
psycopg's own `notifies(timeout=...)` wakes every 0.1 s to look for Ctrl-C, which an idle
daemon would pay for all day.
"""
from __future__ import annotations

import logging
import os
import select
import threading
from typing import Callable

import psycopg
from psycopg import sql

log = logging.getLogger("syncd.remote")

MAX_BACKOFF = 30.0


class NotifyListener(threading.Thread):
    def __init__(self, dsn: str, workspace_id: str, wake: Callable[[], None], prefix: str = "syncd:"):
        """`prefix`: the channel's, "syncd:" for new versions, "syncd-activity:" for activity rows."""
        super().__init__(name="syncd-listen", daemon=True)
        self.dsn = dsn
        self.channel = f"{prefix}{workspace_id}"
        self.wake = wake
        self.connected = threading.Event()
        self._halt = threading.Event()
        self._stop_r, self._stop_w = os.pipe()

    def run(self) -> None:
        backoff = 1.0
        while not self._halt.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(sql.SQL("listen {}").format(sql.Identifier(self.channel)))
                    self.connected.set()
                    backoff = 1.0
                    self.wake()  # whatever happened while we were not listening
                    while not self._halt.is_set():
                        ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [])
                        if conn.fileno() in ready:  # a notification, or the connection closing: raises
                            if list(conn.notifies(timeout=0)):
                                self.wake()
            except psycopg.Error as exc:
                self.connected.clear()
                if self._halt.is_set():
                    return
                log.warning("lost the notification connection (%s); retrying in %.0f s",
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, backoff)
                self._halt.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def stop(self) -> None:
        self._halt.set()
        os.write(self._stop_w, b"x")
        self.join(timeout=5)
        if not self.is_alive():
            os.close(self._stop_r)
            os.close(self._stop_w)
