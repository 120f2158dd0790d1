"""The outside security review's findings (issue 11), each written as the attack it was.

Every scenario runs on every adapter it concerns (the ``svc`` fixture: Tornado, Flask, WSGI,
and whatever adapters tests/services.py adds), except the Tornado-only ``xsrf_cookies``
ones. Each docstring says what the attacker does and why it now fails. The fuzzers at the
end grow the suite's fuzzing to what found these: cookie names, several cookies of one
name, URLs around the cookie size limits, and mixed Sec-Fetch-Site / XSRF combinations.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from cryptography.fernet import Fernet, InvalidToken
from hypothesis import given
from hypothesis import strategies as st
from tornado.web import Application, authenticated

from hubauth import ConfigError, HubOAuth
from hubauth._seal import CookieCodec, _derive_key
from hubauth.oauth import MAX_NEXT_URL
from hubauth.testing import FakeHub
from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated

from .services import (
    ADAPTERS,
    PREFIX,
    SECRET,
    Service,
    browser,
    free_port,
    log_in,
    login_cookie,
    make_auth,
    serve,
    serve_tornado,
)
from .test_attacks import FUZZ, TIMEOUT, Answer, _update_jar, check_chain, follow, send

PAGE = f"{PREFIX}page".encode()
POST = f"{PREFIX}post".encode()
HTML = ("Accept", "text/html")
SIBLING = "evil.test-hub.example"  # another user's server on a sibling subdomain


def cookie_header(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    return ("Cookie", "; ".join(f"{n}={v}" for n, v in pairs))


def logged_in(svc: Service, user: str = "alice") -> tuple[str, str]:
    """Log ``user`` in for real; ``(login cookie value, Hub session id)``."""
    b = browser()
    log_in(svc, b, user)
    session = next((c.value for c in b.cookies if c.name == "jupyterhub-session-id"), "")
    return login_cookie(svc, b), session


def sealed_login(svc: Service, token: str) -> str:
    """A login cookie value sealed by the service's own key for ``token`` (what an attacker
    gets by logging in to the service themselves: a valid cookie of their own).
    """
    header = svc.auth.login_cookie(token, secure=False)
    return header.split(";", 1)[0].split("=", 1)[1]


def clears(answer: Answer, name: str) -> bool:
    return any(
        h.startswith(f"{name}=;") or h.startswith(f"{name}=; ") for h in answer.all("set-cookie")
    )


# ---------------------------------------------------------------- 11.1 XSRF cookie tossing


class FormPage(HubOAuthenticated):
    """A Tornado page with a form, as apps using ``xsrf_cookies`` write them."""

    @authenticated
    def get(self) -> None:
        self.write({"xsrf": self.xsrf_token.decode(), "name": self.current_user["name"]})

    @authenticated
    def post(self) -> None:
        self.write({"posted_by": self.current_user["name"]})


@contextmanager
def xsrf_service(hub: FakeHub, *, host_prefix: bool) -> Iterator[Service]:
    port = free_port()
    auth = make_auth(hub, f"http://127.0.0.1:{port}", cookie_host_prefix_enabled=host_prefix)
    app = Application(
        [(PREFIX + "oauth_callback", HubOAuthCallbackHandler), (PREFIX + "page", FormPage)],
        hub_auth=auth,
        xsrf_cookies=True,
    )
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield Service(f"http://127.0.0.1:{port}", auth, hub, "tornado")
    auth.close()


def _login_jar(svc: Service, user: str) -> dict[str, str]:
    """Log ``user`` in with raw requests (so ``__Host-`` cookies work over http too)."""
    jar: dict[str, str] = {}
    svc.hub.default_login = user  # the fake Hub approves the login as this user
    try:
        chain = follow(svc, PAGE, jar)
    finally:
        svc.hub.default_login = "testuser"
    assert not check_chain(svc, chain) and chain[-1].answer.status == 200
    return jar


@pytest.mark.parametrize("host_prefix", [False, True], ids=["plain-names", "__Host-names"])
@pytest.mark.parametrize(
    "tossed",
    [
        "any-value-the-sibling-likes",
        "2|00000000|00000000000000000000000000000000|0",  # Tornado's unsigned format
    ],
)
@pytest.mark.parametrize("site", ["same-site", ""], ids=["Sec-Fetch-Site:same-site", "no-fetch"])
def test_a_tossed_xsrf_cookie_does_not_forge_a_form_post(
    fake_hub: FakeHub, host_prefix: bool, tossed: str, site: str
) -> None:
    """The attacker runs a page on a sibling subdomain (another user's server under
    ``subdomain_host``). It sets ``_xsrf=<x>; Domain=<parent>`` (cookie tossing: a sibling
    may set cookies for the parent domain, and ``__Host-`` names do not stop a cookie named
    ``_xsrf``) and submits a form to the service with ``_xsrf=<x>``, riding the victim's
    login cookie. Tornado's double-submit check would pass (cookie and field agree). It
    fails: an XSRF token counts only when it is the keyed digest of this very login, which
    the sibling cannot compute; and a browser's ``Sec-Fetch-Site: same-site`` refuses the
    request whatever the token says. The victim's own form still works.
    """
    with xsrf_service(fake_hub, host_prefix=host_prefix) as svc:
        jar = _login_jar(svc, "victim")
        page = send(svc.url, PAGE, [HTML, cookie_header(list(jar.items()))])
        assert page.status == 200
        victim_token = page.json()["xsrf"]
        attack = [("Content-Type", "application/x-www-form-urlencoded")]
        attack.append(cookie_header([*jar.items(), ("_xsrf", tossed)]))
        if site:
            attack.append(("Sec-Fetch-Site", site))
            attack.append(("Origin", f"http://{SIBLING}"))
        r = send(svc.url, PAGE, attack, method=b"POST", body=f"_xsrf={tossed}".encode())
        assert r.status == 403, r.body[:300]
        # Even the victim's own valid token, when the browser says another site sent it:
        if site:
            r = send(svc.url, PAGE, attack, method=b"POST", body=f"_xsrf={victim_token}".encode())
            assert r.status == 403, r.body[:300]
        # The victim's own form, sent from the service's own page:
        own = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            cookie_header([*jar.items(), ("_xsrf", tossed)]),  # the tossed cookie is harmless
            ("Sec-Fetch-Site", "same-origin"),
        ]
        r = send(svc.url, PAGE, own, method=b"POST", body=f"_xsrf={victim_token}".encode())
        assert r.status == 200 and r.json()["posted_by"] == "victim", r.body[:300]


def test_an_attackers_own_xsrf_token_does_not_pass_for_the_victim(fake_hub: FakeHub) -> None:
    """The attacker logs in to the service themselves, reads their own (valid) XSRF token,
    tosses it as ``_xsrf`` and submits it with the victim's login cookie, from a browser
    that sends no fetch metadata. It is bound to the attacker's login, not the victim's.
    """
    with xsrf_service(fake_hub, host_prefix=False) as svc:
        victim = _login_jar(svc, "victim")
        attacker = browser()
        log_in(svc, attacker, "mallory")
        theirs = attacker.get(svc.page(), timeout=TIMEOUT).json()["xsrf"]
        r = send(
            svc.url,
            PAGE,
            [
                ("Content-Type", "application/x-www-form-urlencoded"),
                cookie_header([*victim.items(), ("_xsrf", theirs)]),
            ],
            method=b"POST",
            body=f"_xsrf={theirs}".encode(),
        )
        assert r.status == 403


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
def test_a_foreign_site_is_refused_with_any_xsrf_token_on_every_adapter(
    svc: Service, site: str
) -> None:
    """The same rule on every adapter (XSRF token in a header): the browser saying another
    site sent a cookie-authenticated POST refuses it, even with a token bound to the login.
    """
    value, session = logged_in(svc)
    found = svc.auth.read_login_cookie([value])
    assert found is not None
    token = svc.auth.xsrf_token_for(found[0], session)
    cookies = cookie_header([(svc.auth.cookie_name, value), ("jupyterhub-session-id", session)])
    r = send(
        svc.url, POST, [cookies, ("X-XSRFToken", token), ("Sec-Fetch-Site", site)], method=b"POST"
    )
    assert r.status == 403 and b"Cross-site" in r.body
    r = send(svc.url, POST, [cookies, ("X-XSRFToken", token)], method=b"POST")
    assert r.status == 200 and r.json()["name"] == "alice"  # no fetch metadata: the token


# ---------------------------------------------------------------- 11.2 planted login cookies


@pytest.mark.parametrize("planted", ["garbage", "refused-by-the-hub", "attackers-own-older"])
def test_a_planted_login_cookie_neither_locks_out_nor_swaps_the_victim(
    svc: Service, planted: str
) -> None:
    """The attacker plants a cookie with the login cookie's name from a sibling subdomain,
    or on a longer path, which the service's clear cannot remove and which the browser sends
    *first*. Before: the service read the first cookie that decrypted, and when the Hub
    refused it, cleared the victim's good cookie: an endless redirect loop, or (with the
    attacker's own valid cookie) the victim acting as the attacker. Now every readable
    candidate is tried, newest first, until the Hub accepts one, and nothing is cleared
    while one is good.
    """
    victim, _ = logged_in(svc, "alice")
    if planted == "garbage":
        value = "gAAAAAB" + "x" * 120
    elif planted == "refused-by-the-hub":
        revoked = svc.hub.add_user("mallory")
        svc.hub.revoke(revoked)
        value = sealed_login(svc, revoked)
    else:
        value, _ = logged_in(svc, "mallory")
        # Seal the victim's login again, a little later: the attacker's is the older one, as
        # when it was planted before the victim logged in.
        found = svc.auth.read_login_cookie([value])
        mine = svc.auth.read_login_cookie([victim])
        assert found is not None and mine is not None
        later = CookieCodec([SECRET], clock=lambda: found[1] + 5)
        victim = later.encode("login", svc.auth.cookie_name, {"t": mine[0]})
    name = svc.auth.cookie_name
    for _ in range(2):  # a lookup, then the cache
        r = send(svc.url, PAGE, [HTML, cookie_header([(name, value), (name, victim)])])
        assert r.status == 200 and r.json()["name"] == "alice", r.raw[:300]
        assert not clears(r, name)


def test_a_login_with_a_planted_cookie_still_exchanges_its_own_code(svc: Service) -> None:
    """The attacker planted their own valid login cookie; the victim then logs in. The
    callback finishes the victim's own login (with its state cookie) instead of skipping the
    exchange because "a login cookie is already there", so the victim's new cookie (the
    newest) is the one used afterwards.
    """
    mallory, _ = logged_in(svc, "mallory")
    b = browser()
    b.get(f"{svc.hub.url}/hub/login", params={"user": "victim"}, allow_redirects=False)
    b.cookies.set(svc.auth.cookie_name, mallory, path=PREFIX + "page")  # the longer path
    exchanges = svc.hub.count("/hub/api/oauth2/token")
    # The victim's navigation to another page logs in (the planted cookie is on page only).
    r = b.get(svc.page("scoped"), allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302
    r = b.get(r.headers["Location"], allow_redirects=False, timeout=TIMEOUT)  # the Hub
    callback = r.headers["Location"]
    r = b.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302 and svc.hub.count("/hub/api/oauth2/token") == exchanges + 1
    assert b.get(svc.page(), timeout=TIMEOUT).json()["name"] == "victim"


# ---------------------------------------------------------------- 11.3/11.4 state size


def test_many_long_links_keep_the_cookie_header_small(svc: Service) -> None:
    """Eight logins in flight, each started by a link (from another site) to a deep link of
    1000 characters: before, each state cookie carried its whole next URL and three made an
    11 kB Cookie header, so servers answered 431 for ten minutes. Now a state cookie holds
    only its login's id (the next URL travels sealed in the ``state`` parameter): the
    Cookie header stays under 3 kB, every request line of the login under gunicorn's 4094
    bytes, and the login still lands on its deep link.
    """
    jar: dict[str, str] = {}
    long_query = "q=" + "x" * (MAX_NEXT_URL - len(f"{PREFIX}page?q=") - 1)
    starts = []
    for i in range(8):
        target = f"{PREFIX}page?{long_query[:-2]}{i:02d}"
        assert len(target) < MAX_NEXT_URL
        start = send(svc.url, target.encode(), [HTML, cookie_header(list(jar.items()))])
        assert start.status == 302
        _update_jar(jar, start)
        starts.append((target, start.header("location") or ""))
    header = cookie_header(list(jar.items()))[1]
    assert len(header) < 3000, len(header)
    target, authorize = starts[-1]
    parts = urllib.parse.urlsplit(authorize)
    at_hub = send(svc.hub.url, f"{parts.path}?{parts.query}".encode())
    back = urllib.parse.urlsplit(at_hub.header("location") or "")
    request_line = f"GET {back.path}?{back.query} HTTP/1.1"
    assert len(request_line) < 4094 and len(f"GET {parts.path}?{parts.query}") < 4094
    done = send(svc.url, f"{back.path}?{back.query}".encode(), [cookie_header(list(jar.items()))])
    assert done.status == 302 and done.header("location") == target


@pytest.mark.parametrize("length", [MAX_NEXT_URL + 1, 2750, 2800, 4000, 7000])
def test_a_very_long_url_gives_a_login_that_lands_on_the_prefix(svc: Service, length: int) -> None:
    """A navigation to a URL of several kB (a long query): before, ~2.8 kB answered 500
    ("cookie payload too large") and ~2.75 kB made a cookie over 4096 bytes that browsers
    drop. Now it is a login like any other, with a small state cookie, landing on the
    service's prefix (the next URL is not carried).
    """
    target = f"{PREFIX}page?q=" + "y" * (length - len(f"{PREFIX}page?q="))
    jar: dict[str, str] = {}
    start = send(svc.url, target.encode(), [HTML])
    assert start.status == 302, start.raw[:300]
    assert all(len(h) < 1024 for h in start.all("set-cookie"))
    _update_jar(jar, start)
    parts = urllib.parse.urlsplit(start.header("location") or "")
    at_hub = send(svc.hub.url, f"{parts.path}?{parts.query}".encode())
    back = urllib.parse.urlsplit(at_hub.header("location") or "")
    done = send(svc.url, f"{back.path}?{back.query}".encode(), [cookie_header(list(jar.items()))])
    assert done.status == 302 and done.header("location") == PREFIX


# ---------------------------------------------------------------- 11.5 malformed cookie names


@pytest.mark.parametrize("suffix", ["x:y", "a/b", "(x)", "é", "x@y", "[]", "a,b"])
def test_malformed_state_cookie_names_are_skipped(svc: Service, suffix: str) -> None:
    """A sibling subdomain sets a cookie whose name starts with the state cookies' prefix
    but is no valid cookie name (``...-oauth-state-x:y``). Before, the login redirect and
    the logout raised while clearing it (a 500), and the logout left the login cookie in
    place. Such names are skipped now: neither is ever sent back in a Set-Cookie.
    """
    value, _ = logged_in(svc)
    name = svc.auth.cookie_name
    bad = f"{svc.auth.state_cookie_name}-{suffix}"
    pairs = [(bad, "1"), (svc.auth.state_cookie_name, "2")]
    start = send(svc.url, PREFIX.encode() + b"scoped", [HTML, cookie_header(pairs)])
    assert start.status in (200, 302, 403), start.raw[:300]
    out = send(svc.url, f"{PREFIX}logout".encode(), [cookie_header([*pairs, (name, value)])])
    assert out.status == 302 and clears(out, name)
    assert not any(h.startswith(bad) for h in out.all("set-cookie"))
    assert any(h.startswith(f"{svc.auth.state_cookie_name}=") for h in out.all("set-cookie"))


# ---------------------------------------------------------------- 11.6 logout and the cache


def test_logout_ends_the_login_in_the_cache_too(svc: Service) -> None:
    """The attacker copied the victim's login cookie (with the Hub's session id cookie).
    The victim logs out of the service, which sends them on to log out of the Hub, which
    revokes the token. Before, the copy kept working from the service's cache for up to
    ``cache_max_age``; now logout forgets the token, so the copy is checked with the Hub
    again, which refuses it.
    """
    value, session = logged_in(svc)
    copy = [(svc.auth.cookie_name, value), ("jupyterhub-session-id", session)]
    assert send(svc.url, PAGE, [HTML, cookie_header(copy)]).status == 200  # cached now
    out = send(svc.url, f"{PREFIX}logout".encode(), [cookie_header(copy)])
    assert out.status == 302
    found = svc.auth.read_login_cookie([value])
    assert found is not None
    svc.hub.revoke(found[0])  # what the Hub's logout does to the service's OAuth tokens
    asked = svc.hub.count("/hub/api/user")
    replay = send(svc.url, PAGE, [HTML, cookie_header(copy)])
    assert replay.status == 302  # back to log in, not served from the cache
    assert svc.hub.count("/hub/api/user") > asked


# ---------------------------------------------------------------- 11.8 weak secrets


def test_a_weak_cookie_secret_is_refused_because_a_cookie_gives_it_away() -> None:
    """Why a weak secret matters: the cookie key is derived from the secret with HKDF, which
    has no work factor. An attacker holding one captured cookie tries a dictionary offline
    and, with a guessable secret, finds the key (and every login token) in moments. Here
    that attack is run against a secret from a small word list; such secrets are then shown
    to be refused at start-up, with the way to make a good one.
    """
    words = ["password", "hubauth", "secret", "jupyter", "changeme", "letmein"]
    weak = "jupyter" * 3  # what someone might put in HUBAUTH_COOKIE_SECRET
    captured = Fernet(_derive_key(weak)).encrypt(b'{"t": "the-victims-token"}')
    found = None
    for a in words:
        for n in range(1, 4):
            guess = a * n
            try:
                Fernet(_derive_key(guess)).decrypt(captured)
            except InvalidToken:
                continue
            found = guess
    assert found == weak  # the offline guess works
    for secret in (weak, "passwordpassword", "correct horse battery staple", "ab" * 32):
        with pytest.raises(ConfigError, match="openssl rand -hex 32"):
            HubOAuth(
                api_token="service-token-0123456789",
                service_name="s",
                base_url="/services/s/",
                cookie_secret=secret,
            )


# ---------------------------------------------------------------- 11.9 log forging


def test_a_callback_cannot_forge_log_lines(svc: Service, caplog: pytest.LogCaptureFixture) -> None:
    """The attacker sends the victim (or calls themselves) a callback URL whose
    ``error_description`` holds a newline and a fake log line, hoping an operator reads a
    forged "INFO admin logged in". Everything taken from a request is logged with its
    control characters escaped: one record, one line.
    """
    forged = "nope\n2026-01-01 INFO hubauth: admin logged in as root\r\n"
    query = urllib.parse.urlencode({"error": "access_denied", "error_description": forged})
    caplog.set_level(logging.INFO)
    r = send(svc.url, f"{PREFIX}oauth_callback?{query}".encode(), [HTML])
    assert r.status == 400
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "hubauth"]
    assert any("admin logged in as root" in line for line in lines)
    assert not any("\n" in line or "\r" in line for line in lines), lines


class Broken(HubOAuthenticated):
    def get(self) -> None:
        raise RuntimeError("a bug in the service")


def test_tornados_uncaught_exception_line_hides_code_and_state(
    fake_hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler bug on a URL carrying ``code=`` and ``state=`` (say, a callback the app
    routes itself): Tornado's "Uncaught exception" line prints the request, query and all.
    hubauth's log filter redacts those values, as it does tokens.
    """
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    app = Application([(PREFIX + "broken", Broken)], hub_auth=auth)
    caplog.set_level(logging.INFO)
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        r = requests.get(
            f"http://127.0.0.1:{port}{PREFIX}broken",
            params={"code": "c0de-SECRET-1", "state": "st4te-SECRET-2"},
            timeout=TIMEOUT,
        )
    auth.close()
    assert r.status_code == 500
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "Uncaught exception" in text
    assert "SECRET" not in text, text


