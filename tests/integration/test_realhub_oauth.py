"""The browser login of a Tornado service, against a REAL JupyterHub (issue 3, item 8).

A ``requests.Session`` plays the browser: :func:`navigate` follows every redirect itself,
one hop at a time (so hops are counted and each ``Location`` is seen), fills in the Hub's
login form and submits its consent form the way a browser would (every field, hidden
``scopes`` included). Everything asserted is what a user would see: status codes, the URL
they end on, the page, and the cookies their browser keeps.

Two Hubs:

- ``examples_hub`` (conftest, session-wide) runs examples/whoami-tornado as a managed
  service; users in group ``members`` may use it.
- ``duo_hub`` (this module) runs tests/integration/apps/two_process_tornado.py twice: as
  ``duo``, the same whoami-tornado app served by TWO processes forked behind ONE port, and as
  ``vip-only``, one process whose page needs the custom scope ``custom:whoami:vip`` (which
  only group ``vips`` holds) on top of access to the service.
"""

from __future__ import annotations

import contextlib
import html
import html.parser
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.realhub import RealHub

from .conftest import hub_login

TORNADO = "whoami-tornado"
TIMEOUT = 30.0  # seconds per request: generous, the machine is shared and small
MAX_HOPS = 12  # a login takes at most 8 (service, Hub login form, consent, callback, page)

DUO = "duo"
VIP = "vip-only"
VIP_SCOPE = "custom:whoami:vip"
TWO_PROCESS_APP = Path(__file__).resolve().parent / "apps" / "two_process_tornado.py"
MIN_LOGINS = 10  # users logged in to the two-process service, at least
MAX_LOGINS = 40  # ... and at most, while waiting for both processes to have served


# ------------------------------------------------------------------------- the browser


