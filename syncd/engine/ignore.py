"""Which paths never sync: names Git keeps for itself, built-in patterns, then the
config's (gitignore syntax)."""
from __future__ import annotations

import functools
import re
from typing import Iterable


from syncd.engine.gitignore import GitIgnores, Patterns, matchable

# Our own files while they are being written are named TEMP_PREFIX + this copy's tag (see
# Journal.temp_prefix) + 16 hex digits. Only a copy's own are ever removed; one of that
# shape from another copy, or from a syncd before copies had tags (no tag), is a half-written
# file: never synced. A user's file that merely starts with TEMP_PREFIX is a user's file.
TEMP_PREFIX = ".syncd-tmp-"
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"([0-9a-f]{8}-)?[0-9a-f]{16}")

# Characters HFS+ ignores in names, so ".g\u200cit" is ".git" there (Git refuses them too)
_HFS_IGNORED = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])

EDITOR_FILES = ("*.swp", "*.swo", "*.swx", ".*.sw?", "*~", ".#*", r"\#*#", "4913")  # swap, backup, lock files
# credentials, wherever they sit in the tree (files that hold them whatever their name are
# found by their content: syncd.engine.credentials)
SECRET_FILES = (
    ".env", ".env.*", ".envrc",  # environment files (direnv's too)
    "*.pem", "*.key", "*.p8", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",  # keys, key stores
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/", ".gnupg/",  # SSH and GnuPG keys
    ".pgpass", ".netrc", "_netrc", ".git-credentials", ".npmrc", ".pypirc", ".htpasswd",
    ".aws/", ".azure/", ".kube/", "kubeconfig", ".docker/", "**/.config/gcloud/",
    "secrets.yaml", "secrets.yml", "credentials.json", "client_secret*.json",
    "*.tfstate", "*.tfstate.backup",  # Terraform state holds every secret it created
    # ...except the templates projects commit in their place (.env.example): their content
    # is still checked like any file's, so a real key in one stays here
    "!*.example", "!*.template", "!*.sample",
)
BUILD_AND_OS_CLUTTER = (
    "__pycache__/", "*.pyc", "*.pyo", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".venv/",
    "node_modules/", ".DS_Store", "Thumbs.db", "desktop.ini",
)
DEFAULT_IGNORES = (*EDITOR_FILES, *SECRET_FILES, *BUILD_AND_OS_CLUTTER)  # (`.git` in any spelling: is_git_name)


def is_git_name(name: str) -> bool:
    """A name Git takes for its own `.git`, as Git's own checks see it (any case, trailing
    dots and spaces that Windows drops, the NTFS short name, HFS+ ignored characters): a
    `.git` file written into a tree points Git at a directory of somebody else's choosing,
    and its config can name commands Git runs."""
    if name.isascii() and "git" not in name.lower():  # (both spellings hold it; most names do not)
        return False
    bare = name.translate(_HFS_IGNORED).rstrip(". ").lower()
    return bare in (".git", "git~1")


def has_git_name(relpath: str) -> bool:
    return any(is_git_name(part) for part in relpath.split("/"))


