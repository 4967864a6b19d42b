"""Which paths never sync: built-in patterns first, then the config's (gitignore syntax)."""
from __future__ import annotations

from typing import Iterable

import pathspec

TEMP_PREFIX = ".syncd-tmp-"  # our own files while they are being written

DEFAULT_IGNORES = (
    ".git/",
    f"{TEMP_PREFIX}*",
    # editor swap, backup and lock files
    "*.swp", "*.swo", "*.swx", ".*.sw?", "*~", ".#*", r"\#*#", "4913", ".DS_Store",
    # secrets
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
)


class IgnoreRules:
    def __init__(self, extra_patterns: Iterable[str] = ()):
        # config patterns come last so that "!pattern" can re-include a built-in one
        self._spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, *extra_patterns])

    def ignores(self, relpath: str, is_dir: bool = False) -> bool:
        """`is_dir` lets a walk prune a whole directory ("build/" patterns match it)."""
        return self._spec.match_file(relpath + "/" if is_dir else relpath)
