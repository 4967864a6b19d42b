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


# ----- inferred bases (syncd.engine.inference): the journal has none, or missed a pull

from syncd.engine.inference import choose, needs_match  # noqa: E402


def decide(local, journal: Base | None, history: list, from_git: Base | None = None) -> Action:
    """What a pass does with a path whose store history is `history` (the sha256 of
    versions 1..n, None for a tombstone), as the executor gathers the facts."""
    remote = Remote(len(history), history[-1])
    matched = None
    if needs_match(local, journal, remote):
        matched = max((v for v, sha in enumerate(history, 1) if sha == local), default=None)
    return reconcile(local, choose(local, journal, matched, from_git), remote)


@pytest.mark.parametrize("local,journal,history,from_git,expected", [
    pytest.param("A", None, ["A", "Y"], None, PULL, id="a clone behind fast-forwards"),
    pytest.param("A", None, ["A", None], None, DL, id="a clone behind deletes what the store deleted"),
    pytest.param("A", None, ["A", "Y", "A"], None, ADOPT, id="changed back to an earlier content"),
    pytest.param("X", None, ["A", "Y"], Base(1, "A", "git"), M, id="an edit on the clone's HEAD merges"),
    pytest.param("X", None, ["A"], Base(1, "A", "git"), PUSH, id="an edit where upstream did nothing"),
    pytest.param(None, None, ["A"], Base(1, "A", "git"), DR, id="a file deleted in the clone"),
    pytest.param("X", None, ["A", None], None, PUSH, id="content the store never had is kept"),
    pytest.param("Y", Base(1, "A"), ["A", "Y", "Z"], None, PULL, id="a pull the journal missed"),
    pytest.param("Y", Base(1, "A"), ["A", "Y", None], None, DL, id="a pull missed, then deleted"),
    pytest.param("A", Base(2, "Y"), ["A", "Y", "Z"], None, M, id="a revert here is an edit"),
])
def test_inferred_bases(local, journal, history, from_git, expected):
    assert decide(local, journal, history, from_git) is expected


histories = st.lists(shas, min_size=1, max_size=5)


@st.composite
def journal_and_history(draw):
    history = draw(histories)
    known = draw(st.one_of(st.none(), st.integers(1, len(history))))
    journal = None if known is None else Base(known, history[known - 1])
    git = draw(st.one_of(st.none(), st.integers(1, len(history))))
    from_git = None if git is None or history[git - 1] is None else Base(git, history[git - 1], "git")
    return journal, history, from_git


@thorough
@given(shas, journal_and_history())
def test_an_inferred_base_never_pushes_what_the_store_has_nor_deletes_what_it_has_not(local, facts):
    journal, history, from_git = facts
    action = decide(local, journal, history, from_git)
    if journal is None and local is not None and local in history:
        assert action in (PULL, DL, ADOPT, N), "content the store has is pushed back or merged"
    if action is DL:
        assert local in history, "a file whose content matches no version is deleted"
    if action is PULL and local is not None:
        assert local in history, "a file whose content matches no version is overwritten"
