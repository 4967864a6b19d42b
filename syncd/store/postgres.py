"""The direct PostgreSQL transport: the contract's functions called over psycopg."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from syncd.store.dsn import describe_dsn
from syncd.store.rpc import NotFound, RpcStore, StatementTimeout, StoreError, StoreUnavailable, TooLarge

_MISSING_SCHEMA = ("42883", "42P01", "3F000")  # undefined function / table / schema


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """The connection is gone (no answer, or the server ended it), as opposed to an error
    the server answered with, which a retry on a new connection would only repeat."""
    state = exc.sqlstate or ""
    return not state or state.startswith(("08", "57P", "40"))  # 40: a deadlock or serialization failure


class PostgresStore(RpcStore):
    def __init__(self, dsn: str, workspace: str, device_id: str | None = None):
        super().__init__(workspace, device_id)
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StoreUnavailable(f"cannot reach the database {describe_dsn(self.dsn)}: {first}") from exc
        return self._conn

    def _call(self, function: str, payload: dict) -> Any:
        query = sql.SQL("select public.{}(%s)").format(sql.Identifier(function))
        reused = self._conn is not None and not self._conn.closed
        conn = self._connection()
        try:
            with conn.transaction():
                return conn.execute(query, (Jsonb(payload),)).fetchone()[0]
        except psycopg.errors.QueryCanceled as exc:  # 57014: a statement_timeout (or a cancel), rolled back
            raise StatementTimeout(f"{function}: {exc.diag.message_primary or exc}") from exc
        except psycopg.OperationalError as exc:
            if not _connection_lost(exc):  # the server answered: a limit, a full disk
                raise StoreError(f"{function} failed: {exc.diag.message_primary or exc}") from exc
            self.close()
            if reused:  # dropped while idle (a server restart, a proxy's timeout): once more, anew.
                return self._call(function, payload)  # Safe: every call may repeat (see syncd_commit).
            raise StoreUnavailable(f"lost the database {describe_dsn(self.dsn)}: {exc}") from exc
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            message = exc.diag.message_primary or str(exc)
            if state in _MISSING_SCHEMA:
                raise StoreError(
                    f"the database {describe_dsn(self.dsn)} has no syncd schema "
                    f"({message}); run `syncd db migrate`"
                ) from exc
            if state == "PT404":
                raise NotFound(message) from exc
            if state == "PT413":
                raise TooLarge(message) from exc
            raise StoreError(f"{function} failed: {message}") from exc

    def describe(self) -> str:
        return describe_dsn(self.dsn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
