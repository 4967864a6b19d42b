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
    # credentials, wherever they sit in the tree (files that hold them whatever their name
    # are found by their content: syncd.engine.credentials)
    ".env", ".env.*", ".envrc",  # environment files (direnv's too)
    "*.pem", "*.key", "*.p8", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",  # keys, key stores
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/", ".gnupg/",  # SSH and GnuPG keys
    ".pgpass", ".netrc", "_netrc", ".git-credentials", ".npmrc", ".pypirc", ".htpasswd",
    ".aws/", ".azure/", ".kube/", "kubeconfig", "**/.docker/config.json", "**/.config/gcloud/",
    "secrets.yaml", "secrets.yml", "credentials.json", "client_secret*.json",
    "*.tfstate", "*.tfstate.backup",  # Terraform state holds every secret it created
)


class IgnoreRules:
    def __init__(self, extra_patterns: Iterable[str] = ()):
        # config patterns come last so that "!pattern" can re-include a built-in one
        self._spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, *extra_patterns])

    def ignores(self, relpath: str, is_dir: bool = False) -> bool:
        """`is_dir` lets a walk prune a whole directory ("build/" patterns match it)."""
        return self._spec.match_file(relpath + "/" if is_dir else relpath)
