"""The store a working copy talks to: its database_url, or else the embedded default."""
from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from typing import Iterator

from syncd import __version__
from syncd.config import Config
from syncd.engine.journal import Journal
from syncd.store.rpc import RpcStore, StoreError, StoreUnavailable

ENV_SERVICE_KEY = "SYNCD_SUPABASE_SERVICE_KEY"
log = logging.getLogger("syncd")


def open_workspace(store: RpcStore, cfg: Config, journal: Journal):
    """Open the workspace for a pass, creating it when `syncd init` could not (it was
    written before signing in)."""
    from syncd.store.migrate import latest_version
    create = journal.get_meta("create_workspace") == "1"
    workspace = store.open(create=create, device_name=cfg.device_name, hostname=socket.gethostname())
    needed = latest_version()
    if workspace.schema_version < needed:  # a newer syncd than the store: its functions may differ
        raise StoreError(f"the store {store.describe()} has schema version {workspace.schema_version}, "
                         f"this syncd {__version__} needs {needed}; nothing was synced: run `{migrate_command(cfg)}`")
    if create:
        journal.set_meta("create_workspace", "0")
    return workspace


def agree_layout(store: RpcStore, cfg: Config) -> None:
    """Send the config's `layout.roots`, when it names them, before a pass: an owner's list
    becomes the workspace's (its rows derived again); another member's that differs is said
    in one line, and the workspace's own roots apply."""
    if cfg.layout_roots is None:
        return
    try:
        store.set_layout_roots(list(cfg.layout_roots))
    except StoreUnavailable:
        raise
    except StoreError as exc:
        log.warning("%s: key 'layout.roots' not applied: %s", cfg.path, exc)


def migrate_command(cfg: Config) -> str:
    """How this working copy's store gets the schema: over Supabase, through its database URL."""
    return "syncd db migrate" + (" --database-url <its database URL>" if cfg.supabase_url else "")


def supabase_store(cfg: Config, device: str | None = None):
    """A service key from the environment (servers), else the signed-in user's session."""
    from syncd.store.credentials import Credentials, credentials_path
    from syncd.store.supabase import SupabaseStore
    key = os.environ.get(ENV_SERVICE_KEY)
    if key:
        return SupabaseStore(cfg.supabase_url, key, cfg.workspace, device)
    if not cfg.supabase_anon_key:
        raise StoreError(f"{cfg.path}: set supabase_anon_key (the project's public anon key) to sign in, "
                         f"or {ENV_SERVICE_KEY} (a service key) for a server")
    credentials = Credentials(credentials_path(cfg.path, cfg.supabase_url))
    if credentials.session() is None:
        raise StoreError("not signed in to Supabase; run `syncd login`")
    return SupabaseStore(cfg.supabase_url, cfg.supabase_anon_key, cfg.workspace, device,
                         credentials=credentials)


@contextmanager
def connect(cfg: Config, journal: Journal) -> Iterator[RpcStore]:
    if cfg.supabase_url:
        store = supabase_store(cfg, journal.device_id)
        try:
            yield store
        finally:
            store.close()
        return
    # psycopg (a seventh of `syncd status`) only for a command that connects
    from syncd.store.embedded import EmbeddedStore
    from syncd.store.local_server import ServerError
    from syncd.store.postgres import PostgresStore
    embedded = None
    dsn = cfg.database_url
    if not dsn:
        try:
            embedded = EmbeddedStore()
            dsn = embedded.start()
        except ServerError as exc:
            raise StoreUnavailable(f"the embedded PostgreSQL did not start: {exc}") from exc
        except OSError as exc:  # its data directory cannot be made or locked
            raise StoreError(f"the embedded PostgreSQL cannot use {exc.filename or 'its data directory'} "
                             f"({exc.strerror}): make it writable, set XDG_DATA_HOME elsewhere, or set "
                             "database_url in the config") from exc
    store = PostgresStore(dsn, cfg.workspace, journal.device_id)
    try:
        yield store
    finally:
        store.close()
        if embedded:
            embedded.stop()
