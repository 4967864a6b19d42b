"""`syncd dashboard` (syncd/dashboard/): its token, its refusal of cross-site writes, what its
pages say, and its resolve buttons, through Starlette's TestClient against working copies on
a real PostgreSQL (both transports); a reader over the Supabase transport sees only what a
reader may. The page in a real browser is tests/test_dashboard_browser.py."""
from __future__ import annotations

import json
import os
from html import escape, unescape
from pathlib import Path
import re
import subprocess
import sys
from contextlib import contextmanager

import pytest
from starlette.testclient import TestClient

from copies import Copy
from daemons import WorkingCopy, isolated_env, wait_for
from supabase_standin import StandIn, token
from syncd import config as configuration
from syncd.cli.common import version_bytes
from syncd.config import ConfigError
from syncd.dashboard.app import cookie_name, create_app, csrf_of
from syncd.dashboard.snapshot import Reader
from syncd.engine.journal import Journal
from syncd.store.connect import connect, open_workspace
from syncd.store.credentials import Credentials, credentials_path
from syncd.cli.errors import EXIT_CONFLICTS
from test_conflicts import DOC, diverge, hold_conflict

pytestmark = pytest.mark.usefixtures("private_xdg")

TOKEN = "a-token-for-the-tests"
PORT = 8765  # only named in URLs: the TestClient needs no socket
BASE = f"http://127.0.0.1:{PORT}"
S1 = "projects/P/sessions/s1"


@contextmanager
def dashboard(copy: Copy):
    """The dashboard's app for `copy`, and a client that has not presented the token."""
    cfg = configuration.load(copy.config)
    journal = Journal(cfg.journal_path)
    try:
        with connect(cfg, journal) as store:
            open_workspace(store, cfg, journal)
            with TestClient(create_app(Reader(cfg, store), None, TOKEN, PORT), base_url=BASE) as client:
                yield client
    finally:
        journal.close()


def signed_in(client: TestClient) -> TestClient:
    response = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 200 and '<meta http-equiv="refresh" content="0;url=./">' in response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(PORT)}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    return client


def write(copy: Copy, rel: str, text: str) -> None:
    target = copy.root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_without_the_token_everything_is_refused_and_with_it_the_cookie_is_set(copies):
    a, _ = copies
    a.sync()
    with dashboard(a) as client:
        for path in ("/", "/sections", "/events", "/static/dashboard.js", "/nothing"):
            assert client.get(path).status_code == 403, path
        assert client.post("/resolve", data={"path": "x", "keep": "local"},
                           headers={"Origin": BASE}).status_code == 403
        assert client.get("/?token=wrong").status_code == 403
        assert "set-cookie" not in client.get("/?token=wrong").headers
        signed_in(client)
        page = client.get("/")
        assert page.status_code == 200 and "<h2>Pipeline</h2>" in page.text
        assert client.get("/static/dashboard.js").status_code == 200
        assert client.get("/static/dashboard.css").status_code == 200
        # the token's page sends the browser on with the rest of the query
        kept = client.get(f"/?kind=sync&project=P&token={TOKEN}", follow_redirects=False)
        assert 'content="0;url=./?kind=sync&amp;project=P"' in kept.text
        # another name for the machine (DNS rebinding) is refused even with the cookie
        assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 403
        client.cookies.clear()
        assert client.get("/").status_code == 403