class _FirstForm(html.parser.HTMLParser):
    """The first ``<form>`` of a page, as a browser submits it: action and every field."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._inside = a.get("action", ""), True
            return
        if not self._inside or tag != "input" or not a.get("name") or "disabled" in a:
            return
        kind = a.get("type", "text").lower()
        if kind in ("submit", "button", "image", "reset", "file"):
            return
        if kind in ("checkbox", "radio") and "checked" not in a:
            return
        self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def first_form(page: requests.Response) -> tuple[str, list[tuple[str, str]]]:
    """``(absolute action URL, fields)`` of the first form on ``page``."""
    form = _FirstForm()
    form.feed(page.text)
    assert form.action is not None, f"no form on {page.url}: {page.text[:300]!r}"
    return urllib.parse.urljoin(page.url, form.action or page.url), form.fields


@dataclass
class Visit:
    """Every response of one navigation, in order; ``pending``: a URL not yet requested."""

    hops: list[requests.Response]
    pending: str = ""

    @property
    def final(self) -> requests.Response:
        return self.hops[-1]

    def trail(self) -> str:
        return "\n".join(
            f"  {r.request.method} {r.url} -> {r.status_code} {r.headers.get('Location', '')}"
            for r in self.hops
        )

    def hop(self, path_end: str) -> requests.Response:
        """The (last) response for a URL whose path ends with ``path_end``."""
        found = [r for r in self.hops if urllib.parse.urlsplit(r.url).path.endswith(path_end)]
        assert found, f"no hop to ...{path_end}:\n{self.trail()}"
        return found[-1]


def navigate(
    session: requests.Session,
    url: str,
    *,
    data: list[tuple[str, str]] | None = None,
    username: str | None = None,
    until: Callable[[str], bool] | None = None,
) -> Visit:
    """Navigate like a browser (a POST of ``data`` when given), one hop at a time.

    Follows redirects, submits the Hub's consent form, and fills in the Hub's login form as
    ``username`` when one is given (else stops there). Stops before following a redirect to
    a URL for which ``until`` is true (returned as ``pending``). More than ``MAX_HOPS`` hops
    fail the test: that is a redirect loop.
    """
    visit = Visit([])
    method = "GET" if data is None else "POST"
    while True:
        if len(visit.hops) >= MAX_HOPS:
            pytest.fail(f"more than {MAX_HOPS} hops, a redirect loop:\n{visit.trail()}")
        response = session.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
        visit.hops.append(response)
        method, data = "GET", None
        path = urllib.parse.urlsplit(response.url).path
        if response.is_redirect:
            url = urllib.parse.urljoin(response.url, response.headers["Location"])
            if until is not None and until(url):
                visit.pending = url
                return visit
        elif response.status_code == 200 and path.endswith("/hub/api/oauth2/authorize"):
            url, data = first_form(response)  # the consent page: "Authorize"
            method = "POST"
        elif response.status_code == 200 and path.endswith("/hub/login") and username:
            url, fields = first_form(response)
            data = [(k, v) for k, v in fields if k not in ("username", "password")]
            data += [("username", username), ("password", "")]
            method = "POST"
        else:
            return visit


def is_authorize(url: str) -> bool:
    return urllib.parse.urlsplit(url).path.endswith("/hub/api/oauth2/authorize")


def is_callback(url: str) -> bool:
    return urllib.parse.urlsplit(url).path.endswith("/oauth_callback")


def login_cookie_name(service: str) -> str:
    return f"service-{service}"


def jar_has(session: requests.Session, name: str) -> bool:
    return any(c.name == name for c in session.cookies)


def set_cookie_headers(response: requests.Response, name: str) -> list[str]:
    """The ``Set-Cookie`` headers of ``response`` for cookie ``name``."""
    headers = response.raw.headers.getlist("Set-Cookie")
    return [h for h in headers if h.startswith(f"{name}=")]


def clears(header: str) -> bool:
    """Whether a ``Set-Cookie`` header deletes its cookie (empty value, Max-Age=0)."""
    value = header.split(";", 1)[0].split("=", 1)[1]
    return value in ("", '""') and "max-age=0" in header.lower().replace(" ", "")


def model_on_page(page: requests.Response) -> dict[str, Any]:
    """The user model whoami-tornado shows in ``<pre id=model>``."""
    m = re.search(r"<pre id=model>(.*?)</pre>", page.text, re.S)
    assert m is not None, f"no model on the page: {page.text[:300]!r}"
    model: dict[str, Any] = json.loads(html.unescape(m.group(1)))
    return model


def on_origin(hub: RealHub, url: str, base: str) -> bool:
    """Whether ``url`` (maybe relative to ``base``) is on the Hub's public origin."""
    absolute = urllib.parse.urlsplit(urllib.parse.urljoin(base, url))
    return (absolute.scheme, absolute.netloc) == urllib.parse.urlsplit(hub.url)[:2]


class Browsers:
    """Browser sessions for one test, all closed at its end."""

    def __init__(self) -> None:
        self.opened: list[requests.Session] = []

    def hub_user(self, hub: RealHub, name: str, *, member: bool = True) -> requests.Session:
        """A browser logged in to the Hub as ``name`` (created; in ``members`` if member)."""
        session = hub_login(hub, name, member=member)
        self.opened.append(session)
        return session

    def fresh(self) -> requests.Session:
        """A browser with no cookies at all."""
        session = requests.Session()
        session.headers["Accept"] = "text/html"
        self.opened.append(session)
        return session

    def close(self) -> None:
        for session in self.opened:
            session.close()


@pytest.fixture
def browsers() -> Iterator[Browsers]:
    b = Browsers()
    yield b
    b.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# ------------------------------------------------------------- (1) (2) login, deep links


