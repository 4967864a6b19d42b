"""The dashboard's ASGI app: the page, its sections for the script, the event stream, the
resolve buttons, the static files; all of it behind a token, as Jupyter's.

The URL carries the token once (`?token=`): it becomes an HttpOnly, SameSite=Strict cookie
and a page of its own sends the browser on without it (signing_in). Anything without the
cookie is refused (403), as is a Host other than the loopback address (DNS rebinding), and
a POST whose Origin is not the page's or whose form lacks the page's CSRF token (cross-site
requests). No answer may be framed by another page (HARDENING).
"""
from __future__ import annotations

import hashlib
import hmac
from html import escape
from urllib.parse import parse_qs, urlencode

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from syncd.dashboard import views
from syncd.dashboard.snapshot import Filters, Reader
from syncd.dashboard.wakeups import Wakeups

KEEP_ALIVE = 15.0  # seconds between comments on a quiet event stream
HARDENING = [  # on every response: no frame of it on another page (a click on a resolve button
    # under a decoy), no script, style or form target but the page's own, no Referer sent off the page
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                 b"base-uri 'none'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make a form's Origin "null"
    (b"x-content-type-options", b"nosniff"),
]


def csrf_of(token: str) -> str:
    return hmac.new(token.encode(), b"syncd-dashboard-csrf", hashlib.sha256).hexdigest()


def cookie_name(port: int) -> str:
    return f"syncd-dashboard-{port}"  # cookies ignore ports: one per dashboard on this host


def signing_in(request: Request) -> HTMLResponse:
    """The answer to the URL with the token: a page that sends itself on without it. Not a
    redirect: when the URL was followed from another page (a chat, a file, the browser's
    opener), the redirected request is still that page's, and a SameSite=Strict cookie is not
    sent with it (403); a navigation this page starts is the dashboard's own."""
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    target = escape("./" + (f"?{rest}" if rest else ""))
    return HTMLResponse(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" '
                        f'content="0;url={target}"><title>syncd</title></head><body><p><a href="{target}">the '
                        f'dashboard</a></p></body></html>\n', headers={"Cache-Control": "no-store"})


class Guard:
    """The token, the Host and, for writes, the Origin, checked before any route runs."""

    def __init__(self, app, token: str, port: int):
        self.app = app
        self.token = token
        self.cookie = cookie_name(port)
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def hardened(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HARDENING]}
            await send(message)
        await self._guarded(scope, receive, hardened)

    async def _guarded(self, scope, receive, send):
        request = Request(scope)
        response = self._refusal(request)
        if response is None:
            given = request.query_params.get("token")
            if given is None:
                return await self.app(scope, receive, send)
            response = signing_in(request)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
        await response(scope, receive, send)

    def _refusal(self, request: Request):
        if request.headers.get("host") not in self.hosts:
            return PlainTextResponse("this dashboard answers on 127.0.0.1 only\n", status_code=403)
        given = request.query_params.get("token")
        if given is not None:
            ok = hmac.compare_digest(given.encode(), self.token.encode())
        else:
            ok = hmac.compare_digest(request.cookies.get(self.cookie, "").encode(), self.token.encode())
        if not ok:
            return PlainTextResponse("open the dashboard with its URL and token: as `syncd dashboard` printed "
                                     "it, or from dashboard.url in the state directory when `syncd run` "
                                     "serves it\n", status_code=403)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin not in {f"http://{h}" for h in self.hosts}:
                return PlainTextResponse("refused: a write from another site\n", status_code=403)
        return None


def create_app(reader: Reader, wakeups: Wakeups | None, token: str, port: int):
    """The app for one working copy; `wakeups` None: no live stream (the tests of the pages)."""
    csrf = csrf_of(token)

    def generation() -> int:
        return wakeups.generation if wakeups else 0

    async def snapshot(request: Request) -> tuple[Filters, dict[str, str]]:
        filters = Filters.of(request.query_params)
        snap = await run_in_threadpool(reader.snapshot, filters)
        return filters, views.sections(snap, filters, csrf)

    async def index(request: Request):
        gen = generation()
        _, parts = await snapshot(request)
        return HTMLResponse(views.page(reader.cfg.workspace, parts, gen, request.query_params.get("said")),
                            headers={"Cache-Control": "no-store"})

    async def sections(request: Request):
        gen = generation()
        _, parts = await snapshot(request)
        return JSONResponse({"generation": gen, "sections": parts}, headers={"Cache-Control": "no-store"})

    async def events(request: Request):
        if wakeups is None:
            return PlainTextResponse("no live updates here\n", status_code=404)
        try:
            seen = int(request.query_params.get("since", ""))
        except ValueError:
            seen = wakeups.generation

        async def stream():
            nonlocal seen
            yield "retry: 2000\n\n"
            while not wakeups.stopped:
                now = await anyio.to_thread.run_sync(wakeups.wait, seen, KEEP_ALIVE, abandon_on_cancel=True)
                if wakeups.stopped:
                    return
                if now != seen:
                    seen = now
                    yield f"event: changed\ndata: {now}\n\n"
                else:
                    yield ": quiet\n\n"
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def resolve(request: Request):
        # the buttons' form, url-encoded (no multipart parser needed for three fields)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(str(form.get("csrf", "")).encode(), csrf.encode()):
            return PlainTextResponse("refused: the form is not this page's (CSRF token)\n", status_code=403)
        _, message = await run_in_threadpool(reader.resolve, str(form.get("path", "")), str(form.get("keep", "")),
                                            str(form.get("shown", "")))
        if wakeups:
            wakeups.bump()
        return RedirectResponse(f"./?{urlencode({'said': message})}#s-conflicts", status_code=303)

    app = Starlette(routes=[
        Route("/", index),
        Route("/sections", sections),
        Route("/events", events),
        Route("/resolve", resolve, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("syncd.dashboard", "static")]), name="static"),
    ])
    return Guard(app, token, port)