# ---------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module", params=ADAPTERS)
def target(request: pytest.FixtureRequest) -> Iterator[Service]:
    """One service per adapter for every example of a fuzz test."""
    with FakeHub() as hub:
        port = free_port()
        auth = make_auth(hub, f"http://127.0.0.1:{port}")
        with serve(request.param, auth, port) as url:
            yield Service(url, auth, hub, request.param)
        auth.close()


_LOGINS: dict[tuple[str, str], tuple[str, str]] = {}


def login_once(target: Service, user: str) -> tuple[str, str]:
    """A real login of ``user`` to ``target``, made once for all of a fuzzer's examples."""
    key = (target.url, user)
    if key not in _LOGINS:
        _LOGINS[key] = logged_in(target, user)
    return _LOGINS[key]


_NAME_CHARS = st.characters(codec="latin-1", exclude_characters="\r\n;= \t")


@FUZZ
@given(
    suffixes=st.lists(st.text(_NAME_CHARS, max_size=12), max_size=5),
    path=st.sampled_from(["page", "logout", "oauth_callback?code=x&state=y", "scoped"]),
)
def test_fuzz_cookie_names_around_the_state_prefix(
    target: Service, suffixes: list[str], path: str
) -> None:
    """Random cookie names starting with the state cookies' prefix (valid or not), on the
    login redirect, the logout and the callback: never a 5xx, never a Set-Cookie for a name
    that is not a valid cookie name.
    """
    base = target.auth.state_cookie_name
    pairs = [(f"{base}-{s}" if s else base, "v") for s in suffixes]
    text = "; ".join(f"{n}={v}" for n, v in pairs)
    r = send(target.url, f"{PREFIX}{path}".encode("latin-1"), [HTML, ("Cookie", text)])
    assert r.status in (200, 302, 400, 401, 403), r.raw[:300]
    for header in r.all("set-cookie"):
        name = header.split("=", 1)[0]
        assert target.auth.is_state_cookie_name(name) or name in (
            target.auth.cookie_name,
            "_xsrf",
        ), header


