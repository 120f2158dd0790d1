"""examples/whoami-fastapi under ``uvicorn --workers 4``, run by a real Hub behind its proxy,
with requests and with headless Chromium (issue 13, item 4).

One Hub for the module runs the example twice: ``whoami-fastapi`` as its
jupyterhub_config.py does (4 workers), and ``whoami-fastapi-strict`` (2 workers) with
``JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH=0``, so both settings of websocket cookie auth are
seen. Logins must complete whichever worker answers each step, tokens and scopes decide as
the Hub says, websockets open only for a credential, a cross-site POST with only the cookie
is refused, and the docs page's Authorize button works with a token and with a Hub login.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets.sync.client
from playwright.sync_api import Page, Route
from websockets.exceptions import InvalidStatus

from tests.realhub import ADMIN_SERVICE, REPO_ROOT, RealHub

from .conftest import browse, hub_login, same_origin
from .test_browser import browser_context, chromium, log_in, screenshot

SERVICE = "whoami-fastapi"
STRICT = "whoami-fastapi-strict"
EXAMPLE = REPO_ROOT / "examples" / "whoami-fastapi"
LOGINS = 20
TIMEOUT = 15
JSON = {"Accept": "application/json"}
EVIL = "http://evil.example"
SWAGGER = REPO_ROOT / "node_modules" / "swagger-ui-dist"

pytestmark = pytest.mark.timeout(300)
SERVICE_URLS: dict[str, str] = {}  # each service's own origin (not through the proxy)


def _service(name: str, port: int, workers: int, **env: str) -> dict[str, Any]:
    """The example as its jupyterhub_config.py declares it, under another name if asked."""
    SERVICE_URLS[name] = f"http://127.0.0.1:{port}"
    return {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [
            sys.executable,
            "-m",
            "uvicorn",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--app-dir",
            str(EXAMPLE),
            "whoami_fastapi:app",
        ],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32), **env},
    }


@pytest.fixture(scope="module")
def hub() -> Iterator[RealHub]:
    from tests.services import free_port

    real = RealHub(
        services=[
            _service(SERVICE, free_port(), 4),
            _service(STRICT, free_port(), 2, JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH="0"),
        ],
        roles=[
            {"name": "user", "scopes": ["self"]},
            {"name": "fastapi-users", "scopes": ["access:services"], "groups": ["members"]},
        ],
        load_groups={"members": {"users": []}},
    )
    with real:
        for name in (SERVICE, STRICT):
            real.wait_for_service(name)
        yield real


def new_user(role: str) -> str:
    return f"fa-{role}-{secrets.token_hex(3)}"


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)


def describe(r: requests.Response) -> str:
    return f"{r.status_code} at {r.url}: {r.text[:300]!r}"


def logged_in(hub: RealHub, user: str, service: str = SERVICE) -> requests.Session:
    browser = hub_login(hub, user)
    r = browse(browser, hub.service_url(service))
    assert r.status_code == 200 and r.json()["name"] == user, describe(r)
    return browser


def login_cookie(browser: requests.Session, service: str) -> str:
    found = [
        f"{c.name}={c.value}"
        for c in browser.cookies
        if c.path == f"/services/{service}/" and c.name == f"service-{service}"
    ]
    assert len(found) == 1, [(c.name, c.path) for c in browser.cookies]
    return found[0]


# ---------------------------------------------------------------- logins on any worker


def _one_login(hub: RealHub, i: int) -> tuple[str, set[int]]:
    """Log in a new user through a deep link with a query; ``(problem or "", worker pids)``."""
    user = new_user(f"u{i}")
    path = f"/services/{SERVICE}/deep/page?n={i}&x=y"
    deep = hub.service_url(SERVICE, f"deep/page?n={i}&x=y")
    with hub_login(hub, user) as browser:
        r = browse(browser, deep)
        if r.status_code != 200 or r.url != deep or not same_origin(hub, r):
            return f"login {i} ({user}) ended with {describe(r)}", set()
        landing = r.json()
        if (landing.get("name"), landing.get("path")) != (user, path):
            return f"login {i} ({user}) landed as {landing}", set()
        left = [c.name for c in browser.cookies if "oauth-state" in c.name]
        if left:
            return f"login {i} ({user}) left state cookies behind: {left}", set()
        # Follow-ups through the proxy, and straight to the service on new connections
        # (the proxy keeps its connections alive, so those may stay with one worker).
        urls = [hub.service_url(SERVICE, f"after/{i}/{k}") for k in range(3)]
        urls += [f"{SERVICE_URLS[SERVICE]}/services/{SERVICE}/direct/{i}/{k}" for k in range(4)]
        after = []
        for url in urls:
            jar = {c.name: c.value for c in browser.cookies if c.path == f"/services/{SERVICE}/"}
            after.append(
                requests.get(url, headers=JSON, cookies=jar, allow_redirects=False, timeout=TIMEOUT)
            )
        if any(a.status_code != 200 or a.json().get("name") != user for a in after):
            return f"follow-ups {i} ({user}): {[describe(a) for a in after]}", set()
        return "", {landing["pid"], *(a.json()["pid"] for a in after)}


def test_twenty_logins_land_on_their_deep_links_on_any_worker(hub: RealHub) -> None:
    """20 users, four at a time (so the proxy opens several connections to the workers),
    each open a deep link with a query, log in through the Hub and land there as
    themselves; their next requests are answered by whichever worker, still logged in.
    """
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _one_login(hub, i), range(LOGINS)))
    problems = [p for p, _ in results if p]
    assert not problems, f"{len(problems)}/{LOGINS} logins failed:\n" + "\n".join(problems)
    pids = set().union(*(seen for _, seen in results))
    assert len(pids) > 1, f"every request was answered by the same worker: {pids}"
    switched = sum(len(seen) > 1 for _, seen in results)
    assert switched > 0, f"no session was ever used on a second worker (pids {pids})"


# ---------------------------------------------------------------- tokens and scopes


def test_api_token_and_missing_scope(hub: RealHub) -> None:
    user = new_user("token")
    hub.create_user(user, groups=["members"])
    token = hub.user_token(user)
    url = hub.service_url(SERVICE, "api/call?x=1")
    for scheme in ("token", "Bearer"):
        r = get(url, Authorization=f"{scheme} {token}")
        assert r.status_code == 200 and r.json()["name"] == user, describe(r)
        assert "set-cookie" not in r.headers
    r = get(url, Authorization=f"token {secrets.token_hex(16)}")
    assert r.status_code == 401 and "detail" in r.json(), describe(r)
    admin_only = hub.service_url(SERVICE, "admin-only")
    r = get(admin_only, Authorization=f"token {token}")
    assert r.status_code == 403 and "admin:users" in r.json()["detail"], describe(r)
    outsider = new_user("outsider")
    hub.create_user(outsider)  # not in members: no access to the service at all
    r = get(url, Authorization=f"token {hub.user_token(outsider)}")
    assert r.status_code == 403, describe(r)
    r = get(admin_only, Authorization=f"token {hub.admin_token}")  # admin:users, no access
    assert r.status_code == 200 and r.json() == {"admin": ADMIN_SERVICE}, describe(r)


# ---------------------------------------------------------------- websockets


def ws_url(hub: RealHub, service: str, query: str = "") -> str:
    return f"ws{hub.url.removeprefix('http')}/services/{service}/ws{query}"


def hello(url: str, **kwargs: Any) -> Any:
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, **kwargs) as ws:
        return json.loads(ws.recv(timeout=TIMEOUT))


def refused(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        hello(url, **kwargs)
    return info.value.response.status_code


@pytest.fixture
def quiet_ws_client() -> Iterator[None]:
    """The tests' websocket client logs its own requests (tokens in them) at DEBUG."""
    import logging

    client = logging.getLogger("websockets.client")
    level, client.level = client.level, logging.INFO
    yield
    client.setLevel(level)


