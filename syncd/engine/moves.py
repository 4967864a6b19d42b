"""Which paths of a pass are moves: pairs found from the pass's facts alone, no I/O.

As Git's rename detection at 100 % similarity: a path that left this copy (its base
content, now absent) and a path nobody knew that holds exactly that content are one file
moved, when that content left from one path only and arrived at one path only. Content that
left several paths or arrived at several (a template every session holds) pairs as Git
pairs identical files, by name: each old and new path whose trailing path components match
best, both ways, and uniquely (a folder moved whole: every file below it matches its own);
the rest stay a delete and a create, the same whatever the order. The store's
moves come named: a tombstone that says where its document went. Whether a pair is carried
as a move is `reconcile_move`'s to say.
"""
from __future__ import annotations

from collections.abc import Mapping

from syncd.engine.reconcile import Action, Facts, reconcile_move


def find_moves(facts: Mapping[str, Facts]) -> dict[str, str]:
    """new path → old path, for every move in `facts` (path → its facts this pass)."""
    moves: dict[str, str] = {}
    for old in sorted(p for p, f in facts.items() if f.remote and f.remote.moved_to):
        f = facts[old]
        new = f.remote.moved_to
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
        for old, new in _pairs(olds, appeared.get(sha, [])):
            if reconcile_move(old, facts[old], new, facts[new]) is Action.MOVE_REMOTE:
                moves[new] = old
    return moves


def _pairs(olds: list[str], news: list[str]) -> list[tuple[str, str]]:
    """Which paths one content left and arrived at are one file moved (see above)."""
    if len(olds) == 1 and len(news) == 1:
        return [(olds[0], news[0])]

    def best(path: str, others: list[str]) -> str | None:
        scores = {other: _shared_tail(path, other) for other in others}
        top = max(scores.values(), default=0)
        winners = [other for other, score in scores.items() if score == top]
        return winners[0] if top > 0 and len(winners) == 1 else None
    return [(old, new) for old in olds if (new := best(old, news)) is not None and best(new, olds) == old]


def _shared_tail(a: str, b: str) -> int:
    """How many trailing path components two paths have in common."""
    n = 0
    for x, y in zip(reversed(a.split("/")), reversed(b.split("/"))):
        if x != y:
            break
        n += 1
    return n
