"""When the page may be out of date: the store's wake-ups, heard as the daemon hears them
(LISTEN/NOTIFY on the direct transport, Realtime on Supabase's), and this copy's journal,
looked at once a second as the daemon looks at it for `syncd resume`. Nothing here asks the
store anything: each wake-up only moves a generation that the page's streams wait on."""
from __future__ import annotations

import threading

from syncd.config import Config
from syncd.engine.journal import Journal, JournalUnwritable
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import RpcStore

JOURNAL_LOOK = 1.0  # seconds, the daemon's own rate of looking at its journal


def _fingerprint(journal: Journal) -> tuple:
    """What of the journal the page shows: the daemon's state, pause, held deletes, the
    cursor and the conflicts with their requests."""
    return (journal.locked_by(), journal.get_meta("daemon"), journal.get_meta("paused"),
            journal.get_meta("held_deletes"), journal.get_meta("last_sync"), journal.cursor,
            tuple((c.path, c.request, c.detected_at, c.remote_version) for c in journal.conflicts()))


class Wakeups:
    def __init__(self, cfg: Config, store: RpcStore, workspace_id: str):
        self.cfg = cfg
        self.generation = 0
        self._changed = threading.Condition()
        self._halt = threading.Event()
        if isinstance(store, PostgresStore):
            from syncd.daemon.remote import NotifyListener
            self.listeners = [NotifyListener(store.dsn, workspace_id, self.bump),
                              NotifyListener(store.dsn, workspace_id, self.bump, prefix="syncd-activity:")]
        else:
            from syncd.daemon.realtime import RealtimeListener
            self.listeners = [RealtimeListener(store.url, store.key, store.access_token, workspace_id, self.bump)]
        self._journal_watch = threading.Thread(target=self._watch_journal, name="syncd-dashboard-journal",
                                               daemon=True)

    def start(self) -> None:
        for listener in self.listeners:
            listener.start()
        self._journal_watch.start()

    def stop(self) -> None:
        self._halt.set()
        with self._changed:
            self._changed.notify_all()
        for listener in self.listeners:
            listener.stop()
        self._journal_watch.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._halt.is_set()

    def bump(self) -> None:
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """The generation once it is past `seen` (or after `timeout` seconds, or when stopped)."""
        with self._changed:
            self._changed.wait_for(lambda: self.generation != seen or self._halt.is_set(), timeout)
            return self.generation

    def _watch_journal(self) -> None:
        journal = Journal(self.cfg.journal_path)  # this thread's own connection
        try:
            seen = _fingerprint(journal)
            while not self._halt.wait(JOURNAL_LOOK):
                try:
                    now = _fingerprint(journal)
                except JournalUnwritable:
                    continue
                if now != seen:
                    self.bump()
                seen = now
        finally:
            journal.close()