@pytest.mark.parametrize("service", [SERVICE, STRICT])
def test_websocket_with_a_token_and_with_the_login_cookie(
    hub: RealHub, service: str, quiet_ws_client: None
) -> None:
    """Through the proxy: a token (in ``?token=`` or the header) opens the websocket; none
    or an unknown one is refused at the handshake; the login cookie opens it only where
    ``JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH`` is not ``0``, and only from the Hub's origin.
    """
    user = new_user("ws")
    hub.create_user(user, groups=["members"])
    token = hub.user_token(user)
    assert hello(ws_url(hub, service, f"?token={token}"))["hello"] == user
    auth = {"Authorization": f"token {token}"}
    assert hello(ws_url(hub, service), additional_headers=auth)["hello"] == user
    assert refused(ws_url(hub, service)) == 403
    assert refused(ws_url(hub, service, f"?token={secrets.token_hex(16)}")) == 403
    cookie = login_cookie(logged_in(hub, user, service), service)
    ours = {"Cookie": cookie, "Origin": hub.url}  # as a browser on the service's page sends
    if service == SERVICE:
        assert hello(ws_url(hub, service), additional_headers=ours)["hello"] == user
    else:
        assert refused(ws_url(hub, service), additional_headers=ours) == 403
    # From another site's page the browser sends the cookie too, with that page's Origin.
    assert refused(ws_url(hub, service), additional_headers={**ours, "Origin": EVIL}) == 403