class IgnoreRules:
    """The config's patterns first (a `!pattern` there re-includes what a built-in pattern
    or Git ignores), then the built-in ones, then the rules of the Git repository the root
    is in (`gitignore`, see syncd.engine.gitignore). A directory that is ignored ignores
    everything under it, whoever asks: the walk prunes it, and a path named by the store
    or an event gets the same answer. Decisions are kept per directory until `refresh`."""

    def __init__(self, extra_patterns: Iterable[str] = (), git: GitIgnores | None = None):
        config = Patterns(extra_patterns)
        self._config = None if config.empty else config
        self.git = git
        self._dirs: dict[str, bool] = {}

    @classmethod
    def of(cls, cfg) -> "IgnoreRules":
        """The rules a working copy's `syncd.config.Config` describes."""
        return cls(cfg.ignore, GitIgnores.of(cfg.root) if cfg.gitignore else None)

    def refresh(self) -> None:
        """Look at the tree's `.gitignore` files again (a scan starts with this)."""
        self._dirs.clear()
        if self.git is not None:
            self.git.refresh()

    def ignores(self, relpath: str, is_dir: bool = False) -> bool:
        """`is_dir` lets a walk prune a whole directory ("build/" patterns match it). Any
        name is matched, one that is not UTF-8 (surrogate-escaped bytes) included."""
        parent = relpath.rpartition("/")[0]
        return (bool(parent) and self._ignored_dir(parent)) or self._own(relpath, is_dir)

    def ignored_in(self, prefix: str, keys: list[str]) -> set[str]:
        """Which entries of one directory `ignores` ignores, asked at once (`prefix`: the
        directory's path with "/", "" for the root; a key: an entry's name, with a "/" after
        a directory's; `keys`: all of its listing, a `.gitignore` in it included). Each
        source says which entries a line of it may decide; only those, and the names that may
        be Git's own or syncd's temporary files or hold a newline, are asked about one by one,
        exactly as `ignores` asks: every other entry is one no rule ignores."""
        if prefix and self._ignored_dir(prefix[:-1]):
            return set(keys)
        plain = [k for k in keys if k.isascii() and "git" not in k.lower() and not k.startswith(TEMP_PREFIX)
                 and "\n" not in k]  # (see matchable)
        asked = set(keys).difference(plain) if len(plain) < len(keys) else set()
        base = matchable(prefix)
        if self._config is not None:
            asked.update(self._config.deciding(base, plain))
        asked.update(_BUILTIN.deciding(base, plain))
        if self.git is not None:
            own = any(k.lower() == ".gitignore" for k in keys)  # (in any case: case-blind disks)
            asked.update(self.git.deciding(prefix, plain, own))
        ignored = {k for k in asked if self._own(prefix + k.rstrip("/"), k[-1] == "/")}
        self._dirs.update((prefix + k[:-1], k in ignored) for k in keys if k[-1] == "/")  # (asked next)
        return ignored

    def _ignored_dir(self, directory: str) -> bool:
        """Down from the nearest directory above whose answer is known, in a loop (a path
        from the store can be a thousand folders deep: a call a level raised RecursionError)."""
        known = self._dirs.get(directory)
        if known is not None:
            return known
        parts = directory.split("/")
        depth = len(parts) - 1  # of the nearest known one
        while depth and "/".join(parts[:depth]) not in self._dirs:
            depth -= 1
        ignored = bool(depth) and self._dirs["/".join(parts[:depth])]
        for depth in range(depth + 1, len(parts) + 1):
            here = "/".join(parts[:depth])
            ignored = ignored or self._own(here, True)
            self._dirs[here] = ignored
        return ignored

    def _own(self, relpath: str, is_dir: bool) -> bool:
        """The path's own rules, its directories' already counted."""
        name = relpath.rpartition("/")[2]
        if is_git_name(name) or (name.startswith(TEMP_PREFIX) and _TEMP_NAME.fullmatch(name)):
            return True
        shown = matchable(relpath)
        chosen = self._config.decide(shown, is_dir) if self._config is not None else None
        if chosen is not None:
            return chosen
        if _BUILTIN.decide(shown, is_dir):
            return True
        return self.git is not None and self.git.ignored(relpath, is_dir)

    def why(self, relpath: str, is_dir: bool = False) -> str | None:
        """Why a path the walk found ignored (by its own rules: the walk never enters an
        ignored directory) is left out, in a line for the user; None for Git's own `.git`
        and syncd's temporary files, which are no one's files."""
        name = relpath.rpartition("/")[2]
        shown = relpath + "/" if is_dir else relpath
        if is_git_name(name) or _TEMP_NAME.fullmatch(name):
            return None
        if self._config is not None and self._config.decide(matchable(relpath), is_dir):
            return f"{shown}: ignored by the config's ignore patterns"
        for rules, what in _why_rules():
            if rules.decide(matchable(relpath), is_dir):
                return f"{shown}: {what}"
        return f"{shown}: ignored by the repository's .gitignore rules (git check-ignore -v {shown} says which)"


_BUILTIN = Patterns(DEFAULT_IGNORES)


@functools.cache
def _why_rules() -> tuple[tuple[Patterns, str], ...]:
    """Each built-in list on its own, to say which one ignored a path: compiled when one is
    asked (a tree with nothing ignored never asks; start-up does not pay for them)."""
    return (
        (Patterns(SECRET_FILES), "a file that holds credentials by its name; never synced (a template of it syncs "
                                 "when named *.example, *.template or *.sample)"),
        (Patterns(BUILD_AND_OS_CLUTTER), "build output or OS clutter; never synced (a `!` pattern in the config's "
                                         "ignore brings it back)"),
        (Patterns(EDITOR_FILES), "an editor's swap, backup or lock file; never synced"),
    )
