"""The store a working copy talks to: its database_url, or else the embedded default."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator

from syncd.config import Config
from syncd.engine.journal import Journal
from syncd.store.embedded import EmbeddedStore
from syncd.store.local_server import ServerError
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import RpcStore, StoreError, StoreUnavailable

ENV_SERVICE_KEY = "SYNCD_SUPABASE_SERVICE_KEY"


def device_id(journal: Journal) -> str:
    """This working copy's identity in the store, made once and kept in its journal."""
    found = journal.get_meta("device_id")
    if found is None:
        found = str(uuid.uuid4())
        journal.set_meta("device_id", found)
    return found


@contextmanager
def connect(cfg: Config, journal: Journal) -> Iterator[RpcStore]:
    if cfg.supabase_url:
        key = os.environ.get(ENV_SERVICE_KEY)
        if not key:
            raise StoreError(f"{cfg.path}: supabase_url is set but no credentials: set {ENV_SERVICE_KEY} "
                             "(a service key, for servers)")
        from syncd.store.supabase import SupabaseStore
        store = SupabaseStore(cfg.supabase_url, key, cfg.workspace, device_id(journal))
        try:
            yield store
        finally:
            store.close()
        return
    embedded = None
    dsn = cfg.database_url
    if not dsn:
        embedded = EmbeddedStore()
        try:
            dsn = embedded.start()
        except ServerError as exc:
            raise StoreUnavailable(f"the embedded PostgreSQL did not start: {exc}") from exc
    store = PostgresStore(dsn, cfg.workspace, device_id(journal))
    try:
        yield store
    finally:
        store.close()
        if embedded:
            embedded.stop()