def test_a_cross_site_write_is_refused_and_changes_nothing(copies):
    a, b = copies
    hold_conflict(a, b)
    mine = (b.root / "specs/spec.md").read_bytes()
    with dashboard(b) as client:
        signed_in(client)
        csrf = csrf_of(TOKEN)
        form = {"path": "specs/spec.md", "keep": "remote", "csrf": csrf}
        assert client.post("/resolve", data=form).status_code == 403  # no Origin
        assert client.post("/resolve", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/resolve", data={**form, "csrf": "guessed"}, headers={"Origin": BASE}).status_code == 403
        assert client.post("/resolve", data={"path": "specs/spec.md", "keep": "remote"},
                           headers={"Origin": BASE}).status_code == 403
        # a form another site made cannot read the page's token: the page is the only place it is
        assert csrf in client.get("/").text and csrf not in client.get(f"/?token={TOKEN}", follow_redirects=False).text
    assert (b.root / "specs/spec.md").read_bytes() == mine
    assert [c["path"] for c in b.status()["conflicts"]] == ["specs/spec.md"]


def test_the_page_shows_the_pipeline_activity_state_devices_and_charts(copies):
    a, b = copies
    write(a, f"{S1}/intents/intent.md", "# Intent\n\nShip the sync daemon.\n")
    write(a, f"{S1}/contexts/context.md", "# Context\n\n<describe the context>\n- [ ] \n")  # a template
    write(a, "projects/P/sessions/s2/intents/intent.md", "# Intent\n\nAnother one.\n")
    write(a, "projects/P/CURRENT_SESSION", "session_id: s1\n")
    write(a, "projects/P/session_state.json", json.dumps({"stages": {"intent": "completed", "context": "completed"}}))
    a.sync()
    b.sync()
    write(b, f"{S1}/specs/spec.md", "# Spec\n\nThe real thing.\n")
    b.sync()
    progress = {s["session"]: s for s in json.loads(b.cli("progress", "--json").stdout)}
    with dashboard(b) as client:
        html = signed_in(client).get("/").text
        sections = client.get("/sections").json()["sections"]
    assert set(sections) == {"state", "conflicts", "pipeline", "activity", "devices", "charts"}
    for name, part in sections.items():
        assert part in html, name  # the page without a script is the sections the script swaps in
    pipeline = sections["pipeline"]
    row = re.search(r'<tr data-session="P/s1" class=current>(.*?)</tr>', pipeline)[1]
    assert "current" in row
    intent, context, spec = (re.search(rf'<td class="([^"]*)" data-stage="{stage}">(.*?)</td>', row).groups()
                             for stage in ("intent", "context", "spec"))
    assert intent[0] == "started" and "a, " in intent[1]  # who last edited it, and when
    assert spec[0] == "started" and "b, " in spec[1]
    assert context[0] == "pending disagree" and "⚑ completed" in context[1]
    assert "P/s1 context: session_state.json says completed, the documents say pending" in text_of(pipeline)
    assert progress["s1"]["stages"]["spec"]["last_edited_by"] == "b"  # what `syncd progress` says too
    assert 'data-session="P/s2"' in pipeline and '<tr data-session="P/s2">' in pipeline  # not current
    activity = text_of(sections["activity"])
    assert f"{S1}/specs/spec.md v1" in activity and f"{S1}/intents/intent.md v1" in activity
    state = text_of(sections["state"])
    assert "not running" in state and "conflicts 0" in state and "pending 0 local, 0 remote" in state
    devices = text_of(sections["devices"])
    assert " a " in devices and " b " in devices
    assert sections["charts"].count("<svg") >= 3 and 'class="bar"' in sections["charts"]
    assert "Stage completion per project" in sections["charts"]


def test_the_activity_stream_filters_by_project_session_person_and_kind(copies):
    a, b = copies
    write(a, f"{S1}/intents/intent.md", "# Intent\n\nOne.\n")
    write(a, "projects/Q/sessions/q1/intents/intent.md", "# Intent\n\nTwo.\n")
    a.sync()
    b.sync()
    write(b, f"{S1}/specs/spec.md", "# Spec\n\nThree.\n")
    b.sync()

    def paths(query: str) -> set[str]:
        part = client.get(f"/sections?{query}").json()["sections"]["activity"]
        return set(re.findall(r"<code>([^<]+)</code>", part))
    with dashboard(b) as client:
        signed_in(client)
        every = paths("")
        assert {f"{S1}/intents/intent.md", "projects/Q/sessions/q1/intents/intent.md", f"{S1}/specs/spec.md"} <= every
        assert paths("project=Q") == {"projects/Q/sessions/q1/intents/intent.md"}
        assert paths("project=P&session=s1") == {f"{S1}/intents/intent.md", f"{S1}/specs/spec.md"}
        assert paths("person=b&kind=sync") == {f"{S1}/specs/spec.md"}
        assert f"{S1}/specs/spec.md" not in paths("person=a")
        assert paths("kind=nothing-of-the-kind") == set()
        form = client.get("/?project=P").text
        assert '<option value="P" selected>P</option>' in form and '<option value="b">b</option>' in form


@pytest.mark.parametrize("keep", ["local", "remote", "both", "merged"])
def test_a_resolve_button_does_what_syncd_resolve_does(copies, keep):
    a, b = copies
    hold_conflict(a, b)
    with dashboard(b) as client:
        signed_in(client)
        page = client.get("/").text
        view = text_of(page)
        assert "specs/spec.md" in view and "Goal one, says b." in view and "Goal one, says a." in view
        for side, label in (("base", "base (v1)"), ("local", "local (this working copy)"), ("remote", "remote (v2 by a)")):
            assert f'<div class="side {side}"><h4>{label}</h4>' in page
        assert all(f'name="keep" value="{k}"' in page for k in ("local", "remote", "both", "merged"))
        assert '<input type="hidden" name="shown" value="2">' in page  # the store's side it shows
        done = client.post("/resolve", data={"path": "specs/spec.md", "keep": keep, "csrf": csrf_of(TOKEN), "shown": "2"},
                           headers={"Origin": BASE})
        assert done.status_code == 200 and done.url.path == "/"
        said = text_of(done.text)
    on_disk = (b.root / "specs/spec.md").read_text()
    if keep == "merged":  # as `syncd resolve --keep merged`: the file with markers, to edit
        assert "with conflict markers: edit it and remove them" in said
        assert "<<<<<<< local (this working copy)\nGoal one, says b." in on_disk
        assert b.status()["conflicts"][0]["path"] == "specs/spec.md"
        return
    assert f"resolved specs/spec.md: kept {keep}" in said
    winner = {"local": "b", "remote": "a", "both": "a"}[keep]
    assert on_disk == DOC.replace("Goal one.", f"Goal one, says {winner}.")
    assert b.status()["conflicts"] == []
    cfg = configuration.load(b.config)
    journal = Journal(cfg.journal_path)
    with connect(cfg, journal) as store:
        head = store.version("specs/spec.md")
        assert version_bytes(store, "specs/spec.md", head["version"]).decode() == on_disk
        if keep == "both":
            [copy] = [p for p in b.files() if p != "specs/spec.md"]
            assert store.version(copy)["version"] == 1  # this copy's side, beside it in the store
    journal.close()


def test_a_resolve_that_cannot_be_done_says_why_as_syncd_resolve_would(copies):
    a, _ = copies
    a.sync()
    with dashboard(a) as client:
        signed_in(client)
        done = client.post("/resolve", data={"path": "nope.md", "keep": "local", "csrf": csrf_of(TOKEN)},
                           headers={"Origin": BASE})
    assert "nope.md: no conflict is held on this path" in text_of(done.text)


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_readers_dashboard_shows_what_a_reader_may_see_only(tmp_path, dsn):
    """Over the Supabase transport, signed in: alice owns the workspace and writes two
    sessions, bob reads session P/s1 only; his page holds s1 and nothing of s2."""
    standin = StandIn(dsn)
    with standin as url:
        alice, bob = Copy(tmp_path, "alice", dsn, supabase_url=url), Copy(tmp_path, "bob", dsn, supabase_url=url)
        for copy, login in ((alice, "alice"), (bob, "bob")):
            copy.cli("init", str(copy.root), "--workspace", "team", "--supabase-url", url, "--anon-key", token("anon"))
            Credentials(credentials_path(copy.config, url)).save(
                standin.sign_in({"login": login, "name": login.title(), "email": f"{login}@example.com"}))
        write(alice, f"{S1}/intents/intent.md", "# Intent\n\nVisible to bob.\n")
        write(alice, "projects/P/sessions/s2/intents/intent.md", "# Intent\n\nSecret of s2.\n")
        write(alice, "projects/P/sessions/s2/specs/spec.md", "# Spec\n\nAlso secret.\n")
        alice.sync()
        alice.cli("members", "add", "bob", "--role", "reader", "--session", "P/s1")
        bob.sync()
        with dashboard(alice) as client:
            owners = signed_in(client).get("/").text
        with dashboard(bob) as client:
            readers = signed_in(client).get("/").text
    assert 'data-session="P/s2"' in owners and "sessions/s2/specs/spec.md" in owners
    assert 'data-session="P/s1"' in readers and f"{S1}/intents/intent.md" in readers
    assert "sessions/s2" not in readers and 'data-session="P/s2"' not in readers
    assert "Secret" not in readers and "secret" not in readers


def test_the_config_switch_is_true_or_false_and_the_port_a_port(tmp_path):
    base = {"root": str(tmp_path / "root"), "workspace": "team"}
    path = tmp_path / "syncd.yaml"
    for daemon, said in (({"dashboard": 1}, "'daemon.dashboard' must be true or false"),
                         ({"dashboard_port": 70000}, "'daemon.dashboard_port' is a TCP port"),
                         ({"dashboard_port": True}, "'daemon.dashboard_port' must be a non-negative int")):
        path.write_text(json.dumps({**base, "daemon": daemon}))
        with pytest.raises(ConfigError, match=re.escape(said)):
            configuration.load(path)
    path.write_text(json.dumps({**base, "daemon": {"dashboard": True, "dashboard_port": 8999}}))
    settings = configuration.load(path).daemon
    assert (settings.dashboard, settings.dashboard_port) == (True, 8999)


def test_the_cli_starts_without_starlette_or_uvicorn():
    probe = ("import sys; from click.testing import CliRunner; from syncd.cli.main import main; "
             "CliRunner().invoke(main, ['--help']); CliRunner().invoke(main, ['dashboard', '--help']); "
             "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_syncd_run_serves_the_dashboard_when_the_config_asks(tmp_path, dsn):
    """daemon.dashboard: true: the daemon writes the URL with its token (to its owner only)
    and serves the page beside its passes; stopped with the daemon."""
    import httpx
    copy = WorkingCopy(tmp_path, "a", isolated_env(tmp_path))
    copy.init("team", dsn, "daemon:", "  dashboard: true")
    write(copy, f"{S1}/intents/intent.md", "# Intent\n\nServed.\n")
    url_file = configuration.load(copy.config).state_directory / "dashboard.url"
    copy.start()
    try:
        url = wait_for(lambda: url_file.exists() and url_file.read_text().strip())
        assert url_file.stat().st_mode & 0o777 == 0o600
        with httpx.Client() as client:
            assert client.get(url.split("?")[0]).status_code == 403
            assert client.get(url).status_code == 200  # the cookie
            page = wait_for(lambda: (r := client.get(url.split("?")[0])).status_code == 200
                            and f"{S1}/intents/intent.md" in r.text and r.text)
            assert re.search(r'<p class="state running"><strong>running</strong> \(pid \d+\)', page)
    finally:
        assert copy.stop() == 0
    assert not url_file.exists()


def test_the_page_is_woken_by_a_commit_elsewhere_and_by_this_copys_journal(copies):
    """The wake-ups the event stream waits on: the store's (NOTIFY, or Realtime over the
    Supabase transport) for another copy's sync, the journal's for `syncd pause` here."""
    from syncd.dashboard.wakeups import Wakeups
    a, b = copies
    a.sync()
    b.sync()
    cfg = configuration.load(b.config)
    journal = Journal(cfg.journal_path)
    with connect(cfg, journal) as store:
        wakeups = Wakeups(cfg, store, open_workspace(store, cfg, journal).id)
        wakeups.start()
        try:
            wait_for(lambda: all(listener.connected.is_set() for listener in wakeups.listeners))
            seen = wakeups.generation
            write(a, "notes.md", "from a\n")
            a.sync()
            assert wakeups.wait(seen, 10.0) != seen
            wait_for(lambda: wakeups.wait(wakeups.generation, 0.3) == wakeups.generation)  # quiet again
            seen = wakeups.generation
            b.cli("pause")
            assert wakeups.wait(seen, 10.0) != seen
        finally:
            wakeups.stop()
    journal.close()


def test_a_copy_never_synced_says_what_its_first_pass_would_do_as_status_does(copies):
    a, _ = copies
    write(a, "notes.md", "not pushed yet\n")
    with dashboard(a) as client:
        state = text_of(signed_in(client).get("/sections").json()["sections"]["state"])
    assert "never synced the first pass would leave: 1 pushed" in state
    assert "not running" in state


HOSTILE = '"><img src=x onerror=alert(1)>'


def test_hostile_names_and_activity_details_are_text_on_the_page(copies):
    """A file name, and an activity row's details, written by another member of the
    workspace, are shown as text: no element of theirs reaches the page."""
    a, b = copies
    write(a, f"notes/{HOSTILE}.md", "hostile name\n")
    a.sync()
    cfg = configuration.load(a.config)
    journal = Journal(cfg.journal_path)
    with connect(cfg, journal) as store:
        open_workspace(store, cfg, journal)
        store.record([{"kind": "daemon_started", "path": "notes/x.md", "details": {"version": HOSTILE, "keep": HOSTILE}}])
    journal.close()
    b.sync()
    with dashboard(b) as client:
        page = signed_in(client).get("/").text
    assert "<img" not in page
    assert escape(HOSTILE) in page


def test_no_other_page_may_frame_the_dashboard_or_run_script_in_it(copies):
    """Another local user's page on 127.0.0.1 is the same site as the dashboard (cookies
    ignore ports): framed under a decoy, a click would reach a resolve button. Every answer,
    refusals included, forbids frames, foreign scripts and forms, and sends no Referer to another site."""
    a, _ = copies
    a.sync()
    with dashboard(a) as client:
        answers = [client.get("/"), signed_in(client).get("/"), client.get("/sections"),
                   client.get("/static/dashboard.js"), client.get(f"/?token={TOKEN}", follow_redirects=False)]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy and "form-action 'self'" in policy
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["referrer-policy"] == "same-origin"


def test_the_browser_is_opened_without_the_token_on_its_command_line(copies, tmp_path):
    """Any local user reads a process's command line (ps): the browser is given a file
    only its owner may read, which sends it on to the URL with the token."""
    import httpx
    _, b = copies
    b.sync()
    argv = tmp_path / "browser-argv"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv}\n')
    browser.chmod(0o755)
    process = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(b.config), "dashboard"],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "BROWSER": f"{browser} %s"})
    try:
        url = re.search(r"at (http://\S+)", process.stdout.readline())[1]
        given = wait_for(lambda: argv.exists() and argv.read_text().strip())
        token_of = url.split("token=")[1]
        assert token_of not in given and given.startswith("file://")
        opener = Path(given.removeprefix("file://"))
        assert opener.stat().st_mode & 0o777 == 0o600
        target = re.search(r'content="0;url=([^"]+)"', opener.read_text())[1]
        with httpx.Client() as client:
            assert client.get(unescape(target)).status_code == 200 and client.get(url.split("?")[0]).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert not opener.exists()


