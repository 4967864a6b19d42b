"""Filesystem events as hints: a debounced queue fed by the watchdog observer.

Events only say "look again soon"; the scan decides what changed. So an editor's
write-temp-then-rename dance or a `git checkout` of thousands of files is one pass after
the tree has been quiet for `debounce` seconds (or `max_delay` after the first event, so a
tree that never goes quiet still syncs).
"""
from __future__ import annotations

import errno
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent, FileAttribEvent,
                             FileClosedEvent, FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                             FileSystemEvent, FileSystemEventHandler)
from watchdog.observers import Observer

from syncd.engine.ignore import IgnoreRules

log = logging.getLogger("syncd.watch")

# watchdog warns when a directory created during a burst is registered twice; harmless
warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning, module="watchdog")

# What the kernel is asked to report: changes only. Reads (open, access, close without a
# write) are not subscribed to at all: `syncd status` or a backup reading the whole tree
# would otherwise flood the inotify queue and starve a pass of CPU.
CHANGES = [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
           DirCreatedEvent, DirModifiedEvent, DirDeletedEvent, DirMovedEvent]

LIMITS_HINT = {
    errno.ENOSPC: "the inotify watch limit is reached; raise it with "
                  "`sudo sysctl fs.inotify.max_user_watches=524288` (and in /etc/sysctl.d/)",
    errno.EMFILE: "the inotify instance limit is reached; raise it with "
                  "`sudo sysctl fs.inotify.max_user_instances=1024` (and in /etc/sysctl.d/)",
}


class ChangeQueue:
    """When to start a pass, given when changes were seen. No I/O: the clock is passed in."""

    def __init__(self, debounce: float, max_delay: float):
        self.debounce = debounce
        self.max_delay = max_delay
        self._first: float | None = None
        self._last: float | None = None
        self._lock = threading.Lock()

    def add(self, now: float) -> None:
        with self._lock:
            if self._first is None:
                self._first = now
            self._last = now

    def due_in(self, now: float) -> float | None:
        """Seconds until a pass is due (0: now), None when nothing is waiting."""
        with self._lock:
            if self._first is None:
                return None
            return max(0.0, min(self._last + self.debounce, self._first + self.max_delay) - now)

    def take(self) -> None:
        with self._lock:
            self._first = self._last = None


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, rules: IgnoreRules, notice: Callable[[], None]):
        self.root = os.fspath(root)
        self.rules = rules  # (which ignore syncd's own temporary files: their rename is the event)
        self.notice = notice

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            wanted = any(self._wanted(path, event.is_directory)
                         for path in (event.src_path, getattr(event, "dest_path", "")) if path)
        except Exception:  # this thread is the daemon's eyes: an odd event means "look again"
            log.debug("event %r not understood; rescanning", event, exc_info=True)
            wanted = True
        if wanted:
            self.notice()

    def _wanted(self, path: str | bytes, is_directory: bool) -> bool:
        rel = os.path.relpath(os.fsdecode(path), self.root)
        if os.path.basename(rel) == ".gitignore":
            self.rules.refresh()  # (and the event is wanted: the file itself syncs)
        return rel == "." or not self.rules.ignores(rel.replace(os.sep, "/"), is_directory)


class _TroubleHandler(logging.Handler):
    """watchdog reports a queue overflow or a failing watch only in its log: rescan then."""

    def __init__(self, on_trouble: Callable[[], None]):
        super().__init__(logging.WARNING)
        self.on_trouble = on_trouble

    def emit(self, record: logging.LogRecord) -> None:
        self.on_trouble()


class Watcher:
    """Watches the root; `watching` is False when it fell back to polling by rescans."""

    def __init__(self, root: Path, rules: IgnoreRules, queue: ChangeQueue,
                 wake: Callable[[], None], rescan: Callable[[], None]):
        self.root = Path(root)
        self.rules = rules
        self.queue = queue
        self.wake = wake
        self.rescan = rescan
        self.observer: Observer | None = None
        self.watching = False
        self._trouble = _TroubleHandler(rescan)
        logging.getLogger("watchdog").addHandler(self._trouble)

    def _notice(self) -> None:
        self.queue.add(time.monotonic())
        self.wake()

    def start(self) -> bool:
        self.stop_observer()
        observer = Observer()
        try:
            observer.schedule(_Handler(self.root, self.rules, self._notice), os.fspath(self.root), recursive=True,
                              event_filter=CHANGES)
            observer.start()
        except OSError as exc:
            observer.stop()
            hint = LIMITS_HINT.get(exc.errno)
            if hint:
                log.error("cannot watch %s: %s; falling back to polling (rescans)", self.root, hint)
            else:
                log.warning("cannot watch %s (%s); polling by rescans until it can", self.root, exc)
            self.watching = False
            return False
        self.observer = observer
        self.watching = True
        return True

    def healthy(self) -> bool:
        return self.observer is not None and self.observer.is_alive() and all(
            e.is_alive() for e in self.observer.emitters)

    def stop_observer(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
        self.watching = False

    def close(self) -> None:
        self.stop_observer()
        logging.getLogger("watchdog").removeHandler(self._trouble)
