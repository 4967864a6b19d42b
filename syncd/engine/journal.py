"""The local journal: what this working copy knows, in SQLite (WAL), outside the tree.

* `base`: per path, the version last synced and its content hash (NULL hash: a tombstone).
  This is the common ancestor reconcile compares both sides against.
* `remote`: per path, the newest store head seen in the feed, stored in the same
  transaction as the feed cursor, so a crash between pulling the feed and applying it
  loses nothing: the next run still knows the remote side changed.
* `stat_cache`: size/mtime/inode/ctime → sha256 of local files, so unchanged files are not
  re-read.
* `conflicts`: held paths, neither pushed nor pulled until resolved, with the resolution a
  user asked for (`syncd resolve`) until a pass carries it out.
* `allowed`: paths pushed although their content looks like a credential (`syncd allow`).
"""
from __future__ import annotations

import fcntl
import functools
import logging
import os
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from syncd.content import DIRECTORY
from syncd.engine.entries import packed_stat
from syncd.engine.identity import Mark
from syncd.engine.ignore import TEMP_PREFIX
from syncd.engine.reconcile import Base, Remote
from syncd.engine.scanner import Stat

log = logging.getLogger("syncd.journal")
_DAMAGED = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
LOCK_PROBE_WAIT = 1.0  # seconds a held lock is retried: longer than any look by `locked_by`

_SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists base (path text primary key, version integer not null, sha256 text);
create table if not exists remote (path text primary key, version integer not null, sha256 text);
create table if not exists stat_cache (
  path text primary key, size integer not null, mtime_ns integer not null,
  ino integer not null, ctime_ns integer not null, sha256 text not null);
create table if not exists conflicts (
  path text primary key, local_sha256 text, base_version integer, remote_version integer,
  remote_sha256 text, detected_at real not null);
