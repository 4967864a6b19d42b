"""Which paths of a pass are moves: pairs found from the pass's facts alone, no I/O.

As Git's rename detection at 100 % similarity: a path that left this copy (its base
content, now absent) and a path nobody knew that holds exactly that content are one file
moved, when that content left from one path only and arrived at one path only (duplicates
are ambiguous: they stay a delete and a create, the same whatever the order). The store's
moves come named: a tombstone that says where its document went. Whether a pair is carried
as a move is `reconcile_move`'s to say.
"""
from __future__ import annotations

from syncd.engine.reconcile import Action, Facts, reconcile_move


def find_moves(facts: dict[str, Facts]) -> dict[str, str]:
    """new path → old path, for every move in `facts` (path → its facts this pass)."""
    moves: dict[str, str] = {}
    for old, f in sorted(facts.items()):
        new = f.remote.moved_to if f.remote else None
        if new in facts and new not in moves and reconcile_move(old, f, new, facts[new]) is Action.MOVE_LOCAL:
            moves[new] = old
    taken = set(moves) | set(moves.values())
    gone: dict[str, list[str]] = {}
    appeared: dict[str, list[str]] = {}
    for path, f in facts.items():
        if path in taken:
            continue
        if f.local is None and f.base is not None and f.base.sha256 is not None:
            gone.setdefault(f.base.sha256, []).append(path)
        elif f.local is not None and f.base is None and f.remote is None:
            appeared.setdefault(f.local, []).append(path)
    for sha, olds in gone.items():
        news = appeared.get(sha, [])
        if len(olds) == 1 and len(news) == 1:
            old, new = olds[0], news[0]
            if reconcile_move(old, facts[old], new, facts[new]) is Action.MOVE_REMOTE:
                moves[new] = old
    return moves
