"""Names for the copies `syncd resolve --keep both` sets beside a conflicted file."""
from __future__ import annotations

import datetime
import re
from typing import Callable

NAME_MAX = 255  # bytes in one file name, on every common filesystem
_COPY = re.compile(r" \(conflict from [A-Za-z0-9._-]+ \d{4}-\d\d-\d\d(?: \d+)?\)(?:\.[^/]*)?$")


def is_conflict_copy(path: str) -> bool:
    """A name `conflict_copy_name` makes: such copies stay out of the Git mirror."""
    return bool(_COPY.search(path))


def conflict_copy_name(path: str, who: str, day: datetime.date, taken: Callable[[str], bool]) -> str:
    """`dir/spec (conflict from alice 2026-11-25).md`: beside the file, the same extension
    (editors still know it), and only characters every filesystem and shell accepts."""
    directory, _, name = path.rpartition("/")
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    who = re.sub(r"[^A-Za-z0-9._-]+", "-", who).strip("-.")[:40] or "unknown"
    for n in range(1, 1000):
        suffix = f" (conflict from {who} {day.isoformat()}{f' {n}' if n > 1 else ''})"
        room = NAME_MAX - len((suffix + ext).encode())
        short = stem.encode()[:room].decode("utf-8", "ignore")  # a name fits in 255 bytes
        candidate = f"{directory}/{short}{suffix}{ext}" if directory else f"{short}{suffix}{ext}"
        if not taken(candidate):
            return candidate
    raise FileExistsError(f"{path}: too many conflict copies already")
