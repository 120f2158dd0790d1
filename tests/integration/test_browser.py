"""hubauth in a real browser: headless Chromium (Playwright, sync API) against a real Hub.

Each test launches its own Chromium (Debian's /usr/bin/chromium, never a downloaded one),
logs in through the Hub's login and OAuth consent pages like a person would, and closes the
browser again; ``chromium()`` makes sure no Chromium process outlives the test. Screenshots
land in ``test-artifacts/`` at the repository root (gitignored).
"""

from __future__ import annotations

import contextlib
import html
import http.server
import json
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.realhub import REPO_ROOT, RealHub

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
ARTIFACTS = REPO_ROOT / "test-artifacts"
# Every process Chromium starts inherits this variable (with a per-browser value), even the
# crash handlers that double-fork away from the browser's process tree.
_MARK = "HUBAUTH_BROWSER_TEST_MARK"


# ------------------------------------------------------------------ Chromium's processes


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return None if fields[0] == b"Z" else int(fields[19])  # a zombie has exited already


def _proc_alive(pid: int) -> bool:
    return _start_time(pid) is not None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _marked(mark: str) -> set[int]:
    """Live processes whose environment holds ``_MARK=mark``, and their process groups."""
    needle = f"{_MARK}={mark}".encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and _proc_alive(int(entry)):
            found.add(int(entry))
    groups = {g for g in map(_pgid, found) if g is not None and g != os.getpgrp()}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _pgid(int(entry)) in groups and _proc_alive(int(entry)):
            found.add(int(entry))  # zygotes, renderers, GPU and utility processes
    return found


def _drivers() -> set[int]:
    """Live Playwright driver processes (node ... run-driver) that are children of ours."""
    me = str(os.getpid()).encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat[stat.rfind(b")") + 2 :].split()[1]
        if ppid == me and b"run-driver" in cmdline and _proc_alive(int(entry)):
            found.add(int(entry))
    return found


def _identify(pids: set[int]) -> dict[int, int]:
    """``{pid: start time}`` of those still alive, so that a reused pid is never killed."""
    return {p: t for p in pids if (t := _start_time(p)) is not None}