@FUZZ
@given(
    order=st.permutations(["good", "garbage", "refused", "other-service", "empty"]),
    keep=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_fuzz_several_login_cookies_of_one_name(
    target: Service, order: list[str], keep: list[bool]
) -> None:
    """Several cookies named like the login cookie (different paths and domains put them
    side by side), in any order: the caller is the good cookie's owner exactly when it is
    among them; the good one is never cleared.
    """
    good, _ = login_once(target, "carol")
    refused = target.hub.add_user("dave")
    target.hub.revoke(refused)
    values = {
        "good": good,
        "garbage": "gAAAAAB" + "z" * 100,
        "refused": sealed_login(target, refused),
        "other-service": "gAAAAABnotours",
        "empty": "",
    }
    chosen = [values[k] for k, on in zip(order, keep, strict=True) if on]
    name = target.auth.cookie_name
    r = send(
        target.url,
        PAGE,
        [("Accept", "application/json"), cookie_header([(name, v) for v in chosen])],
    )
    if good in chosen:
        assert r.status == 200 and r.json()["name"] == "carol", r.raw[:300]
        assert not clears(r, name)
    else:
        assert r.status == 401, r.raw[:300]


@FUZZ
@given(length=st.integers(min_value=MAX_NEXT_URL - 50, max_value=9000))
def test_fuzz_urls_around_the_size_limits(target: Service, length: int) -> None:
    """Navigations to URLs of any length around and past the bounds: a login redirect whose
    cookies stay small, never a 5xx.
    """
    target_url = f"{PREFIX}page?q=" + "w" * max(0, length - len(f"{PREFIX}page?q="))
    r = send(target.url, target_url.encode(), [HTML])
    assert r.status == 302, r.raw[:200]
    assert all(len(h) < 1024 for h in r.all("set-cookie"))


_SITES = st.sampled_from(["", "same-origin", "none", "same-site", "cross-site", "SAME-SITE"])
_ORIGINS = st.sampled_from(["", "null", "self", f"http://{SIBLING}"])
_TOKENS = st.sampled_from(["", "bound", "anonymous", "someone-else", "garbage"])


@FUZZ
@given(site=_SITES, origin=_ORIGINS, xsrf=_TOKENS)
def test_fuzz_fetch_metadata_and_xsrf_tokens(
    target: Service, site: str, origin: str, xsrf: str
) -> None:
    """Every mix of Sec-Fetch-Site, Origin and XSRF token on a cookie-authenticated POST:
    allowed exactly when no foreign site is declared and one piece of evidence is ours.
    """
    good, session = login_once(target, "erin")
    found = target.auth.read_login_cookie([good])
    assert found is not None
    tokens = {
        "": "",
        "bound": target.auth.xsrf_token_for(found[0], session),
        "anonymous": target.auth.xsrf_token_for("", session),
        "someone-else": target.auth.xsrf_token_for("another-token", session),
        "garbage": "x" * 43,
    }
    headers = [cookie_header([(target.auth.cookie_name, good), ("jupyterhub-session-id", session)])]
    if site:
        headers.append(("Sec-Fetch-Site", site))
    if origin:
        headers.append(("Origin", target.url if origin == "self" else origin))
    if tokens[xsrf]:
        headers.append(("X-XSRFToken", tokens[xsrf]))
    r = send(target.url, POST, headers, method=b"POST")
    foreign = site.lower() in ("same-site", "cross-site")
    ours = site.lower() in ("same-origin", "none") or origin == "self" or xsrf == "bound"
    if not foreign and ours:
        assert r.status == 200 and r.json()["name"] == "erin", (site, origin, xsrf, r.raw[:200])
    else:
        assert r.status == 403, (site, origin, xsrf, r.raw[:200])
