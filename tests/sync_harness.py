"""A randomized multi-copy sync harness: 2-3 working copies of one workspace on a real
PostgreSQL, random edits, renames, deletes and editor-style saves, random passes, and
faults (a process killed at a random store call, a dropped connection, a disk that refuses
writes, a damaged or deleted journal, clock jumps, an unmounted root, a save racing a pull's
rename by microseconds, the database restored from an earlier snapshot or replaced by an
empty one, damaged versions planted behind the contract's back). Invariants are checked
after every step and at quiescence (see `check_step` and `teardown`).

Hypothesis drives it (stateful testing): a failing run is shrunk to a minimal sequence of
steps and printed as code that replays it, with the seed to reproduce it (print_blob).
"""
from __future__ import annotations

import errno
from collections import Counter
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileCreatedEvent, FileDeletedEvent,
                             FileModifiedEvent, FileMovedEvent)

from syncd.content import decode, sha256_hex
from syncd.engine import executor as executor_module, writer as writer_module
from syncd.daemon.watcher import touched_by
from syncd.engine.executor import Executor, Paused
from syncd.engine.ignore import TEMP_PREFIX, IgnoreRules
from syncd.engine.reconcile import Action
from syncd.engine.touched import Touched, ancestors
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import StoreUnavailable

NAMES = ["a.md", "b.md", "A.md", "n.txt"]
DIRS = ["", "d/", "d/e/", "f/"]
PATHS = [d + n for d in DIRS for n in NAMES]
FOLDERS = [d.rstrip("/") for d in DIRS if d]
LINES = ["alpha\n", "beta\n", "gamma\n", "delta\n"]


class Crash(BaseException):
    """The process died here (BaseException: nothing in syncd may catch it)."""


class FaultyStore(PostgresStore):
    """The store as a copy's process sees it; a fault armed on it fires at its n-th call."""

    def __init__(self, dsn: str, device: str):
        super().__init__(dsn, "ws", device)
        self.fault: tuple[str, int] | None = None  # (kind, calls left before it fires)

    def _call(self, function: str, payload: dict):
        if self.fault is not None:
            kind, left = self.fault
            if left > 0:
                self.fault = (kind, left - 1)
            else:
                self.fault = None
                if kind == "kill-before":
                    raise Crash(f"killed before {function}")
                if kind == "drop":  # the server ends the connection under us
                    with psycopg.connect(self.dsn, autocommit=True) as admin:
                        admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                      "where datname = current_database() and pid <> pg_backend_pid()")
                if kind == "kill-after":
                    super()._call(function, payload)
                    raise Crash(f"killed after {function}, before its answer was used")
        return super()._call(function, payload)


class Copy:
    def __init__(self, base: Path, index: int, dsn: str):
        self.name = f"c{index}"
        self.root = base / self.name / "tree"
        self.journal_path = base / self.name / "state" / "journal.sqlite3"
        self.root.mkdir(parents=True)
        self.store = FaultyStore(dsn, str(uuid.uuid4()))
        self.store.open(create=True, device_name=self.name)
        self.journal = Journal(self.journal_path)
        self.edited: set[str] = set()  # paths a person changed here since a pass last synced them
        self.unmounted: Path | None = None  # where the real root is while "unmounted"
        self.disk_fault: tuple[int, int] | None = None  # (errno, writes before it fires)
        self.write_kill: tuple[int, bool] | None = None  # (writes before it, after the write?)
        self.racing_save: tuple[int, bool, bytes] | None = None  # (µs after a pull's rename, in place?, data)
        self.events: list = []  # what a watcher would have reported since this copy's last pass
        self.missed = False  # a change no event pass has seen (an event lost): until a full pass
        self.full_next = True  # a daemon's first pass looks at the whole tree
        self.pending: set[str] = set()  # what the last pass left for the next (deferred, failed)

    def restart(self) -> None:
        """A new process: nothing in memory survives, the journal is whatever is on disk."""
        self.full_next = True
        self.journal.db.close()  # no flush: a killed process flushes nothing
        self.store.close()
        self.journal = Journal(self.journal_path)

    def files(self, volume: bool = False) -> dict[str, bytes]:
        """The files under the root; `volume`: on the root's own volume, unmounted or not."""
        out = {}
        top = self.unmounted if volume and self.unmounted else self.root
        for dirpath, _, names in os.walk(top):
            for name in names:
                full = Path(dirpath, name)
                out[full.relative_to(top).as_posix()] = full.read_bytes()
        return out


