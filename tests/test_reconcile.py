"""The reconciler, exhaustively: every combination written out by hand, plus properties."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine.reconcile import Action, Base, Remote, reconcile

# Local content: absent (-), the base's content (A), new content (X), the remote's new content (Y).
LOCALS = {"-": None, "A": "A", "X": "X", "Y": "Y"}
# Base: never synced, synced A at v1, synced a tombstone at v1.
BASES = {"none": None, "A1": Base(1, "A"), "-1": Base(1, None)}
# Remote: never had it, A at v1, a tombstone at v1, edited to Y at v2, deleted at v2, A again at v2.
# Some pairs cannot arise (base A1 with remote -1: one version, two contents); they are pinned anyway.
REMOTES = {"none": None, "A1": Remote(1, "A"), "-1": Remote(1, None), "Y2": Remote(2, "Y"),
           "-2": Remote(2, None), "A2": Remote(2, "A")}

N, PUSH, PULL, ADOPT, DL, DR, M, C = (Action.NOTHING, Action.PUSH, Action.PULL, Action.ADOPT,
                                      Action.DELETE_LOCAL, Action.DELETE_REMOTE, Action.MERGE,
                                      Action.CONFLICT)

# (base, remote, actions for local = -, A, X, Y, the same when the path is held)
TABLE = [
    ("none", "none", (N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("none", "A1", (PULL, ADOPT, M, M), (C, ADOPT, C, C)),
    ("none", "-1", (ADOPT, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("none", "Y2", (PULL, M, M, ADOPT), (C, C, C, ADOPT)),
    ("none", "-2", (ADOPT, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("none", "A2", (PULL, ADOPT, M, M), (C, ADOPT, C, C)),
    ("A1", "none", (N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("A1", "A1", (DR, N, PUSH, PUSH), (C, ADOPT, C, C)),
    ("A1", "-1", (ADOPT, DL, PUSH, PUSH), (ADOPT, C, C, C)),
    ("A1", "Y2", (PULL, PULL, M, ADOPT), (C, C, C, ADOPT)),
    ("A1", "-2", (ADOPT, DL, PUSH, PUSH), (ADOPT, C, C, C)),
    ("A1", "A2", (DR, ADOPT, PUSH, PUSH), (C, ADOPT, C, C)),
    ("-1", "none", (N, PUSH, PUSH, PUSH), (N, C, C, C)),
    ("-1", "A1", (PULL, ADOPT, M, M), (C, ADOPT, C, C)),
    ("-1", "-1", (N, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("-1", "Y2", (PULL, M, M, ADOPT), (C, C, C, ADOPT)),
    ("-1", "-2", (ADOPT, PUSH, PUSH, PUSH), (ADOPT, C, C, C)),
    ("-1", "A2", (PULL, ADOPT, M, M), (C, ADOPT, C, C)),
]

CASES = [
    pytest.param(local, base, remote, held, actions[i],
                 id=f"local={local}-base={base}-remote={remote}{'-held' if held else ''}")
    for base, remote, *by_held in TABLE
    for held, actions in zip((False, True), by_held)
    for i, local in enumerate(LOCALS)
]


def test_the_table_covers_every_combination_once():
    pairs = [(base, remote) for base, remote, *_ in TABLE]
    assert sorted(pairs) == sorted(itertools.product(BASES, REMOTES))
    assert all(len(a) == len(b) == len(LOCALS) for *_, a, b in TABLE)
    assert len(CASES) == len(LOCALS) * len(BASES) * len(REMOTES) * 2 == 144


@pytest.mark.parametrize("local,base,remote,held,expected", CASES)
def test_table(local, base, remote, held, expected):
    assert reconcile(LOCALS[local], BASES[base], REMOTES[remote], held=held) is expected


# Properties over a small alphabet, so that equal contents are frequent. The whole space is
# a few thousand states: 500 examples reach a 1-in-100 state nearly always, in a second.
thorough = settings(max_examples=500)
shas = st.one_of(st.none(), st.sampled_from("abc"))
versions = st.integers(1, 4)
bases = st.one_of(st.none(), st.builds(Base, versions, shas))
known_remotes = st.builds(Remote, versions, shas)
remotes = st.one_of(st.none(), known_remotes)


def _sha(side: Base | Remote | None) -> str | None:
    return side.sha256 if side else None


def apply(action: Action, local, base, remote, held):
    """The facts after the executor carries out `action` (a push lands on top of everything)."""
    top = max(base.version if base else 0, remote.version if remote else 0)
    match action:
        case Action.PUSH | Action.DELETE_REMOTE:
            remote = Remote(top + 1, local)
            return local, Base(remote.version, local), remote, False
        case Action.PULL | Action.DELETE_LOCAL:
            return remote.sha256, Base(remote.version, remote.sha256), remote, False
        case Action.ADOPT:
            return local, Base(remote.version, remote.sha256), remote, False
        case Action.MERGE:  # a clean merge: a new content, committed and written
            merged = Remote(top + 1, "merged")
            return merged.sha256, Base(merged.version, merged.sha256), merged, False
        case Action.CONFLICT:
            return local, base, remote, True
    return local, base, remote, held


@thorough
@given(shas, bases, remotes, st.booleans())
def test_one_step_settles_the_path_or_holds_it(local, base, remote, held):
    action = reconcile(local, base, remote, held)
    if action is Action.MERGE:  # the merge may fail: then the path is held
        assert reconcile(*apply(Action.CONFLICT, local, base, remote, held)) is Action.CONFLICT
    after = apply(action, local, base, remote, held)
    if action is Action.CONFLICT:
        assert after[:3] == (local, base, remote)
        assert reconcile(*after) is Action.CONFLICT
    else:
        assert reconcile(*after) is Action.NOTHING
        _, base, remote, held = after
        if remote is not None:  # settled: the journal records the store's head, nothing held
            assert base == Base(remote.version, remote.sha256) and not held


@thorough
@given(shas, bases, remotes, st.booleans())
def test_never_overwrites_or_deletes_a_change(local, base, remote, held):
    """Replacing absent content is fine: that is how an edit undoes a delete."""
    action = reconcile(local, base, remote, held)
    b, r = _sha(base), _sha(remote)
    if local != b and local != r:
        assert action is not Action.DELETE_LOCAL
        assert not (action is Action.PULL and local is not None)
    if r != b and r != local:
        assert action is not Action.DELETE_REMOTE
        assert not (action is Action.PUSH and r is not None)


@thorough
@given(shas, bases, remotes, st.booleans())
def test_only_a_tombstone_deletes_a_local_file(local, base, remote, held):
    """A store that lost its record of a path (reset, restored) must not empty the tree."""
    if reconcile(local, base, remote, held) is Action.DELETE_LOCAL:
        assert remote is not None and remote.sha256 is None


MIRROR = {PUSH: PULL, PULL: PUSH, DR: DL, DL: DR, N: N, ADOPT: ADOPT, M: M, C: C}


@thorough
@given(shas, bases, known_remotes, st.booleans())
def test_local_and_remote_are_mirror_images(local, base, remote, held):
    """Swapping the two contents swaps the direction of the action, and nothing else.

    Only contents are swapped: the mirror keeps the base and the remote's version
    (local' = remote's content, remote' = the local content at the same version), because
    version numbers exist on the store side alone. The mirror is exact, ADOPT vs NOTHING
    included: both compare the base with (remote version, shared content). A store that never
    had the path has no mirror image (a missing file cannot tell "never existed" from
    "deleted"), so the remote is always known here.
    """
    mirrored = reconcile(remote.sha256, base, Remote(remote.version, local), held)
    assert mirrored is MIRROR[reconcile(local, base, remote, held)]


@thorough
@given(shas, bases, remotes)
def test_a_held_path_moves_only_when_both_sides_agree(local, base, remote):
    assert reconcile(local, base, remote, held=True) in (N, ADOPT, C)
