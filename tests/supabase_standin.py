"""A loopback stand-in for a Supabase project's REST API, backed by a real PostgreSQL.

No PostgREST server can be installed here, so this reproduces the part of its behaviour
the syncd transport relies on, rule by rule (PostgREST v13 docs, "Functions as RPC",
"Authentication", "Errors"):

* `POST /rest/v1/rpc/<fn>`: a function with a single unnamed json/jsonb parameter
  receives the whole request body ("Functions with a single unnamed JSON parameter").
* The JWT in `Authorization: Bearer` is verified (HS256 with the project secret); a bad
  or expired token is 401 with code PGRST301/PGRST303 ("JWT errors"). Without one the
  request runs as `anon`; the `apikey` header alone grants nothing more.
* Each request is one transaction that first does `set local role <role claim>` and
  `set_config('request.jwt.claims', <claims>, true)` ("Transaction-scoped settings").
* SQLSTATE → HTTP status by PostgREST's table: PTnnn → nnn, 42501 → 403 (401 for anon),
  23505/23503 → 409, 42883/42P01 → 404, 08xxx/53xxx → 503, 40xxx/57xxx/P0xxx (not P0001)
  → 500, P0001 → 400, anything else → 400; the body is {code, message, details, hint}.
  An unknown function is 404 with code PGRST202.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def token(role: str, sub: str | None = None, expires_in: int = 3600, **claims) -> str:
    import time
    now = int(time.time())
    body = {"role": role, "iat": now, "exp": now + expires_in, "aud": "authenticated", **claims}
    if sub:
        body["sub"] = sub
    return jwt.encode(body, SECRET, algorithm="HS256")


def status_of(sqlstate: str, role: str) -> int:
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("23505", "23503"):
        return 409
    if sqlstate in ("42883", "42P01"):
        return 404
    if sqlstate[:2] in ("08", "53"):
        return 503
    if sqlstate[:2] in ("40", "57") or (sqlstate.startswith("P0") and sqlstate != "P0001"):
        return 500
    return 400


class StandIn:
    """`with StandIn(dsn) as url:` serves the REST API on 127.0.0.1 until the block ends."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.calls: list[tuple[str, str]] = []  # (function, role), for tests to inspect
        self.fail_next: list[int] = []  # statuses to answer with before calling (fault injection)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = standin.handle(self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        if not path.startswith("/rest/v1/rpc/"):
            return 404, {"code": "PGRST125", "message": f"Invalid path {path}", "details": None, "hint": None}
        function = path.removeprefix("/rest/v1/rpc/").split("?")[0]
        auth = headers.get("Authorization", "")
        claims = {"role": "anon"}
        if auth.startswith("Bearer "):
            try:
                claims = jwt.decode(auth[7:], SECRET, algorithms=["HS256"], audience="authenticated",
                                    options={"verify_aud": False})
            except jwt.ExpiredSignatureError:
                return 401, {"code": "PGRST303", "message": "JWT expired", "details": None, "hint": None}
            except jwt.InvalidTokenError as exc:
                return 401, {"code": "PGRST301", "message": f"JWT invalid: {exc}", "details": None, "hint": None}
        role = claims.get("role", "anon")
        self.calls.append((function, role))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, {"code": str(status), "message": "injected failure", "details": None, "hint": None}
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, {"code": "PGRST102", "message": "Empty or invalid json", "details": None, "hint": None}
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn, conn.transaction():
                exists = conn.execute("select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                                      "where n.nspname = 'public' and p.proname = %s", (function,)).fetchone()
                if not exists:
                    return 404, {"code": "PGRST202", "message": f"Could not find the function public.{function}",
                                 "details": None, "hint": "run the migrations"}
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                result = conn.execute(sql.SQL("select public.{}(%s)").format(sql.Identifier(function)),
                                      (Jsonb(params),)).fetchone()[0]
            return 200, result
        except psycopg.Error as exc:
            state = exc.sqlstate or "XX000"
            return status_of(state, role), {"code": state, "message": exc.diag.message_primary or str(exc),
                                            "details": exc.diag.message_detail, "hint": exc.diag.message_hint}
