"""A loopback stand-in for a Supabase project's REST API, backed by a real PostgreSQL.

No PostgREST server can be installed here, so this reproduces the part of its behaviour
the syncd transport relies on, rule by rule (PostgREST v13 docs, "Functions as RPC",
"Authentication", "Errors"):

* `POST /rest/v1/rpc/<fn>`: a function with a single unnamed json/jsonb parameter
  receives the whole request body ("Functions with a single unnamed JSON parameter").
* The JWT in `Authorization: Bearer` is verified (HS256 with the project secret); a bad
  or expired token is 401 with code PGRST301/PGRST303 ("JWT errors"). Without one the
  request runs as `anon`; the `apikey` header alone grants nothing more.
* Each request is one transaction that first does `set local role <role claim>`, applies
  that role's own settings as transaction-scoped ones (v12, "Impersonated Role Settings":
  Supabase's statement_timeout of 8 s for authenticated, 3 s for anon), and sets
  `request.jwt.claims` ("Transaction-scoped settings"). A STABLE or IMMUTABLE function
  runs in a READ ONLY transaction ("Functions as RPC": volatility).
* SQLSTATE → HTTP status by PostgREST's table: PTnnn → nnn, 42501 → 403 (401 for anon),
  23505/23503 → 409, 42883/42P01 → 404, 08xxx/53xxx → 503, 40xxx/57xxx/P0xxx (not P0001)
  → 500, P0001 → 400, anything else → 400; the body is {code, message, details, hint}.
  An unknown function is 404 with code PGRST202.

And the part of GoTrue (Supabase Auth) `syncd login` uses:

* `GET /auth/v1/authorize?provider=github&redirect_to=..&code_challenge=..` — GoTrue
  sends the browser to GitHub and back to `redirect_to?code=..` (a loopback redirect is
  allowed); here GitHub's consent is assumed for `github_user`, and the redirect is direct.
* `POST /auth/v1/token?grant_type=pkce` with {auth_code, code_verifier}: the verifier's
  S256 hash must equal the challenge; the session's user is created in auth.users on first
  sign-in, with GitHub's `user_name`/`full_name` in raw_user_meta_data.
* `POST /auth/v1/token?grant_type=refresh_token`: refresh tokens rotate and are single
  use (`refresh_token_already_used`); `POST /auth/v1/logout` revokes the session's tokens
  (`refresh_token_not_found` afterwards). Errors are `{code, error_code, msg}`.

And the part of the Realtime websocket (Phoenix protocol, vsn 1.0.0) the client uses, at
`/realtime/v1/websocket` on the same port: `phx_join` with postgres_changes bindings is
answered `phx_reply` ok echoing each binding with a server id; `heartbeat` on topic
`phoenix` is answered ok; a committed change to a workspace's documents (the database's
NOTIFY) is sent as `postgres_changes` with those ids. Real Realtime also checks the
subscriber's RLS on each row; this one announces changes only, which carry nothing a
subscriber could not fetch through the RPCs, where RLS applies.

And the part of the Storage API (supabase/storage, src/http/routes/object) the transport's
blob store uses, under `/storage/v1`, with the bytes kept in files on disk:

* Every route checks the JWT in `Authorization: Bearer` with the project secret (plugins/
  jwt.ts); a missing or bad one is AccessDenied. Statements run as the Storage API runs
  them: connected as `supabase_storage_admin`, as the JWT's role with its claims set for
  what the caller does (internal/database/postgres/scope.ts: `role`, `request.jwt.claims`
  and the like, transaction-local; so the policies on storage.objects decide), as the
  admin itself (the tables' owner) for the bookkeeping after a caller's right was checked.
* Errors are `{statusCode, code, error, message}` with the real status in `statusCode`
  and HTTP 400 (500 for a 500) as the status line (http/error-handler.ts, StorageBackendError's
  userStatusCode): NoSuchBucket 404 "Bucket not found", NoSuchKey 404 "not_found"
  "Object not found", AccessDenied 403 "Unauthorized" ("new row violates row-level
  security policy" for 42501), KeyAlreadyExists 409 "Duplicate" "The resource already
  exists" (23505), EntityTooLarge 413 "Payload too large" "The object exceeded the maximum
  allowed size".
* `POST /object/<bucket>/<name>` (createObject.ts, object.ts uploadFromRequest, uploader.ts):
  the bucket is found as the admin (NoSuchBucket); a binary body whose Content-Length is
  over the limit (the project's, `file_size_limit` here, 50 MiB as Supabase's free plan
  and CLI default, or the bucket's own if lower) is EntityTooLarge before anything is read;
  the caller's right is tested by inserting the row as the caller and rolling it back
  (`x-upsert: true`: insert .. on conflict do update, which needs UPDATE rights too); the
  body is stored; the row is then written as the admin. A body cut short stores nothing.
  Answers `{Id, Key: "<bucket>/<name>"}`. A multipart body (storage3's upload) is read
  whole here, its file part checked against the limit.
* `GET /object/<bucket>/<name>` and `/object/authenticated/...` (getObject.ts): the row is
  found as the caller (as the admin for a public bucket), else NoSuchKey; the bytes are
  streamed with Content-Type, Content-Length and ETag. `GET /object/info/<bucket>/<name>`
  (getObjectInfo.ts, renderer/info.ts) answers the row's info as JSON the same way.
* `DELETE /object/<bucket>` with `{"prefixes": [names]}` (deleteObjects.ts): deletes as the
  caller, returning the rows deleted (none where the policies allow none), and their bytes.
"""
from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import itertools
import json
import queue
import secrets
import select
import shutil
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx
import jwt
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
STORAGE_LIMIT = 50 * 1024 * 1024  # a free project's, and `supabase start`'s, file size limit


