"""The systemd notification protocol (sd_notify): READY, STATUS, WATCHDOG and STOPPING
datagrams to the socket systemd names in $NOTIFY_SOCKET. Written out here rather than
taken from a library: it is one sendto() per message, systemd-python needs libsystemd's
headers to build, and the pure-Python packages for it are unmaintained. Without
$NOTIFY_SOCKET (not run by systemd) every call does nothing."""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("syncd.daemon")


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address and address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        mine = not pid or pid == str(os.getpid())
        # ping at twice the rate systemd needs, as sd_watchdog_enabled(3) advises
        self.watchdog_interval = int(usec) / 2e6 if usec and usec.isdigit() and mine else None
        self.ready_sent = False
        self._last_ping = 0.0
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if address else None

    def _send(self, *fields: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd gone (shutting down); the daemon goes on
            log.debug("systemd notification not sent: %s", exc)

    def ready(self, status: str) -> None:
        """Once: the journal is open, the store answered and the watcher runs."""
        if not self.ready_sent:
            self.ready_sent = True
            self._send("READY=1", f"STATUS={status}")
            self.watchdog(force=True)

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def watchdog(self, force: bool = False) -> None:
        """The sync loop is alive and making progress; rate-limited, so call it freely."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if force or now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1", "STATUS=stopping")