def test_a_long_text_cut_in_the_middle_of_a_character_is_shown_as_text(copies):
    """The three-way view shows the first bytes of each side: a cut that splits a UTF-8
    character must not make a text file "binary"."""
    a, b = copies
    long = "aé" * 8000 + "\n"  # 3 bytes a pair: the view's cut falls inside an é
    diverge(a, b, "long.md", long + "Goal.\n", long + "Goal, says b.\n", long + "Goal, says a.\n")
    assert b.sync(expect=EXIT_CONFLICTS)["conflicts"] == ["long.md"]
    with dashboard(b) as client:
        part = signed_in(client).get("/sections").json()["sections"]["conflicts"]
    assert "binary" not in part and part.count("<pre>aéaé") == 3 and "more bytes" in part


def test_a_button_of_a_page_that_showed_another_store_version_does_nothing(copies):
    """The page showed the store's v1 (rendered before a newer version was held): keeping
    a side chosen against it settles nothing, and says to look again."""
    a, b = copies
    hold_conflict(a, b)
    mine = (b.root / "specs/spec.md").read_bytes()
    with dashboard(b) as client:
        signed_in(client)
        done = client.post("/resolve", data={"path": "specs/spec.md", "keep": "local", "csrf": csrf_of(TOKEN),
                                             "shown": "1"}, headers={"Origin": BASE})
    assert "the store's side is v2 now, not the v1 the page showed; nothing was done" in unescape(text_of(done.text))
    assert (b.root / "specs/spec.md").read_bytes() == mine
    assert [c["path"] for c in b.status()["conflicts"]] == ["specs/spec.md"]
