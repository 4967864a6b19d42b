"""Signing in to Supabase with GitHub: `syncd login`, `syncd logout`, `syncd whoami`."""
from __future__ import annotations

import datetime
import json
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import click
import httpx
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthError

from syncd.cli.common import Failure, load_config
from syncd.store.credentials import Credentials, credentials_path
from syncd.store.supabase_project import LOGIN_REDIRECT

LOGIN_TIMEOUT = 300.0


def _project(ctx: click.Context):
    cfg = load_config(ctx)
    if not cfg.supabase_url or not cfg.supabase_anon_key:
        raise Failure(f"{cfg.path}: set supabase_url and supabase_anon_key (the project's public "
                      "anon key, in its API settings) to sign in")
    return cfg, Credentials(credentials_path(cfg.path, cfg.supabase_url))


class _Callback(HTTPServer):
    """The loopback end of the OAuth redirect: waits for one `?code=...`."""

    def __init__(self):
        self.code: str | None = None
        self.error: str | None = None
        self.done = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.code = (query.get("code") or [None])[0]
                server.error = (query.get("error_description") or query.get("error") or [None])[0]
                message = ("Signed in: you can close this tab and go back to the terminal." if server.code
                           else f"Sign-in failed: {server.error or 'no code'}")
                body = f"<!doctype html><title>syncd</title><p>{message}</p>".encode()
                self.send_response(200 if server.code else 400)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.done.set()

        super().__init__(("127.0.0.1", 0), Handler)


@click.command()
@click.option("--no-browser", is_flag=True, help="Only print the URL (over SSH: open it on any machine "
                                                "that can reach this one's 127.0.0.1, e.g. through `ssh -L`).")
@click.pass_context
def login(ctx: click.Context, no_browser: bool) -> None:
    """Sign in with GitHub through the project's Supabase Auth (OAuth PKCE)."""
    cfg, credentials = _project(ctx)
    callback = _Callback()
    threading.Thread(target=callback.serve_forever, daemon=True).start()
    http = httpx.Client(timeout=30)
    client = create_client(cfg.supabase_url, cfg.supabase_anon_key, ClientOptions(
        storage=credentials, persist_session=False, auto_refresh_token=False, flow_type="pkce",
        httpx_client=http))
    try:
        redirect = LOGIN_REDIRECT.format(port=callback.server_address[1])
        url = client.auth.sign_in_with_oauth({"provider": "github", "options": {"redirect_to": redirect}}).url
        click.echo(f"Sign in with GitHub: {url}", err=False)
        if not no_browser:
            webbrowser.open(url)
        if not callback.done.wait(LOGIN_TIMEOUT) or not callback.code:
            raise Failure(f"no sign-in came back ({callback.error or 'timed out'}); run `syncd login` again")
        try:
            session = client.auth.exchange_code_for_session({"auth_code": callback.code}).session
        except AuthError as exc:
            raise Failure(f"Supabase refused the sign-in: {exc}") from exc
    finally:
        callback.shutdown()
        callback.server_close()
        http.close()
    credentials.save(session.model_dump(mode="json"))
    click.echo(f"signed in as {_who(session.user.model_dump(mode='json'))}; credentials in {credentials.path}")


def _who(user: dict) -> str:
    meta = user.get("user_metadata") or {}
    login = meta.get("user_name") or meta.get("preferred_username")
    return f"{login} ({user.get('email')})" if login else str(user.get("email") or user.get("id"))


@click.command()
@click.pass_context
def logout(ctx: click.Context) -> None:
    """End the Supabase session (revoked on the server) and delete the stored credentials."""
    cfg, credentials = _project(ctx)
    session = credentials.session()
    if session is None:
        click.echo("not signed in")
        return
    try:
        response = httpx.post(f"{cfg.supabase_url.rstrip('/')}/auth/v1/logout", timeout=30, headers={
            "apikey": cfg.supabase_anon_key, "Authorization": f"Bearer {session['access_token']}"})
        revoked = response.status_code < 300 or response.status_code == 401  # 401: already ended
    except httpx.TransportError:
        revoked = False
    credentials.delete()
    click.echo("signed out" + ("" if revoked else " here (the server could not be reached to revoke the session; "
                                                   "it ends when its refresh token expires)"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Who this working copy is signed in as."""
    cfg, credentials = _project(ctx)
    session = credentials.session()
    if session is None:
        raise Failure("not signed in; run `syncd login`")
    if as_json:
        user, meta = session["user"], session["user"].get("user_metadata") or {}
        click.echo(json.dumps({
            "login": meta.get("user_name") or meta.get("preferred_username"), "email": user.get("email"),
            "user_id": user.get("id"), "supabase_url": cfg.supabase_url, "expires_at": session.get("expires_at"),
            "credentials": str(credentials.path)}, indent=2))
        return
    until = datetime.datetime.fromtimestamp(session.get("expires_at") or 0).strftime("%Y-%m-%d %H:%M:%S")
    click.echo(f"{_who(session['user'])} on {cfg.supabase_url} (access token until {until}, refreshed as needed)")
