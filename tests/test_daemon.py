"""`syncd run` as real processes: the real watchdog observer, real signals, a real server."""
from __future__ import annotations

import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import os
import time
from pathlib import Path

import psycopg
import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from syncd.cli.errors import EXIT_NOT_SYNCED
from syncd.daemon.watcher import ChangeQueue

FAST = ("daemon: {debounce: 0.1, poll_interval: 5}",)


@pytest.fixture
def pair(tmp_path, dsn):
    env = isolated_env(tmp_path)
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    for copy in (a, b):
        copy.init("team", dsn, *FAST)
    yield a, b
    a.kill()
    b.kill()
    for copy in (a, b):  # pytest shows this only when the test failed
        if copy.log.exists():
            print(f"--- {copy.log}\n{copy.log.read_text(errors='replace')[-4000:]}")


def versions(dsn: str) -> dict[str, list[tuple[int, bool]]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select path, version, deleted from document_versions order by path, version")
        out: dict[str, list[tuple[int, bool]]] = {}
        for path, version, deleted in rows:
            out.setdefault(path, []).append((version, deleted))
        return out


def start_with_files(copy: WorkingCopy, dsn: str, count: int) -> None:
    """Give the copy `count` files, start its daemon, wait until the store has them all."""
    copy.root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (copy.root / f"f{i:03d}.md").write_text(f"{i}\n")
    copy.start()
    wait_for(lambda: len(versions(dsn)) == count)


def test_change_queue_waits_for_quiet_but_not_forever():
    q = ChangeQueue(debounce=0.5, max_delay=2.0)
    assert q.due_in(0.0) is None
    q.add(10.0)
    assert q.due_in(10.2) == pytest.approx(0.3)
    for t in (10.4, 10.8, 11.2, 11.6):  # a storm that never goes quiet
        q.add(t)
    assert q.due_in(11.7) == pytest.approx(0.3)  # bounded by max_delay from the first event
    assert q.due_in(12.0) == 0
    q.take()
    assert q.due_in(12.0) is None


def test_edits_new_files_and_deletes_reach_the_other_daemon(pair, dsn):
    a, b = pair
    a.root.mkdir(parents=True, exist_ok=True)
    a.start()
    b.start()
    latencies = []
    for i in range(10):
        data = f"edit {i}\r\nno newline".encode()
        target = a.root / "projects/P/sessions/s1/specs/spec.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        target.write_bytes(data)
        other = b.root / "projects/P/sessions/s1/specs/spec.md"
        wait_for(lambda: other.exists() and other.read_bytes() == data)
        latencies.append(time.monotonic() - start)
    print(f"edit-to-other-copy latency: median {statistics.median(latencies):.3f} s, "
          f"max {max(latencies):.3f} s over {len(latencies)} edits")
    assert statistics.median(latencies) < 5  # generous: a real target is well under a second

    (b.root / "new from b.md").write_text("new\n")
    wait_for(lambda: (a.root / "new from b.md").exists())
    (a.root / "projects/P/sessions/s1/specs/spec.md").unlink()
    specs = b.root / "projects/P/sessions/s1/specs"
    wait_for(lambda: not (specs / "spec.md").exists())
    assert specs.is_dir()  # the folder stays on a, empty: an empty directory syncs as one
    shutil.rmtree(a.root / "projects")
    wait_for(lambda: not (b.root / "projects").exists())  # removed there: removed here

    # nothing echoes: the spec went out once per edit and was deleted once, no more
    time.sleep(1)
    history = versions(dsn)["projects/P/sessions/s1/specs/spec.md"]
    assert len(history) == 11 and history[-1][1] is True
    assert a.stop() == 0 and b.stop() == 0


def test_daemons_catch_up_after_their_connections_are_killed(pair, dsn):
    a, b = pair
    a.root.mkdir(parents=True, exist_ok=True)
    a.start()
    b.start()
    (a.root / "before.md").write_text("before\n")
    wait_for(lambda: (b.root / "before.md").exists())
    with psycopg.connect(dsn, autocommit=True) as conn:
        killed = conn.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                              "where datname = current_database() and pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 4  # each daemon's store and notification connections
    (a.root / "after.md").write_text("after\n")
    (b.root / "from b.md").write_text("b\n")
    wait_for(lambda: (b.root / "after.md").exists() and (a.root / "from b.md").exists(), timeout=40)
    assert a.process.poll() is None and b.process.poll() is None


def test_a_mass_delete_waits_for_permission(pair, dsn):
    a, _ = pair
    # the valve counts the deletes of one batch: a debounce long enough that a loaded
    # machine still sees the 80 unlinks below as one
    a.config.write_text(a.config.read_text().replace("debounce: 0.1", "debounce: 2"))
    start_with_files(a, dsn, 100)
    for i in range(80):
        (a.root / f"f{i:03d}.md").unlink()
    # the held deletes are recorded during the pass, the daemon's state "held" after it
    status = wait_for(lambda: (s := a.status())["daemon"]["state"] == "held" and s)
    assert len(status["held_deletes"]) == 80 and "resume --allow-deletes" in status["daemon"]["reason"]
    time.sleep(1)
    assert not any(v[-1][1] for v in versions(dsn).values())  # nothing deleted in the store
    a.cli("resume", "--allow-deletes")
    wait_for(lambda: sum(v[-1][1] for v in versions(dsn).values()) == 80)
    wait_for(lambda: a.status()["held_deletes"] == [])


def test_a_store_change_during_a_mass_delete_does_not_let_half_of_it_through(pair, dsn):
    """CI found the valve counting two halves of one `rm`: a pass the store asked for (a
    teammate's push, or the daemon's own commit coming back as a NOTIFY) took the deletes
    seen so far while the tree was still changing, each half under the limits."""
    a, b = pair
    a.config.write_text(a.config.read_text().replace("debounce: 0.1", "debounce: 4, max_delay: 30"))
    start_with_files(a, dsn, 100)
    for i in range(40):
        (a.root / f"f{i:03d}.md").unlink()
    b.root.mkdir(parents=True, exist_ok=True)
    (b.root / "from-b.md").write_text("b\n")
    b.cli("sync", "--once")  # its NOTIFY reaches a's daemon while a's deletes settle
    for i in range(40, 80):
        (a.root / f"f{i:03d}.md").unlink()
    status = wait_for(lambda: (s := a.status())["daemon"]["state"] == "held" and s, timeout=30)
    assert len(status["held_deletes"]) == 80
    assert not any(v[-1][1] for v in versions(dsn).values())  # nothing deleted in the store
    assert (a.root / "from-b.md").read_text() == "b\n"  # the teammate's file still came


def test_a_vanished_root_pauses_the_daemon_and_deletes_nothing(pair, dsn):
    a, _ = pair
    start_with_files(a, dsn, 5)
    shutil.rmtree(a.root)
    wait_for(lambda: a.status()["daemon"]["state"] == "paused")
    assert "does not exist" in a.status()["daemon"]["reason"]
    a.root.mkdir()  # comes back empty, as an unmounted mount point would: another directory
    # the daemon looks again every PAUSED_RETRY seconds, later on a loaded machine: it stays paused
    def said_again():
        daemon = a.status()["daemon"]
        return daemon if "does not exist" not in daemon["reason"] else None
    said = wait_for(said_again, timeout=30)
    assert said["state"] == "paused" and "not the directory it was" in said["reason"]
    assert a.status_said().exit_code == EXIT_NOT_SYNCED  # a safety valve's pause: it cannot sync
    assert all(len(v) == 1 for v in versions(dsn).values())  # no tombstones
    assert a.process.poll() is None


def test_sigkill_mid_batch_leaves_nothing_partial(pair, dsn):
    a, b = pair
    a.root.mkdir(parents=True, exist_ok=True)
    expected = {}
    for i in range(1500):
        rel = f"projects/P/sessions/s{i // 50:02d}/specs/spec{i}.md"
        expected[rel] = (f"# spec {i}\n" + "text " * 200).encode()
        (a.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (a.root / rel).write_bytes(expected[rel])
    a.cli("sync", "--once")
    b.root.mkdir(parents=True, exist_ok=True)
    b.start(wait=False)
    wait_for(lambda: sum(1 for _ in b.root.rglob("*.md")) > 100, interval=0.005, timeout=60)
    b.kill()  # SIGKILL while the batch is being written
    partial = sum(1 for _ in b.root.rglob("*.md"))
    print(f"killed with {partial} of {len(expected)} files written")
    b.start()
    wait_for(lambda: b.status()["pending"]["remote"] == [] and b.status()["daemon"]["state"] == "running",
             timeout=60)
    got = {p.relative_to(b.root).as_posix(): p.read_bytes() for p in b.root.rglob("*") if p.is_file()}
    assert 100 < partial < len(expected)  # the kill really came mid-batch
    assert got == expected
    assert all(len(v) == 1 for v in versions(dsn).values())  # nothing pushed back or twice
    assert b.stop() == 0


def test_a_second_daemon_on_the_same_copy_names_the_first(pair):
    a, _ = pair
    a.root.mkdir(parents=True, exist_ok=True)
    a.start()
    result = a.cli("run", check=False)
    assert result.returncode == 1
    assert f"pid {a.process.pid}" in result.stderr
    assert a.stop(signal.SIGINT) == 0


def test_the_embedded_default_needs_no_server(tmp_path, request):
    """No database_url anywhere: init, sync --once, and a second copy, on a private server."""
    env = isolated_env(tmp_path)
    # as root, PostgreSQL runs as an unprivileged account: its home must be reachable by it
    # (pytest's tmp_path is not), and is where a user's would be, under XDG_DATA_HOME
    data_home = Path(tempfile.mkdtemp(prefix="syncd-data-"))
    data_home.chmod(0o711)
    env["XDG_DATA_HOME"] = str(data_home)
    request.addfinalizer(lambda: shutil.rmtree(data_home, ignore_errors=True))
    a, b = WorkingCopy(tmp_path, "a", env), WorkingCopy(tmp_path, "b", env)
    a.init("w", None)
    b.init("w", None)
    (a.root / "hello.md").write_text("hello from a\n")
    a.cli("sync", "--once")
    b.cli("sync", "--once")
    assert (b.root / "hello.md").read_text() == "hello from a\n"
    assert "embedded" in b.status()["store"]
    assert "embedded PostgreSQL, which syncd migrates itself" in b.cli("db", "migrate").stdout  # nothing to do
    data = data_home / "syncd" / "postgres"
    assert (data / "PG_VERSION").exists()
    assert not (data / "postmaster.pid").exists()  # stopped once nobody uses it


def test_a_running_daemon_settles_resolutions_and_publishes_a_merged_file_on_save(pair, dsn):
    a, b = pair
    a.root.mkdir(parents=True, exist_ok=True)
    for name in ("one.md", "two.md"):
        (a.root / name).write_text("base\n")
    a.cli("sync")
    b.start()
    wait_for(lambda: (b.root / "two.md").exists())
    b.stop()
    for name in ("one.md", "two.md"):  # overlapping edits while b's daemon is down
        (a.root / name).write_text("from a\n")
        (b.root / name).write_text("from b\n")
    a.cli("sync")
    b.start()
    assert sorted(c["path"] for c in b.status()["conflicts"]) == ["one.md", "two.md"]
    # the CLI asks the daemon, which holds the working copy, and waits for it
    out = b.cli("resolve", "one.md", "--keep", "local").stdout
    assert "resolved one.md: kept local" in out
    out = b.cli("resolve", "two.md", "--keep", "merged", check=False)
    assert out.returncode == 3 and "conflict markers" in out.stdout
    assert "<<<<<<<" in (b.root / "two.md").read_text()
    (b.root / "two.md").write_text("from a and b\n")  # the user saves the merge
    wait_for(lambda: b.status()["conflicts"] == [])
    a.cli("sync")
    assert (a.root / "one.md").read_text() == "from b\n"
    assert (a.root / "two.md").read_text() == "from a and b\n"
    assert b.stop() == 0


def test_a_daemon_records_what_it_pulls_in_the_git_mirror(pair, dsn):
    a, b = pair
    a.root.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(a.root), "-c", "user.name=U", "-c", "user.email=u@x"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (a.root / "README.md").write_text("readme\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    a.start()
    b.root.mkdir(parents=True, exist_ok=True)
    (b.root / "notes.md").write_text("from b\n")
    b.cli("sync")

    def mirrored():
        done = subprocess.run([*git, "show", "syncd/mirror:notes.md"], capture_output=True)
        return done.returncode == 0 and done.stdout == b"from b\n"
    wait_for(mirrored)
    author = subprocess.run([*git, "log", "-1", "--format=%an <%ae>", "syncd/mirror"],
                            capture_output=True, text=True).stdout.strip()
    assert author.startswith("b <") or "@syncd.invalid>" in author
    assert subprocess.run([*git, "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                          text=True).stdout.strip() == "main"
    assert a.stop() == 0


def test_pause_stops_syncing_until_resume_and_status_says_so(pair, dsn):
    a, b = pair
    start_with_files(a, dsn, 1)
    b.root.mkdir(parents=True, exist_ok=True)
    b.start()
    wait_for(lambda: (b.root / "f000.md").exists())
    assert "paused" in b.cli("pause").stdout
    wait_for(lambda: b.status()["daemon"]["state"] == "paused")
    assert "syncd resume" in b.status()["daemon"]["reason"]
    assert b.status_said().exit_code == 0  # a pause asked for is no trouble
    (a.root / "f000.md").write_text("edited while b is paused\n")
    (b.root / "local.md").write_text("written while paused\n")
    wait_for(lambda: versions(dsn)["f000.md"][-1][0] == 2)
    time.sleep(1.5)  # several of b's loop turns
    assert (b.root / "f000.md").read_text() == "0\n" and "local.md" not in versions(dsn)
    assert "`syncd resume` first" in b.cli("sync", check=False).stderr
    assert "resumed" in b.cli("resume").stdout
    wait_for(lambda: (b.root / "f000.md").read_text() == "edited while b is paused\n")
    wait_for(lambda: "local.md" in versions(dsn))
    wait_for(lambda: b.status()["daemon"]["state"] == "running")  # (set when the pass ends)
    b.stop()
    assert b.status()["paused"] is False
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select kind, details from activity_log "
                            "where kind in ('daemon_paused', 'daemon_running') order by id").fetchall()
    assert [k for k, _ in rows] == ["daemon_paused", "daemon_running"]
    assert "syncd pause" in rows[0][1]["reason"] and rows[1][1]["after"]["state"] == "paused"


def test_reading_the_tree_wakes_no_pass_and_floods_no_queue(tmp_path):
    """`syncd status`, a backup or a search reads every file; reads are not changes, and the
    kernel is not even asked to report them (thousands of reads once overflowed the
    inotify queue, and an overflow makes watchdog report the whole tree as changed)."""
    from syncd.daemon.watcher import Watcher
    from syncd.engine.ignore import IgnoreRules
    for n in range(200):
        (tmp_path / f"f{n}.md").write_text(f"{n}\n")
    queue = ChangeQueue(debounce=0.1, max_delay=1.0)
    watcher = Watcher(tmp_path, IgnoreRules(), queue, wake=lambda: None)
    assert watcher.start()
    try:
        for _ in range(60):  # 12,000 opens and reads, 36,000 read events
            for n in range(200):
                (tmp_path / f"f{n}.md").read_bytes()
        time.sleep(0.5)
        assert queue.due_in(time.monotonic()) is None  # (an overflow too would be in the queue)
        masks = [int(line.split("mask:")[1].split()[0], 16)
                 for fd in os.listdir("/proc/self/fdinfo")
                 for line in _read(f"/proc/self/fdinfo/{fd}").splitlines() if line.startswith("inotify wd:")]
        assert masks and not any(m & (IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE) for m in masks), [hex(m) for m in masks]
        (tmp_path / "f0.md").write_text("changed\n")
        wait_for(lambda: queue.due_in(time.monotonic()) is not None, timeout=10)
    finally:
        watcher.close()


def test_the_change_queue_counts_every_event_until_a_pass_takes_them():
    q = ChangeQueue(debounce=0.5, max_delay=2.0)
    assert [q.saw() for _ in range(3)] == [1, 2, 3]
    q.take()
    assert q.saw() == 1


def test_a_storm_of_events_stands_the_watcher_down_for_a_rescan_and_it_watches_again(tmp_path, monkeypatch):
    """A pass writing a first pull's files, or a checkout of thousands, makes several events
    a file; watchdog's threads handling them held most of the CPU the pass needed. Past the
    storm's count the watch stops and a full rescan is asked for; started again, the
    watcher sees the next change."""
    from syncd.daemon.watcher import Watcher
    from syncd.engine.ignore import IgnoreRules
    monkeypatch.setattr(Watcher, "STORM", 100)
    queue = ChangeQueue(debounce=0.05, max_delay=1.0)
    watcher = Watcher(tmp_path, IgnoreRules(), queue, wake=lambda: None)
    assert watcher.start()
    try:
        for n in range(300):
            (tmp_path / f"f{n}.md").write_text(f"{n}\n")
        wait_for(lambda: watcher.stood_down, timeout=10)
        assert not watcher.watching and watcher.observer.emitters == set()
        assert queue.take() is None  # everything: a full rescan
        (tmp_path / "during.md").write_text("unwatched\n")
        time.sleep(0.3)
        assert queue.due_in(time.monotonic()) is None  # nothing watches now: the rescan will see it
        assert watcher.start() and watcher.watching and not watcher.stood_down
        (tmp_path / "after.md").write_text("watched\n")
        wait_for(lambda: queue.due_in(time.monotonic()) is not None, timeout=10)
        assert "after.md" in queue.take().paths
    finally:
        watcher.close()


IN_ACCESS, IN_CLOSE_NOWRITE, IN_OPEN = 0x1, 0x10, 0x20  # <sys/inotify.h>


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # an fd closed since the listing
        return ""


STORM = """
import os, signal, subprocess, sys
from pathlib import Path
from syncd.config import Config
from syncd.daemon.service import Daemon
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore

root = Path(sys.argv[1])
cfg = Config(path=root / "syncd.yaml", root=root, workspace="ws", database_url=sys.argv[2], device_name="d")
daemon = Daemon(cfg, Journal(root / "journal.db"), PostgresStore(cfg.database_url, "ws"))
signal.signal(signal.SIGHUP, daemon._on_hup)
signal.signal(signal.SIGTERM, daemon._on_stop_signal)
storm = subprocess.Popen([sys.executable, "-c", f'''
import os, signal, time
for _ in range(5000):
    os.kill({os.getpid()}, signal.SIGHUP)
    time.sleep(0.0003)
os.kill({os.getpid()}, signal.SIGTERM)
'''])
turns = 0
while not daemon.stopping:  # the loop's sleep and wake-up, with nothing between
    daemon.waker.wait(1.0)
    daemon.waker.clear()
    turns += 1
storm.wait()
print(turns)
"""


STORMED = """
import json, logging, sys
from pathlib import Path
from syncd.config import Config
from syncd.daemon.service import Daemon
from syncd.daemon.watcher import Watcher
from syncd.engine.journal import Journal
from syncd.store.postgres import PostgresStore

logging.basicConfig(level=logging.INFO)
Watcher.STORM = 300
root = Path(sys.argv[1])
cfg = Config(path=root.parent / "syncd.yaml", root=root, workspace="ws", database_url=sys.argv[2], device_name="d")
journal = Journal(root.parent / "journal.db")
journal.set_meta("create_workspace", "1")
daemon = Daemon(cfg, journal, PostgresStore(cfg.database_url, "ws"))
passes = []
run_pass = Daemon._pass

def recorded(self, touched):
    done = run_pass(self, touched)
    passes.append({"full": touched is None, "watching": self.watcher.watching})
    return done

Daemon._pass = recorded
daemon.run()
print(json.dumps(passes))
"""


def workspaces(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [slug for (slug,) in conn.execute("select slug from workspaces")]


def test_a_storm_of_changes_is_one_full_pass_and_the_daemon_watches_again_for_the_next(tmp_path, dsn):
    """Past the storm's count the watch stops and a full rescan is asked for; the daemon
    watches again at once (the rest of the storm keeps that pass waiting for quiet), the
    rescan syncs the whole burst, and the next change is an event pass's."""
    tree = tmp_path / "tree"
    tree.mkdir()
    daemon = subprocess.Popen([sys.executable, "-c", STORMED, str(tree), dsn], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "ws" in workspaces(dsn), timeout=30)
        time.sleep(1.0)  # (its first pass and its watch)
        for i in range(400):
            (tree / f"burst/s{i // 10}").mkdir(parents=True, exist_ok=True)
            (tree / f"burst/s{i // 10}/f{i % 10}.md").write_text(f"{i}\n")
        wait_for(lambda: len(versions(dsn)) == 400, timeout=60)
        (tree / "after.md").write_text("after the storm\n")
        wait_for(lambda: "after.md" in versions(dsn), timeout=30)
    finally:
        daemon.terminate()
        out, err = daemon.communicate(timeout=60)
        print(err[-3000:])
    assert daemon.returncode == 0, err[-2000:]
    assert "more than 300 changes" in err and "watching stops until a full rescan" in err
    passes = json.loads(out)
    assert any(p["full"] for p in passes[1:]) and all(p["watching"] for p in passes)
    assert not passes[-1]["full"]  # (the next change: an event pass, watched again)


def test_a_signal_landing_while_the_loop_goes_to_sleep_never_hangs_it(tmp_path, dsn):
    """Found under load: a SIGTERM came while the loop was inside its wake-up's wait() or
    clear(), the handler's set() waited for the lock they held, and the daemon never
    stopped (nor logged that it would). A storm of SIGHUPs at a loop that does nothing
    but sleep and wake finds that instant within a few thousand signals."""
    tree = tmp_path / "tree"
    tree.mkdir()
    try:
        ran = subprocess.run([sys.executable, "-c", STORM, str(tree), dsn], capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("a signal handler blocked the loop it was waking") from None
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert int(ran.stdout) > 10  # the loop really turned, woken by the storm


def test_a_waker_closed_gives_its_descriptors_back_and_a_late_wake_up_is_harmless():
    """A daemon's run ends by closing its waker (a test process runs hundreds of daemons);
    a stop signal or a watcher's event that lands afterwards wakes no one and raises nothing."""
    from syncd.daemon.waker import Waker
    open_now = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_now()
    waker = Waker()
    waker.set()
    assert waker.wait(0) and open_now() == before + 3
    waker.close()
    assert open_now() == before
    waker.set()
