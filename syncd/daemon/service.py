"""`syncd run`: passes of the executor, started by whatever says something may have changed.

Triggers: the watcher's debounced queue, a NOTIFY from the store, the poll interval (the
safety net for lost notifications), the rescan interval (the safety net for lost events),
and `syncd resume`. The poll asks the store whether anything is new before it costs a pass,
which scans the whole tree: an idle daemon wakes at most once a second, and does almost
nothing when it does. Failures never end the daemon: a missing root pauses it, a lost store
sends it into backoff; local changes wait on disk, found again by the next scan.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import replace

from syncd import __version__, config as configuration
from syncd.config import Config, ConfigError
from syncd.daemon.remote import NotifyListener
from syncd.daemon.systemd import Notifier
from syncd.daemon.waker import Waker
from syncd.daemon.watcher import ChangeQueue, Watcher
from syncd.engine.executor import Executor, Paused
from syncd.engine.ignore import IgnoreRules
from syncd.engine.identity import check_workspace, rewound
from syncd.engine.journal import Journal, JournalUnwritable
from syncd.engine.touched import Touched
from syncd.git.recorder import Recorder
from syncd.logs import OncePerChange
from syncd.store.connect import agree_layout, open_workspace
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import StoreError, StoreUnavailable

log = logging.getLogger("syncd.daemon")

MAX_BACKOFF = 30.0
PAUSED_RETRY = 2.0  # how soon a paused daemon looks at the root again
FALLBACK_RESCAN = 2.0  # rescans replace the watcher when it cannot run
USER_PAUSE = "paused by `syncd pause`; `syncd resume` continues"
HEARTBEAT = 30.0  # the store calls a daemon silent after 2 minutes without one


class Daemon:
    def __init__(self, cfg: Config, journal: Journal, store: PostgresStore, notifier: Notifier | None = None):
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.journal = journal
        self.store = store
        self.waker = Waker()
        self.stopping = False
        self.stop_signal: int | None = None  # said by the loop, not by the handler
        self.reload_requested = False
        self.pass_requested = True  # the first pass
        self.full_requested = True  # a pass over the whole tree, not only what events named
        self.pending = Touched()  # what the last pass left for the next (paths changed during it)
        self.queue = ChangeQueue(cfg.daemon.debounce, cfg.daemon.max_delay)
        self.watcher: Watcher | None = None
        self.recorder: Recorder | None = None
        self.last_beat = 0.0
        self.notices = OncePerChange(logging.getLogger("syncd.sync"))  # each path's problem once, not every pass
        self.state = {"state": "starting", "pid": os.getpid(), "store": store.describe(),
                      "since": time.time(), "last_success": None, "reason": None}

    # wake-ups, from other threads and signal handlers

    def request_pass(self) -> None:
        self.pass_requested = True
        self.waker.set()

    def _on_stop_signal(self, signum, frame) -> None:
        """Takes no lock, nor does anything it calls (a log line would): the handler runs
        in the middle of whatever the loop was doing, which may hold it."""
        if self.stopping:
            os._exit(128 + signum)  # a second signal: at once
        self.stopping, self.stop_signal = True, signum
        self.waker.set()

    def _beat(self) -> None:
        """The watchdog's beat, from the loop and from within a pass; the first beat after a
        stop signal says so."""
        if self.stop_signal is not None:
            log.info("stopping after the current pass (signal %d; again to stop at once)", self.stop_signal)
            self.stop_signal = None
        self.notifier.watchdog()

    def _on_hup(self, signum, frame) -> None:
        self.reload_requested = True
        self.waker.set()

    # state, for `syncd status`

    def _set_state(self, state: str, reason: str | None = None, **extra) -> None:
        before, why = self.state["state"], self.state["reason"]
        changed = (state, reason) != (before, why)
        if changed:
            self.state.update(since=time.time())
            (log.warning if state in ("paused", "offline", "degraded") else log.info)(
                "%s%s", state, f": {reason}" if reason else "")
        self.state.update(state=state, reason=reason, **extra)
        if changed or extra:  # a paused daemon restates its state every second: no write for that
            try:
                self.journal.set_meta("daemon", json.dumps(self.state))
            except JournalUnwritable:  # said by the pass that met it; the heartbeat still tells
                pass
        if changed and (state in ("paused", "held", "degraded", "stopped")
                        or (state == "running" and before != "starting")):
            # an outage is recorded once the store is back: what it was and how long it lasted
            details = {"reason": reason}
            if before in ("offline", "paused"):
                details["after"] = {"state": before, "reason": why}
            self._event(f"daemon_{state}", details)
        if changed:
            self.notifier.status(f"{state}: {reason}" if reason else state)
            self._heartbeat(force=True)

    def _heartbeat(self, force: bool = False) -> None:
        """Tell the store this daemon is alive, what state it is in and how far it has
        pulled; on every change of state and every HEARTBEAT seconds."""
        now = time.monotonic()
        if self.state["state"] == "starting" or (not force and now - self.last_beat < HEARTBEAT):
            return
        self.last_beat = now
        try:
            self.store.heartbeat(self.state["state"], self.state["reason"], __version__, self.journal.cursor)
        except StoreError as exc:
            log.debug("heartbeat not sent: %s", exc)

    def _event(self, kind: str, details: dict) -> None:
        """An activity row for the team; never a reason to stop (offline, or not allowed)."""
        try:
            self.store.record([{"kind": kind, "path": None,
                                "details": {"device": self.cfg.device_name, "pid": os.getpid(), **details}}])
        except StoreError as exc:
            log.debug("activity not recorded (%s): %s", kind, exc)

    # the loop

    def run(self) -> int:
        try:
            return self._run()
        finally:
            self.waker.close()

    def _run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        workspace = self._open_workspace()
        if workspace is None:  # stopped while waiting for the store
            self._beat()
            return 0
        check_workspace(self.journal, self.store, workspace)
        if isinstance(self.store, PostgresStore):
            listener = NotifyListener(self.store.dsn, workspace.id, self.request_pass)
        else:
            from syncd.daemon.realtime import RealtimeListener  # its client (pydantic, websockets): 15 MiB
            listener = RealtimeListener(self.store.url, self.store.key, self.store.access_token,
                                        workspace.id, self.request_pass)
        listener.start()
        self._event("daemon_started", {"root": str(self.cfg.root)})
        self.recorder = Recorder.for_config(self.cfg, self.journal, self.store)
        self._watch()
        dashboard = None
        if self.cfg.daemon.dashboard:
            from syncd.dashboard.server import InDaemon  # Starlette and uvicorn only when asked for
            dashboard = InDaemon(self.cfg)
            dashboard.start()
        try:
            self._loop()
        finally:
            self._beat()
            self.notifier.stopping()
            if dashboard:
                dashboard.stop()
            listener.stop()
            if self.watcher:
                self.watcher.close()
            self._flush_stats()
            self._set_state("stopped")
        return 0

    def _open_workspace(self):
        """The workspace, once the store answers: a daemon started offline (a laptop on a
        train) waits for it, beating the watchdog, rather than exiting into a restart loop."""
        backoff = 1.0
        while not self.stopping:
            try:
                workspace = open_workspace(self.store, self.cfg, self.journal)
                agree_layout(self.store, self.cfg)
                return workspace
            except StoreUnavailable as exc:
                self._set_state("offline", f"waiting for the store: {exc}")
                deadline = time.monotonic() + backoff
                while not self.stopping and time.monotonic() < deadline:
                    self._beat()
                    self.waker.wait(min(1.0, self.notifier.watchdog_interval or 1.0,
                                             max(0.0, deadline - time.monotonic())))
                    self.waker.clear()
                backoff = min(backoff * 2, MAX_BACKOFF)
        return None

    def _watch(self) -> None:
        if self.watcher is None:
            self.watcher = Watcher(self.cfg.root, IgnoreRules.of(self.cfg), self.queue, self.waker.set)
        if self.cfg.root.is_dir():
            self.watcher.start()
        else:
            self.watcher.stop_observer()  # nothing to watch until the root is back
        if self.watcher.watching:  # the journal is open and the store answered before this
            self.notifier.ready(f"watching {self.cfg.root}")

    def _loop(self) -> None:
        settings = self.cfg.daemon
        last_full = last_poll = last_watch_attempt = time.monotonic()
        retry_at, backoff = 0.0, 1.0
        asked_seen = self._asked()
        while not self.stopping:
            self._beat()  # a loop stuck anywhere below stops these, and systemd restarts it
            now = time.monotonic()
            if self.reload_requested:
                self._reload()
                settings = self.cfg.daemon
            if self.journal.get_meta("paused") == "1":  # `syncd pause`: alive, beating, not syncing
                self._set_state("paused", USER_PAUSE)
                self.pass_requested = self.full_requested = True  # the first thing after `syncd resume`
                self._heartbeat()
                self.waker.wait(min(1.0, self.notifier.watchdog_interval or 1.0))
                self.waker.clear()
                continue
            if self.watcher.stood_down:  # a storm of events asked for a full rescan: watch again at once,
                self._watch()  # so that the rest of it keeps that pass waiting for the tree to be quiet
            elif self.watcher.watching and not self.watcher.healthy():
                log.warning("the watcher stopped; rescanning and watching again")
                self._watch()
                self.pass_requested = self.full_requested = True
            elif not self.watcher.watching and now - last_watch_attempt >= settings.rescan_interval:
                last_watch_attempt = now
                self._watch()
            # without a watcher, rescans are the only way to see local changes
            rescan = settings.rescan_interval if self.watcher.watching else FALLBACK_RESCAN
            asked = self._asked()
            if asked != asked_seen:  # `syncd resume` from another process: now, not after a backoff
                asked_seen, retry_at = asked, 0.0
                self.pass_requested = self.full_requested = True
            due = self.queue.due_in(now)
            if due == 0 or now - last_full >= rescan:
                self.pass_requested = True
            elif not self.pass_requested and now - last_poll >= settings.poll_interval:
                last_poll = now
                if self._store_moved():
                    self.pass_requested = True
                elif self.recorder is not None:
                    self._push_mirror()  # a push due or retried keeps its interval without passes
            # whatever asked for it, a pass waits while the tree is still changing: one taken
            # mid-burst would see half an `rm` (each half under the mass-delete limits)
            if self.pass_requested and now >= retry_at and not due:
                touched = self.queue.take()
                full = (self.full_requested or touched is None or not self.watcher.watching
                        or now - last_full >= rescan)
                if not full:
                    touched.update(self.pending)
                self.pass_requested = self.full_requested = False
                ok, again = self._pass(None if full else touched)
                last_poll = now = time.monotonic()
                if full:
                    last_full = now
                asked_seen = self._asked()
                if ok:
                    backoff = 1.0
                    self.pass_requested = self.pass_requested or again  # (a NOTIFY during the pass asked)
                else:
                    self.pass_requested = self.full_requested = True
                    retry_at = now + (backoff if self.state["state"] == "offline" else PAUSED_RETRY)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self._heartbeat()
            waits = [last_full + rescan - now, last_poll + settings.poll_interval - now,
                     1.0]  # 1 s: notice `syncd resume` soon
            if self.notifier.watchdog_interval:
                waits.append(self.notifier.watchdog_interval)
            if due is not None:
                waits.append(due)
            if self.pass_requested and not due:  # (one held back for settling changes waits for `due`)
                waits.append(retry_at - now)
            self.waker.wait(max(0.0, min(waits)))
            self.waker.clear()

    def _store_moved(self) -> bool:
        """The poll's question, in two small calls: has the feed anything past the cursor,
        or is the newest change this copy saw no longer the store's (a restored backup)?"""
        try:
            mark = self.journal.mark
            if mark is not None and rewound(mark, self.store.change_at(mark.seq)):
                return True
            entries, cursor, _ = self.store.changes(self.journal.cursor, limit=1)
        except StoreError:
            return True  # the pass says what is wrong, and backs off
        return bool(entries) or cursor != self.journal.cursor

    def _flush_stats(self) -> None:
        try:
            self.journal.flush_stats()
        except JournalUnwritable:  # only hashes to compute again later
            pass

    def _asked(self) -> tuple[str | None, str | None]:
        return self.journal.get_meta("resume"), self.journal.get_meta("allow_deletes")

    def _pass(self, touched: Touched | None) -> tuple[bool, bool]:
        """One executor pass, on what `touched` names and what the feed brings (None: the
        whole tree); (succeeded, should run again soon)."""
        executor = Executor.from_config(self.cfg, self.journal, self.store, progress=self._beat,
                                        notices=self.notices)
        try:
            report = executor.sync_once(touched)
        except Paused as exc:
            self._flush_stats()
            self._set_state("paused", str(exc))
            self.watcher.stop_observer()  # the root it watched is gone or replaced
            return False, False
        except StoreUnavailable as exc:
            self._flush_stats()
            self._set_state("offline", f"{exc}; local changes wait on disk and go out on reconnect")
            return False, False
        except StoreError as exc:  # the store answered, with an error: not offline, and retried later
            self._flush_stats()
            self._set_state("degraded", f"the store failed the pass: {exc}")
            return False, False
        except JournalUnwritable as exc:
            self._set_state("degraded", str(exc))
            return False, False
        if not self.watcher.watching:
            self._watch()  # the root is back
            self.full_requested = True  # what changed before the watch began made no events
        state, reason = "running", None
        if report.held_deletes:
            state, reason = "held", f"{len(report.held_deletes)} deletes held back: syncd resume --allow-deletes"
        elif report.failed:
            state, reason = "degraded", report.trouble()
        elif report.conflicts:
            state, reason = "held", f"{len(report.conflicts)} conflicts held: syncd conflicts"
        moved = len(report.pushed) + len(report.pulled) + len(report.deleted_local) + len(report.deleted_remote)
        if moved:
            log.info("pushed %d, pulled %d, deleted %d here and %d in the store", len(report.pushed),
                     len(report.pulled), len(report.deleted_local), len(report.deleted_remote))
        for path in report.merged:
            log.info("merged %s: both sides' edits kept", path)
        for path in report.resolved:
            log.info("resolved %s", path)
        self.pending = Touched(set(report.deferred) | set(report.failed))  # (a failed path is tried every pass)
        if report.unsettled:  # a save half done: looked at once it has been quiet for the debounce
            self.queue.add(time.monotonic(), Touched(set(report.unsettled)))
        self._set_state(state, reason, last_success=time.time())
        self._mirror(report)
        return True, bool(report.deferred)

    def _mirror(self, report) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.after_pass(report)
        except Exception:  # the mirror is a record: whatever happens to it, syncing goes on
            log.exception("git mirror failed; its versions wait for the next pass")
            return
        self._push_mirror()

    def _push_mirror(self) -> None:
        try:
            self.recorder.push_if_due()
        except Exception:
            log.exception("git mirror push failed; tried again when due")

    def _reload(self) -> None:
        self.reload_requested = False
        try:
            fresh = configuration.load(self.cfg.path)
        except ConfigError as exc:
            log.error("not reloaded: %s", exc)
            return
        fixed = ("root", "workspace", "database_url")
        changed = [k for k in fixed if getattr(fresh, k) != getattr(self.cfg, k)]
        if changed:
            log.warning("reloaded, except %s: restart syncd to change them", ", ".join(changed))
            fresh = replace(fresh, **{k: getattr(self.cfg, k) for k in fixed})
        else:
            log.info("configuration reloaded")
        self.cfg = fresh
        self.queue.debounce, self.queue.max_delay = fresh.daemon.debounce, fresh.daemon.max_delay
        self.watcher.close()
        self.watcher = None  # new ignore rules
        self._watch()
        self.pass_requested = self.full_requested = True
