"""The dashboard in a real headless Chromium, served by a real `syncd dashboard` process.

Needs Debian's Chromium and the Python package playwright (the test extra; no browser is
downloaded, Playwright drives /usr/bin/chromium):

    apt-get install -y chromium          # as root; .ci/run does it (bench/install-chromium)
    pip install -e '.[test]'

Skipped, saying which is missing, without them.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from copies import Copy
from syncd import config as configuration
from syncd.cli.common import version_bytes
from syncd.engine.journal import Journal
from syncd.store.connect import connect
from test_conflicts import DOC, hold_conflict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LIVE_BOUND = 2.0  # seconds from another copy's sync to the page showing it (the generous bound)

pytestmark = [
    pytest.mark.usefixtures("private_xdg"),
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install -y chromium (bench/install-chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="no playwright: pip install -e '.[test]'")


@pytest.fixture
def two_copies(tmp_path, dsn):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init()
    b.init()
    return a, b


@pytest.fixture
def served(two_copies):
    """`syncd dashboard --no-browser` for copy b: (its URL with the token, the process)."""
    _, b = two_copies
    b.sync()
    process = subprocess.Popen([sys.executable, "-m", "syncd", "--config", str(b.config), "dashboard", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        assert found, (line, process.stderr.read() if process.poll() is not None else "")
        yield found[1], process
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def write(copy: Copy, rel: str, text: str) -> None:
    target = copy.root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_the_url_followed_from_another_page_opens_the_dashboard(served, browser):
    """A link in a chat or a file: the request that follows the token's answer is the
    dashboard's own, so its SameSite=Strict cookie goes with it (a redirect would be 403)."""
    url, _ = served
    page = browser.new_page()
    page.set_content(f'<a id="open" href="{url}">the dashboard</a>')
    page.click("#open")
    page.wait_for_url(re.compile(r"^[^?]*/$"))
    page.wait_for_selector("#s-pipeline")
    assert page.title() == "syncd: team"


def test_the_opener_file_given_to_the_browser_opens_the_dashboard(two_copies, served, browser):
    """What `syncd dashboard` hands the browser instead of the URL (no token in its command line)."""
    _, b = two_copies
    opener = configuration.load(b.config).state_directory / "dashboard.html"
    page = browser.new_page()
    page.goto(opener.as_uri())
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    page.wait_for_selector("#s-pipeline")
    assert page.title() == "syncd: team"


def test_the_page_is_live_and_its_buttons_resolve(two_copies, served, browser, record_property):
    a, b = two_copies
    url, _ = served
    page = browser.new_page()
    # refused without the token, loaded with it (then without it in the address bar)
    assert page.goto(url.split("?")[0]).status == 403
    assert page.goto(url).status == 200
    page.wait_for_url(re.compile(r"^[^?]*/$"))  # sent on without the token in the address bar
    assert page.title() == "syncd: team"
    page.wait_for_selector("#live.on")  # the event stream is open

    # an edit in copy a reaches the activity stream and the pipeline of b's page
    path = "projects/P/sessions/s1/specs/spec.md"
    write(a, path, "# Spec\n\nWritten in copy a.\n")
    a.sync()
    synced = time.monotonic()
    page.wait_for_function(
        """path => document.querySelector('#activity').textContent.includes(path)
                  && document.querySelector('#pipeline tr[data-session="P/s1"] td[data-stage="spec"].started')""",
        arg=path, timeout=15000)
    shown_after = time.monotonic() - synced
    record_property("dashboard", f"an edit in another copy on the page after {shown_after:.2f} s")
    assert shown_after < LIVE_BOUND, f"the edit took {shown_after:.2f} s to reach the page"
    assert "a," in page.inner_text('#pipeline tr[data-session="P/s1"] td[data-stage="spec"]')  # who edited it

    # a conflict held by b appears; the store's side is kept with a button
    hold_conflict(a, b)
    page.wait_for_selector('article.conflict[data-path="specs/spec.md"]', timeout=15000)
    article = page.locator('article.conflict[data-path="specs/spec.md"]')
    assert "Goal one, says b." in article.locator(".side.local").inner_text()
    assert "Goal one, says a." in article.locator(".side.remote").inner_text()
    article.locator('button[value="remote"]').click()
    page.wait_for_selector("p.said")
    assert "resolved specs/spec.md: kept remote" in page.inner_text("p.said")
    page.wait_for_function("() => document.querySelector('#conflicts').textContent.includes('no conflicts')",
                           timeout=15000)
    theirs = DOC.replace("Goal one.", "Goal one, says a.")
    assert (b.root / "specs/spec.md").read_text() == theirs
    cfg = configuration.load(b.config)
    journal = Journal(cfg.journal_path)
    with connect(cfg, journal) as store:
        head = store.version("specs/spec.md")
        assert version_bytes(store, "specs/spec.md", head["version"]).decode() == theirs
    journal.close()
    assert b.status()["conflicts"] == []
