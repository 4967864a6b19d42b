"""The content check's cost: a 1 MiB markdown file, and 1,000 small session documents.
Prints numbers.

    python bench/secrets_bench.py

The documents are what sessions hold: prose, lists, code, sha256 hashes, UUIDs, and a
base64 image; none holds a credential, so each is read to the end (the worst case).
"""
from __future__ import annotations

import base64
import hashlib
import random
import time
import uuid

from syncd.engine.credentials import find


def document(rng: random.Random, size: int) -> bytes:
    words = ["requirements", "session", "the", "design", "of", "a", "stage", "## Heading", "- item",
             "`code`", "token", "key", "private", "password", "BEGIN", "AKIA", "sk-", "ghp_"]
    lines, total = [], 0
    while total < size:
        pick = rng.random()
        if pick < 0.05:
            line = f"artifact sha256:{hashlib.sha256(str(rng.random()).encode()).hexdigest()}"
        elif pick < 0.1:
            line = f"id: {uuid.UUID(int=rng.getrandbits(128))}"
        elif pick < 0.12:
            line = "![chart](data:image/png;base64," + base64.b64encode(rng.randbytes(3000)).decode() + ")"
        else:
            line = " ".join(rng.choice(words) for _ in range(12))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines).encode()


def timed(docs: list[bytes]) -> tuple[float, int]:
    start = time.perf_counter()
    found = sum(find(d) is not None for d in docs)
    return time.perf_counter() - start, found


def main() -> None:
    rng = random.Random(16)
    big = document(rng, 1 << 20)
    small = [document(rng, 2000) for _ in range(1000)]
    for label, docs in (("one 1 MiB markdown file", [big]), ("1,000 files of 2 KB", small)):
        best = min(timed(docs)[0] for _ in range(5))
        print(f"{label}: {best * 1000:.1f} ms (best of 5), {timed(docs)[1]} held")


if __name__ == "__main__":
    main()