# ---------------------------------------------------------------- CSRF


def test_cross_site_post_with_only_the_cookie_is_refused(hub: RealHub) -> None:
    user = new_user("csrf")
    url = hub.service_url(SERVICE, "change")
    with logged_in(hub, user) as browser:
        for headers in (
            {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
            {"Origin": EVIL},
            {"Sec-Fetch-Site": "same-site"},
            {},
        ):
            r = browser.post(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)
            assert r.status_code == 403, f"{headers}: {describe(r)}"
            assert "cross-site" in r.json()["detail"].lower()
        r = browser.post(url, headers={"Origin": hub.url}, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json() == {"changed_by": user}, describe(r)
    r = requests.post(
        url,
        headers={"Authorization": f"token {hub.user_token(user)}", "Origin": EVIL},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200 and r.json() == {"changed_by": user}


# ---------------------------------------------------------------- headless Chromium


@pytest.mark.browser
def test_chromium_logs_in_through_the_hub(hub: RealHub) -> None:
    name = new_user("chromium")
    hub.create_user(name, groups=["members"])
    deep = hub.service_url(SERVICE, "deep/link?q=1")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        shown = log_in(page, hub, deep, name)
        assert f"client_id=service-{SERVICE}" in shown[1]
        assert page.url == deep
        body = json.loads(page.locator("pre").first.inner_text())
        assert (body["name"], body["path"]) == (name, f"/services/{SERVICE}/deep/link?q=1")
        cookie = next(c for c in context.cookies(deep) if c["name"] == f"service-{SERVICE}")
        assert cookie["httpOnly"] and cookie["path"] == f"/services/{SERVICE}/"
        # A same-origin fetch POST from the service's page carries the cookie and passes.
        result = page.evaluate(
            "async (url) => { const r = await fetch(url, {method: 'POST'});"
            " return {status: r.status, body: await r.text()}; }",
            hub.service_url(SERVICE, "change"),
        )
        assert result["status"] == 200 and json.loads(result["body"]) == {"changed_by": name}
        screenshot(page, "browser-whoami-fastapi.png")


def _offline_swagger(page: Page) -> None:
    """The docs page loads Swagger UI from its CDN; Chromium here has no network, so the
    same files are served from node_modules/swagger-ui-dist (npm), and nothing else leaves.
    """

    def serve(route: Route) -> None:
        url = route.request.url
        m = re.match(r"https://cdn\.jsdelivr\.net/npm/swagger-ui-dist@5/([\w.-]+)$", url)
        if m and (SWAGGER / m.group(1)).is_file():
            kind = "text/css" if m.group(1).endswith(".css") else "application/javascript"
            route.fulfill(body=(SWAGGER / m.group(1)).read_bytes(), content_type=kind)
        else:
            route.abort()

    page.route(re.compile(r"^https://"), serve)


def _try_it(page: Page, operation: str) -> tuple[int, Any]:
    """Open an operation on the docs page (by its FastAPI operation id's first part), run it
    with "Try it out", and return the answer it got.
    """
    page.locator(".dialog-ux").wait_for(state="detached")  # the Authorize dialog is closed
    op = page.locator(f"[id^='operations-default-{operation}_']")
    if "is-open" not in (op.get_attribute("class") or ""):
        op.locator(".opblock-summary-control").click()
    toggle = op.locator("button.try-out__btn")
    toggle.wait_for()  # the operation's body is rendered ("Try it out", or "Cancel")
    if toggle.inner_text().strip() == "Try it out":
        toggle.click()
    with page.expect_response(
        lambda r: (
            r.request.method in ("GET", "POST") and ("/admin-only" in r.url or "/change" in r.url)
        )
    ) as info:
        op.locator("button.execute").click()
    response = info.value
    return response.status, response.json()


@pytest.mark.browser
def test_the_docs_pages_authorize_button(hub: RealHub) -> None:
    """Swagger UI on ``<prefix>docs``: Authorize with a pasted API token, then log out and
    Authorize through the Hub (a popup: the Hub's login, its consent page, back to the
    service's callback, which hands the code to the docs page; the token request goes to
    ``<prefix>oauth_token``). Each time, "Try it out" calls the API as that user.
    """
    name = new_user("docs")
    hub.create_user(name, groups=["members"])
    token = hub.user_token(name)
    docs = hub.service_url(SERVICE, "docs")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        _offline_swagger(page)
        page.goto(docs)
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".dialog-ux")
        # 1. An API token, pasted into the bearer scheme.
        bearer = dialog.locator(".auth-container", has_text="HubToken")
        bearer.get_by_label("auth-bearer-value").fill(token)
        bearer.get_by_role("button", name="Apply credentials").click()
        dialog.locator("button.btn-done").first.click()
        status, body = _try_it(page, "change")
        assert (status, body) == (200, {"changed_by": name})
        screenshot(page, "browser-fastapi-docs-token.png")

        # 2. Log out of the token, log in through the Hub instead.
        page.get_by_role("button", name="Authorize").first.click()
        bearer.get_by_role("button", name="Remove authorization").click()
        oauth = dialog.locator(".auth-container", has_text="JupyterHub (OAuth2")
        assert oauth.locator("#client_id_authorizationCode").input_value() == f"service-{SERVICE}"
        with page.expect_popup() as popup_info:
            oauth.get_by_role("button", name="Apply given OAuth2 credentials").click()
        popup = popup_info.value
        popup.wait_for_url(re.compile(re.escape(f"{hub.hub_url}login")))
        popup.fill("input[name=username]", name)
        popup.fill("input[name=password]", "any password will do")
        popup.click("form [type=submit]")
        popup.wait_for_url(re.compile(re.escape(f"{hub.hub_url}api/oauth2/authorize")))
        with page.expect_response(lambda r: r.url.endswith("/oauth_token")) as exchanged:
            popup.get_by_role("button", name="Authorize").click()
        assert exchanged.value.status == 200
        if not popup.is_closed():  # the relay closes it once the docs page has the code
            popup.wait_for_event("close")
        # Swagger UI shows the login as done once it has read the token answer.
        oauth.get_by_role("button", name="Remove authorization").wait_for(state="visible")
        dialog.locator("button.btn-done").first.click()
        status, body = _try_it(page, "change")
        assert (status, body) == (200, {"changed_by": name})
        status, body = _try_it(page, "admin_only")
        assert status == 403 and "admin:users" in body["detail"]
        screenshot(page, "browser-fastapi-docs-hub-login.png")
    assert Path(REPO_ROOT / "test-artifacts" / "browser-fastapi-docs-hub-login.png").is_file()