def _reap(procs: dict[int, int], grace: float) -> set[int]:
    """Wait up to ``grace`` seconds for ``procs`` to exit; SIGKILL and return the rest."""
    deadline = time.monotonic() + grace
    alive = {p for p, t in procs.items() if _start_time(p) == t}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {p for p in alive if _start_time(p) == procs[p]}
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return alive


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test. It is closed afterwards, and the test fails if any
    of its processes (or Playwright's driver) had to be killed because it outlived the close.

    If Chromium cannot start, the test fails with the reason (it is never skipped).
    """
    mark = secrets.token_hex(8)
    drivers_before = _drivers()
    pw = sync_playwright().start()
    driver = _identify(_drivers() - drivers_before)
    browser: Browser | None = None
    failed = False
    try:
        try:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                env={**os.environ, _MARK: mark},
                timeout=TIMEOUT_MS,
            )
        except Exception as e:
            pytest.fail(f"Chromium ({CHROMIUM}) could not start: {e}", pytrace=False)
        yield browser
    except BaseException:
        failed = True
        raise
    finally:
        seen = _identify(_marked(mark))  # the whole tree, while the browser still runs
        try:
            if browser is not None:
                browser.close()
        finally:
            pw.stop()
            leaked = _reap({**seen, **_identify(_marked(mark))}, grace=5.0)
            leaked |= _reap(driver, grace=5.0)
        if leaked and not failed:
            pytest.fail(f"Chromium/Playwright processes outlived the browser: {sorted(leaked)}")


@contextlib.contextmanager
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


# ---------------------------------------------------------------------- the login flow


def new_member(hub: RealHub, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    hub.create_user(name, groups=["members"])
    return name


def log_in(page: Page, hub: RealHub, deep_link: str, name: str) -> list[str]:
    """Open ``deep_link`` logged out and log in as ``name`` through the Hub's pages.

    Returns the URLs the browser was shown on the way (login page, consent page).
    """
    shown = []
    page.goto(deep_link)
    # Not logged in: the service sends the browser to the Hub, which asks who we are.
    page.wait_for_url(re.compile(re.escape(f"{hub.hub_url}login") + r"(\?.*)?$"))
    shown.append(page.url)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "any password will do")
    page.click("form [type=submit]")
    # The Hub asks the user to authorize the service (its OAuth consent page).
    page.wait_for_url(re.compile(re.escape(f"{hub.hub_url}api/oauth2/authorize") + r"\?.*"))
    shown.append(page.url)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(deep_link)
    return shown


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file()
    assert path.stat().st_size > 0
    return path


def login_cookie(context: BrowserContext, hub: RealHub, service: str) -> dict[str, Any]:
    """The service's login cookie, as the browser would send it to the service's pages."""
    cookies = context.cookies(hub.service_url(service))
    matches = [c for c in cookies if c["name"] == f"service-{service}"]
    assert len(matches) == 1, [c["name"] for c in context.cookies()]
    # Scoped to the service: the browser does not send it to the Hub or to other services.
    others = context.cookies([hub.hub_url, hub.service_url("whoami-api")])
    assert f"service-{service}" not in [c["name"] for c in others]
    return dict(matches[0])


def assert_cookie_hidden(page: Page, context: BrowserContext, hub: RealHub, svc: str) -> None:
    """The login cookie is HttpOnly, scoped to the service's prefix, and not in JS's reach."""
    cookie = login_cookie(context, hub, svc)
    assert cookie["httpOnly"] is True
    assert cookie["path"] == f"/services/{svc}/"
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http on 127.0.0.1
    assert cookie["value"]
    visible = page.evaluate("document.cookie")
    assert f"service-{svc}" not in visible
    assert cookie["value"] not in visible


# ------------------------------------------------------------------------------ tests


def test_tornado_login_lands_on_the_deep_link(examples_hub: RealHub) -> None:
    hub = examples_hub
    name = new_member(hub, "browser-tornado")
    deep = hub.service_url("whoami-tornado", "deep/link?q=1")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        shown = log_in(page, hub, deep, name)

        assert "next=" in shown[0]  # the Hub's login page will send us on to authorize
        assert "client_id=service-whoami-tornado" in shown[1]
        assert page.url == deep
        assert page.locator("h1").inner_text() == f"Hello, {name}"
        model = json.loads(page.locator("#model").inner_text())
        assert model["name"] == name
        assert model["kind"] == "user"
        shot = screenshot(page, "browser-whoami-tornado.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert_cookie_hidden(page, context, hub, "whoami-tornado")

        # Logged in now: another page of the service opens straight away, no Hub round trip.
        response = page.goto(hub.service_url("whoami-tornado", "another/page"))
        assert response is not None
        assert response.status == 200
        assert response.request.redirected_from is None
        assert page.locator("h1").inner_text() == f"Hello, {name}"


def test_flask_login_lands_on_the_deep_link(examples_hub: RealHub) -> None:
    hub = examples_hub
    name = new_member(hub, "browser-flask")
    deep = hub.service_url("whoami-flask", "deep/link?q=1")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        shown = log_in(page, hub, deep, name)

        assert "client_id=service-whoami-flask" in shown[1]
        assert page.url == deep
        body = json.loads(page.locator("pre").first.inner_text())
        assert body["name"] == name
        assert body["kind"] == "user"
        assert body["path"] == "/services/whoami-flask/deep/link?q=1"
        screenshot(page, "browser-whoami-flask.png")
        assert_cookie_hidden(page, context, hub, "whoami-flask")

        # A same-origin POST from the service's own page carries the cookie and is allowed:
        # the browser says Sec-Fetch-Site: same-origin.
        result = page.evaluate(
            """async (url) => {
                const r = await fetch(url, {method: "POST", body: "x=1",
                    headers: {"Content-Type": "application/x-www-form-urlencoded"}});
                return {status: r.status, body: await r.text()};
            }""",
            hub.service_url("whoami-flask", "change"),
        )
        assert result["status"] == 200, result
        assert json.loads(result["body"]) == {"changed_by": name}


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """Serves one page: a form that POSTs to the target as soon as it loads."""

    target = ""

    def do_GET(self) -> None:
        doc = (
            "<!doctype html><meta charset=utf-8><title>Win a prize</title>"
            f"<form id=f method=post action='{html.escape(self.target)}'>"
            "<input type=hidden name=evil value=1></form>"
            "<script>document.getElementById('f').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def attacker_site(host: str, target: str) -> Iterator[str]:
    """A throwaway web server on ``host`` (a free port) serving the auto-submitting form."""
    handler = type("Attacker", (_AttackerPage,), {"target": target})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def submit_from(page: Page, attacker_url: str, target: str) -> tuple[int, dict[str, str], str]:
    """Open the attacker page; return the status, request headers and body of the POST."""
    with page.expect_response(lambda r: r.url == target and r.request.method == "POST") as info:
        page.goto(attacker_url)
    response = info.value
    page.wait_for_url(target)
    return response.status, response.request.all_headers(), response.text()


def test_cross_site_form_post_is_refused(examples_hub: RealHub) -> None:
    """A page on another origin of the same site (127.0.0.1, another port) auto-submits a
    form to the logged-in service. SameSite=Lax does not stop this (same site), so the
    browser sends the login cookie; hubauth refuses it because Chromium says where the
    request came from (Origin and Sec-Fetch-Site: same-site).
    """
    hub = examples_hub
    name = new_member(hub, "browser-csrf")
    target = hub.service_url("whoami-flask", "change")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        log_in(page, hub, hub.service_url("whoami-flask", ""), name)
        cookie = login_cookie(context, hub, "whoami-flask")

        with attacker_site("127.0.0.1", target) as attacker:
            status, headers, body = submit_from(page, attacker, target)

        assert status == 403, body
        assert "cross-site" in body.lower()
        assert "changed_by" not in body
        assert page.url == target
        assert "cross-site" in page.locator("body").inner_text().lower()
        # Chromium itself told the service where the request came from ...
        assert headers.get("origin") == attacker.rstrip("/")
        assert headers.get("sec-fetch-site") == "same-site"
        # ... and it did send the login cookie: the refusal is hubauth's, not the browser's.
        assert f"service-whoami-flask={cookie['value']}" in headers.get("cookie", "")
        screenshot(page, "browser-cross-site-post.png")


def test_cross_site_form_post_from_another_site_gets_no_cookie(examples_hub: RealHub) -> None:
    """From another site (127.0.0.2) the browser does not even send the SameSite=Lax login
    cookie with the POST: the service sees an anonymous API call and answers 401.
    """
    hub = examples_hub
    name = new_member(hub, "browser-csrf2")
    target = hub.service_url("whoami-flask", "change")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        log_in(page, hub, hub.service_url("whoami-flask", ""), name)

        with attacker_site("127.0.0.2", target) as attacker:
            status, headers, body = submit_from(page, attacker, target)

        assert status == 401, body
        assert "changed_by" not in body
        assert headers.get("origin") == attacker.rstrip("/")
        assert headers.get("sec-fetch-site") == "cross-site"
        assert "service-whoami-flask=" not in headers.get("cookie", "")
