"""The mass-delete valve counts one `rm` as one, however many passes its unlinks reach."""
from __future__ import annotations

import json

import pytest

from copies import Copy
from legacy_repo import write

pytestmark = pytest.mark.usefixtures("private_xdg")


def test_a_mass_delete_split_over_two_passes_is_held_at_the_second(tmp_path, dsn):
    """A pause under load, or a tool deleting in batches, splits one delete over passes,
    each under the limits; the deletes the last minute sent count with a pass's own."""
    a = Copy(tmp_path, "a", dsn)
    a.init()
    for n in range(100):
        write(a.root, f"f{n:03d}.md", f"{n}\n")
    a.sync()
    for n in range(40):
        (a.root / f"f{n:03d}.md").unlink()
    assert a.sync()["deleted_remote"] == 40  # under the limits on their own
    for n in range(40, 80):
        (a.root / f"f{n:03d}.md").unlink()
    second = a.sync(expect=3)
    assert len(second["held_deletes"]) == 40 and second["deleted_remote"] == 0
    said = a.cli("status", expect=3).output
    assert "held deletes: 40" in said
    a.cli("resume", "--allow-deletes")
    assert a.sync()["deleted_remote"] == 40
    # what was allowed is not counted again: the next delete goes through
    (a.root / "f099.md").unlink()
    assert a.sync()["deleted_remote"] == 1


def test_deletes_a_minute_apart_are_each_their_own(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    for n in range(100):
        write(a.root, f"f{n:03d}.md", f"{n}\n")
    a.sync()
    for n in range(40):
        (a.root / f"f{n:03d}.md").unlink()
    a.sync()
    journal = a.journal()
    sent = json.loads(journal.get_meta("recent_deletes"))
    journal.set_meta("recent_deletes", json.dumps([[t - 61, n] for t, n in sent]))  # a minute on
    journal.close()
    for n in range(40, 80):
        (a.root / f"f{n:03d}.md").unlink()
    assert a.sync()["deleted_remote"] == 40
