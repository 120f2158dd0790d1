"""One suite, every adapter: Tornado, Flask and WSGI answer the same requests the same way.

Each test runs a real service (tests/services.py) on 127.0.0.1 against the fake Hub from
``hubauth.testing``, with a ``requests.Session`` as the browser. The attack scenarios of
LESSONS.md are written once here and run against every adapter.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse

import pytest
import requests

from hubauth.oauth import HubOAuth
from hubauth.testing import FakeHub

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
    refusal,
    serve,
)

# ---------------------------------------------------------------- browser login


def test_login_lands_on_the_deep_link_as_the_right_user(svc: Service) -> None:
    b = browser()
    r = log_in(svc, b, "alice", "page?q=1&r=two")
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["name"], me["kind"]) == ("alice", "user")
    assert me["token"]  # the adapter hands the visitor's (OAuth) token to the app
    assert r.url == svc.page("page?q=1&r=two")
    hops = [urllib.parse.urlsplit(h.url).port for h in r.history]
    assert hops and all(
        p in (urllib.parse.urlsplit(svc.url).port, urllib.parse.urlsplit(svc.hub.url).port)
        for p in hops
    )
    # Follow-up request: the cookie alone authenticates, the Hub is not asked again.
    before = svc.hub.count("/hub/api/user")
    assert b.get(svc.page()).json()["name"] == "alice"
    assert svc.hub.count("/hub/api/user") == before


def test_login_cookie_attributes(svc: Service) -> None:
    b = browser()
    b.get(f"{svc.hub.url}/hub/login", params={"user": "alice"}, allow_redirects=False)
    first = b.get(svc.page(), allow_redirects=False)
    assert first.status_code == 302
    state_cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in state_cookie and "SameSite=Lax" in state_cookie
    assert f"Path={PREFIX}" in state_cookie and "Max-Age=600" in state_cookie
    to_hub = b.get(first.headers["Location"], allow_redirects=False)
    back = b.get(to_hub.headers["Location"], allow_redirects=False)
    assert back.status_code == 302 and back.headers["Location"] == f"{PREFIX}page"
    set_cookies = back.raw.headers.getlist("Set-Cookie")
    login = next(c for c in set_cookies if c.startswith(svc.auth.cookie_name + "="))
    assert "HttpOnly" in login and f"Path={PREFIX}" in login and "Secure" not in login


def test_two_tabs_log_in_at_once(svc: Service) -> None:
    b = browser()
    b.get(f"{svc.hub.url}/hub/login", params={"user": "alice"}, allow_redirects=False)
    tabs = [b.get(svc.page(f"page?tab={i}"), allow_redirects=False) for i in range(3)]
    for i, tab in reversed(list(enumerate(tabs))):
        at_hub = b.get(tab.headers["Location"], allow_redirects=False)
        done = b.get(at_hub.headers["Location"])
        assert done.status_code == 200 and done.url.endswith(f"page?tab={i}")


def test_state_cookies_are_named_as_jupyterhubs_and_cleared_by_a_finished_login(
    svc: Service,
) -> None:
    """Issue 10: the first login's state cookie is ``<client_id>-oauth-state`` (services and
    their tests look for it), a concurrent one adds a suffix, a finished login clears them
    all, and a tab finishing late still lands on its own page.
    """
    b = browser()
    b.get(f"{svc.hub.url}/hub/login", params={"user": "alice"}, allow_redirects=False)
    base = svc.auth.state_cookie_name
    first = b.get(svc.page("page?tab=1"), allow_redirects=False)
    assert first.headers["Set-Cookie"].startswith(f"{base}=")
    second = b.get(svc.page("page?tab=2"), allow_redirects=False)
    name = second.headers["Set-Cookie"].split("=", 1)[0]
    assert name.startswith(f"{base}-") and b.cookies.get(base)  # the first is not clobbered
    done = b.get(b.get(second.headers["Location"], allow_redirects=False).headers["Location"])
    assert done.url == svc.page("page?tab=2")
    assert not [c.name for c in b.cookies if c.name.startswith(base)]  # all cleared
    late = b.get(b.get(first.headers["Location"], allow_redirects=False).headers["Location"])
    assert late.status_code == 200 and late.url == svc.page("page?tab=1")


@pytest.mark.parametrize(
    "deep", ["files/My%20Notebook.ipynb", "files/a%20b/c%2Bd.txt?x=1", "files/%C3%A9t%C3%A9"]
)
def test_deep_links_with_encoded_characters_survive_the_login(svc: Service, deep: str) -> None:
    """Issue 10: a deep link holding harmless encoded characters (a space in a notebook's
    name) is where the browser lands after login, not the service's front page.
    """
    r = log_in(svc, browser(), "alice", deep)
    assert r.status_code == 200 and r.url == svc.page(deep), r.url


def test_callback_served_by_another_process(
    fake_hub: FakeHub, request: pytest.FixtureRequest
) -> None:
    for adapter in ADAPTERS:
        port_a, port_b = free_port(), free_port()
        auth_a = make_auth(fake_hub, f"http://127.0.0.1:{port_a}")
        auth_b = HubOAuth(
            environ=fake_hub.service_env("test-service", url=f"http://127.0.0.1:{port_b}"),
            hub_host=fake_hub.url,
            cookie_secret=SECRET,
        )
        with serve(adapter, auth_a, port_a) as a, serve(adapter, auth_b, port_b) as b_url:
            b = browser()
            start = b.get(f"{a}{PREFIX}page?from=a", allow_redirects=False)
            # The Hub sends the browser back to process B's callback.
            authz = start.headers["Location"].replace(
                f"127.0.0.1%3A{port_a}", f"127.0.0.1%3A{port_b}"
            )
            at_hub = b.get(authz, allow_redirects=False)
            assert f":{port_b}/" in at_hub.headers["Location"], adapter
            done = b.get(at_hub.headers["Location"])
            assert done.status_code == 200, (adapter, done.text)
            assert done.url == f"{b_url}{PREFIX}page?from=a"
            assert b.get(f"{a}{PREFIX}page").json()["name"] == "testuser"
        auth_a.close()
        auth_b.close()


def test_no_slash_redirects_to_slash(svc: Service) -> None:
    r = browser().get(svc.url + PREFIX.rstrip("/"), allow_redirects=False)
    assert r.status_code in (301, 302, 308)
    assert r.headers["Location"].endswith(PREFIX)


def test_public_path_needs_no_login(svc: Service) -> None:
    r = browser().get(svc.page("public"), allow_redirects=False)
    assert r.status_code == 200 and r.json() == {"public": True}


# ---------------------------------------------------------------- tokens


def test_api_token_in_header(svc: Service) -> None:
    token = svc.hub.add_user("bob")
    for scheme in ("token", "Bearer", "TOKEN"):
        r = requests.get(
            svc.page(),
            headers={"Authorization": f"{scheme} {token}"},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["name"] == "bob"
        assert "Set-Cookie" not in r.headers  # a header token never becomes a cookie


def test_unknown_token_is_401_with_www_authenticate(svc: Service) -> None:
    r = requests.get(
        svc.page(),
        headers={"Authorization": "token unknown-token"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 401
    assert "Bearer" in r.headers.get("WWW-Authenticate", "")
    assert refusal(r)[0] == 401


@pytest.mark.parametrize(
    "header", ["token", "token ", "Basic Zm9vOmJhcg==", "token " + "x" * 10_000]
)
def test_malformed_authorization_is_a_clear_401(svc: Service, header: str) -> None:
    r = requests.get(
        svc.page(), headers={"Authorization": header}, allow_redirects=False, timeout=30
    )
    assert r.status_code == 401


def test_service_token_is_a_service_model(svc: Service) -> None:
    token = svc.hub.add_service("other", scopes=["access:services"])
    r = requests.get(svc.page(), headers={"Authorization": f"token {token}"}, timeout=30)
    me = r.json()
    assert (me["name"], me["kind"]) == ("other", "service")
    assert me["token"] == hashlib.sha256(token.encode()).hexdigest()[:16]


def test_token_in_url_is_ignored_by_default(svc: Service) -> None:
    token = svc.hub.add_user("bob")
    r = browser().get(svc.page(f"page?token={token}"), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(svc.hub.url)


def test_missing_scope_is_403_never_a_redirect(svc: Service) -> None:
    token = svc.hub.add_user("carol")  # access:services only, no read:users
    r = requests.get(
        svc.page("scoped"),
        headers={"Authorization": f"token {token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403
    b = browser()
    r = log_in(svc, b, "carol", "scoped")
    assert r.status_code == 403 and "carol" in r.text
    assert all(h.status_code == 302 for h in r.history)
    rich = svc.hub.add_user("dave", scopes=["access:services", "read:users"])
    r = requests.get(svc.page("scoped"), headers={"Authorization": f"token {rich}"}, timeout=30)
    assert r.status_code == 200


def test_user_without_access_scope_is_403(svc: Service) -> None:
    token = svc.hub.add_user("eve", scopes=["read:users:name"])
    r = requests.get(
        svc.page(), headers={"Authorization": f"token {token}"}, allow_redirects=False, timeout=30
    )
    assert r.status_code == 403


# ---------------------------------------------------------------- redirect or refuse


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": "application/json"},
        {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
        {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
    ],
)
def test_api_style_requests_get_401_and_no_state_cookie(
    svc: Service, headers: dict[str, str]
) -> None:
    r = requests.get(svc.page(), headers=headers, allow_redirects=False, timeout=30)
    assert r.status_code == 401
    assert "Set-Cookie" not in r.headers


def test_navigation_is_sent_to_the_hub(svc: Service) -> None:
    r = browser().get(
        svc.page(),
        headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
        allow_redirects=False,
    )
    assert r.status_code == 302
    assert r.headers["Location"].startswith(f"{svc.hub.url}/hub/api/oauth2/authorize?")


# ---------------------------------------------------------------- cookies and state


def test_tampered_cookie_goes_back_to_login(svc: Service) -> None:
    b = browser()
    log_in(svc, b)
    for cookie in b.cookies:
        if cookie.name == svc.auth.cookie_name:
            cookie.value = cookie.value[:-6] + "AAAAAA"
    r = b.get(svc.page(), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(svc.hub.url)


def test_cookie_for_another_service_does_not_authenticate(svc: Service, fake_hub: FakeHub) -> None:
    other = HubOAuth(
        environ=fake_hub.service_env("other", url=svc.url),
        hub_host=fake_hub.url,
        cookie_secret=SECRET,
    )
    forged = other.cookies.encode("login", other.cookie_name, {"t": fake_hub.add_user("mallory")})
    r = requests.get(
        svc.page(),
        cookies={svc.auth.cookie_name: forged},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 401


def test_malformed_cookie_header_is_harmless(svc: Service) -> None:
    r = requests.get(
        svc.page(),
        headers={
            "Cookie": 'a=b; ;;=; "x"; ' + svc.auth.cookie_name + '="garbage',
            "Accept": "application/json",
        },
        timeout=30,
    )
    assert r.status_code == 401


def test_forged_and_missing_state(svc: Service) -> None:
    b = browser()
    b.get(svc.page(), allow_redirects=False)
    r = b.get(svc.page("oauth_callback?code=x&state=forged"), allow_redirects=False)
    assert r.status_code == 403 and "Try logging in again" in r.text
    assert b.get(svc.page("oauth_callback?code=x"), allow_redirects=False).status_code == 400
    assert b.get(svc.page("oauth_callback?state=x"), allow_redirects=False).status_code == 400
    r = b.get(
        svc.page("oauth_callback?error=access_denied&error_description=no+way"),
        allow_redirects=False,
    )
    assert r.status_code == 400 and "no way" in r.text


def test_replayed_code_does_not_log_in_another_browser(svc: Service) -> None:
    victim = browser()
    start = victim.get(svc.page(), allow_redirects=False)
    at_hub = victim.get(start.headers["Location"], allow_redirects=False)
    callback = at_hub.headers["Location"]
    attacker = browser()
    r = attacker.get(callback, allow_redirects=False)
    assert r.status_code == 403
    assert svc.auth.cookie_name not in {c.name for c in attacker.cookies}


def test_revoked_token_clears_cookie_and_logs_in_again(svc: Service) -> None:
    b = browser()
    log_in(svc, b)
    token = svc.auth.read_login_cookie([login_cookie(svc, b)])
    assert token is not None
    svc.hub.revoke(token[0])
    svc.auth.evict_token(token[0])
    r = b.get(svc.page(), allow_redirects=False)
    # Revoked moments after login (as a logout of the Hub does): one refused login is not a
    # loop, so the browser goes through login again.
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    assert svc.auth.cookie_name not in {c.name for c in b.cookies}
    assert b.get(svc.page()).json()["name"] == "alice"  # and lands back, logged in


def test_the_hub_refusing_every_new_token_is_a_loop_stopped(svc: Service) -> None:
    """The Hub accepts each token at the callback, then refuses it at once (a broken Hub or
    OAuth configuration): the browser would bounce forever. After three failed logins in a
    row (counted through the state and the login cookie) the service says so instead.
    """
    b = browser()
    b.get(f"{svc.hub.url}/hub/login", params={"user": "alice"}, allow_redirects=False)
    r = b.get(svc.page(), allow_redirects=False)
    statuses = []
    for _ in range(12):
        if r.status_code != 302:
            break
        if r.url.startswith(svc.url + PREFIX + "oauth_callback"):
            found = svc.auth.read_login_cookie([login_cookie(svc, b)])
            assert found is not None
            svc.hub.revoke(found[0])  # refused from now on, right after it was issued
            svc.auth.evict_token(found[0])
        elif r.url.startswith(svc.page()):
            statuses.append(r.status_code)
        r = b.get(urllib.parse.urljoin(r.url, r.headers["Location"]), allow_redirects=False)
    statuses.append(r.status_code)
    assert statuses == [302, 302, 302, 403], statuses
    assert "loop" in r.text.lower()


def test_logout(svc: Service) -> None:
    b = browser()
    log_in(svc, b)
    r = b.get(svc.page("logout"), allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/hub/logout")
    assert svc.auth.cookie_name not in {c.name for c in b.cookies}
    assert b.get(svc.page(), allow_redirects=False).status_code == 302


# ---------------------------------------------------------------- cross-site requests


def test_cross_site_post_with_only_the_cookie_is_refused(
    svc: Service, caplog: pytest.LogCaptureFixture
) -> None:
    b = browser()
    log_in(svc, b)
    caplog.set_level(logging.WARNING, "hubauth")
    r = b.post(
        svc.page("post"),
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
    )
    assert r.status_code == 403 and "Cross-site" in r.text
    assert "cross-site" in caplog.text.lower()
    r = b.post(
        svc.page("post"),
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        allow_redirects=False,
    )
    assert r.status_code == 403


def test_same_origin_post_passes(svc: Service) -> None:
    b = browser()
    log_in(svc, b)
    r = b.post(svc.page("post"), headers={"Origin": svc.url}, allow_redirects=False)
    assert r.status_code == 200 and r.json()["name"] == "alice"
    r = b.post(svc.page("post"), headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False)
    assert r.status_code == 200


def test_token_post_needs_no_origin(svc: Service) -> None:
    token = svc.hub.add_user("bob")
    r = requests.post(
        svc.page("post"),
        headers={"Authorization": f"token {token}", "Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert r.status_code == 200


# ---------------------------------------------------------------- the Hub in trouble


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("down", 503),
        ("status", 502),
        ("html", 502),
        ("garbage", 502),
        ("wrong_shape", 502),
        ("redirect", 502),
        ("huge", 502),
    ],
)
def test_hub_trouble_is_502_or_503_never_500(svc: Service, fault: str, status: int) -> None:
    token = svc.hub.add_user("bob")
    svc.hub.fault = fault
    r = requests.get(svc.page(), headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == status, r.text
    assert token not in r.text
    svc.hub.fault = None
    r = requests.get(svc.page(), headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200


def test_tokens_never_logged(svc: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    b = browser()
    log_in(svc, b)
    token = svc.hub.add_user("bob")
    requests.get(svc.page(), headers={"Authorization": f"token {token}"}, timeout=30)
    svc.hub.fault = "status"
    requests.get(svc.page(), headers={"Authorization": f"token {token}x"}, timeout=30)
    svc.hub.fault = None
    logged = svc.auth.read_login_cookie([login_cookie(svc, b)])
    assert logged is not None
    for secret in (token, logged[0], svc.auth.api_token, login_cookie(svc, b)):
        assert secret not in caplog.text