def token(role: str, sub: str | None = None, expires_in: int = 3600, **claims) -> str:
    now = int(time.time())
    body = {"role": role, "iat": now, "exp": now + expires_in, "aud": "authenticated", **claims}
    if sub:
        body["sub"] = sub
    return jwt.encode(body, SECRET, algorithm="HS256")


def rest(url: str, bearer: str | None, method: str, path: str, **kwargs) -> httpx.Response:
    """A request to `url`/rest/v1/`path` as a client sends it: the public key, the user's
    token if any (none: anon), and the rows touched asked back."""
    headers = {"apikey": token("anon"), "Prefer": "return=representation"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.request(method, f"{url}/rest/v1/{path}", headers=headers, timeout=30, **kwargs)


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
        self.dsn = dsn  # the project owner's: for the realtime listener
        self.api_dsn = self.auth_dsn = dsn
        with psycopg.connect(dsn) as conn:  # a Supabase-shaped database has the servers' own logins
            logins = {r for (r,) in conn.execute("select rolname from pg_roles where rolcanlogin and "
                                                 "rolname in ('authenticator', 'supabase_auth_admin')")}
        if "authenticator" in logins:
            self.api_dsn = make_conninfo(dsn, user="authenticator")  # PostgREST's login
        if "supabase_auth_admin" in logins:
            self.auth_dsn = make_conninfo(dsn, user="supabase_auth_admin")  # GoTrue's
        self.storage_dsn = make_conninfo(dsn, user="supabase_storage_admin")  # the Storage API's
        self.file_size_limit = STORAGE_LIMIT
        self.objects = tempfile.mkdtemp(prefix="syncd-storage-")  # Storage's backend: the bytes
        self.calls: list[tuple[str, str]] = []  # (function, role), for tests to inspect
        self.fail_next: list[int] = []  # statuses to answer with before calling (fault injection)
        self.github_user = {"login": "alice", "name": "Alice Archer", "email": "alice@example.com"}
        self.access_ttl = 3600  # seconds an access token lives
        self.refreshes = 0
        self.issued: list[str] = []  # every access and refresh token handed out (secrets to look for)
        self._codes: dict[str, tuple[str, dict]] = {}  # code → (challenge, GitHub user)
        self._refresh: dict[str, dict] = {}  # refresh token → {user, session, used}
        self._revoked: set[str] = set()  # session ids
        self.realtime_on = True
        self._binding_ids = itertools.count(1)
        self._sockets: list[tuple[queue.Queue, dict[int, tuple[str, str]]]] = []  # outbox, id → (topic, ws)
        self._listening: set[str] = set()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # a websocket upgrade needs it; every reply has a length

            def log_message(self, *args) -> None:
                pass

            def reply(self, status: int, payload, headers: dict | None = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.startswith("/storage/v1/"):
                    standin.storage(self)
                elif self.path.startswith("/realtime/v1/websocket"):
                    standin.realtime(self)
                elif self.path.startswith("/rest/v1/"):
                    self.reply(*standin.table("GET", self.path, self.headers, b""))
                else:
                    self.reply(*standin.auth_get(self.path, self.headers))

            def do_POST(self) -> None:
                if self.path.startswith("/storage/v1/"):
                    standin.storage(self)  # reads the body itself, a chunk at a time
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/auth/v1/"):
                    self.reply(*standin.auth_post(self.path, self.headers, body))
                elif self.path.startswith("/rest/v1/rpc/"):
                    self.reply(*standin.handle(self.path, self.headers, body))
                else:
                    self.reply(*standin.table("POST", self.path, self.headers, body))

            def do_PATCH(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.reply(*standin.table("PATCH", self.path, self.headers, body))

            def do_DELETE(self) -> None:
                if self.path.startswith("/storage/v1/"):
                    standin.storage(self)
                    return
                self.reply(*standin.table("DELETE", self.path, self.headers, b""))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.realtime_on = False
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.objects, ignore_errors=True)

    @staticmethod
    def _claims(headers) -> dict | tuple[int, dict]:
        """The request's JWT claims, or the error PostgREST answers a bad token with."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return {"role": "anon"}
        try:
            return jwt.decode(auth[7:], SECRET, algorithms=["HS256"], audience="authenticated",
                              options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return 401, {"code": "PGRST303", "message": "JWT expired", "details": None, "hint": None}
        except jwt.InvalidTokenError as exc:
            return 401, {"code": "PGRST301", "message": f"JWT invalid: {exc}", "details": None, "hint": None}

    @staticmethod
    def _error(exc: psycopg.Error, role: str) -> tuple[int, dict]:
        state = exc.sqlstate or "XX000"
        return status_of(state, role), {"code": state, "message": exc.diag.message_primary or str(exc),
                                        "details": exc.diag.message_detail, "hint": exc.diag.message_hint}

    def table(self, method: str, path: str, headers, body: bytes) -> tuple[int, object]:
        """PostgREST's table endpoints (v13 "Tables and Views"), for what a client could do
        with them: `select=` columns, `col=eq.value` filters, a JSON object or array to insert, a JSON object
        to update with; `Prefer: return=representation` answers with the rows touched, else
        201/204 with no body. The statement runs as the request's role, so privileges and
        row level security decide, as on Supabase."""
        claims = self._claims(headers)
        if isinstance(claims, tuple):
            return claims
        role = claims.get("role", "anon")
        url = urlsplit(path)
        name = url.path.removeprefix("/rest/v1/")
        query = {column: values[0] for column, values in parse_qs(url.query).items()}
        filters = [sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value.removeprefix("eq.")))
                   for column, value in query.items()
                   if column not in ("select", "limit", "order") and value.startswith("eq.")]
        where = sql.SQL(" where ") + sql.SQL(" and ").join(filters) if filters else sql.SQL("")
        target = sql.Identifier("public", name)
        data = json.loads(body) if body else None
        if method == "GET":
            wanted = query.get("select", "*")
            columns = sql.SQL("*") if wanted == "*" else sql.SQL(", ").join(map(sql.Identifier, wanted.split(",")))
            statement = sql.SQL("select coalesce(jsonb_agg(to_jsonb(t)), '[]') from (select {} from {}{}) t").format(
                columns, target, where)
        elif method == "POST":
            rows = data if isinstance(data, list) else [data]
            columns = sql.SQL(", ").join(map(sql.Identifier, sorted({k for row in rows for k in row})))
            statement = sql.SQL("with t as (insert into {} ({}) select {} from jsonb_populate_recordset(null::{}, {})"
                                " returning *) select coalesce(jsonb_agg(to_jsonb(t)), '[]') from t").format(
                target, columns, columns, target, sql.Literal(json.dumps(rows)))
        elif method == "PATCH":
            columns = sql.SQL(", ").join(map(sql.Identifier, data))
            statement = sql.SQL("with t as (update {} set ({}) = (select {} from jsonb_populate_record(null::{}, {})){}"
                                " returning *) select coalesce(jsonb_agg(to_jsonb(t)), '[]') from t").format(
                target, columns, columns, target, sql.Literal(json.dumps(data)), where)
        else:
            statement = sql.SQL("with t as (delete from {}{} returning *) select coalesce(jsonb_agg(to_jsonb(t)), '[]')"
                                " from t").format(target, where)
        try:
            with psycopg.connect(self.api_dsn, autocommit=True) as conn, conn.transaction():
                if method == "GET":
                    conn.execute("set transaction read only")
                self._become(conn, role, claims)
                rows = conn.execute(statement).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 404, {"code": "PGRST205", "message": f"Could not find the table 'public.{name}'",
                         "details": None, "hint": None}
        except psycopg.Error as exc:
            return self._error(exc, role)
        if method == "GET" or "return=representation" in headers.get("Prefer", ""):
            return 201 if method == "POST" else 200, rows
        return (201 if method == "POST" else 204), None

    def handle(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        function = path.removeprefix("/rest/v1/rpc/").split("?")[0]
        claims = self._claims(headers)
        if isinstance(claims, tuple):
            return claims
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
            with psycopg.connect(self.api_dsn, autocommit=True) as conn:
                found = conn.execute("select p.provolatile from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                                     "where n.nspname = 'public' and p.proname = %s", (function,)).fetchone()
                if not found:
                    return 404, {"code": "PGRST202", "message": f"Could not find the function public.{function}",
                                 "details": None, "hint": "run the migrations"}
                with conn.transaction():
                    if found[0] in ("s", "i"):
                        conn.execute("set transaction read only")
                    self._become(conn, role, claims)
                    result = conn.execute(sql.SQL("select public.{}(%s)").format(sql.Identifier(function)),
                                          (Jsonb(params),)).fetchone()[0]
            return 200, result
        except psycopg.Error as exc:
            return self._error(exc, role)

    @staticmethod
    def _become(conn: psycopg.Connection, role: str, claims: dict) -> None:
        """What PostgREST does first in every request's transaction: switch to the JWT's role,
        apply that role's own settings (`alter role ... set`, e.g. Supabase's
        statement_timeout; "Impersonated Role Settings", PostgREST v12), set the claims."""
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        settings = conn.execute(
            "select split_part(s, '=', 1), substr(s, strpos(s, '=') + 1) from pg_db_role_setting r,"
            " unnest(r.setconfig) s where r.setrole = (select oid from pg_roles where rolname = %s)"
            " and r.setdatabase in (0, (select oid from pg_database where datname = current_database()))"
            " order by r.setdatabase", (role,)).fetchall()  # a database's own setting wins
        for name, value in settings:
            conn.execute("select set_config(%s, %s, true)", (name, value))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))

    # Storage

    @staticmethod
    def _storage_error(status: str, code: str, error: str, message: str) -> tuple[int, dict]:
        return (500 if status == "500" else 400), {"statusCode": status, "code": code, "error": error,
                                                   "message": message}

    def _storage_db_error(self, exc: psycopg.Error) -> tuple[int, dict]:
        """storage/database/errors.ts: the SQLSTATEs a caller's statement ends with."""
        state = exc.sqlstate or ""
        if state == "42501":
            return self._storage_error("403", "AccessDenied", "Unauthorized",
                                       "new row violates row-level security policy"
                                       if "row-level security" in str(exc) else exc.diag.message_primary)
        if state == "23505":
            return self._storage_error("409", "KeyAlreadyExists", "Duplicate", "The resource already exists")
        return self._storage_error("500", "DatabaseError", "DatabaseError", f"database error, code: {state}")

    def storage(self, handler) -> None:
        """Serve one Storage request, and drain what the client still sends when answering
        before its body was read (as the API's connection-close does, without the reset)."""
        length = int(handler.headers.get("Content-Length") or 0)
        left = [length]
        try:
            reply = self._storage(handler, left)
        finally:
            while left[0] > 0:
                chunk = handler.rfile.read(min(left[0], 1 << 16))
                if not chunk:
                    handler.close_connection = True
                    break
                left[0] -= len(chunk)
        if reply is not None:
            handler.reply(*reply)

    def _storage(self, handler, left: list[int]):
        claims = self._claims(handler.headers)
        if isinstance(claims, tuple) or "Authorization" not in handler.headers:
            message = claims[1]["message"] if isinstance(claims, tuple) else "jwt must be provided"
            return self._storage_error("403", "AccessDenied", "Unauthorized", message)
        role = claims.get("role", "anon")
        route = unquote(urlsplit(handler.path).path.removeprefix("/storage/v1/"))
        method = handler.command
        if method == "DELETE" and route.startswith("object/") and route.count("/") == 1:
            body = handler.rfile.read(left[0])
            left[0] = 0
            return self._storage_delete(route.removeprefix("object/"), json.loads(body or b"{}"), role, claims)
        if not route.startswith("object/"):
            return 404, {"statusCode": "404", "error": "Not Found", "message": f"Route {method}:/{route} not found"}
        rest, info = route.removeprefix("object/"), False
        if method == "GET" and rest.startswith("info/"):
            rest, info = rest.removeprefix("info/"), True
        if method == "GET":
            rest = rest.removeprefix("authenticated/")
        bucket_id, _, name = rest.partition("/")
        with psycopg.connect(self.storage_dsn, autocommit=True) as admin:
            bucket = admin.execute("select public, file_size_limit from storage.buckets where id = %s",
                                   (bucket_id,)).fetchone()
        if bucket is None:
            return self._storage_error("404", "NoSuchBucket", "Bucket not found", "Bucket not found")
        if method == "POST":
            return self._storage_upload(handler, left, bucket_id, name, bucket[1], role, claims)
        if method != "GET":
            return 405, {"statusCode": "405", "error": "Method Not Allowed", "message": method}
        found = self._storage_find(bucket_id, name, bucket[0], role, claims)
        if isinstance(found, tuple):
            return found
        meta = found["metadata"] or {}
        if info:
            return 200, {"id": found["id"], "name": found["name"], "version": found["version"],
                         "bucket_id": bucket_id, "size": meta.get("size"), "content_type": meta.get("mimetype"),
                         "cache_control": meta.get("cacheControl"), "etag": meta.get("eTag"),
                         "metadata": found["user_metadata"], "last_modified": found["updated_at"],
                         "created_at": found["created_at"]}
        where = self._object_dir(bucket_id, name) / found["version"]
        handler.send_response(200)
        handler.send_header("Content-Type", meta.get("mimetype") or "application/octet-stream")
        handler.send_header("Content-Length", str(where.stat().st_size))
        handler.send_header("ETag", meta.get("eTag") or "")
        handler.end_headers()
        with where.open("rb") as source:
            shutil.copyfileobj(source, handler.wfile, 1 << 16)
        return None

    def _object_dir(self, bucket_id: str, name: str) -> Path:
        return Path(self.objects) / quote(bucket_id, safe="") / quote(name, safe="")

    def _storage_find(self, bucket_id: str, name: str, public: bool, role: str, claims: dict):
        query = ("select id::text, name, version, metadata, user_metadata, updated_at::text, created_at::text"
                 " from storage.objects where name = %s and bucket_id = %s limit 1")
        try:
            if public:
                with psycopg.connect(self.storage_dsn, autocommit=True) as admin:
                    row = admin.execute(query, (name, bucket_id)).fetchone()
            else:
                with psycopg.connect(self.storage_dsn, autocommit=True) as conn, conn.transaction():
                    conn.execute("set transaction read only")
                    self._become(conn, role, claims)
                    row = conn.execute(query, (name, bucket_id)).fetchone()
        except psycopg.Error as exc:
            return self._storage_db_error(exc)
        if row is None:
            return self._storage_error("404", "NoSuchKey", "not_found", "Object not found")
        return dict(zip(("id", "name", "version", "metadata", "user_metadata", "updated_at", "created_at"), row))

    def _storage_upload(self, handler, left: list[int], bucket_id: str, name: str, bucket_limit: int | None,
                        role: str, claims: dict):
        limit = min(self.file_size_limit, bucket_limit or self.file_size_limit)
        too_large = self._storage_error("413", "EntityTooLarge", "Payload too large",
                                        "The object exceeded the maximum allowed size")
        content_type = handler.headers.get("Content-Type", "")
        multipart = None
        if content_type.startswith("multipart/form-data"):  # storage3's upload: read whole here
            form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + handler.rfile.read(left[0]))
            left[0] = 0
            multipart = next((part for part in form.iter_parts() if part.get_filename() is not None), None)
            if multipart is None:
                return self._storage_error("400", "InvalidRequest", "InvalidRequest", "No content provided")
            if len(multipart.get_payload(decode=True)) > limit:
                return too_large
        elif left[0] > limit:
            return too_large
        upsert = handler.headers.get("x-upsert") == "true"
        owner = claims.get("sub")
        row = {"bucket_id": bucket_id, "name": name, "owner": owner, "owner_id": owner, "version": "1",
               "metadata": Jsonb({"mimetype": handler.headers.get("Content-Type"), "contentLength": left[0]})}
        insert = ("insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata) values"
                  " (%(bucket_id)s, %(name)s, %(owner)s, %(owner_id)s, %(version)s, %(metadata)s)")
        if upsert:
            insert += (" on conflict (bucket_id, name) do update set version = excluded.version,"
                       " metadata = excluded.metadata, owner = excluded.owner, owner_id = excluded.owner_id")
        try:  # uploader.ts canUpload: the caller's insert, rolled back
            with psycopg.connect(self.storage_dsn, autocommit=True) as conn:
                with conn.transaction(force_rollback=True):
                    self._become(conn, role, claims)
                    conn.execute(insert, row)
        except psycopg.Error as exc:
            return self._storage_db_error(exc)
        version = str(uuid.uuid4())
        where = self._object_dir(bucket_id, name) / version
        where.parent.mkdir(parents=True, exist_ok=True)
        md5 = hashlib.md5()
        with where.open("wb") as out:
            if multipart is not None:
                data = multipart.get_payload(decode=True)
                md5.update(data)
                out.write(data)
            while left[0] > 0:
                chunk = handler.rfile.read(min(left[0], 1 << 16))
                if not chunk:
                    break
                left[0] -= len(chunk)
                md5.update(chunk)
                out.write(chunk)
        size = where.stat().st_size
        if left[0] > 0:  # the client stopped sending: nothing is stored
            where.unlink()
            handler.close_connection = True
            return self._storage_error("400", "InvalidRequest", "InvalidRequest", "the body ended early")
        meta = {"eTag": f'"{md5.hexdigest()}"', "size": size, "mimetype": handler.headers.get("Content-Type"),
                "cacheControl": handler.headers.get("Cache-Control", "no-cache"), "contentLength": size,
                "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "httpStatusCode": 200}
        with psycopg.connect(self.storage_dsn, autocommit=True) as admin:  # completeUpload, as the admin
            object_id = admin.execute(
                "insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata) values"
                " (%s, %s, %s, %s, %s, %s) on conflict (bucket_id, name) do update set version = excluded.version,"
                " metadata = excluded.metadata, owner = excluded.owner, owner_id = excluded.owner_id,"
                " updated_at = now() returning id::text",
                (bucket_id, name, owner, owner, version, Jsonb(meta))).fetchone()[0]
        return 200, {"Id": object_id, "Key": f"{bucket_id}/{name}"}

    def _storage_delete(self, bucket_id: str, body: dict, role: str, claims: dict):
        try:
            with psycopg.connect(self.storage_dsn, autocommit=True) as conn, conn.transaction():
                self._become(conn, role, claims)
                deleted = conn.execute("with d as (delete from storage.objects where bucket_id = %s and name = any(%s)"
                                       " returning *) select coalesce(jsonb_agg(jsonb_build_object('name', d.name,"
                                       " 'version', d.version, 'bucket_id', d.bucket_id)), '[]') from d",
                                       (bucket_id, list(body.get("prefixes") or []))).fetchone()[0]
        except psycopg.Error as exc:
            return self._storage_db_error(exc)
        for row in deleted:
            shutil.rmtree(self._object_dir(bucket_id, row["name"]), ignore_errors=True)
        return 200, deleted

    # GoTrue

    @staticmethod
    def _auth_error(status: int, error_code: str, msg: str) -> tuple[int, dict]:
        return status, {"code": status, "error_code": error_code, "msg": msg}

    def auth_get(self, path: str, headers) -> tuple:
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/auth/v1/authorize":
            if query.get("provider") != "github" or query.get("code_challenge_method", "").lower() != "s256":
                return self._auth_error(400, "validation_failed", "github with an S256 PKCE challenge only")
            code = secrets.token_urlsafe(16)
            self._codes[code] = (query["code_challenge"], dict(self.github_user))
            return 302, None, {"Location": f"{query['redirect_to']}?{urlencode({'code': code})}"}
        if url.path == "/auth/v1/user":
            claims = jwt.decode(headers.get("Authorization", "")[7:], SECRET, algorithms=["HS256"],
                                options={"verify_aud": False})
            return 200, self._user(claims["sub"], claims)
        return self._auth_error(404, "not_found", url.path)

    def auth_post(self, path: str, headers, body: bytes) -> tuple:
        url = urlsplit(path)
        grant = parse_qs(url.query).get("grant_type", [None])[0]
        data = json.loads(body or b"{}")
        if url.path == "/auth/v1/token" and grant == "pkce":
            found = self._codes.pop(data.get("auth_code"), None)
            verifier = (data.get("code_verifier") or "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if found is None or found[0] != challenge:
                return self._auth_error(400, "bad_code_verifier", "code challenge does not match previously saved code verifier")
            return 200, self._session(self._user_id(found[1]), secrets.token_hex(8))
        if url.path == "/auth/v1/token" and grant == "refresh_token":
            entry = self._refresh.get(data.get("refresh_token"))
            if entry is None or entry["session"] in self._revoked:
                return self._auth_error(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
            if entry["used"]:
                return self._auth_error(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
            entry["used"] = True
            self.refreshes += 1
            return 200, self._session(entry["user"], entry["session"])
        if url.path == "/auth/v1/logout":
            claims = jwt.decode(headers.get("Authorization", "")[7:], SECRET, algorithms=["HS256"],
                                options={"verify_aud": False, "verify_exp": False})
            self._revoked.add(claims["session_id"])
            return 204, None
        return self._auth_error(404, "not_found", url.path)

    def sign_in(self, github: dict) -> dict:
        """The session the PKCE exchange above ends with, for a GitHub user, without the
        browser (tests that need signed-in people, not the sign-in)."""
        return self._session(self._user_id(github), secrets.token_hex(8))

    def revoke_all(self) -> None:
        """What an admin's sign-out of every session does."""
        self._revoked.update(e["session"] for e in self._refresh.values())

    def _user_id(self, github: dict) -> str:
        meta = json.dumps({"user_name": github["login"], "full_name": github["name"], "provider_id": github["login"]})
        with psycopg.connect(self.auth_dsn, autocommit=True) as conn:
            found = conn.execute("select id from auth.users where email = %s", (github["email"],)).fetchone()
            if found is None:
                found = conn.execute("insert into auth.users (id, email, raw_user_meta_data, raw_app_meta_data, created_at,"
                                     " updated_at) values (gen_random_uuid(), %s, %s, '{\"provider\": \"github\"}',"
                                     " now(), now()) returning id",
                                     (github["email"], meta)).fetchone()
                if conn.execute("select to_regclass('auth.identities')").fetchone()[0]:  # GoTrue's, where logins come from
                    conn.execute("insert into auth.identities (provider_id, user_id, identity_data, provider)"
                                 " values (%s, %s, %s, 'github')", (github["login"], found[0], meta))
        return str(found[0])

    def _user(self, user_id: str, claims: dict | None = None) -> dict:
        with psycopg.connect(self.auth_dsn) as conn:
            email, meta, created = conn.execute(
                "select email, raw_user_meta_data, created_at from auth.users where id = %s", (user_id,)).fetchone()
        return {"id": user_id, "aud": "authenticated", "role": "authenticated", "email": email,
                "app_metadata": {"provider": "github", "providers": ["github"]}, "user_metadata": meta,
                "created_at": created.isoformat()}

    def _session(self, user_id: str, session_id: str) -> dict:
        user = self._user(user_id)
        refresh = secrets.token_urlsafe(24)
        self._refresh[refresh] = {"user": user_id, "session": session_id, "used": False}
        access = token("authenticated", sub=user_id, expires_in=self.access_ttl, email=user["email"],
                       session_id=session_id, user_metadata=user["user_metadata"],
                       app_metadata=user["app_metadata"])
        self.issued += [access, refresh]
        return {"access_token": access, "token_type": "bearer", "expires_in": self.access_ttl,
                "expires_at": int(time.time()) + self.access_ttl, "refresh_token": refresh, "user": user}

    # Realtime

    def realtime(self, handler) -> None:
        if not self.realtime_on or handler.headers.get("Upgrade", "").lower() != "websocket":
            handler.reply(503, {"message": "Realtime is off"})
            return
        accept = base64.b64encode(hashlib.sha1(
            (handler.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        handler.send_response(101)
        for name, value in (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)):
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.flush()
        sock, protocol = handler.connection, Protocol(Side.SERVER, state=State.OPEN)
        outbox: queue.Queue = queue.Queue()
        bindings: dict[int, tuple[str, str]] = {}
        self._sockets.append((outbox, bindings))
        try:
            while self.realtime_on and protocol.state is State.OPEN:
                if select.select([sock], [], [], 0.1)[0]:
                    data = sock.recv(65536)
                    if not data:
                        break
                    protocol.receive_data(data)
                    for frame in protocol.events_received():
                        if frame.opcode is Opcode.TEXT:
                            for reply in self._phoenix(json.loads(frame.data), bindings):
                                outbox.put(reply)
                while not outbox.empty():
                    protocol.send_text(json.dumps(outbox.get()).encode())
                for chunk in protocol.data_to_send():
                    sock.sendall(chunk)
        finally:
            self._sockets.remove((outbox, bindings))
            handler.close_connection = True

    def _phoenix(self, message: dict, bindings: dict) -> list[dict]:
        event, topic, ref = message.get("event"), message.get("topic"), message.get("ref")
        ok = {"event": "phx_reply", "topic": topic, "ref": ref, "payload": {"status": "ok", "response": {}}}
        if event == "phx_join":
            echoed = []
            for binding in message["payload"]["config"].get("postgres_changes", []):
                binding_id = next(self._binding_ids)
                echoed.append({**binding, "id": binding_id})
                workspace = (binding.get("filter") or "").removeprefix("workspace_id=eq.")
                bindings[binding_id] = (topic, workspace)
                self._listen(workspace)
            ok["payload"]["response"] = {"postgres_changes": echoed}
            return [ok]
        if event in ("heartbeat", "phx_leave"):
            return [ok]
        return []  # access_token and the rest need no answer

    def _listen(self, workspace: str) -> None:
        if workspace in self._listening:
            return
        self._listening.add(workspace)

        def run() -> None:
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("listen {}").format(sql.Identifier(f"syncd:{workspace}")))
                    while self.realtime_on:
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._announce(workspace)
            except psycopg.OperationalError:
                if self.realtime_on:  # the test's database going away at its end is expected
                    raise
        threading.Thread(target=run, daemon=True).start()

    def _announce(self, workspace: str) -> None:
        for outbox, bindings in list(self._sockets):
            for binding_id, (topic, ws) in list(bindings.items()):
                if ws == workspace:
                    outbox.put({"event": "postgres_changes", "topic": topic, "ref": None, "payload": {
                        "ids": [binding_id], "data": {
                            "schema": "public", "table": "documents", "type": "UPDATE", "errors": None,
                            "columns": [], "commit_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "record": {"workspace_id": ws}}}})