@contextmanager
def racing_save(copy: Copy, saved: list[str]):
    """The user saves the first file a pass writes some microseconds after syncd renames it
    into place (in place, or as an editor's atomic save), while the pass goes on; its path
    goes in `saved`."""
    if copy.racing_save is None:
        yield
        return
    delay_us, in_place, data = copy.racing_save
    copy.racing_save = None
    real_replace = os.replace
    savers: list[threading.Thread] = []

    def save(target: str) -> None:
        deadline = time.perf_counter() + delay_us / 1e6
        while time.perf_counter() < deadline:
            pass
        if in_place:
            with open(target, "r+b") as f:
                f.write(data)
                f.truncate()
        else:
            real_replace(_stage(target, data), target)

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if not savers and Path(src).name.startswith(TEMP_PREFIX):
            if kwargs.get("dst_dir_fd") is not None:  # (the writer names a file in its open directory)
                dst = Path(os.readlink(f"/proc/self/fd/{kwargs['dst_dir_fd']}"), dst)
            saved.append(Path(dst).relative_to(Path(copy.root).resolve()).as_posix())
            savers.append(threading.Thread(target=save, args=(os.fspath(dst),)))
            savers[0].start()
    writer_module.os.replace = replace
    try:
        yield
    finally:
        writer_module.os.replace = real_replace
        for saver in savers:
            saver.join()


def _stage(target: str, data: bytes) -> str:
    staged = Path(target).with_name(f".{Path(target).name}.save~")
    staged.write_bytes(data)
    return os.fspath(staged)


@contextmanager
def faulty_writes(copy: Copy):
    """The copy's disk refuses file writes of a pass from the n-th on (ENOSPC, EACCES), or
    its process dies at the n-th (before or after the file is in place)."""
    if copy.disk_fault is None and copy.write_kill is None:
        yield
        return
    real = executor_module.write_atomic
    calls = [0]

    def write_atomic(*args, **kwargs):
        calls[0] += 1
        if copy.write_kill is not None and calls[0] > copy.write_kill[0]:
            left, after = copy.write_kill
            copy.write_kill = None
            if after:
                real(*args, **kwargs)
            raise Crash(f"killed at file write {left + 1}, {'after' if after else 'before'} it")
        if copy.disk_fault is not None and calls[0] > copy.disk_fault[1]:
            raise OSError(copy.disk_fault[0], os.strerror(copy.disk_fault[0]))
        return real(*args, **kwargs)
    executor_module.write_atomic = write_atomic
    try:
        yield
    finally:
        executor_module.write_atomic = real


def _looked_at(path: str, touched: Touched | None) -> bool:
    """Whether a pass on what `touched` names answers for the path (None: a full pass),
    counted generously: a path under any named one (it may have been a folder)."""
    if touched is None:
        return True
    named = touched.paths | touched.trees
    return path in named or any(path.startswith(p + "/") for p in named)


def _readable(content, sha256: str) -> bytes | None:
    """A version's bytes, or None for a damaged one (planted by plant_damaged_version)."""
    try:
        data = decode(content)
    except Exception:
        return None
    return data if sha256_hex(data) == sha256 else None


