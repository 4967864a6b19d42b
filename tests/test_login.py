"""Signing in with GitHub through Supabase Auth, end to end over supabase-py against the
loopback stand-ins; two people's working copies converging under row level security."""
from __future__ import annotations

import json

import os
import stat
import subprocess
import sys
import time

import httpx
import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from supabase_standin import StandIn, token

pytestmark = pytest.mark.on_both_databases

ANON = token("anon")


@pytest.fixture
def standin(dsn):
    server = StandIn(dsn)
    with server:
        yield server


def copy_for(tmp_path, name: str, url: str) -> WorkingCopy:
    env = isolated_env(tmp_path / name)
    copy = WorkingCopy(tmp_path, name, env)
    copy.cli("init", str(copy.root), "--workspace", "team", "--supabase-url", url, "--anon-key", ANON)
    return copy


def login(copy: WorkingCopy, standin: StandIn, github: dict) -> str:
    """Run `syncd login --no-browser`; the test plays the browser: it opens the printed URL,
    GitHub (the stand-in) approves and redirects to syncd's loopback callback."""
    standin.github_user = github
    process = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(copy.config), "login", "--no-browser"],
                               env=copy.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("Sign in with GitHub: "), line + process.stderr.read()
    url = line.split(": ", 1)[1].strip()
    assert "provider=github" in url and "code_challenge=" in url and "redirect_to=http%3A%2F%2F127.0.0.1" in url
    page = httpx.get(url, follow_redirects=True, timeout=10)
    assert page.status_code == 200 and "Signed in" in page.text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def test_login_stores_a_private_session_and_whoami_names_the_user(standin, tmp_path):
    a = copy_for(tmp_path, "a", standin.url)
    out = login(a, standin, {"login": "alice", "name": "Alice Archer", "email": "alice@example.com"})
    assert "signed in as alice (alice@example.com)" in out
    [credentials] = (tmp_path / "a" / "xdg" / "xdg_config_home" / "syncd" / "credentials").glob("*.json")
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert "alice (alice@example.com) on http://127.0.0.1" in a.cli("whoami").stdout
    who = json.loads(a.cli("whoami", "--json").stdout)
    assert (who["login"], who["email"], who["supabase_url"]) == ("alice", "alice@example.com", standin.url)
    assert "signed out" in a.cli("logout").stdout
    assert not credentials.exists()
    assert "run `syncd login`" in a.cli("whoami", check=False).stderr


def test_two_people_converge_and_an_expired_token_is_refreshed_while_syncing(standin, tmp_path, dsn):
    a, b = copy_for(tmp_path, "a", standin.url), copy_for(tmp_path, "b", standin.url)
    login(a, standin, {"login": "alice", "name": "Alice", "email": "alice@example.com"})
    login(b, standin, {"login": "bob", "name": "Bob", "email": "bob@example.com"})
    a.root.mkdir(parents=True, exist_ok=True)
    (a.root / "spec.md").write_text("by alice\n")
    a.cli("sync")  # creates the workspace: alice owns it
    assert "not a member" in b.cli("sync", check=False).stderr  # bob sees nothing yet
    assert "bob is now collaborator" in a.cli("members", "add", "bob", "--role", "collaborator").stdout
    b.cli("sync")
    assert (b.root / "spec.md").read_text() == "by alice\n"
    # access tokens now live 2 s: the running daemon refreshes them as it goes
    standin.access_ttl = 2
    login(b, standin, {"login": "bob", "name": "Bob", "email": "bob@example.com"})
    with b.config.open("a") as f:  # no Realtime yet over Supabase: the poll interval is the wake-up
        f.write("daemon: {debounce: 0.1, poll_interval: 1}\n")
    b.start()
    refreshes = standin.refreshes
    time.sleep(3)
    (a.root / "spec.md").write_text("edited by alice\n")
    a.cli("sync")
    wait_for(lambda: (b.root / "spec.md").read_text() == "edited by alice\n", timeout=60)
    (b.root / "notes.md").write_text("by bob\n")
    wait_for(lambda: "notes.md" in a.cli("sync", "--json").stdout or (a.root / "notes.md").exists(), timeout=60,
             interval=0.5)
    assert standin.refreshes > refreshes
    log = a.cli("log", "notes.md", "--json").stdout
    assert '"author": "bob"' in log
    b.stop()
    # the session revoked (an admin signed everyone out) and the token expired: a clear message
    standin.revoke_all()
    time.sleep(2.5)
    failed = b.cli("sync", check=False)
    assert failed.returncode == 1 and "run `syncd login`" in failed.stderr