def test_login_shows_the_users_model(examples_hub: RealHub, browsers: Browsers) -> None:
    name = unique("oauth-ann")
    browser = browsers.hub_user(examples_hub, name)
    home = examples_hub.service_url(TORNADO)

    visit = navigate(browser, home)

    page = visit.final
    assert page.status_code == 200, visit.trail()
    assert page.url == home
    assert f"<h1>Hello, {name}</h1>" in page.text
    model = model_on_page(page)
    assert model["name"] == name
    assert model["kind"] == "user"
    assert model["groups"] == ["members"]
    # The whole login happened: the Hub was asked, the callback set the login cookie.
    assert is_authorize(visit.hops[1].url)
    [cookie] = set_cookie_headers(visit.hop("/oauth_callback"), login_cookie_name(TORNADO))
    assert f"Path=/services/{TORNADO}/" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    # Logged in now: the next visit is served at once, no trip to the Hub.
    again = browser.get(home, allow_redirects=False, timeout=TIMEOUT)
    assert again.status_code == 200
    assert f"<h1>Hello, {name}</h1>" in again.text


def test_deep_link_with_query_survives_the_login(examples_hub: RealHub, browsers: Browsers) -> None:
    name = unique("oauth-deep")
    browser = browsers.hub_user(examples_hub, name)
    deep = examples_hub.service_url(
        TORNADO, "reports/2024/q3?view=table&sort=-date&q=a%20b&next=%2Fhub%2F&empty="
    )

    visit = navigate(browser, deep)

    assert visit.final.status_code == 200, visit.trail()
    assert visit.final.url == deep  # path and query string exactly as first asked for
    assert f"<h1>Hello, {name}</h1>" in visit.final.text
    # The place to come back to is kept in the state cookie, not carried through the Hub.
    authorize = visit.hops[0].headers["Location"]
    assert is_authorize(authorize)
    assert "reports" not in authorize
    assert "sort" not in authorize


# ------------------------------------------------------------ (3) refused: 403, no loop


def test_non_member_is_refused_by_the_hub_without_a_loop(
    examples_hub: RealHub, browsers: Browsers
) -> None:
    name = unique("oauth-outsider")
    browser = browsers.hub_user(examples_hub, name, member=False)
    home = examples_hub.service_url(TORNADO)

    for _ in range(2):  # trying again changes nothing: still one refusal, no loop
        visit = navigate(browser, home)
        assert visit.final.status_code == 403, visit.trail()
        assert is_authorize(visit.final.url)
        assert "You do not have permission to access" in visit.final.text
        assert len(visit.hops) == 2, visit.trail()  # the service's redirect, the Hub's 403
        assert not jar_has(browser, login_cookie_name(TORNADO))


# ------------------------------------------------------ (4) API tokens; ?token= ignored


