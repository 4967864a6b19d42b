"""Files for scanner tests, old enough that their stat-cache entries are not racy."""
from __future__ import annotations

import os
import time
from pathlib import Path


def put(root: Path, rel: str, data: bytes, age_s: float = 10) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path
