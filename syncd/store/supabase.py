"""The Supabase transport: the contract's functions over supabase-py's PostgREST RPC.

Only `POST /rest/v1/rpc/syncd_*` is used, so the server's behaviour stays in the SQL
migrations. supabase-py does not retry RPC POSTs and its APIError carries no HTTP status:
errors are told apart by their code (a SQLSTATE, a PGRST code, or the status itself when
the body was not PostgREST's), and only transient ones are retried, with backoff.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from postgrest import APIError
from supabase import Client, ClientOptions, create_client

from supabase_auth.errors import AuthError

from syncd import logs
from syncd.store.credentials import Credentials
from syncd.store.rpc import NotFound, RpcStore, StatementTimeout, StoreError, StoreUnavailable, TooLarge, Workspace

RETRIES = 5
MIGRATE = ("PGRST202", "42883", "42P01", "3F000")  # the contract is not there (yet)
SIGN_IN = ("PGRST301", "PGRST302", "PGRST303")


class PermissionDenied(StoreError):
    pass


def _transient(code: str) -> bool:
    """Connection, resource and serialization SQLSTATEs, and 5xx statuses that came without
    a PostgREST body (a proxy's 502, 503, 504)."""
    http_status = len(code) == 3 and code.isdigit()
    return (code[:2] in ("08", "53", "40") and not http_status) or code.startswith("57P") \
        or (http_status and code >= "500")


def describe_url(url: str) -> str:
    return urlsplit(url).netloc or url


class SupabaseStore(RpcStore):
    def __init__(self, url: str, key: str, workspace: str, device_id: str | None = None,
                 client: Client | None = None, backoff: float = 0.5, credentials: Credentials | None = None):
        """`key`: a service key, or the project's public anon key with `credentials`, the
        signed-in user's stored session."""
        super().__init__(workspace, device_id)
        self.url = url
        self.key = key
        logs.secret(key)
        self.credentials = credentials
        self.workspace_id: str | None = None  # once open() answered
        self._session: dict | None = None  # the signed-in session in use
        # our own HTTP client: its timeout, and the library's deprecated per-call ones unused
        self.http = httpx.Client(timeout=httpx.Timeout(60, connect=10))
        self.client = client or create_client(url, key, ClientOptions(
            auto_refresh_token=False, persist_session=False, httpx_client=self.http))
        self.backoff = backoff

    def describe(self) -> str:
        return f"Supabase {describe_url(self.url)}"

    def open(self, *, create: bool = False, device_name: str | None = None,
             hostname: str | None = None) -> Workspace:
        """As for every store; the workspace's id is kept: Storage names its blobs by it."""
        workspace = super().open(create=create, device_name=device_name, hostname=hostname)
        self.workspace_id = workspace.id
        return workspace

    def close(self) -> None:
        self.http.close()

    def _signed_in(self) -> None:
        """Use the signed-in session's access token, refreshed first if it is about to expire.
        The file is read only when the token in hand is expiring (or at first): another
        process may have refreshed the session meanwhile."""
        session = self._session
        if session is not None and not Credentials.expiring(session):
            return
        session = self.credentials.session()
        if session is None:
            raise PermissionDenied("not signed in to Supabase; run `syncd login`")
        if Credentials.expiring(session):
            with self.credentials.lock():
                session = self.credentials.session() or session  # maybe refreshed meanwhile
                if Credentials.expiring(session):
                    try:
                        fresh = self.client.auth.refresh_session(session["refresh_token"]).session
                    except AuthError as exc:
                        raise PermissionDenied(f"the Supabase sign-in has ended ({exc}); run `syncd login`") from exc
                    except httpx.TransportError as exc:
                        raise StoreUnavailable(f"cannot reach Supabase at {describe_url(self.url)}: {exc}") from exc
                    session = fresh.model_dump(mode="json")
                    self.credentials.save(session)
        self._session = session
        self.client.postgrest.auth(session["access_token"])

    def access_token(self) -> str:
        """What Realtime authorizes with: the user's fresh access token, or the service key."""
        if self.credentials is None:
            return self.key
        self._signed_in()
        return self._session["access_token"]

    def _call(self, function: str, payload: dict) -> Any:
        where = describe_url(self.url)
        for attempt in range(RETRIES):
            last = attempt == RETRIES - 1
            if self.credentials is not None:
                self._signed_in()
            try:
                return self.client.rpc(function, payload).execute().data
            except APIError as exc:
                code = str(exc.code or "")
                if _transient(code) and not last:
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                raise self._error(function, code, exc) from exc
            except httpx.TransportError as exc:
                if not last:
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                raise StoreUnavailable(f"cannot reach Supabase at {where}: {exc}") from exc
        raise AssertionError("unreachable")

    def _error(self, function: str, code: str, exc: APIError) -> StoreError:
        message = exc.message or str(exc)
        where = describe_url(self.url)
        if code in MIGRATE:
            return StoreError(f"the Supabase project at {where} has no syncd schema ({message}); "
                              "run `syncd db migrate --database-url <its database URL>`")
        if code in SIGN_IN:
            return PermissionDenied(f"the Supabase session is not valid ({message}); run `syncd login`")
        if code == "42501":
            return PermissionDenied(f"permission denied: {message}")
        if code == "PT404":
            return NotFound(message)
        if code == "PT413":
            return TooLarge(message)
        if code == "57014":  # the role's statement_timeout (PostgREST answers 500), rolled back
            return StatementTimeout(f"{function}: {message}")
        if code in ("23505", "23503", "409"):
            return StoreError(f"{function} conflicted with another change: {message}")
        if _transient(code):
            return StoreUnavailable(f"Supabase at {where} is unavailable ({code}: {message}); retrying later")
        return StoreError(f"{function} failed ({code}): {message}")
