"""The reconciler, exhaustively: every combination written out by hand, plus properties."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.engine.reconcile import Action, Base, Remote, reconcile

# Local content: absent (-), the base's content (A), new content (X), the remote's new content (Y).
LOCALS = {"-": None, "A": "A", "X": "X", "Y": "Y"}
# Base: never synced, synced A at v1, synced a tombstone at v1.
BASES = {"none": None, "A1": Base(1, "A"), "-1": Base(1, None)}
# Remote: never had it, unchanged A at v1, edited to Y at v2, deleted at v2, A again at v2.
REMOTES = {"none": None, "A1": Remote(1, "A"), "Y2": Remote(2, "Y"), "-2": Remote(2, None),
           "A2": Remote(2, "A")}

N, PUSH, PULL, ADOPT, DL, DR, C = (Action.NOTHING, Action.PUSH, Action.PULL, Action.ADOPT,
                                   Action.DELETE_LOCAL, Action.DELETE_REMOTE, Action.CONFLICT)

# base, remote → the action for local = -, A, X, Y; then the same with the path held.
TABLE = {
    ("none", "none"): ((N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("none", "A1"): ((PULL, ADOPT, C, C), (C, ADOPT, C, C)),
    ("none", "Y2"): ((PULL, C, C, ADOPT), (C, C, C, ADOPT)),
    ("none", "-2"): ((ADOPT, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("none", "A2"): ((PULL, ADOPT, C, C), (C, ADOPT, C, C)),
    ("A1", "none"): ((N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("A1", "A1"): ((DR, N, PUSH, PUSH), (C, N, C, C)),
    ("A1", "Y2"): ((PULL, PULL, C, ADOPT), (C, C, C, ADOPT)),
    ("A1", "-2"): ((ADOPT, DL, PUSH, PUSH), (ADOPT, C, C, C)),
    ("A1", "A2"): ((DR, ADOPT, PUSH, PUSH), (C, ADOPT, C, C)),
    ("-1", "none"): ((N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("-1", "A1"): ((PULL, ADOPT, C, C), (C, ADOPT, C, C)),
    ("-1", "Y2"): ((PULL, C, C, ADOPT), (C, C, C, ADOPT)),
    ("-1", "-2"): ((ADOPT, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("-1", "A2"): ((PULL, ADOPT, C, C), (C, ADOPT, C, C)),
}

ROWS = [
    pytest.param(local, base, remote, held, TABLE[base, remote][held][i],
                 id=f"local={local}-base={base}-remote={remote}{'-held' if held else ''}")
    for base, remote in TABLE
    for held in (False, True)
    for i, local in enumerate(LOCALS)
]


def test_the_table_covers_every_combination():
    assert set(TABLE) == set(itertools.product(BASES, REMOTES))
    assert len(ROWS) == len(LOCALS) * len(BASES) * len(REMOTES) * 2 == 120


@pytest.mark.parametrize("local,base,remote,held,expected", ROWS)
def test_table(local, base, remote, held, expected):
    assert reconcile(LOCALS[local], BASES[base], REMOTES[remote], held=held) is expected


# Properties over a small alphabet, so that collisions (equal contents) are frequent.
shas = st.one_of(st.none(), st.sampled_from("abc"))
bases = st.one_of(st.none(), st.builds(Base, st.integers(1, 4), shas))
remotes = st.one_of(st.none(), st.builds(Remote, st.integers(1, 4), shas))


def apply(action: Action, local, base, remote):
    """What the executor makes of the three facts after carrying out `action`."""
    top = max(base.version if base else 0, remote.version if remote else 0)
    match action:
        case Action.PUSH | Action.DELETE_REMOTE:
            remote = Remote(top + 1, local)
            return local, Base(remote.version, remote.sha256), remote
        case Action.PULL | Action.DELETE_LOCAL:
            return remote.sha256, Base(remote.version, remote.sha256), remote
        case Action.ADOPT:
            return local, Base(remote.version, remote.sha256), remote
    return local, base, remote


@given(shas, bases, remotes)
def test_converges_in_one_step_unless_in_conflict(local, base, remote):
    action = reconcile(local, base, remote)
    after = apply(action, local, base, remote)
    if action is Action.CONFLICT:
        assert after == (local, base, remote)
        assert reconcile(*after, held=True) is Action.CONFLICT
    else:
        assert reconcile(*after) is Action.NOTHING


@given(shas, bases, remotes)
def test_never_loses_a_change(local, base, remote):
    """A side that changed keeps its content unless the other side already holds it."""
    action = reconcile(local, base, remote)
    b = base.sha256 if base else None
    r = remote.sha256 if remote else None
    if local is not None and local != b and local != r:
        assert action not in (Action.PULL, Action.DELETE_LOCAL, Action.ADOPT)
    if r is not None and r != b and local != r:
        assert action not in (Action.PUSH, Action.DELETE_REMOTE, Action.ADOPT)


@given(shas, bases, remotes)
def test_only_a_tombstone_deletes_a_local_file(local, base, remote):
    if reconcile(local, base, remote) is Action.DELETE_LOCAL:
        assert remote is not None and remote.sha256 is None


@given(shas, st.sampled_from("abc"), st.integers(1, 3), st.integers(0, 2))
def test_symmetric_between_local_and_remote(local, base_sha, version, ahead):
    """Mirroring the two sides mirrors the action, where both sides are known to the store.

    The mirror keeps the base and swaps the contents: local' = remote's content, remote' =
    local content at the remote's version. Versions break exact symmetry only for ADOPT vs
    NOTHING (a version number is a fact of the store side alone), so those two are one class.
    """
    base = Base(version, base_sha)
    remote_sha = local if ahead == 0 else "abc"[(version + ahead) % 3]
    remote = Remote(version + ahead, remote_sha)
    mirrored = reconcile(remote.sha256, base, Remote(remote.version, local))
    mirror = {Action.PUSH: Action.PULL, Action.PULL: Action.PUSH,
              Action.DELETE_REMOTE: Action.DELETE_LOCAL, Action.DELETE_LOCAL: Action.DELETE_REMOTE}
    settled = {Action.NOTHING, Action.ADOPT}
    action = reconcile(local, base, remote)
    if action in settled:
        assert mirrored in settled
    else:
        assert mirrored is mirror.get(action, action)


@given(shas, bases, remotes)
def test_a_held_path_moves_only_when_both_sides_agree(local, base, remote):
    assert reconcile(local, base, remote, held=True) in (Action.NOTHING, Action.ADOPT, Action.CONFLICT)
