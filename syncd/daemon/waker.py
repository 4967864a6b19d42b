"""What the daemon's loop sleeps on, and what wakes it: a watcher's event, a NOTIFY, a
signal. A threading.Event cannot be set from a signal handler: its set() takes a lock the
interrupted loop may be holding (inside wait() or clear()), and a stop signal landing in
that instant left the daemon hung for good. A byte on a socket pair takes no lock."""
from __future__ import annotations

import selectors
import socket


class Waker:
    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._ready = selectors.DefaultSelector()  # (select() alone refuses descriptors past 1023)
        self._ready.register(self._read, selectors.EVENT_READ)

    def set(self) -> None:
        try:
            self._write.send(b"\0")
        except (BlockingIOError, OSError):  # full: the loop has wake-ups enough; closed: it has stopped
            pass

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or `timeout` seconds pass; True when woken (the wake-up stays
        until clear())."""
        return bool(self._ready.select(max(0.0, timeout)))

    def clear(self) -> None:
        try:
            while self._read.recv(4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """When the daemon is done: a signal or a watcher's event after this wakes no one."""
        self._ready.close()
        self._read.close()
        self._write.close()
