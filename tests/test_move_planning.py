"""Moves in the pure core: which (old, new) pairs are moves, written out by hand, plus
properties of `find_moves` over random passes."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.content import DIRECTORY
from syncd.engine.moves import find_moves
from syncd.engine.reconcile import (Action, Base, Facts, PassFacts, Remote, keep_parents, moved_version, reconcile,
                                     reconcile_move)

A1 = Base(1, "A")
GONE = Facts(None, A1, Remote(1, "A"))  # moved away here, the store unchanged
ARRIVED = Facts("A", None, None)  # the same content where nobody knew a file
MOVED_THERE = Facts("A", A1, Remote(2, None, "new"))  # the store's tombstone says where it went
FREE = Facts(None, None, Remote(2, "A"))  # the moved version, not yet here

# (old facts, new facts, action)
CASES = [
    (GONE, ARRIVED, Action.MOVE_REMOTE),
    (Facts(None, A1, Remote(2, "Y")), ARRIVED, Action.MOVE_REMOTE),  # edited there: the move goes on top
    (Facts(None, A1, Remote(2, None)), ARRIVED, None),  # deleted there: a create here, no move
    (Facts(None, A1, None), ARRIVED, None),  # a store that never had it
    (GONE, Facts("X", None, None), None),  # other content: a delete and a create
    (GONE, Facts("A", Base(1, "A"), None), None),  # the new path was known here
    (GONE, Facts("A", None, Remote(1, "A")), None),  # the store knows the new path
    (Facts(None, Base(1, None), Remote(1, None)), ARRIVED, None),  # a tombstone's base is no file
    (Facts(None, A1, Remote(1, "A"), held=True), ARRIVED, None),
    (GONE, Facts("A", None, None, held=True), None),
    (MOVED_THERE, FREE, Action.MOVE_LOCAL),
    (Facts("X", A1, Remote(2, None, "new")), FREE, Action.MOVE_LOCAL),  # edited here: lands at new
    (MOVED_THERE, Facts(None, None, Remote(3, "Y")), Action.MOVE_LOCAL),  # edited there after the move
    (MOVED_THERE, Facts(None, None, Remote(3, None)), Action.MOVE_LOCAL),  # deleted there after the move
    (Facts("A", A1, Remote(3, None, "new")), FREE, None),  # the base is older than the moved version
    (Facts("A", A1, Remote(2, None, "elsewhere")), FREE, None),  # moved to another path
    (Facts("A", A1, Remote(2, None)), FREE, None),  # deleted, not moved
    (Facts(None, A1, Remote(2, None, "new")), FREE, None),  # gone here too: the new path pulls it
    (MOVED_THERE, Facts("A", None, Remote(2, "A")), None),  # already at the new path: each adopts
    (MOVED_THERE, Facts(None, None, None), None),  # the store says nothing of the new path
    (Facts("A", A1, Remote(2, None, "new"), held=True), FREE, None),
]


@pytest.mark.parametrize("old, new, action", CASES)
def test_reconcile_move(old, new, action):
    assert reconcile_move("old", old, "new", new) is action


@pytest.mark.parametrize("old_path, new_path", [("x", "x/x"), ("x/x", "x")])
def test_a_file_moved_into_or_out_of_a_folder_of_its_name_is_a_delete_and_a_create(old_path, new_path):
    assert reconcile_move(old_path, GONE, new_path, ARRIVED) is None
    assert reconcile_move(old_path, Facts("A", A1, Remote(2, None, new_path)), new_path, FREE) is None


def test_the_moved_version_holds_the_base_content_at_the_tombstone_number():
    assert moved_version(A1, Remote(2, None, "new")) == Remote(2, "A")


def test_moves_are_found_by_content_duplicates_by_name_and_ambiguous_ones_stay_deletes_and_creates():
    facts = {"a/x.md": GONE, "b/x.md": ARRIVED,
             "a/dup1": Facts(None, Base(1, "D"), Remote(1, "D")), "a/dup2": Facts(None, Base(1, "D"), Remote(1, "D")),
             "b/dup1": Facts("D", None, None), "b/dup2": Facts("D", None, None),
             "a/one": Facts(None, Base(1, "E"), Remote(1, "E")), "b/one": Facts("E", None, None),
             "b/two": Facts("E", None, None),
             "p/s1/t.md": Facts(None, Base(1, "F"), Remote(1, "F")), "p/s2/t.md": Facts(None, Base(1, "F"), Remote(1, "F")),
             "q/s3/t.md": Facts("F", None, None), "q/s4/t.md": Facts("F", None, None),  # which went where? unknown
             "old": MOVED_THERE, "new": FREE}
    assert find_moves(facts) == {"b/x.md": "a/x.md", "new": "old", "b/dup1": "a/dup1", "b/dup2": "a/dup2",
                                 "b/one": "a/one"}


CONTENTS = st.sampled_from(["A", "B", "C"])
PATHS = st.sampled_from([f"p{i}" for i in range(8)])


def facts_among(paths, contents):
    """One path's facts, its contents and the paths a move names drawn from these."""
    return st.builds(
        Facts,
        st.none() | contents,
        st.none() | st.builds(Base, st.integers(1, 3), st.none() | contents),
        st.none() | st.builds(Remote, st.integers(1, 4), st.none() | contents, st.none() | paths),
        st.booleans())


FACTS = facts_among(PATHS, CONTENTS)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(PATHS, FACTS), st.randoms(use_true_random=False))
def test_find_moves_is_one_to_one_deterministic_and_each_pair_a_move(facts, rnd: random.Random):
    moves = find_moves(facts)
    assert len(set(moves.values())) == len(moves) and not set(moves) & set(moves.values())
    for new, old in moves.items():
        action = reconcile_move(old, facts[old], new, facts[new])
        assert action in (Action.MOVE_REMOTE, Action.MOVE_LOCAL)
        if action is Action.MOVE_REMOTE:  # nothing is lost: the content at new is what old held
            assert facts[new].local == facts[old].base.sha256 and facts[old].local is None
        else:  # the file here goes to a free path, edited or not
            assert facts[old].local is not None and facts[new].local is None
    shuffled = list(facts.items())
    rnd.shuffle(shuffled)
    assert find_moves(dict(shuffled)) == moves


NESTED = st.sampled_from(["a", "a/b", "a/b/c", "a/c", "d", "d/e", "d/e/f"])
ENTRIES = st.sampled_from(["A", "B", DIRECTORY])
NESTED_FACTS = facts_among(NESTED, ENTRIES)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NESTED, NESTED_FACTS), st.data())
def test_a_pass_facts_made_when_asked_plan_as_the_same_facts_held(facts, data):
    """`PassFacts` makes each path's facts from the pass's dicts when asked: the moves and
    the parents kept are the ones the same facts in a dict give."""
    paths = sorted(facts)
    local = {p: SimpleNamespace(sha256=f.local) for p, f in facts.items() if f.local is not None}
    view = PassFacts(paths, local, {p: f.base for p, f in facts.items() if f.base},
                     {p: f.remote for p, f in facts.items() if f.remote}, {p for p, f in facts.items() if f.held})
    assert dict(view.items()) == facts and len(view) == len(facts)
    assert all(p in view for p in paths)
    assert data.draw(NESTED.filter(lambda p: p not in facts) | st.just("")) not in view
    assert find_moves(view) == find_moves(facts)
    plan = {p: reconcile(*f) for p, f in facts.items()}
    assert keep_parents(dict(plan), view) == keep_parents(dict(plan), facts)
