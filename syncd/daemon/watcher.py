"""Filesystem events as hints: a debounced queue fed by the watchdog observer.

Events say where to look again soon (`syncd.engine.touched`); the scan decides what
changed. So an editor's write-temp-then-rename dance or a `git checkout` of thousands of
files is one pass after the tree has been quiet for `debounce` seconds (or `max_delay`
after the first event, so a tree that never goes quiet still syncs), over the paths they
named.
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
from syncd.engine.touched import Touched

log = logging.getLogger("syncd.watch")

# watchdog warns when a directory created during a burst is registered twice; harmless
warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning, module="watchdog")
# and says an error when its watch is stopped while it reads the next event (as in a storm)
_STOPPED_MID_READ = "InotifyEmitter.queue_events() called when the thread is inactive"
logging.getLogger("watchdog.observers.inotify").addFilter(
    lambda record: not record.getMessage().startswith(_STOPPED_MID_READ))

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
    """When to start a pass, given when changes were seen, and what they touched (None once
    something said "look at everything": an overflow, an event not understood). No I/O:
    the clock is passed in."""

    def __init__(self, debounce: float, max_delay: float):
        self.debounce = debounce
        self.max_delay = max_delay
        self._first: float | None = None
        self._last: float | None = None
        self._touched: Touched | None = Touched()
        self._seen = 0  # events, named or not, since the last take
        self._lock = threading.Lock()

    def saw(self) -> int:
        """One more event came (whatever it names); how many since the last take."""
        with self._lock:
            self._seen += 1
            return self._seen

    def add(self, now: float, touched: Touched | None = None) -> None:
        """A change seen at `now`, at what `touched` names (None: not said where)."""
        with self._lock:
            if self._first is None:
                self._first = now
            self._last = now
            if touched is None or self._touched is None:
                self._touched = None
            else:
                self._touched.update(touched)

    def due_in(self, now: float) -> float | None:
        """Seconds until a pass is due (0: now), None when nothing is waiting."""
        with self._lock:
            if self._first is None:
                return None
            return max(0.0, min(self._last + self.debounce, self._first + self.max_delay) - now)

    def take(self) -> Touched | None:
        """What the events since the last take touched; None: everything may have changed."""
        with self._lock:
            touched, self._touched = self._touched, Touched()
            self._first = self._last = None
            self._seen = 0
            return touched


def touched_by(event: FileSystemEvent, root: str, rules: IgnoreRules) -> Touched | None:
    """What one event says to look at (nothing, for what never syncs); None: everything
    (the root itself went, a `.gitignore` at the top changed what is ignored anywhere)."""
    touched = Touched()
    moved = isinstance(event, (FileMovedEvent, DirMovedEvent))
    for path, arrived in ((event.src_path, event.event_type == "created"), (getattr(event, "dest_path", ""), True)):
        if not path:
            continue
        rel = os.path.relpath(os.fsdecode(path), root).replace(os.sep, "/")
        if rel == ".":
            if event.event_type in ("deleted", "moved"):
                return None
            continue  # (the root's own modification: what changed in it has its own event)
        if rel.startswith("../"):
            continue
        if os.path.basename(rel) == ".gitignore":
            rules.refresh()  # (and the file itself syncs)
            top = rel.rpartition("/")[0]
            if not top:
                return None
            touched.trees.add(top)  # what it ignores or brings back is under it
        if rules.ignores(rel, event.is_directory):
            continue
        if event.is_directory and arrived and (moved or event.event_type == "created"):
            touched.trees.add(rel)  # what came with it made no events of its own
        else:
            touched.paths.add(rel)
    return touched


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, rules: IgnoreRules, notice: Callable[[Touched | None], None],
                 saw: Callable[[], None]):
        self.root = os.fspath(root)
        self.rules = rules  # (which ignore syncd's own temporary files: their rename is the event)
        self.notice = notice
        self.saw = saw

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.saw()
        try:
            touched = touched_by(event, self.root, self.rules)
        except Exception:  # this thread is the daemon's eyes: an odd event means "look again"
            log.debug("event %r not understood; rescanning", event, exc_info=True)
            touched = None
        if touched is None or touched:
            self.notice(touched)


class _TroubleHandler(logging.Handler):
    """watchdog reports a queue overflow or a failing watch only in its log: rescan then
    (said through the queue, so the pass that takes the events before it learns it too)."""

    def __init__(self, on_trouble: Callable[[], None]):
        super().__init__(logging.WARNING)
        self.on_trouble = on_trouble

    def emit(self, record: logging.LogRecord) -> None:
        self.on_trouble()


class Watcher:
    """Watches the root; `watching` is False when it fell back to polling by rescans, or
    stood down in a storm of events.

    A storm (a pass writing a first pull's 100k files, a `git checkout` of thousands) makes
    several events a file, each handled by watchdog's threads, which then hold most of the
    CPU the pass needs (a first pull of 100k files took 150 s instead of 61) and queue what
    they cannot handle yet (220 MiB). Past `STORM` events since the last pass took them, the
    watcher stops watching and asks for a full rescan, which costs less than the events
    it replaces; the daemon watches again as soon as it is between passes."""

    STORM = 20_000

    def __init__(self, root: Path, rules: IgnoreRules, queue: ChangeQueue, wake: Callable[[], None]):
        self.root = Path(root)
        self.rules = rules
        self.queue = queue
        self.wake = wake
        self.observer: Observer | None = None
        self.watching = False
        self.stood_down = False  # in a storm: to watch again as soon as the daemon is between passes
        self._trouble = _TroubleHandler(lambda: self._notice(None))
        logging.getLogger("watchdog").addHandler(self._trouble)

    def _notice(self, touched: Touched | None) -> None:
        self.queue.add(time.monotonic(), touched)
        self.wake()

    def _saw(self, observer: Observer) -> None:
        """(In the observer's thread, which may unschedule its own watches.)"""
        if self.queue.saw() == self.STORM:
            log.info("more than %d changes in %s since the last pass: watching stops until a full rescan",
                     self.STORM, self.root)
            self.watching, self.stood_down = False, True
            observer.unschedule_all()
            self._notice(None)

    def start(self) -> bool:
        self.stop_observer()
        self.stood_down = False
        observer = Observer()
        try:
            observer.schedule(_Handler(self.root, self.rules, self._notice, lambda: self._saw(observer)),
                              os.fspath(self.root), recursive=True, event_filter=CHANGES)
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
