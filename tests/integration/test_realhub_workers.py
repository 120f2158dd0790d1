"""whoami-flask and whoami-wsgi under ``gunicorn -w 4``, behind a real Hub and its proxy.

Issue 4, item 5. Every test runs against both examples (the ``service`` parameter). Logins
must complete whichever worker answers each step (state and login live in cookies
encrypted with the shared HUBAUTH_COOKIE_SECRET), tokens and scopes must decide as the Hub
says, cookie-only cross-site POSTs must be refused while same-origin ones pass through the
proxy (which adds X-Forwarded-Proto/Host), and hostile credentials get a 4xx, never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from tests.realhub import ADMIN_SERVICE, RealHub

from .conftest import browse, hub_login, same_origin

SERVICES = ("whoami-flask", "whoami-wsgi")
LOGINS = 20
TIMEOUT = 15  # seconds, for every single HTTP request
JSON = {"Accept": "application/json"}
EVIL = "http://evil.example"

pytestmark = [pytest.mark.timeout(240), pytest.mark.parametrize("service", SERVICES)]


# ---------------------------------------------------------------------------- helpers


def new_user(service: str, role: str) -> str:
    """A user name no other test (or run against the same Hub) uses."""
    return f"wk-{service.removeprefix('whoami-')}-{role}-{secrets.token_hex(3)}"


def other(service: str) -> str:
    return next(s for s in SERVICES if s != service)


def get(url: str, **headers: str) -> requests.Response:
    """A bare request (no cookie jar, no redirects followed)."""
    return requests.get(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)


def body(response: requests.Response) -> dict[str, Any]:
    data = response.json()
    assert isinstance(data, dict), data
    return data


def caller(response: requests.Response) -> object:
    """Whom the example says it served: whoami answers ``name``; Flask's admin-only answers
    ``admin`` and its ``change`` ``changed_by``.
    """
    data = body(response)
    return next((data[k] for k in ("name", "admin", "changed_by") if k in data), None)


def describe(response: requests.Response) -> str:
    return f"{response.status_code} at {response.url}: {response.text[:300]!r}"


@contextmanager
def logged_in(hub: RealHub, user: str, *services: str) -> Iterator[requests.Session]:
    """A browser session logged in to the Hub as ``user``, then to each of ``services``."""
    with hub_login(hub, user) as browser:
        for service in services:
            r = browse(browser, hub.service_url(service))
            assert r.status_code == 200, describe(r)
            assert caller(r) == user
        yield browser


@contextmanager
def new_log(hub: RealHub) -> Iterator[Callable[[], str]]:
    """What the Hub and its services (hubauth's warnings included) log from now on."""
    start = len(hub.log_text())
    yield lambda: hub.log_text()[start:]


def login_cookie(browser: requests.Session, service: str) -> tuple[str, str]:
    """``(name, value)`` of the service's login cookie in ``browser``'s jar (on its path)."""
    found = [
        (c.name, c.value or "")
        for c in browser.cookies
        if c.path == f"/services/{service}/" and c.name == f"service-{service}"
    ]
    assert len(found) == 1, [(c.name, c.path) for c in browser.cookies]
    return found[0]


# ------------------------------------------------------------- (1) + (2) many logins


def test_twenty_logins_land_on_their_deep_links_on_any_worker(
    examples_hub: RealHub, service: str
) -> None:
    """20 users, each logging in by opening a deep link with a query: every one lands there,
    as themselves, and stays logged in on the next request, whichever worker answers.
    """
    problems: list[str] = []
    pids: set[int] = set()
    switched = 0  # logins whose follow-up was answered by another worker than the landing
    for i in range(LOGINS):
        user = new_user(service, f"u{i}")
        path = f"/services/{service}/deep/page?n={i}&x=y"
        deep = examples_hub.service_url(service, f"deep/page?n={i}&x=y")
        with hub_login(examples_hub, user) as browser:
            r = browse(browser, deep)
            if r.status_code != 200 or r.url != deep or not same_origin(examples_hub, r):
                problems.append(f"login {i} ({user}) ended with {describe(r)}")
                continue
            landing = body(r)
            if (landing.get("name"), landing.get("path")) != (user, path):
                problems.append(f"login {i} ({user}) landed as {landing}")
                continue
            left = [c.name for c in browser.cookies if "oauth-state" in c.name]
            if left:
                problems.append(f"login {i} ({user}) left state cookies behind: {left}")
            after = browser.get(
                examples_hub.service_url(service, f"after/{i}"),
                headers=JSON,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            if after.status_code != 200 or caller(after) != user:
                problems.append(f"follow-up {i} ({user}) answered {describe(after)}")
                continue
            pids |= {landing["pid"], body(after)["pid"]}
            switched += landing["pid"] != body(after)["pid"]
    assert not problems, f"{len(problems)}/{LOGINS} logins failed:\n" + "\n".join(problems)
    assert len(pids) > 1, f"every request was answered by the same worker: {pids}"
    assert switched > 0, f"no session was ever used on a second worker (pids {pids})"


# ---------------------------------------------------------------------- (3) API tokens


def test_api_token_in_the_authorization_header(examples_hub: RealHub, service: str) -> None:
    user = new_user(service, "token")
    examples_hub.create_user(user, groups=["members"])
    token = examples_hub.user_token(user)
    url = examples_hub.service_url(service, "api/call?x=1")
    for scheme in ("token", "Bearer", "TOKEN"):
        r = get(url, Authorization=f"{scheme} {token}")
        assert r.status_code == 200, describe(r)
        assert caller(r) == user
        assert "set-cookie" not in r.headers  # a header token never becomes a cookie
    r = get(url, Authorization=f"token {secrets.token_hex(16)}")  # the Hub does not know it
    assert r.status_code == 401, describe(r)


# --------------------------------------------------------------------------- (4) scopes


def test_a_caller_without_the_required_scope_gets_403(examples_hub: RealHub, service: str) -> None:
    member, outsider = new_user(service, "member"), new_user(service, "outsider")
    admin_only = examples_hub.service_url(service, "admin-only")
    root = examples_hub.service_url(service)

    # Logged in by browser, allowed in the service, but not an admin: 403, not a login loop.
    with logged_in(examples_hub, member, service) as browser:
        r = browser.get(admin_only, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 403, describe(r)
        r = browser.get(admin_only, headers=JSON, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 403, describe(r)

    member_token = examples_hub.user_token(member)
    assert get(root, Authorization=f"token {member_token}").status_code == 200
    r = get(admin_only, Authorization=f"token {member_token}")
    assert r.status_code == 403, describe(r)

    # A user the Hub knows but who may not use the service at all.
    examples_hub.create_user(outsider)
    r = get(root, Authorization=f"token {examples_hub.user_token(outsider)}")
    assert r.status_code == 403, describe(r)

    # The route's scope replaces the service's access scope: the tests' admin service has
    # admin:users (and no access to the examples), and that is enough.
    r = get(admin_only, Authorization=f"token {examples_hub.admin_token}")
    assert r.status_code == 200, describe(r)
    assert caller(r) == ADMIN_SERVICE


# ----------------------------------------------------------------------------- (5) CSRF


def test_cookie_only_post_needs_same_origin_evidence(examples_hub: RealHub, service: str) -> None:
    user = new_user(service, "csrf")
    url = examples_hub.service_url(service, "change")
    origin = examples_hub.url  # the origin the browser sees: the Hub's public proxy
    refused = {
        "cross-site": {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        "evil Origin only": {"Origin": EVIL},
        "same-site (another service's page)": {"Sec-Fetch-Site": "same-site"},
        "no evidence at all": {},
        "null Origin": {"Origin": "null"},
    }
    allowed = {
        "Origin only (checked through the proxy's X-Forwarded-*)": {"Origin": origin},
        "Origin + Sec-Fetch-Site, as Chromium sends": {
            "Origin": origin,
            "Sec-Fetch-Site": "same-origin",
        },
    }
    with logged_in(examples_hub, user, service) as browser, new_log(examples_hub) as log:
        for why, headers in refused.items():
            r = browser.post(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)
            assert r.status_code == 403, f"{why}: {describe(r)}"
            assert "cross-site" in r.text.lower(), f"{why}: {describe(r)}"
        # ... and the service says so in its log, rather than silently seeing no user.
        warned = [
            line
            for line in log().splitlines()
            if "cross-site" in line.lower() and f"/services/{service}/change" in line
        ]
        assert len(warned) >= len(refused), log()[-3000:]
        for why, headers in allowed.items():
            r = browser.post(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)
            assert r.status_code == 200, f"{why}: {describe(r)}"
            assert caller(r) == user, why

    # An Authorization header needs no same-origin evidence: cross-site pages cannot set it.
    token = examples_hub.user_token(user)
    r = requests.post(
        url,
        headers={"Authorization": f"token {token}", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, describe(r)
    assert caller(r) == user


# ------------------------------------------------------------ (6) hostile credentials


def test_foreign_and_malformed_cookies_get_401(examples_hub: RealHub, service: str) -> None:
    user = new_user(service, "cookies")
    url = examples_hub.service_url(service, "deep/page")
    with logged_in(examples_hub, user, service, other(service)) as browser:
        (name, mine), (foreign_name, foreign) = (
            login_cookie(browser, service),
            login_cookie(browser, other(service)),
        )
    malformed = [
        "=",
        ";;; ; =; =x",
        "no-equals-sign",
        f'{name}="unterminated',
        f"{name}=",
        f"{name}=not-an-encrypted-value",
        f"{name}={mine[:-7]}",  # truncated
        f"{name}={mine[::-1]}",
        f"{name}=caf\xe9; cr\xe8me=br\xfbl\xe9e",  # latin-1 bytes on the wire
        "; ".join(f"c{i}=v{i}" for i in range(300)),
    ]
    with new_log(examples_hub) as log:
        assert get(url, Cookie=f"{name}={mine}", **JSON).status_code == 200  # control

        # The other service's login, sent as is (another name) or under this service's name
        # (both examples share one HUBAUTH_COOKIE_SECRET: the name must be bound in the value).
        r = get(url, Cookie=f"{foreign_name}={foreign}", **JSON)
        assert r.status_code == 401, describe(r)
        r = get(url, Cookie=f"{name}={foreign}", **JSON)
        assert r.status_code == 401, describe(r)
        assert name in r.headers.get("set-cookie", ""), "the bad login cookie stays"

        for cookie in malformed:
            r = get(url, Cookie=cookie, **JSON)
            assert r.status_code == 401, f"Cookie: {cookie[:80]!r}: {describe(r)}"
        # Garbage first does not hide a valid login cookie after it.
        r = get(url, Cookie=f"{name}=garbage; {name}={mine}", **JSON)
        assert r.status_code == 200, describe(r)
    assert "Traceback" not in log(), log()[-3000:]


def test_a_10kb_authorization_header_gets_a_clear_4xx(examples_hub: RealHub, service: str) -> None:
    url = examples_hub.service_url(service, "deep/page")
    with new_log(examples_hub) as log:
        for size in (10_240, 7_900):  # gunicorn refuses header lines over 8190 bytes itself
            big = "a" * size
            for header in (f"token {big}", f"Bearer {big}", f"Basic {big}", big):
                r = get(url, Authorization=header, **JSON)
                what = f"Authorization: {header[:12]}... ({len(header)} bytes): {describe(r)}"
                if size > 8190:
                    assert r.status_code in (400, 401, 431), what
                else:  # this one reaches hubauth, which answers in JSON
                    assert r.status_code == 401, what
                    assert body(r)["status"] == 401, what
    assert "Traceback" not in log(), log()[-3000:]
