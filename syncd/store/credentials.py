"""A signed-in Supabase session, on disk (mode 0600), shared by the CLI and the daemon.

Refresh tokens are single-use: two processes refreshing one stored session would each
spend the same token, and the second would be signed out. So a refresh takes the file's
lock, re-reads the session (another process may have refreshed it a moment ago), and
refreshes only if it is still about to expire.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import platformdirs
from supabase_auth import SyncSupportedStorage

from syncd import logs

SESSION = "session"


def credentials_path(config_path: Path, supabase_url: str) -> Path:
    """One file per working copy's config and project: two copies may be two people."""
    host = urlsplit(supabase_url).netloc.replace(":", "_") or "supabase"
    key = hashlib.sha256(str(Path(config_path).resolve()).encode()).hexdigest()[:10]
    return platformdirs.user_config_path("syncd") / "credentials" / f"{host}-{Path(config_path).stem}-{key}.json"


class Credentials(SyncSupportedStorage):
    """Also supabase-auth's storage during `syncd login` (it keeps the PKCE verifier here)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def get_item(self, key: str) -> str | None:
        value = self._read().get(key)
        logs.secret(value)  # a session, or the PKCE verifier while signing in
        return value

    def set_item(self, key: str, value: str) -> None:
        logs.secret(value)
        self._write({**self._read(), key: value})

    def remove_item(self, key: str) -> None:
        data = self._read()
        if data.pop(key, None) is not None:
            self._write(data)

    def session(self) -> dict | None:
        raw = self.get_item(SESSION)
        session = json.loads(raw) if raw else None
        _never_log(session)
        return session

    def save(self, session: dict) -> None:
        _never_log(session)
        self.set_item(SESSION, json.dumps(session))

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def expiring(session: dict, margin: float = 60.0) -> bool:
        return (session.get("expires_at") or 0) - time.time() < margin


def _never_log(session: dict | None) -> None:
    for key in ("access_token", "refresh_token", "provider_token", "provider_refresh_token"):
        logs.secret((session or {}).get(key))