class SyncMachine(RuleBasedStateMachine):
    """Set `SyncMachine.make_database` (→ dsn), `drop_database` and `template` (the name of
    an empty migrated database) before running."""

    make_database = None
    drop_database = None
    template = None
    tally: Counter = Counter()  # examples and steps run, over every example of a test

    def __init__(self):
        super().__init__()
        type(self).tally["examples"] += 1
        self.base = Path(tempfile.mkdtemp(prefix="syncd-harness-"))
        self.dsn = type(self).make_database()
        self.copies: list[Copy] = []
        self.written: set[bytes] = set()  # every content a rule ever put in a file
        self.sync_points: list[tuple[str, dict[str, bytes]]] = []  # (copy, files) before good passes
        self.lost_by_the_store: set[bytes] = set()  # what a restore or a replaced store took away
        self.snapshot: str | None = None  # a database the store can be restored to
        self.counter = 0

    @initialize(n=st.integers(2, 3))
    def start(self, n):
        self.copies = [Copy(self.base, i, self.dsn) for i in range(n)]

    # ----- what people do

    def _content(self, lines: list[str], copy: Copy) -> bytes:
        self.counter += 1
        data = ("".join(lines) + f"{copy.name} wrote #{self.counter}\n").encode()
        self.written.add(data)
        return data

    def _usable(self, i: int) -> Copy | None:
        copy = self.copies[i % len(self.copies)]
        return None if copy.unmounted else copy

    @staticmethod
    def _can_hold_file(root: Path, path: str) -> bool:
        """No part of the path is a file, and the path itself is not a directory."""
        parts = path.split("/")
        for k in range(1, len(parts)):
            if (root / "/".join(parts[:k])).is_file():
                return False
        return not (root / path).is_dir()

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS), lines=st.lists(st.sampled_from(LINES), max_size=4),
          atomic=st.booleans())
    def write(self, i, path, lines, atomic):
        """A new file or a rewrite; `atomic`: the editor's way (a temp file renamed over it)."""
        type(self).tally["operations"] += 1
        copy = self._usable(i)
        if copy is None or not self._can_hold_file(copy.root, path):
            return
        target = copy.root / path
        self._make_parents(copy, path)
        data = self._content(lines, copy)
        if atomic:
            temp = target.with_name(f".{target.name}.save~")
            temp.write_bytes(data)
            os.replace(temp, target)
            copy.events += [FileCreatedEvent(os.fspath(temp)), FileMovedEvent(os.fspath(temp), os.fspath(target))]
        else:
            target.write_bytes(data)
            copy.events.append(FileModifiedEvent(os.fspath(target)))
        copy.edited.add(path)

    @staticmethod
    def _make_parents(copy: Copy, path: str) -> None:
        """The path's directories, each new one reported as the watcher reports it."""
        made = None
        for parent in reversed(Path(path).parents[:-1]):
            if not (copy.root / parent).exists():
                made = made or parent
        (copy.root / path).parent.mkdir(parents=True, exist_ok=True)
        if made is not None:
            copy.events.append(DirCreatedEvent(os.fspath(copy.root / made)))

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS), line=st.sampled_from(LINES))
    def append(self, i, path, line):
        type(self).tally["operations"] += 1
        copy = self._usable(i)
        if copy is None or not (copy.root / path).is_file():
            return
        data = (copy.root / path).read_bytes() + line.encode()
        self.written.add(data)
        (copy.root / path).write_bytes(data)
        copy.events.append(FileModifiedEvent(os.fspath(copy.root / path)))
        copy.edited.add(path)

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS), times=st.integers(2, 5))
    def rapid_edits(self, i, path, times):
        type(self).tally["operations"] += 1
        copy = self._usable(i)
        if copy is None or not self._can_hold_file(copy.root, path):
            return
        self._make_parents(copy, path)
        for _ in range(times):
            (copy.root / path).write_bytes(self._content(["rapid\n"], copy))
            copy.events.append(FileModifiedEvent(os.fspath(copy.root / path)))
        copy.edited.add(path)

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS))
    def delete(self, i, path):
        type(self).tally["operations"] += 1
        copy = self._usable(i)
        if copy is not None and (copy.root / path).is_file():
            (copy.root / path).unlink()
            copy.events.append(FileDeletedEvent(os.fspath(copy.root / path)))
            copy.edited.add(path)

    @rule(i=st.integers(0, 2), j=st.integers(0, 2), path=st.sampled_from(PATHS),
          mine=st.sampled_from(["append", "delete"]), theirs=st.sampled_from(["append", "delete"]))
    def race(self, i, j, path, mine, theirs):
        """Two copies change the same synced file before either syncs, then the second one's
        pass runs first: the races a sync tool exists to settle (an edit here and a delete
        there, two edits at once), too rare to arise from single steps in a short run."""
        first, second = self._usable(i), self._usable(j)
        if first is None or second is None or first is second:
            return

        def synced_on_both() -> bool:
            return all((c.root / path).is_file() and c.journal.base(path) for c in (first, second))
        if not synced_on_both():  # make it a file both copies have synced (faults permitting)
            self.write(i, path, [], atomic=False)
            self.sync(i)
            self.sync(j)
            if not synced_on_both():
                return
        type(self).tally["races"] += 1
        for k, what in ((i, mine), (j, theirs)):
            self.append(k, path, f"race on c{k}\n") if what == "append" else self.delete(k, path)
        self.sync(j)
        self.sync(i)

    @rule(i=st.integers(0, 2), names=st.sampled_from([PATHS, FOLDERS]), data=st.data())
    def rename(self, i, names, data):
        """A file or a folder moved (a case-only rename among them: a.md → A.md). Files take
        file names and folders folder names: a file on one copy where another has a folder
        of that name does not converge (a known limit, see the README)."""
        type(self).tally["operations"] += 1
        source, dest = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
        copy = self._usable(i)
        if copy is None or source == dest or not (copy.root / source).exists() or (copy.root / dest).exists():
            return
        if dest.startswith(source + "/") or not self._can_hold_file(copy.root, dest):
            return
        self._make_parents(copy, dest)
        moved = [p for p in copy.files() if p == source or p.startswith(source + "/")]
        kind = DirMovedEvent if (copy.root / source).is_dir() else FileMovedEvent
        os.rename(copy.root / source, copy.root / dest)
        copy.events.append(kind(os.fspath(copy.root / source), os.fspath(copy.root / dest)))
        copy.edited.update(moved, (dest + p[len(source):] for p in moved))

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS), seconds=st.sampled_from([-86400 * 400, -5, 3600 * 48]))
    def clock_jump(self, i, path, seconds):
        """The machine's clock jumped: the file's times say it changed long ago, or in the future."""
        type(self).tally["faults"] += 1
        copy = self._usable(i)
        if copy is not None and (copy.root / path).is_file():
            st_ = os.stat(copy.root / path)
            os.utime(copy.root / path, ns=(st_.st_atime_ns, st_.st_mtime_ns + seconds * 10**9))
            copy.events.append(FileModifiedEvent(os.fspath(copy.root / path)))  # (IN_ATTRIB)

    @rule(i=st.integers(0, 2), path=st.sampled_from(PATHS), delay_us=st.integers(0, 400), in_place=st.booleans())
    def save_racing_a_pull(self, i, path, delay_us, in_place):
        """The copy's next pass writes a file, and the user's save of it lands `delay_us`
        after syncd's rename (the content is new: the harness can tell who wrote what)."""
        type(self).tally["faults"] += 1
        copy = self._usable(i)
        if copy is not None:
            copy.racing_save = (delay_us, in_place, self._content(["raced\n"], copy))

    # ----- syncing, and faults

    @rule(i=st.integers(0, 2))
    def sync(self, i):
        self._pass(self.copies[i % len(self.copies)], None)

    @rule(i=st.integers(0, 2), data=st.data())
    def event_sync(self, i, data):
        """The pass a daemon makes on what its watcher reported since its last pass, with
        those events lost, duplicated or reordered: a lost one delays a change until a full
        pass (never anything else); with none lost, the pass leaves nothing a full pass would
        do on this copy's side (what `preview` plans from the tree and the journal)."""
        type(self).tally["event passes"] += 1
        copy = self.copies[i % len(self.copies)]
        events = list(copy.events)
        kept = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)), label="kept")
        delivered = [e for e, keep in zip(events, kept) if keep]
        delivered += data.draw(st.lists(st.sampled_from(events), max_size=3), label="duplicated") if events else []
        delivered = data.draw(st.permutations(delivered), label="order")
        lost = len(set(map(id, delivered))) < len(events)
        touched = Touched(set(copy.pending))
        said = [touched_by(event, os.fspath(copy.root), IgnoreRules()) for event in delivered]
        for one in said:
            if one is not None:
                touched.update(one)
        if copy.full_next or None in said:  # a first pass after a start or a failed pass is a full one
            touched = None
        copy.missed |= lost
        faulty = bool(copy.store.fault or copy.disk_fault or copy.write_kill or copy.racing_save or copy.unmounted)
        report = self._pass(copy, touched)
        if report is None or touched is None or copy.missed or faulty:
            return
        # the directories above what the pass wrote here changed by its writes (a folder a pull
        # filled is no empty-directory entry any more): a full pass, too, leaves them for the next
        written = [*report.pulled, *report.deleted_local, *report.moved, *report.moved.values()]
        left = (set(report.deferred) | set(report.skipped) | set(report.held_deletes) | copy.journal.held()
                | set(copy.pending) | {a for p in written for a in ancestors(p)})
        plan = Executor(copy.root, copy.journal, copy.store, who=copy.name).preview()
        missed = {p for a in (Action.PUSH, Action.DELETE_REMOTE, Action.MOVE_REMOTE, Action.MERGE)
                  for p in plan.get(a, []) if p not in left}
        assert not missed, f"{copy.name}: a pass on its events left these for a full pass: {sorted(missed)}"

    @rule(data=st.data())
    def event_sync_everyone(self, data):
        """An event pass on every copy in turn, as running daemons make them after a change."""
        for i in range(len(self.copies)):
            self.event_sync(i, data)

    def _pass(self, copy: Copy, touched: Touched | None):
        """A pass on the copy (on what `touched` names, None: a full one); its report, None
        when it did not finish."""
        type(self).tally["syncs"] += 1
        before = copy.files()
        tombstones = self._tombstones(copy)
        saved: list[str] = []
        copy.events = []
        if touched is None:
            copy.missed = False
        copy.full_next = True  # unless it finishes
        try:
            with faulty_writes(copy), racing_save(copy, saved):
                report = Executor(copy.root, copy.journal, copy.store, who=copy.name).sync_once(touched)
        except Crash:
            copy.restart()
            return None
        except StoreUnavailable:
            return None  # the next pass retries; the daemon would back off
        except Paused:
            assert copy.unmounted is not None or not copy.root.is_dir(), "paused with its root in place"
            return None
        finally:
            copy.edited.update(saved)  # the user's, saved after the pass looked: not yet synced
            copy.events += [FileModifiedEvent(os.fspath(copy.root / p)) for p in saved]
            if copy.unmounted is not None:  # the guard: a faulted root never becomes remote deletes
                assert self._tombstones(copy) == tombstones, "an unmounted root's files were deleted in the store"
        copy.full_next = False
        # a daemon's next pass looks at them again (the unsettled: once the debounce has passed)
        copy.pending = set(report.deferred) | set(report.failed) | set(report.unsettled)
        # its own writes, as the watcher reports them (the next pass looks at their directories)
        copy.events += [FileModifiedEvent(os.fspath(copy.root / p)) for p in report.pulled]
        copy.events += [FileDeletedEvent(os.fspath(copy.root / p)) for p in report.deleted_local]
        copy.events += [FileMovedEvent(os.fspath(copy.root / old), os.fspath(copy.root / new))
                        for new, old in report.moved.items()]
        self._check_conflicts(copy, report, saved, touched)
        if copy.disk_fault is None:  # a held path's file stays the user's to change: not a sync point,
            left = copy.journal.held() | set(report.skipped)  # nor one the pass said it could not sync
            self.sync_points.append((copy.name, {p: d for p, d in before.items()
                                                 if p not in left and _looked_at(p, touched)}))
        return report

    @staticmethod
    def _check_conflicts(copy: Copy, report, saved: list[str] = (), touched: Touched | None = None) -> None:
        """A conflict is held only where a person changed the file here since it last synced:
        a file that holds what a pass wrote, or what the store has, is never one (not after a
        crash, nor with its journal lost). Then what the pass settled is synced."""
        held = copy.journal.held()
        false = sorted(held - copy.edited)
        assert not false, f"{copy.name} holds conflicts on files nobody changed there: {false}"
        if copy.unmounted is None:  # (a pass on an empty mount point leaves the volume's edits edits)
            copy.edited &= (held | set(report.skipped) | set(report.deferred) | set(report.unsettled) | set(saved)
                            | {p for p in copy.edited if not _looked_at(p, touched)})

    @rule()
    def sync_everyone(self):
        """A pass on every copy in turn, as running daemons would make after a change."""
        for i in range(len(self.copies)):
            self.sync(i)

    @rule(i=st.integers(0, 2), kind=st.sampled_from(["kill-before", "kill-after", "drop"]), at=st.integers(0, 6))
    def arm_store_fault(self, i, kind, at):
        """The copy's next pass dies (or loses its connection) at its `at`-th store call."""
        type(self).tally["faults"] += 1
        self.copies[i % len(self.copies)].store.fault = (kind, at)

    @rule(i=st.integers(0, 2), at=st.integers(0, 8), after=st.booleans())
    def arm_write_kill(self, i, at, after):
        """The copy's next pass dies at its `at`-th file write, as a kill mid-pull does."""
        type(self).tally["faults"] += 1
        self.copies[i % len(self.copies)].write_kill = (at, after)

    @rule(i=st.integers(0, 2), code=st.sampled_from([errno.ENOSPC, errno.EACCES]), at=st.integers(0, 3))
    def disk_refuses(self, i, code, at):
        type(self).tally["faults"] += 1
        self.copies[i % len(self.copies)].disk_fault = (code, at)

    @rule(i=st.integers(0, 2))
    def disk_recovers(self, i):
        type(self).tally["operations"] += 1
        self.copies[i % len(self.copies)].disk_fault = None

    @rule(i=st.integers(0, 2), how=st.sampled_from(["delete", "garbage", "truncate"]))
    def damage_journal(self, i, how):
        """Between two runs of the copy's process, its journal is lost or damaged."""
        type(self).tally["faults"] += 1
        copy = self.copies[i % len(self.copies)]
        if copy.unmounted:  # with both its journal and its root gone, it would not know its root
            return
        copy.journal.db.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{copy.journal_path}{suffix}").unlink(missing_ok=True)
        if how == "delete":
            copy.journal_path.unlink()
        elif how == "garbage":
            copy.journal_path.write_bytes(os.urandom(3000))
        else:
            with open(copy.journal_path, "r+b") as f:
                f.truncate(os.path.getsize(copy.journal_path) // 2)
        copy.journal = Journal(copy.journal_path)
        copy.full_next = True

    def _databases(self):
        """Every connection to the store closed (the copies reconnect at their next call), and
        an admin connection for CREATE/DROP DATABASE."""
        for copy in self.copies:
            copy.store.close()
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        return info["dbname"], psycopg.connect(psycopg.conninfo.make_conninfo(self.dsn, dbname="postgres"),
                                               autocommit=True)

    @rule()
    def take_snapshot(self):
        """A backup of the store as it is now (what pg_dump would restore)."""
        type(self).tally["operations"] += 1
        name, admin = self._databases()
        with admin:
            if self.snapshot:
                admin.execute(f'drop database "{self.snapshot}"')
            self.snapshot = f"{name}_snap"
            admin.execute(f'create database "{self.snapshot}" template "{name}"')

    @rule(how=st.sampled_from(["restore", "replace"]))
    def rewind_store(self, how):
        """The store is restored from the backup (whatever came after it is gone from the
        store, while the copies still hold it), or replaced by an empty one (another
        database behind the same URL). What only the store had is lost by that, not by
        syncd; a file whose content the store lost may be held as a conflict."""
        if how == "restore" and not self.snapshot:
            return
        type(self).tally["faults"] += 1
        before = self._stored()
        name, admin = self._databases()
        with admin:
            admin.execute(f'drop database "{name}" with (force)')
            admin.execute(f'create database "{name}" template "{self.snapshot if how == "restore" else type(self).template}"')
        if how == "replace":
            for copy in self.copies:  # `syncd init` against the new store, on each machine
                store = PostgresStore(self.dsn, "ws", copy.store.device_id)
                store.open(create=True, device_name=copy.name)
                store.close()
        self._store_lost(before)

    def _store_lost(self, before: set[bytes]) -> None:
        self.lost_by_the_store |= before - self._stored()
        with psycopg.connect(self.dsn) as conn:
            heads = {p: s for p, s in conn.execute("select path, sha256 from documents where not deleted")}
        for copy in self.copies:  # which side is newer, nobody can tell now: either may be held
            copy.edited |= {p for p, d in copy.files(volume=True).items() if heads.get(p) != sha256_hex(d)}

    @rule(n=st.integers(0, 20), how=st.sampled_from(["int", "list", "object", "bool", "spaced base64", "wrong hash"]))
    def plant_damaged_version(self, n, how):
        """A version no client could have made, written behind the contract's back (a hostile
        or broken writer): every copy must go on syncing every other path."""
        with psycopg.connect(self.dsn) as conn:
            docs = conn.execute("select id, workspace_id, path, version from documents order by path").fetchall()
            if not docs:
                return
            type(self).tally["faults"] += 1
            doc, ws, path, version = docs[n % len(docs)]
            content = {"int": {"encoding": "utf-8", "format": "text", "text": 42},
                       "list": [1, 2], "object": {"encoding": "utf-8", "text": {"a": 1}},
                       "bool": True, "spaced base64": {"encoding": "base64", "data": "aGVs\nbG8="},
                       "wrong hash": {"encoding": "utf-8", "format": "text", "text": "tampered\n"}}[how]
            (seq,) = conn.execute("update workspaces set last_seq = last_seq + 1 where id = %s returning last_seq",
                                  (ws,)).fetchone()
            digest = sha256_hex(b"what it claims to be")
            conn.execute("insert into document_versions (document_id, workspace_id, path, version, parent_version,"
                         " content, sha256, size, deleted, origin, seq) values (%s, %s, %s, %s, %s, %s, %s, 5, false,"
                         " 'sync', %s)", (doc, ws, path, version + 1, version, json.dumps(content), digest, seq))
            conn.execute("update documents set version = %s, content = %s, sha256 = %s, deleted = false, seq = %s "
                         "where id = %s", (version + 1, json.dumps(content), digest, seq, doc))

    @rule(i=st.integers(0, 2))
    def unmount(self, i):
        """The root's volume goes away and leaves an empty mount point (once the copy has
        synced a file: before that an empty mount point and an empty root look the same,
        and syncd syncs into whichever is there; see the README's known limits)."""
        type(self).tally["faults"] += 1
        copy = self._usable(i)
        if copy is None or not any(b.sha256 for b in copy.journal.bases().values()):
            return
        copy.unmounted = copy.root.with_name("tree.away")
        copy.root.rename(copy.unmounted)
        copy.root.mkdir()
        copy.events.append(DirDeletedEvent(os.fspath(copy.root)))

    @rule(i=st.integers(0, 2))
    def remount(self, i):
        type(self).tally["operations"] += 1
        unmounted = [c for c in self.copies if c.unmounted]  # (no precondition: which rules exist
        if unmounted:                                          # must not depend on timing)
            self._remount(unmounted[i % len(unmounted)])

    @staticmethod
    def _remount(copy: Copy) -> None:
        # the mount point holds only what passes pulled into it (nobody edits an unmounted
        # copy here), e.g. after its journal was lost too: the volume covers it again
        shutil.rmtree(copy.root)
        copy.unmounted.rename(copy.root)
        copy.unmounted = None
        copy.events.append(DirDeletedEvent(os.fspath(copy.root)))

    # ----- invariants

    def _tombstones(self, copy: Copy) -> int:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("select count(*) from document_versions where deleted and device_id = %s",
                                (copy.store.device_id,)).fetchone()[0]

    def _stored(self) -> set[bytes]:
        """Every content the store holds in a version a client can read."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("select content, sha256 from document_versions where not deleted").fetchall()
        return {data for data in (_readable(c, sha) for c, sha in rows) if data is not None}

    @invariant()
    def check_step(self):
        if not self.copies:
            return
        type(self).tally["steps"] += 1  # (after the start, too: one more than the rules run)
        # nothing written outside the copies' own roots and state
        for entry in self.base.iterdir():
            assert entry.name in {c.name for c in self.copies}, f"unexpected {entry}"
            assert {p.name for p in entry.iterdir()} <= {"tree", "tree.away", "state"}, list(entry.iterdir())
        # no partial file under a real name: each is something written, or a stored version
        stored = None
        for copy in self.copies:
            for path, data in copy.files().items():
                if Path(path).name.startswith(TEMP_PREFIX) or data in self.written:
                    continue
                stored = self._stored() if stored is None else stored
                assert data in stored, f"{copy.name}:{path} holds content nobody wrote: {data[:80]!r}"
        # the feed: each document's versions numbered 1..n (from the moved version's successor
        # for the tombstone a move leaves at the old path), in the order of their sequence
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("select document_id, version, seq, moved_to is not null from document_versions "
                                "order by document_id, version").fetchall()
        by_doc: dict = {}
        for doc, version, seq, moved in rows:
            by_doc.setdefault(doc, []).append((version, seq, moved))
        for versions in by_doc.values():
            first = versions[0][0] if versions[0][2] else 1
            assert [v for v, _, _ in versions] == list(range(first, first + len(versions))), versions
            assert [s for _, s, _ in versions] == sorted(s for _, s, _ in versions), versions

    def teardown(self):
        try:
            if self.copies:
                self._quiesce_and_check()
        finally:
            for copy in self.copies:
                copy.journal.db.close()
                copy.store.close()
            shutil.rmtree(self.base, ignore_errors=True)
            type(self).drop_database(self.dsn)
            if self.snapshot:
                type(self).drop_database(psycopg.conninfo.make_conninfo(self.dsn, dbname=self.snapshot))

    def _quiesce_and_check(self):
        for copy in self.copies:
            copy.store.fault = copy.disk_fault = copy.write_kill = None
            if copy.unmounted:
                self._remount(copy)
        for _ in range(6):  # until a whole round moves nothing
            moved = False
            for copy in self.copies:
                try:
                    report = Executor(copy.root, copy.journal, copy.store, who=copy.name).sync_once()
                except StoreUnavailable:  # a connection dropped by the last fault: the daemon retries
                    moved = True
                    continue
                self._check_conflicts(copy, report)
                # anything this pass put in the store (a settled path, a move) is news to the others
                moved |= bool(report.pushed or report.pulled or report.deleted_local or report.deleted_remote
                              or report.moved or report.merged or report.resolved or report.deferred)
            if not moved:
                break
        else:
            raise AssertionError("the copies never settled")
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("select path, content, sha256 from documents where not deleted").fetchall()
        heads = {p: _readable(c, sha) for p, c, sha in rows}
        damaged = {p for p, data in heads.items() if data is None}  # each copy keeps what it had there
        for copy in self.copies:
            held = copy.journal.held() | damaged
            files = copy.files()
            assert not [p for p in files if Path(p).name.startswith(TEMP_PREFIX)], "temp files left behind"
            mine = {p: d for p, d in files.items() if p not in held}
            theirs = {p: d for p, d in heads.items() if p not in held}
            assert mine == theirs, f"{copy.name} differs from the store: " \
                f"{sorted(set(mine.items()) ^ set(theirs.items()))[:6]}"
        # no lost write: what any copy held at a sync point is in the store's versions or on a disk
        recoverable = self._stored() | {d for c in self.copies for d in c.files().values()} | self.lost_by_the_store
        for name, files in self.sync_points:
            for path, data in files.items():
                assert data in recoverable, f"lost: {name}:{path} = {data[:80]!r}"