def test_api_token_in_authorization_header_gets_json(
    examples_hub: RealHub, browsers: Browsers
) -> None:
    name = unique("oauth-api")
    examples_hub.create_user(name, groups=["members"])
    token = examples_hub.user_token(name)
    home = examples_hub.service_url(TORNADO)

    for scheme in ("token", "Bearer"):
        r = requests.get(
            home,
            headers={"Authorization": f"{scheme} {token}", "Accept": "application/json"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["name"] == name
        assert r.json()["kind"] == "user"
        assert "Set-Cookie" not in r.headers  # a header token never becomes a cookie

    # A token of that user without access to the service: refused, not sent to log in.
    narrow = examples_hub.user_token(name, scopes=[f"read:users:name!user={name}"])
    r = requests.get(
        home,
        headers={"Authorization": f"token {narrow}", "Accept": "application/json"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 403
    assert "Location" not in r.headers


def test_token_in_url_is_ignored_by_default(examples_hub: RealHub, browsers: Browsers) -> None:
    name = unique("oauth-urltoken")
    examples_hub.create_user(name, groups=["members"])
    token = examples_hub.user_token(name)
    url = examples_hub.service_url(TORNADO, f"?token={token}")
    browser = browsers.fresh()

    # A browser navigation is sent to log in, as if there were no token ...
    r = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302
    assert is_authorize(r.headers["Location"])
    assert name not in r.text
    assert not jar_has(browser, login_cookie_name(TORNADO))  # ... and gets no login cookie
    # ... and an API-style request is not authenticated by it either.
    api = requests.get(
        url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=TIMEOUT
    )
    assert api.status_code == 401
    assert name not in api.text


# --------------------------------------------------------------- (5) a tampered cookie


def test_tampered_login_cookie_sends_back_to_login_and_is_cleared(
    examples_hub: RealHub, browsers: Browsers
) -> None:
    name = unique("oauth-tamper")
    browser = browsers.hub_user(examples_hub, name)
    home = examples_hub.service_url(TORNADO)
    assert navigate(browser, home).final.status_code == 200
    cookie_name = login_cookie_name(TORNADO)
    [cookie] = [c for c in browser.cookies if c.name == cookie_name]
    assert cookie.value is not None and len(cookie.value) > 40
    middle = len(cookie.value) // 2
    flipped = "A" if cookie.value[middle] != "A" else "B"
    cookie.value = cookie.value[:middle] + flipped + cookie.value[middle + 1 :]

    r = browser.get(home, allow_redirects=False, timeout=TIMEOUT)

    assert r.status_code == 302
    target = urllib.parse.urlsplit(urllib.parse.urljoin(r.url, r.headers["Location"]))
    assert f"{target.scheme}://{target.netloc}" == examples_hub.url
    assert target.path == "/hub/api/oauth2/authorize"
    query = urllib.parse.parse_qs(target.query)
    assert query["client_id"] == [f"service-{TORNADO}"]
    assert query["redirect_uri"] == [f"/services/{TORNADO}/oauth_callback"]
    [cleared] = set_cookie_headers(r, cookie_name)
    assert clears(cleared), cleared
    assert f"Path=/services/{TORNADO}/" in cleared
    assert not jar_has(browser, cookie_name)
    # Still logged in to the Hub: following the redirect logs back in, on the same page.
    visit = navigate(browser, home)
    assert visit.final.status_code == 200, visit.trail()
    assert f"<h1>Hello, {name}</h1>" in visit.final.text


# ------------------------------------------------------ (6) forged state, broken links


def test_forged_state_is_refused_and_the_real_login_still_works(
    examples_hub: RealHub, browsers: Browsers
) -> None:
    name = unique("oauth-forged")
    browser = browsers.hub_user(examples_hub, name)
    home = examples_hub.service_url(TORNADO)
    visit = navigate(browser, home, until=is_callback)
    genuine = visit.pending
    assert genuine, visit.trail()
    parts = urllib.parse.urlsplit(genuine)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert set(query) == {"code", "state"}
    forged = parts._replace(
        query=urllib.parse.urlencode({**query, "state": secrets.token_urlsafe(24)})
    ).geturl()

    r = browser.get(forged, allow_redirects=False, timeout=TIMEOUT)

    assert r.status_code == 403
    assert "Try logging in again" in r.text
    assert "Location" not in r.headers
    assert not jar_has(browser, login_cookie_name(TORNADO))
    # The forgery did not spoil the login this browser really started.
    done = navigate(browser, genuine)
    assert done.final.status_code == 200, done.trail()
    assert done.final.url == home
    assert f"<h1>Hello, {name}</h1>" in done.final.text


@pytest.mark.parametrize("query", ["", "?code=abc", "?state=xyz", "?code=&state="])
def test_callback_without_code_or_state_is_400(
    examples_hub: RealHub, browsers: Browsers, query: str
) -> None:
    browser = browsers.hub_user(examples_hub, unique("oauth-nocode"))
    r = browser.get(
        examples_hub.service_url(TORNADO, f"oauth_callback{query}"),
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 400
    assert "incomplete" in r.text
    assert not jar_has(browser, login_cookie_name(TORNADO))


# ------------------------------------------------------------- (7) two tabs at once


def test_two_concurrent_logins_both_complete(examples_hub: RealHub, browsers: Browsers) -> None:
    name = unique("oauth-tabs")
    browser = browsers.hub_user(examples_hub, name)
    first = examples_hub.service_url(TORNADO, "tab/one?n=1")
    second = examples_hub.service_url(TORNADO, "tab/two?n=2")

    # Both tabs start a login and reach the Hub's consent page before either finishes.
    tab1 = navigate(browser, first, until=is_authorize)
    tab2 = navigate(browser, second, until=is_authorize)
    assert tab1.pending and tab2.pending and tab1.pending != tab2.pending
    consent1 = browser.get(tab1.pending, allow_redirects=False, timeout=TIMEOUT)
    consent2 = browser.get(tab2.pending, allow_redirects=False, timeout=TIMEOUT)
    assert consent1.status_code == consent2.status_code == 200

    # The second tab finishes first, then the first one.
    url2, fields2 = first_form(consent2)
    done2 = navigate(browser, url2, data=fields2)
    url1, fields1 = first_form(consent1)
    done1 = navigate(browser, url1, data=fields1)

    for done, target in ((done1, first), (done2, second)):
        assert done.final.status_code == 200, done.trail()
        assert done.final.url == target
        assert f"<h1>Hello, {name}</h1>" in done.final.text


# ------------------------------------------------------------ (8) same origin throughout


def test_every_redirect_of_a_login_stays_on_the_hub_origin(
    examples_hub: RealHub, browsers: Browsers
) -> None:
    name = unique("oauth-origin")
    examples_hub.create_user(name, groups=["members"])
    browser = browsers.fresh()  # not even logged in to the Hub: its login form too
    deep = examples_hub.service_url(TORNADO, "some/page?x=1")

    visit = navigate(browser, deep, username=name)

    assert visit.final.status_code == 200, visit.trail()
    assert visit.final.url == deep
    assert f"<h1>Hello, {name}</h1>" in visit.final.text
    paths = [urllib.parse.urlsplit(r.url).path for r in visit.hops]
    assert "/hub/login" in paths
    assert f"/services/{TORNADO}/oauth_callback" in paths
    for r in visit.hops:
        assert on_origin(examples_hub, r.url, r.url), visit.trail()
        if r.is_redirect:
            assert on_origin(examples_hub, r.headers["Location"], r.url), visit.trail()
    # The service itself never redirects to an absolute URL at all.
    for r in visit.hops:
        if r.is_redirect and f"/services/{TORNADO}/" in r.url:
            location = urllib.parse.urlsplit(r.headers["Location"])
            assert not location.scheme and not location.netloc, r.headers["Location"]


# ------------------------------------------------------------------------- (9) logout


def test_logout_clears_the_login_cookie(examples_hub: RealHub, browsers: Browsers) -> None:
    name = unique("oauth-logout")
    browser = browsers.hub_user(examples_hub, name)
    home = examples_hub.service_url(TORNADO)
    assert navigate(browser, home).final.status_code == 200
    cookie_name = login_cookie_name(TORNADO)
    assert jar_has(browser, cookie_name)

    r = browser.get(
        examples_hub.service_url(TORNADO, "logout"), allow_redirects=False, timeout=TIMEOUT
    )

    assert r.status_code == 302
    assert urllib.parse.urljoin(r.url, r.headers["Location"]) == f"{examples_hub.url}/hub/logout"
    [cleared] = set_cookie_headers(r, cookie_name)
    assert clears(cleared), cleared
    assert not jar_has(browser, cookie_name)
    # The service no longer knows this browser: it sends it to the Hub again.
    again = browser.get(home, allow_redirects=False, timeout=TIMEOUT)
    assert again.status_code == 302
    assert is_authorize(again.headers["Location"])
    # Following the logout ends the Hub session too: the next visit meets the login form.
    navigate(browser, urllib.parse.urljoin(r.url, r.headers["Location"]))
    visit = navigate(browser, home)
    assert visit.final.status_code == 200, visit.trail()
    assert urllib.parse.urlsplit(visit.final.url).path == "/hub/login"
    assert name not in visit.final.text


# ---------------------------------------------------- a Hub of our own: duo and vip-only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ps() -> list[tuple[int, int, str]]:
    """``(pid, ppid, command line)`` of every process, from ``ps``."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, args = [*line.split(None, 2), ""][:3]
        rows.append((int(pid), int(ppid), args))
    return rows


def _tagged(tag: str) -> list[tuple[int, int, str]]:
    return [row for row in _ps() if tag in row[2]]


@dataclass
class DuoHub:
    hub: RealHub
    tag: str  # on the command line of every process of the two services


@pytest.fixture(scope="module")
def duo_hub() -> Iterator[DuoHub]:
    """A Hub running ``duo`` (two processes, one port) and ``vip-only`` (needs a scope).

    At the end: stopping the service as the Hub does (SIGTERM to the one process it started)
    stops both workers; after the Hub stops, no process of either service remains.
    """
    tag = f"hubauth-duo-{secrets.token_hex(6)}"
    secret = {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}
    app = [sys.executable, str(TWO_PROCESS_APP), "--tag", tag]
    hub = RealHub(
        services=[
            {
                "name": DUO,
                "url": f"http://127.0.0.1:{_free_port()}",
                "command": [*app, "--processes", "2"],
                "environment": secret,
            },
            {
                "name": VIP,
                "url": f"http://127.0.0.1:{_free_port()}",
                "command": [*app, "--processes", "1", "--hub-scopes", json.dumps([VIP_SCOPE])],
                "environment": secret,
                # Lets the service's OAuth tokens carry the scope, for users who hold it.
                "oauth_client_allowed_scopes": [VIP_SCOPE],
            },
        ],
        roles=[
            {"name": "user", "scopes": ["self"]},
            {"name": "service-users", "scopes": ["access:services"], "groups": ["members"]},
            {"name": "vips", "scopes": [VIP_SCOPE], "groups": ["vips"]},
        ],
        load_groups={"members": {"users": []}, "vips": {"users": []}},
        extra_config=(
            f"c.JupyterHub.custom_scopes = {{{VIP_SCOPE!r}: {{'description': 'VIP pages'}}}}"
        ),
        start_timeout=120,
    )
    with hub:
        hub.wait_for_service(DUO, timeout=60)
        hub.wait_for_service(VIP, timeout=60)
        yield DuoHub(hub, tag)
        orphans = _stop_duo_like_the_hub(tag)
    leftovers = _kill_all(_tagged(tag))
    assert not orphans, f"duo's workers outlived its parent (killed now): {orphans}"
    assert not leftovers, f"processes of the services outlived the Hub (killed now): {leftovers}"


def _kill_all(rows: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """SIGKILL these processes (found by ``ps``, so not to leak them); returns ``rows``."""
    for pid, _, _ in rows:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return rows


def _stop_duo_like_the_hub(tag: str) -> list[tuple[int, int, str]]:
    """SIGTERM ``duo``'s parent only, as the Hub stops a service; its workers must go too.

    Returns the workers still alive after a bounded wait (killed, since an orphan is no
    longer below the Hub, where ``RealHub.stop`` looks).
    """
    duo = [row for row in _tagged(tag) if "--processes 2" in row[2]]
    pids = {pid for pid, _, _ in duo}
    parents = [pid for pid, ppid, _ in duo if ppid not in pids]
    assert len(parents) == 1, duo
    workers = {pid for pid, ppid, _ in duo if ppid == parents[0]}
    assert len(workers) == 2, duo
    os.kill(parents[0], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while True:
        alive = [row for row in _ps() if row[0] in workers]
        if not alive or time.monotonic() > deadline:
            return _kill_all(alive)
        time.sleep(0.1)


def test_user_without_the_services_scope_gets_403_not_a_loop(
    duo_hub: DuoHub, browsers: Browsers
) -> None:
    hub = duo_hub.hub
    home = hub.service_url(VIP)
    name = unique("plain")
    browser = browsers.hub_user(hub, name)  # may use the service, lacks its page's scope

    visit = navigate(browser, home)

    # The Hub lets them in, the service says no: a 403 page, not another trip to log in.
    assert visit.final.status_code == 403, visit.trail()
    assert visit.final.url == home
    assert f"You are logged in as {name}" in visit.final.text
    assert VIP_SCOPE in visit.final.text
    to_login = [r for r in visit.hops if r.is_redirect and is_authorize(r.headers["Location"])]
    assert len(to_login) == 1, visit.trail()  # sent to log in once, not again after it
    # Again: refused at once (one hop), still no redirect.
    again = navigate(browser, home)
    assert len(again.hops) == 1
    assert again.final.status_code == 403

    # Someone who holds the scope gets the page, through the very same login.
    vip = unique("vip")
    hub.create_user(vip, groups=["members", "vips"])
    visit = navigate(browsers.hub_user(hub, vip), home)
    assert visit.final.status_code == 200, visit.trail()
    assert f"<h1>Hello, {vip}</h1>" in visit.final.text
    assert VIP_SCOPE in model_on_page(visit.final)["scopes"]


def _pid(response: requests.Response) -> int:
    return int(response.headers["X-Hubauth-Pid"])


def test_two_processes_behind_one_port_log_users_in_whichever_answers(
    duo_hub: DuoHub, browsers: Browsers
) -> None:
    hub = duo_hub.hub
    callbacks: dict[int, int] = {}  # pid -> callbacks it answered
    pages: dict[int, int] = {}  # pid -> pages it served (after a login)
    handoffs = 0  # logins where the callback read a state cookie the other process wrote
    seen: set[int] = set()
    logins = 0
    for i in range(MAX_LOGINS):
        logins = i + 1
        name = f"duo-user-{i}"
        deep = hub.service_url(DUO, f"home/{name}?login={i}")
        browser = browsers.hub_user(hub, name)

        visit = navigate(browser, deep)

        assert visit.final.status_code == 200, visit.trail()
        assert visit.final.url == deep
        assert f"<h1>Hello, {name}</h1>" in visit.final.text
        started, answered, served = (
            _pid(visit.hops[0]),
            _pid(visit.hop("/oauth_callback")),
            _pid(visit.final),
        )
        assert f"<p id=pid>{served}</p>" in visit.final.text
        # The login cookie works in whichever process answers next, for API calls too.
        api = browser.get(deep, headers={"Accept": "application/json"}, timeout=TIMEOUT)
        assert api.status_code == 200
        assert api.json()["name"] == name
        assert api.json()["pid"] == _pid(api)
        browser.close()

        callbacks[answered] = callbacks.get(answered, 0) + 1
        pages[served] = pages.get(served, 0) + 1
        handoffs += started != answered
        seen |= {started, answered, served, _pid(api)}
        if logins >= MIN_LOGINS and len(callbacks) == 2 and len(pages) == 2 and handoffs:
            break
    else:
        pytest.fail(
            f"after {logins} logins (all fine), the kernel never spread them over both "
            f"processes: callbacks {callbacks}, pages {pages}, handoffs {handoffs}"
        )
    # Exactly two processes served all of it (none crashed and was replaced), both forked
    # by one parent, which holds the port: one service, two processes, one port.
    assert len(seen) == 2, seen
    processes = {pid: (ppid, args) for pid, ppid, args in _tagged(duo_hub.tag)}
    assert seen <= set(processes), (seen, processes)
    [parent] = {processes[pid][0] for pid in seen}
    assert parent in processes and "--processes 2" in processes[parent][1]
