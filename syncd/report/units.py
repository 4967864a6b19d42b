"""Numbers for people, shared by `syncd stats` and the HTML report."""
from __future__ import annotations

UNITS = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]


def duration(seconds: float | None) -> str:
    """The two largest units: 45s, 12m 5s, 3h 20m, 2d 4h."""
    if seconds is None:
        return "-"
    s = int(round(float(seconds)))
    for (name, size), (small_name, small_size) in zip(UNITS, UNITS[1:]):
        if s >= size:
            big, small = s // size, s % size // small_size
            return f"{big}{name} {small}{small_name}" if small else f"{big}{name}"
    return f"{s}s"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * float(ratio):.0f}%"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