"""

# Schema changes of existing journals, in order; `pragma user_version` counts those applied.
_UPGRADES = [
    # request: the resolution asked for; merge_local: the local content a conflict-marker
    # file replaced (it becomes the merge's side); marker_sha256: that marker file's hash
    """alter table conflicts add column request text;
       alter table conflicts add column merge_local blob;
       alter table conflicts add column marker_sha256 text;""",
    # paths `syncd allow` lets through the content check for credentials
    "create table allowed (path text primary key, allowed_at real not null);",
    # where a remote tombstone's document moved (a move, as the feed said)
    "alter table remote add column moved_to text;",
    # cached hashes from before entry identities (issue 18) say nothing of an executable bit
    # or a link: every file is read once more, so a script's mode is pushed without an edit
    "delete from stat_cache;",
    # the tables read by path, clustered on it (issue 20): a quiet full pass joins all three
    # over every file, and did two look-ups a table a file through a rowid (a third faster,
    # and the file a third smaller, at 100k files)
    """create table base_by_path (path text primary key, version integer not null, sha256 text) without rowid;
       insert into base_by_path select path, version, sha256 from base;
       drop table base;
       alter table base_by_path rename to base;
       create table remote_by_path (path text primary key, version integer not null, sha256 text,
                                    moved_to text) without rowid;
       insert into remote_by_path select path, version, sha256, moved_to from remote;
       drop table remote;
       alter table remote_by_path rename to remote;
       create table stat_cache_by_path (path text primary key, size integer not null, mtime_ns integer not null,
                                        ino integer not null, ctime_ns integer not null, sha256 text not null)
                                        without rowid;
       insert into stat_cache_by_path select path, size, mtime_ns, ino, ctime_ns, sha256 from stat_cache;
       drop table stat_cache;
       alter table stat_cache_by_path rename to stat_cache;""",
]


# SQLite's integers are signed 64-bit; inode numbers are unsigned (overlayfs with xino and
# NFS set the top bit) and a nanosecond time past 2262 fits neither: a stat is kept modulo
# 2^64, and an inode read back unsigned (a time that wrapped reads back as no file's)
_INODES = 1 << 64


def _signed(value: int) -> int:
    return (value + (_INODES >> 1)) % _INODES - (_INODES >> 1)


STATS_HELD = 4096  # changed stat-cache rows held in memory before they are written


class JournalLocked(RuntimeError):
    pass


class JournalUnwritable(RuntimeError):
    """The journal's disk is full or failing, or its directory cannot be made: nothing syncs until it can be
    written."""


_CANNOT_WRITE = (8, 10, 13)  # SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL (primary codes)


def _saying_unwritable(run):
    def call(self, *args):
        try:
            return run(self, *args)
        except sqlite3.OperationalError as exc:
            raise self._unwritable(exc) from exc
    return call


class _Connection(sqlite3.Connection):
    """Says a journal that cannot be written as such, with its path and the fix."""

    execute = _saying_unwritable(sqlite3.Connection.execute)
    executemany = _saying_unwritable(sqlite3.Connection.executemany)
    executescript = _saying_unwritable(sqlite3.Connection.executescript)

    def _unwritable(self, exc: sqlite3.OperationalError) -> Exception:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in _CANNOT_WRITE:
            return exc
        return JournalUnwritable(f"the journal {self.path} cannot be written ({exc}); nothing syncs until it "
                                 "can (free space on its disk); nothing is lost meanwhile")


@dataclass(frozen=True)
class Conflict:
    path: str
    local_sha256: str | None
    base_version: int | None
    remote_version: int | None
    remote_sha256: str | None
    detected_at: float
    request: str | None = None  # local | remote | both | merged
    merge_local: bytes | None = None
    marker_sha256: str | None = None


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise JournalUnwritable(f"the state directory {self.path.parent} cannot be made ({exc.strerror}): make "
                                    "its parent writable, or set state_dir in the config") from exc
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED:
                raise
            self.db = self._open_afresh(exc)
        self._lock_fd: int | None = None
        self._stats_dirty: dict[str, tuple[Stat, str] | None] = {}

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=_Connection)
        db.path = self.path
        try:
            # A journal already made and upgraded is opened without a statement that writes:
            # `syncd status` run in a loop must not take the write lock a daemon's pass needs.
            version = db.execute("pragma user_version").fetchone()[0]
            if db.execute("pragma journal_mode").fetchone()[0] != "wal":
                db.execute("pragma journal_mode = wal")
            db.execute("pragma synchronous = full")
            if version < len(_UPGRADES):
                db.executescript(_SCHEMA)
            for n, script in enumerate(_UPGRADES[version:], start=version + 1):
                db.executescript(f"begin; {script} pragma user_version = {n}; commit;")
            db.execute("select count(*) from meta").fetchone()  # reads a page: damage shows here
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _open_afresh(self, damage: sqlite3.DatabaseError) -> sqlite3.Connection:
        """A damaged journal is set aside and a new one started. Nothing is lost by that: the
        journal only remembers what was last synced, and without it the next pass infers each
        file's base from the store's history; what matches no version is merged or held as a
        conflict, never overwritten."""
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(f"{aside}{suffix}")
        log.warning("the journal %s was damaged (%s); it is kept as %s and a new one is started: "
                    "the next pass compares disk and store afresh (a file holding a stored version is "
                    "that version; other differences are merged or held, never overwritten)", self.path, damage, aside)
        return self._open()

    def close(self) -> None:
        try:
            self.flush_stats()
        except JournalUnwritable as exc:  # only hashes to compute again next time
            log.warning("%s", exc)
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _take_lock(self, wait: float) -> int | None:
        """An fd holding the exclusive lock beside the journal, or None when another process
        keeps it for longer than `wait` seconds."""
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.01)

    def lock(self) -> None:
        """One syncd per working copy: hold an exclusive lock beside the journal (waiting
        out `locked_by`, which takes it for an instant to look)."""
        fd = self._take_lock(LOCK_PROBE_WAIT)
        if fd is None:
            raise JournalLocked(f"another syncd (pid {self._holder()}) is already syncing this working "
                                f"copy (lock {self.path.with_suffix('.lock')})")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _holder(self) -> str:
        try:
            return self.path.with_suffix(".lock").read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    @contextmanager
    def transaction(self):
        """One SQLite transaction; joins the enclosing one when there is one.

        Grouping many records in one commit is safe: a record lost in a crash only means the
        next pass finds the same content on both sides and adopts it.
        """
        if self.db.in_transaction:
            yield
            return
        self.db.execute("begin")
        try:
            yield
        except BaseException:
            self.db.execute("rollback")
            raise
        self.db.execute("commit")

    def locked_by(self) -> int | None:
        """The pid of the syncd holding this working copy, or None."""
        fd = self._take_lock(0)
        if fd is None:
            holder = self._holder()
            return int(holder) if holder.isdigit() else -1
        os.close(fd)
        return None

    # meta

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("select value from meta where key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("insert or replace into meta values (?, ?)", (key, value))

    @functools.cached_property
    def device_id(self) -> str:
        """This working copy's identity in the store, made once and kept here (read once:
        every file a pass writes is named with it)."""
        found = self.get_meta("device_id")
        if found is None:
            found = str(uuid.uuid4())
            self.set_meta("device_id", found)
        return found

    @functools.cached_property
    def temp_prefix(self) -> str:
        """How this copy's temporary files are named: only those are ever cleaned up."""
        return f"{TEMP_PREFIX}{self.device_id[:8]}-"

    @property
    def cursor(self) -> int:
        return int(self.get_meta("cursor") or 0)

    # base and remote

    def bases(self) -> dict[str, Base]:
        return {p: Base(v, s) for p, v, s in self.db.execute("select path, version, sha256 from base")}

    def base(self, path: str) -> Base | None:
        row = self.db.execute("select version, sha256 from base where path = ?", (path,)).fetchone()
        return Base(*row) if row else None

    def remote(self, path: str) -> Remote | None:
        row = self.db.execute("select version, sha256, moved_to from remote where path = ?", (path,)).fetchone()
        return Remote(*row) if row else None

    def bases_of(self, paths) -> dict[str, Base]:
        """The bases of these paths only (a pass on what events named: no load of the tree's)."""
        return {p: Base(v, s) for p, v, s in self._of("select path, version, sha256 from base", paths)}

    def remotes_of(self, paths) -> dict[str, Remote]:
        return {p: Remote(v, s, m) for p, v, s, m in self._of("select path, version, sha256, moved_to from remote",
                                                            paths)}

    def _of(self, query: str, paths):
        """The rows of these paths, each with the caller's own string for its path, not a
        copy of it (a first pull of 100k files: 8 MiB)."""
        paths = list(paths)
        for i in range(0, len(paths), 500):
            chunk = {p: p for p in paths[i:i + 500]}
            for path, *rest in self.db.execute(f"{query} where path in ({','.join('?' * len(chunk))})", list(chunk)):
                yield chunk[path], *rest

    def known_under(self, directory: str) -> set[str]:
        """Every path with a base or a known head under the directory (by the primary keys'
        order: '/' + 1 is '0')."""
        low, high = directory + "/", directory + "0"
        return {p for (p,) in self.db.execute(
            "select path from base where path > ? and path < ? union select path from remote where path > ? and "
            "path < ?", (low, high, low, high))}

    def stat_rows(self) -> tuple[dict[str, bytes], set[str], dict[str, str]]:
        """The stat cache in two: the paths whose cached content is their base and their
        known head, with their cached stat (`packed_stat`): unchanged since
        they last synced while their stat is still that one; and the other paths, with
        those that have a base or a head and no cached stat (what the stat cache holds in
        memory is written first). Third, those of them with no cached stat whose base is
        their head, with its sha256: a file holding it is in sync (the files a pull wrote,
        whose stats are never cached at once). One pass over the stat cache, and over the
        bases and heads only when some of them have no cached stat (most passes: none has),
        all in one snapshot."""
        self.flush_stats()
        clean, other, synced = {}, set(), {}
        with_base = with_remote = 0  # stat-cache paths that have a base, a head
        with self.transaction():
            for p, size, mtime, ino, ctime, kind in self.db.execute(
                    "select s.path, s.size, s.mtime_ns, s.ino, s.ctime_ns, case when b.sha256 = s.sha256 and "
                    "r.version = b.version and r.sha256 = b.sha256 then 0 else 1 + (b.path is not null) + "
                    "2 * (r.path is not null) end from stat_cache s left join base b on b.path = s.path "
                    "left join remote r on r.path = s.path"):
                if not kind:
                    clean[p] = packed_stat(size, mtime, ino % _INODES, ctime)
                else:
                    other.add(p)
                    with_base += (kind - 1) & 1
                    with_remote += (kind - 1) >> 1
            for p, sha in self.db.execute(
                    "select b.path, (select b.sha256 from remote r where r.path = b.path and r.version = b.version "
                    "and r.sha256 = b.sha256 and b.sha256 <> ?) from base b where (select count(*) from base) > ? "
                    "and not exists (select 1 from stat_cache where path = b.path) union all select path, null "
                    "from remote r where (select count(*) from remote) > ? and not exists (select 1 from base where "
                    "path = r.path) and not exists (select 1 from stat_cache where path = r.path)",
                    (DIRECTORY, with_base + len(clean), with_remote + len(clean))):
                other.add(p)
                if sha is not None:
                    synced[p] = sha
        return clean, other, synced

    def has_bases(self) -> bool:
        return self.db.execute("select exists (select 1 from base)").fetchone()[0] == 1

    def synced_files(self) -> int:
        """Files (not tombstones nor empty directories) with a base: the tree the mass-delete
        limits measure."""
        return self.db.execute("select count(*) from base where sha256 is not null and sha256 <> ?",
                               (DIRECTORY,)).fetchone()[0]

    @property
    def mark(self) -> Mark | None:
        """The newest change this copy knows the store has (see syncd.engine.identity)."""
        return Mark.loads(self.get_meta("mark"))

    def note_change(self, mark: Mark) -> None:
        known = self.mark
        if known is None or mark.seq > known.seq:
            self.set_meta("mark", mark.dumps())

    def forget_store(self) -> None:
        """Forget what this copy knew of the store: its feed cursor, bases and heads. The
        local files, the stat cache and held conflicts stay (a conflict loses its base
        version, which named a version of the other history)."""
        with self.transaction():
            self.db.execute("delete from base")
            self.db.execute("delete from remote")
            self.db.execute("update conflicts set base_version = null")
            self.db.execute("delete from meta where key in ('cursor', 'mark')")

    def record_feed(self, heads: dict[str, Remote], cursor: int, mark: Mark | None = None) -> None:
        """Newer remote heads and the cursor past them (and the last change seen, `mark`),
        atomically; never moves a head back."""
        with self.transaction():
            if mark is not None:
                self.note_change(mark)
            self.db.executemany(
                "insert into remote values (?, ?, ?, ?) on conflict (path) do update "
                "set version = excluded.version, sha256 = excluded.sha256, moved_to = excluded.moved_to "
                "where excluded.version > remote.version",
                [(p, r.version, r.sha256, r.moved_to) for p, r in heads.items()],
            )
            self.set_meta("cursor", str(cursor))

    def record_synced(self, path: str, head: Remote) -> None:
        """Both sides now hold `head`: it becomes the base (and the known remote)."""
        with self.transaction():
            self.db.execute("insert or replace into base values (?, ?, ?)", (path, head.version, head.sha256))
            self.db.execute(
                "insert into remote values (?, ?, ?, ?) on conflict (path) do update "
                "set version = excluded.version, sha256 = excluded.sha256, moved_to = excluded.moved_to "
                "where excluded.version >= remote.version",
                (path, head.version, head.sha256, head.moved_to),
            )
            self.db.execute("delete from conflicts where path = ?", (path,))

    def record_remote(self, path: str, head: Remote) -> None:
        self.record_feed({path: head}, self.cursor)

    # conflicts

    def hold(self, path: str, local_sha256: str | None, base: Base | None, remote: Remote | None) -> bool:
        """Record a conflict, or bring a held one up to date with both sides; True when new.

        A conflict-marker file being edited stays tied to the versions it was made from."""
        with self.transaction():
            if self.conflict(path) is None:
                self.db.execute(
                    "insert into conflicts (path, local_sha256, base_version, remote_version, "
                    "remote_sha256, detected_at) values (?, ?, ?, ?, ?, ?)",
                    (path, local_sha256, base.version if base else None,
                     remote.version if remote else None, remote.sha256 if remote else None, time.time()))
                return True
            self.db.execute(
                "update conflicts set local_sha256 = ?, remote_version = ?, remote_sha256 = ? "
                "where path = ? and marker_sha256 is null",
                (local_sha256, remote.version if remote else None, remote.sha256 if remote else None, path))
            return False

    def conflicts(self) -> list[Conflict]:
        return [Conflict(*row) for row in self.db.execute("select * from conflicts order by path")]

    def conflict(self, path: str) -> Conflict | None:
        row = self.db.execute("select * from conflicts where path = ?", (path,)).fetchone()
        return Conflict(*row) if row else None

    def request(self, path: str, keep: str | None) -> None:
        self.db.execute("update conflicts set request = ? where path = ?", (keep, path))

    def start_merge(self, path: str, local: bytes, marker_sha256: str) -> None:
        """Keep the local content before a conflict-marker file replaces it."""
        self.db.execute("update conflicts set merge_local = ?, marker_sha256 = ? where path = ?",
                        (local, marker_sha256, path))

    def reopen(self, path: str, local_sha256: str | None, base: Base, remote: Remote) -> None:
        """A resolution the store moved past: hold again against the new head, with the
        version the resolution started from as the base; the kept local content stays."""
        self.db.execute(
            "update conflicts set local_sha256 = ?, base_version = ?, remote_version = ?, "
            "remote_sha256 = ?, request = null, marker_sha256 = null where path = ?",
            (local_sha256, base.version, remote.version, remote.sha256, path))

    def held(self) -> set[str]:
        return {row[0] for row in self.db.execute("select path from conflicts")}

    # allowances (`syncd allow`)

    def allow(self, path: str) -> None:
        self.db.execute("insert or ignore into allowed values (?, ?)", (path, time.time()))

    def revoke(self, path: str) -> bool:
        return self.db.execute("delete from allowed where path = ?", (path,)).rowcount > 0

    def allowed(self) -> list[str]:
        return [row[0] for row in self.db.execute("select path from allowed order by path")]

    def is_allowed(self, path: str) -> bool:
        return self.db.execute("select 1 from allowed where path = ?", (path,)).fetchone() is not None

    # the stat cache: read from SQLite path by path (never loaded whole: memory stays flat
    # in the tree), what a pass changed kept in memory and written back a few thousand at a
    # time (a first sync hashes every file: held to the end, they would grow with the tree)

    def get(self, path: str) -> tuple[Stat, str] | None:
        if path in self._stats_dirty:
            return self._stats_dirty[path]
        row = self.db.execute("select size, mtime_ns, ino, ctime_ns, sha256 from stat_cache where path = ?",
                              (path,)).fetchone()
        return (Stat(row[0], row[1], row[2] % _INODES, row[3]), row[4]) if row else None

    def put(self, path: str, stat: Stat, sha256: str) -> None:
        self._hold_stat(path, (stat, sha256))

    def drop(self, path: str) -> None:
        self._hold_stat(path, None)

    def _hold_stat(self, path: str, entry: tuple[Stat, str] | None) -> None:
        self._stats_dirty[path] = entry
        if len(self._stats_dirty) >= STATS_HELD:
            self.flush_stats()

    def flush_stats(self) -> None:
        if not self._stats_dirty:
            return
        with self.transaction():
            for path, entry in self._stats_dirty.items():
                if entry is None:
                    self.db.execute("delete from stat_cache where path = ?", (path,))
                else:
                    st, sha = entry
                    self.db.execute("insert or replace into stat_cache values (?, ?, ?, ?, ?, ?)",
                                    (path, st.size, _signed(st.mtime_ns), _signed(st.ino), _signed(st.ctime_ns), sha))
        self._stats_dirty.clear()
