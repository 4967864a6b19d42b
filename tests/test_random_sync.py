"""The randomized multi-copy harness (tests/sync_harness.py) in the default run, for a
time budget: SYNCD_SOAK_SECONDS (default 40) of wall-clock time, or a fixed number of
examples with SYNCD_SOAK_EXAMPLES=N (and SYNCD_SOAK_STEPS) for long runs. Minimized cases
of what it found are kept below as plain tests."""
from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import engine as hypothesis_engine
from hypothesis.stateful import run_state_machine_as_test
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import create_database, drop_database
from sync_harness import SyncMachine
from syncd.engine.executor import Executor

EXAMPLES = int(os.environ["SYNCD_SOAK_EXAMPLES"]) if "SYNCD_SOAK_EXAMPLES" in os.environ else None
BUDGET = float(os.environ.get("SYNCD_SOAK_SECONDS", "40"))
STEPS = int(os.environ.get("SYNCD_SOAK_STEPS", "50"))
# Examples per Hypothesis run while a budget is spent: the budget is looked at only between
# runs, so no example is ever cut short (a cut example is what Hypothesis reports as flaky).
BATCH = 5
LONG_RUN = EXAMPLES is not None or "SYNCD_SOAK_SECONDS" in os.environ


def _databases(server: str, template: str) -> None:
    """A database of its own for every run of the machine."""
    SyncMachine.make_database = staticmethod(
        lambda: make_conninfo(server, dbname=create_database(server, template=template)))
    SyncMachine.drop_database = staticmethod(lambda dsn: drop_database(server, conninfo_to_dict(dsn)["dbname"]))
    SyncMachine.template = template


def _run(examples: int) -> None:
    # Shrinking a failure stops after this long (Hypothesis' default is 300 s, the suite's
    # whole per-test limit): a failure found late is still reported, minimized as far as it got.
    hypothesis_engine.MAX_SHRINKING_SECONDS = 90
    run_state_machine_as_test(SyncMachine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


@pytest.mark.timeout(0 if LONG_RUN else 300)  # long runs take their time
def test_random_operations_and_faults_lose_nothing(pg_server_dsn, template_db, record_property):
    _databases(pg_server_dsn, template_db)
    SyncMachine.tally.clear()
    started = time.monotonic()
    try:
        if EXAMPLES is not None:
            _run(EXAMPLES)
        else:
            while time.monotonic() - started < BUDGET:
                _run(BATCH)
    finally:
        tally = SyncMachine.tally
        # printed at the end of every run (conftest.py), from parallel workers too
        record_property("harness", f"harness: {tally['examples']} examples, {tally['steps'] - tally['examples']} steps "
                        f"({tally['operations']} operations, {tally['faults']} faults, {tally['syncs']} passes "
                        f"({tally['event passes']} on events), "
                        f"{tally['races']} races) in {time.monotonic() - started:.0f} s, up to {STEPS} steps each")


# ----- what the harness found, minimized and kept (each as the harness printed it)

@pytest.fixture
def machine(pg_server_dsn, template_db):
    _databases(pg_server_dsn, template_db)
    return SyncMachine


def test_found_a_disk_refusing_a_write_ended_the_whole_pass(machine):
    """The OSError escaped the executor (a daemon would have died); now the file is
    skipped with a message and pulled once the disk takes writes again."""
    state = machine()
    state.start(n=2)
    state.write(atomic=False, i=0, lines=[], path='a.md')
    state.sync(i=0)
    state.disk_refuses(at=0, code=28, i=1)
    state.sync(i=1)
    state.teardown()


def test_found_a_dropped_connection_failed_the_next_pass_of_every_copy(machine):
    """A connection the server ended while idle failed the next call; now it reconnects once."""
    state = machine()
    state.start(n=2)
    state.arm_store_fault(at=0, i=0, kind='drop')
    state.sync(i=0)
    state.write(atomic=False, i=1, lines=[], path='a.md')
    copy = state.copies[1]
    report = Executor(copy.root, copy.journal, copy.store, who=copy.name).sync_once()
    assert report.pushed == ["a.md"]  # no StoreUnavailable: it was only the idle connection
    state.teardown()


def test_found_while_building_the_journal_fault_a_damaged_journal_stopped_the_copy(machine):
    """A journal that is not a database any more raised sqlite3.DatabaseError at every start."""
    state = machine()
    state.start(n=2)
    state.write(atomic=False, i=0, lines=["alpha\n"], path='d/a.md')
    state.sync(i=0)
    state.damage_journal(how='garbage', i=0)
    state.append(i=0, path='d/a.md', line='beta\n')
    state.sync(i=0)
    state.teardown()


def test_found_a_replaced_store_repeating_a_change_at_the_seq_a_copy_saw_went_unnoticed(machine):
    """c1 saw a.md then b.md at seqs 1 and 2; the store was replaced by an empty one, and c0
    pushed its edited a.md and the same b.md again: seq 2 held the very change c1 had seen
    there. c1 never noticed, and kept the old a.md for good. Now a mark carries its moment."""
    state = machine()
    state.start(n=2)
    state.write(atomic=False, i=0, lines=[], path='a.md')
    state.write(atomic=False, i=0, lines=[], path='b.md')
    state.sync(i=0)
    state.sync(i=1)
    state.append(i=0, path='a.md', line='beta\n')
    state.rewind_store(how='replace')
    state.sync(i=0)
    state.teardown()


def test_found_the_settling_rounds_ended_before_a_copy_saw_an_edit_put_on_a_damaged_version(machine):
    """c1's edit went on top of a damaged version (reported as settled, not pushed): the
    final rounds took that for a quiet round and stopped before c0 pulled it, and c0's file
    then "differed from the store" (about one fresh-clone run in five)."""
    state = machine()
    state.start(n=2)
    state.write(atomic=False, i=0, lines=[], path='b.md')
    state.sync(i=0)
    state.sync(i=1)
    state.append(i=1, path='b.md', line='beta\n')
    state.plant_damaged_version(n=0, how='int')
    state.teardown()
