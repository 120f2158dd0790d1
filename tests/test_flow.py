"""The I/O-free decision flows, driven directly with the Hub's answers given by the test.

These are the LESSONS.md rules at the level where they are implemented once; the adapter
suites check that every framework applies the decisions faithfully.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubauth import HubAuth, HubUnavailable, OAuthError, _protocol
from hubauth._flow import (
    ExchangeCode,
    Flow,
    LookupUser,
    authenticate,
    cached_answer,
    callback,
    decide_sync,
    logout,
)
from hubauth._view import Decision, RequestView, is_navigation, safe_next_url
from hubauth.cookies import parse_cookie_header
from hubauth.oauth import HubOAuth

from .conftest import TOKEN

ALICE = {"kind": "user", "name": "alice", "groups": [], "scopes": ["access:services!service=svc"]}
MALLORY = {"kind": "user", "name": "mallory", "groups": [], "scopes": ["read:users:name"]}
TOKENS = {"alice-token": ALICE, "mallory-token": MALLORY}
SECRET = "d9e3c365ad95ee40d7b2a1aadf3d118b8c10c47ff44576af561df5d22c5ef674"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(**kw: Any) -> dict[str, Any]:
    base = {
        "api_token": TOKEN,
        "api_url": "http://hub.test/hub/api",
        "service_name": "svc",
        "base_url": "/services/svc/",
        "cookie_secret": SECRET,
    }
    base.update(kw)
    return base


def oauth(clock: Clock | None = None, **kw: Any) -> HubOAuth:
    return HubOAuth(clock=clock or Clock(), **settings(**kw))


def drive(
    flow: Flow,
    *,
    tokens: dict[str, Any] | None = None,
    hub: Exception | None = None,
    code_token: str = "alice-token",  # noqa: S107 - a test token
    log: list[Any] | None = None,
) -> Decision:
    """Answer the flow's questions as a Hub holding ``tokens`` would."""
    known = TOKENS if tokens is None else tokens
    answer: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.throw(error) if error else flow.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if log is not None:
            log.append(step)
        answer, error = None, None
        if hub is not None:
            error = hub
        elif isinstance(step, LookupUser):
            answer = known.get(step.token)
        elif isinstance(step, ExchangeCode):
            answer = code_token


def view(
    method: str = "GET",
    path: str = "/services/svc/page",
    query: str = "",
    headers: dict[str, str] | None = None,
    cookies: list[tuple[str, str]] | None = None,
    **kw: Any,
) -> RequestView:
    return RequestView(
        method=method,
        path=path,
        query=query,
        headers=headers or {},
        cookies=cookies or [],
        host="svc.test",
        **kw,
    )


def cookie_jar(decision: Decision) -> dict[str, str]:
    """name -> value of cookies set (cleared ones map to '')."""
    jar = {}
    for header in decision.cookies:
        name, value = parse_cookie_header(header.split(";", 1)[0])[0]
        jar[name] = value
    return jar


def login(
    auth: HubOAuth, next_path: str = "/services/svc/page?x=1"
) -> tuple[str, list[tuple[str, str]]]:
    """Run a navigation to the login redirect; return (state, cookies the browser now has)."""
    path, _, query = next_path.partition("?")
    d = drive(authenticate(auth, view(path=path, query=query)))
    assert d.kind == "login"
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(d.location).query)["state"][0]
    return state, list(cookie_jar(d).items())


def finish(auth: HubOAuth, state: str, cookies: list[tuple[str, str]], **kw: Any) -> Decision:
    return drive(
        callback(
            auth,
            view(
                path="/services/svc/oauth_callback",
                query=f"code=the-code&state={state}",
                cookies=cookies,
            ),
        ),
        **kw,
    )


# ---------------------------------------------------------------- tokens


def test_header_token_allows_and_sets_no_cookie() -> None:
    d = drive(authenticate(oauth(), view(headers={"authorization": "token alice-token"})))
    assert d.allowed and d.user == ALICE
    assert d.cookies == ()


@pytest.mark.parametrize(
    "header", ["token", "token ", "Basic abc", "token a b", "token " + "x" * 5000]
)
def test_malformed_authorization_is_401(header: str) -> None:
    d = drive(authenticate(oauth(), view(headers={"authorization": header})))
    assert (d.kind, d.status, d.www_authenticate) == ("refuse", 401, True)


def test_unknown_header_token_is_401_not_a_redirect() -> None:
    d = drive(authenticate(oauth(), view(headers={"authorization": "token nope-nope"})))
    assert d.status == 401 and not d.location


def test_without_scope_is_403_never_login() -> None:
    d = drive(authenticate(oauth(), view(headers={"authorization": "bearer mallory-token"})))
    assert (d.kind, d.status) == ("deny", 403)
    assert "mallory" in d.message and not d.location


def test_hub_scopes_replace_the_default() -> None:
    auth = oauth()
    v = view(headers={"authorization": "token mallory-token"})
    assert drive(authenticate(auth, v, ["read:users:name"])).allowed
    assert not drive(
        authenticate(
            auth, view(headers={"authorization": "token alice-token"}), ["read:users:name"]
        )
    ).allowed


_HEADERS = st.one_of(
    st.sampled_from(
        [
            "token alice-token",
            "bearer alice-token",
            "Token  alice-token ",
            "token mallory-token",
            "token nope-nope",
            "token",
            "token a b",
            "Basic alice-token",
            "token " + "x" * 5000,
        ]
    ),
    st.text(max_size=60),
)


@given(
    header=_HEADERS,
    cached=st.sets(st.sampled_from(["alice-token", "mallory-token", "nope-nope"])),
    path=st.sampled_from(["/services/svc/page", "/services/svc", "/elsewhere"]),
    scopes=st.sampled_from([None, ["read:users:name"], [], ["access:services"]]),
)
def test_cached_answer_is_what_the_flow_decides(
    header: str, cached: set[str], path: str, scopes: list[str] | None
) -> None:
    """The Tornado, Flask and WSGI hot path (a cached header token, no view, no flow) decides
    exactly what the flow would, and steps aside whenever the flow is needed.
    """
    auth = oauth()
    for token in cached:
        auth.cache.put(HubAuth._key(token, ""), TOKENS.get(token))
    required = frozenset(auth.access_scopes if scopes is None else scopes)
    known = cached_answer(auth, path, header, required)
    v = view(path=path, headers={"authorization": header})
    token = _protocol.token_from_authorization(header)
    if path == "/services/svc" or token is None or token not in cached:
        assert known is None
    else:
        assert known == drive(authenticate(auth, v, scopes))


def test_decide_sync_answers_cached_tokens_without_the_hub() -> None:
    """Nothing listens at the Hub's address: a cached token is still answered, an uncached
    one is a 503 (the flow asked and could not reach it).
    """
    auth = oauth(api_url="http://127.0.0.1:9/hub/api", connect_timeout=2)
    auth.cache.put(HubAuth._key("alice-token", ""), ALICE)
    ok = decide_sync(auth, view(headers={"authorization": "token alice-token"}))
    assert ok.allowed and ok.user == ALICE and ok.token == "alice-token"
    down = decide_sync(auth, view(headers={"authorization": "token mallory-token"}))
    assert (down.kind, down.status) == ("refuse", 503)
    slash = decide_sync(auth, view(path="/services/svc", headers={"authorization": "token x"}))
    assert (slash.kind, slash.location) == ("redirect", "/services/svc/")


def test_token_in_url_ignored_by_default() -> None:
    d = drive(authenticate(HubAuth(**settings()), view(query="token=alice-token")))
    assert d.status == 401


def test_token_in_url_on_websocket_is_accepted_and_not_stored() -> None:
    d = drive(authenticate(oauth(), view(query="token=alice-token", is_websocket=True)))
    assert d.allowed and d.cookies == ()


def test_token_in_url_allowed_is_stored_only_on_navigation() -> None:
    auth = oauth(allow_token_in_url=True)
    d = drive(authenticate(auth, view(query="token=alice-token")))
    assert d.allowed and auth.cookie_name in cookie_jar(d)
    d = drive(
        authenticate(auth, view(query="token=alice-token", headers={"sec-fetch-mode": "cors"}))
    )
    assert d.allowed and d.cookies == ()


def test_hub_down_is_503_and_bad_answers_502() -> None:
    v = view(headers={"authorization": "token alice-token"})
    assert drive(authenticate(oauth(), v), hub=HubUnavailable("down")).status == 503
    from hubauth import HubResponseError

    assert drive(authenticate(oauth(), v), hub=HubResponseError("bad")).status == 502


# ---------------------------------------------------------------- redirect or refuse


def test_token_only_service_never_redirects_a_browser() -> None:
    d = drive(authenticate(HubAuth(**settings()), view()))
    assert (d.status, d.location, d.cookies) == (401, "", ())


@pytest.mark.parametrize(
    ("headers", "navigates"),
    [
        ({}, True),
        ({"sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}, True),
        ({"sec-fetch-dest": "document"}, True),
        ({"sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}, False),
        ({"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}, False),
        ({"sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe"}, True),
        ({"accept": "application/json"}, False),
        ({"accept": "text/html,application/json"}, True),
    ],
)
def test_only_navigations_are_sent_to_log_in(headers: dict[str, str], navigates: bool) -> None:
    d = drive(authenticate(oauth(), view(headers=headers)))
    assert (d.kind == "login") is navigates
    if not navigates:
        assert d.status == 401
        assert d.cookies == ()  # no state cookie piles up on API calls (issue 4629)
    assert is_navigation(view(headers=headers)) is navigates


def test_post_without_credentials_is_401() -> None:
    d = drive(authenticate(oauth(), view(method="POST")))
    assert d.status == 401 and d.cookies == ()


def test_login_redirect_has_state_and_pkce_and_no_next_in_url() -> None:
    d = drive(authenticate(oauth(), view(path="/services/svc/deep", query="a=1&b=2")))
    url = urllib.parse.urlsplit(d.location)
    q = urllib.parse.parse_qs(url.query)
    assert url.path == "/hub/api/oauth2/authorize"
    assert q["client_id"] == ["service-svc"]
    assert q["redirect_uri"] == ["/services/svc/oauth_callback"]
    assert q["code_challenge_method"] == ["S256"]
    assert len(q["state"][0]) >= 24
    assert "deep" not in d.location
    (header,) = d.cookies
    assert "HttpOnly" in header and "Max-Age=600" in header and "Path=/services/svc/" in header


def test_cookie_options_do_not_stretch_the_state_cookie() -> None:
    d = drive(authenticate(oauth(cookie_options={"expires_days": 30}), view()))
    assert "Max-Age=600" in d.cookies[0]


def test_state_cookies_are_bounded() -> None:
    auth = oauth()
    jar: list[tuple[str, str]] = []
    for _ in range(20):
        d = drive(authenticate(auth, view(cookies=jar)))
        for name, value in cookie_jar(d).items():
            jar = [(n, v) for n, v in jar if n != name]
            if value:
                jar.append((name, value))
    assert len(jar) <= 8


# ---------------------------------------------------------------- the callback


def test_full_login_lands_on_the_deep_link_with_query() -> None:
    auth = oauth()
    state, jar = login(auth, "/services/svc/deep/page?q=1&r=2")
    d = finish(auth, state, jar)
    assert (d.status, d.location) == (302, "/services/svc/deep/page?q=1&r=2")
    cookies = cookie_jar(d)
    assert cookies[auth.cookie_name]
    assert cookies[jar[0][0]] == ""  # the state cookie is cleared
    # The login cookie now authenticates; its value does not contain the token.
    assert "alice-token" not in cookies[auth.cookie_name]
    after = drive(authenticate(auth, view(cookies=[(auth.cookie_name, cookies[auth.cookie_name])])))
    assert after.allowed and after.user == ALICE


def test_several_tabs_log_in_at_once() -> None:
    auth = oauth()
    flows = [login(auth, f"/services/svc/tab{i}") for i in range(3)]
    browser = [c for _, jar in flows for c in jar]
    for i, (state, _) in enumerate(reversed(flows)):
        d = finish(auth, state, browser)
        assert d.location == f"/services/svc/tab{2 - i}"


def test_callback_on_another_process_with_the_same_secret() -> None:
    state, jar = login(oauth())
    assert finish(oauth(), state, jar).location == "/services/svc/page?x=1"


def test_forged_or_missing_state_is_403_or_400() -> None:
    auth = oauth()
    state, jar = login(auth)
    assert finish(auth, "forged-state", jar).status == 403
    assert finish(auth, state, []).status == 403
    swapped = [(jar[0][0], jar[0][1][:-4] + "AAAA")]
    assert finish(auth, state, swapped).status == 403
    d = drive(callback(auth, view(query=f"state={state}", cookies=jar)))
    assert d.status == 400
    d = drive(callback(auth, view(query="code=x", cookies=jar)))
    assert d.status == 400


def test_state_from_another_browser_is_refused() -> None:
    auth = oauth()
    state_a, _ = login(auth)
    _, jar_b = login(auth)
    assert finish(auth, state_a, jar_b).status == 403


def test_state_expires() -> None:
    clock = Clock()
    auth = oauth(clock)
    state, jar = login(auth)
    clock.now += 601
    assert finish(auth, state, jar).status == 403


def test_hub_error_in_callback_is_400_with_its_description() -> None:
    d = drive(callback(oauth(), view(query="error=access_denied&error_description=Nope+%3Cb%3E")))
    assert d.status == 400 and "Nope <b>" in d.message
    _, body = d.page(view())
    assert b"<b>" not in body and b"&lt;b&gt;" in body


def test_code_refused_is_400_and_hub_down_is_503() -> None:
    auth = oauth()
    state, jar = login(auth)
    assert finish(auth, state, jar, hub=OAuthError("invalid_grant")).status == 400
    state, jar = login(auth)
    assert finish(auth, state, jar, hub=HubUnavailable("down")).status == 503


def test_callback_when_already_logged_in_just_redirects() -> None:
    """A doubled callback (double click, or another tab finished first and cleared the
    state cookies) lands on its own page without a new token, once the Hub confirms the
    browser's login.
    """
    auth = oauth()
    state, jar = login(auth)
    done = finish(auth, state, jar)
    login_cookie = (auth.cookie_name, cookie_jar(done)[auth.cookie_name])
    steps: list[Any] = []
    again = finish(auth, state, [login_cookie], log=steps)  # replay: state cookie is gone
    assert again.status == 302 and again.location == "/services/svc/page?x=1"
    assert [type(s) for s in steps] == [LookupUser]  # the code is not exchanged twice


def test_doubled_callback_with_a_login_the_hub_refuses_is_403() -> None:
    auth = oauth()
    state, jar = login(auth)
    login_cookie = (auth.cookie_name, cookie_jar(finish(auth, state, jar))[auth.cookie_name])
    again = finish(auth, state, [login_cookie], tokens={})  # the Hub forgot the token
    assert again.status == 403


def test_callback_with_its_state_cookie_exchanges_even_when_logged_in() -> None:
    """A login the browser started is finished with its own code, whatever login cookie is
    there already (it may have been planted: see the attack suite).
    """
    auth = oauth()
    old = logged_in_cookie(auth)
    state, jar = login(auth, "/services/svc/next")
    steps: list[Any] = []
    d = finish(auth, state, old + jar, log=steps)
    assert ExchangeCode in [type(s) for s in steps]
    assert d.location == "/services/svc/next" and cookie_jar(d)[auth.cookie_name]


def test_stale_cookie_is_cleared_and_the_browser_logs_in_again() -> None:
    clock = Clock()
    auth = oauth(clock)
    state, jar = login(auth)
    value = cookie_jar(finish(auth, state, jar))[auth.cookie_name]
    clock.now += 3600
    d = drive(authenticate(auth, view(cookies=[(auth.cookie_name, value)])), tokens={})
    assert d.kind == "login"
    assert cookie_jar(d)[auth.cookie_name] == ""


def test_logging_out_of_the_hub_and_coming_back_at_once_logs_in_again() -> None:
    """Issue 10: a user who logs out of the Hub and returns within seconds is sent through
    login, not told "Login loop stopped" (one refused login cookie is not a loop).
    """
    auth = oauth()
    jar = logged_in_cookie(auth)  # issued just now
    d = drive(authenticate(auth, view(cookies=jar)), tokens={})  # the Hub revoked it
    assert d.kind == "login" and d.status == 302
    assert cookie_jar(d)[auth.cookie_name] == ""


def test_the_hub_refusing_every_fresh_token_is_a_loop_stopped_after_three() -> None:
    """A real loop: the Hub issues a token, then refuses it at once, again and again. The
    count of failed logins travels in the state and the login cookie; the third is stopped.
    """
    auth = oauth()
    jar: list[tuple[str, str]] = []
    outcomes = []
    for _ in range(4):
        d = drive(authenticate(auth, view(cookies=jar)), tokens={})
        outcomes.append(d.status)
        if d.kind != "login":
            break
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(d.location).query)["state"][0]
        done = finish(auth, state, list(cookie_jar(d).items()))
        jar = [(auth.cookie_name, cookie_jar(done)[auth.cookie_name])]
    assert outcomes == [302, 302, 302, 403]
    assert "loop" in d.message.lower()


def test_a_login_that_works_resets_the_failure_count() -> None:
    auth = oauth()
    value = auth.login_cookie("alice-token", secure=False, failures=2).split(";")[0].split("=", 1)
    d = drive(authenticate(auth, view(cookies=[(value[0], value[1])])))
    assert d.allowed
    fresh = cookie_jar(d)[auth.cookie_name]  # re-issued without the count
    assert auth.read_login_cookies([fresh])[0].failures == 0


def test_tampered_cookie_is_cleared_and_sent_to_login() -> None:
    auth = oauth()
    d = drive(authenticate(auth, view(cookies=[(auth.cookie_name, "garbage")])))
    assert d.kind == "login" and cookie_jar(d)[auth.cookie_name] == ""


def test_cookie_of_another_service_does_not_authenticate() -> None:
    other = oauth(service_name="other", base_url="/services/other/")
    state, jar = login(other, "/services/other/")
    value = cookie_jar(finish(other, state, jar))[other.cookie_name]
    auth = oauth()
    d = drive(authenticate(auth, view(cookies=[(auth.cookie_name, value)])))
    assert not d.allowed


def test_logout_clears_cookie_and_ends_the_hub_session() -> None:
    auth = oauth()
    d = logout(
        auth, view(cookies=[(auth.cookie_name, "x"), (auth.state_cookie_name + "-abc", "y")])
    )
    assert d.location == "/hub/logout"
    jar = cookie_jar(d)
    assert jar[auth.cookie_name] == "" and jar[auth.state_cookie_name + "-abc"] == ""


# ---------------------------------------------------------------- cross-site requests


def logged_in_cookie(auth: HubOAuth) -> list[tuple[str, str]]:
    state, jar = login(auth)
    return [(auth.cookie_name, cookie_jar(finish(auth, state, jar))[auth.cookie_name])]


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, False),
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "same-site"}, False),
        ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}, False),
        ({"sec-fetch-mode": "no-cors"}, False),
        ({"origin": "http://evil.test"}, False),
        ({"origin": "null"}, False),
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "none"}, True),
        ({"origin": "http://svc.test"}, True),
        ({"origin": "http://svc.test", "sec-fetch-site": "cross-site"}, False),
    ],
)
def test_cookie_authenticated_unsafe_methods_need_same_origin(
    headers: dict[str, str], ok: bool
) -> None:
    auth = oauth()
    jar = logged_in_cookie(auth)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        d = drive(authenticate(auth, view(method=method, headers=headers, cookies=jar)))
        assert d.allowed is ok
        if not ok:
            assert d.status == 403 and "Cross-site" in d.message


def xsrf_for(auth: HubOAuth, jar: list[tuple[str, str]], session: str = "") -> str:
    found = auth.read_login_cookie([v for n, v in jar if n == auth.cookie_name])
    assert found is not None
    return auth.xsrf_token_for(found[0], session)


def test_an_xsrf_token_of_this_login_counts() -> None:
    auth = oauth()
    jar = logged_in_cookie(auth)
    d = drive(authenticate(auth, view(method="POST", cookies=jar, xsrf_token=xsrf_for(auth, jar))))
    assert d.allowed


@pytest.mark.parametrize(
    "which", ["anonymous", "another login", "another session", "forged", "empty"]
)
def test_xsrf_tokens_not_of_this_login_do_not_count(which: str) -> None:
    """A token planted from a sibling site (or made for someone else) proves nothing."""
    auth = oauth()
    jar = [*logged_in_cookie(auth), ("jupyterhub-session-id", "s1")]
    token = {
        "anonymous": auth.xsrf_token_for("", "s1"),
        "another login": auth.xsrf_token_for("mallory-token", "s1"),
        "another session": xsrf_for(auth, jar, "s2"),
        "forged": "A" * 43,
        "empty": "",
    }[which]
    d = drive(authenticate(auth, view(method="POST", cookies=jar, xsrf_token=token)))
    assert not d.allowed and d.status == 403 and "Cross-site" in d.message


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
def test_a_foreign_sec_fetch_site_outweighs_a_valid_xsrf_token(site: str) -> None:
    """Issue 11.1: whatever the XSRF check says, the browser saying another site sent the
    request (a sibling subdomain is same-site) refuses it.
    """
    auth = oauth()
    jar = logged_in_cookie(auth)
    headers = {"sec-fetch-site": site}
    d = drive(
        authenticate(
            auth, view(method="POST", headers=headers, cookies=jar, xsrf_token=xsrf_for(auth, jar))
        )
    )
    assert not d.allowed and d.status == 403


def test_an_app_that_requires_xsrf_tokens_gets_them_required() -> None:
    """Tornado apps with xsrf_cookies: same-origin evidence alone is not enough."""
    auth = oauth()
    jar = logged_in_cookie(auth)
    same = {"sec-fetch-site": "same-origin"}
    plain = view(method="POST", headers=same, cookies=jar, xsrf_required=True)
    assert drive(authenticate(auth, plain)).status == 403
    ok = view(
        method="POST", headers=same, cookies=jar, xsrf_required=True, xsrf_token=xsrf_for(auth, jar)
    )
    assert drive(authenticate(auth, ok)).allowed


def test_token_authenticated_post_needs_no_origin() -> None:
    d = drive(
        authenticate(
            oauth(),
            view(
                method="POST",
                headers={"authorization": "token alice-token", "sec-fetch-site": "cross-site"},
            ),
        )
    )
    assert d.allowed


# ---------------------------------------------------------------- next URLs and Secure


@pytest.mark.parametrize(
    "bad",
    [
        "//evil.test",
        "///evil.test",
        "/\\evil.test",
        "\\/evil.test",
        "https://evil.test",
        "javascript:alert(1)",
        "/%2F%2Fevil.test",
        "/%5Cevil.test",
        "/\tevil",
        "/\n/evil",
        " /x",
        "evil.test",
        "/%252F%252Fevil.test",
        "/\uff45vil",  # a full-width e
        "//evil.test@svc.test",
        "",
    ],
)
def test_next_urls_stay_local(bad: str) -> None:
    assert safe_next_url(bad, "/services/svc/") == "/services/svc/"


def test_next_url_keeps_local_paths() -> None:
    assert safe_next_url("/services/svc/a?b=1#c", "/") == "/services/svc/a?b=1#c"


@pytest.mark.parametrize(
    ("kw", "headers", "scheme", "secure"),
    [
        ({}, {}, "http", False),
        ({}, {}, "https", True),
        ({}, {"x-forwarded-proto": "https, http"}, "http", True),
        ({}, {"x-forwarded-proto": "http"}, "https", False),
        (
            {"public_url": "https://hub.example/services/svc/"},
            {"x-forwarded-proto": "http"},
            "http",
            True,
        ),
        (
            {"public_url": "http://hub.example/services/svc/"},
            {"x-forwarded-proto": "https"},
            "https",
            False,
        ),
    ],
)
def test_secure_cookie_precedence(
    kw: dict[str, str], headers: dict[str, str], scheme: str, secure: bool
) -> None:
    d = drive(authenticate(oauth(**kw), view(headers=headers, scheme=scheme)))
    assert ("; Secure" in d.cookies[0]) is secure


def test_host_prefix_cookies() -> None:
    auth = oauth(cookie_host_prefix_enabled=True)
    state, jar = login(auth)
    assert jar[0][0].startswith("__Host-")
    d = finish(auth, state, jar)
    for header in d.cookies:
        if header.startswith("_xsrf="):  # read by scripts: a plain name, on the same path
            assert "Path=/;" in header and "HttpOnly" not in header
            continue
        assert header.startswith("__Host-") and "Path=/;" in header and "Secure" in header
    assert auth.cookie_name == "__Host-service-svc"


def test_a_login_sets_the_readable_xsrf_cookie_of_that_login() -> None:
    """As JupyterHub's callback: scripts read ``_xsrf`` to send ``X-XSRFToken``; its value
    is the token bound to this login (and Hub session), so it works on every adapter.
    """
    auth = oauth()
    state, jar = login(auth)
    d = finish(auth, state, [*jar, ("jupyterhub-session-id", "s9")])
    cookies = cookie_jar(d)
    found = auth.read_login_cookie([cookies[auth.cookie_name]])
    assert found is not None
    assert auth.check_xsrf_token(cookies["_xsrf"], found[0], "s9")
    header = next(h for h in d.cookies if h.startswith("_xsrf="))
    assert "HttpOnly" not in header and "Path=/services/svc/" in header


def test_refusal_pages_are_html_for_browsers_and_json_for_apis() -> None:
    d = Decision(kind="refuse", status=403, message="no <way>")
    form_post = view(
        method="POST", headers={"accept": "text/html,*/*", "sec-fetch-dest": "document"}
    )
    ctype, body = d.page(form_post)
    assert ctype.startswith("text/html") and b"no &lt;way&gt;" in body
    for api in (
        view(method="POST"),
        view(headers={"accept": "application/json"}),
        view(headers={"authorization": "token x", "accept": "text/html"}),
    ):
        ctype, body = d.page(api)
        assert ctype == "application/json" and b"no <way>" in body


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("/x", "/x"),
        ("/x?a=1", "/x?a=1"),
        ("/x?token=abc&a=1", "/x?token=[secret]&a=1"),
        ("/cb?code=c0de&state=st4te", "/cb?code=[secret]&state=[secret]"),
        ("/x?TOKEN=abc", "/x?TOKEN=[secret]"),
        ("/x?to%6Ben=abc", "/x?to%6Ben=[secret]"),
        ("/x?token", "/x?token"),
    ],
)
def test_redact_uri(uri: str, redacted: str) -> None:
    from hubauth._view import redact_uri

    assert redact_uri(uri) == redacted


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            "Invalid header value 'token cf9af4d2df\x01'",
            "Invalid header value 'token [secret]'",
        ),
        ("Authorization: Bearer abc.def", "Authorization: Bearer [secret]"),
        ("GET /x?token=abc&y=1", "GET /x?token=[secret]&y=1"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_redact_text(line: str, redacted: str) -> None:
    from hubauth._view import redact_text

    assert redact_text(line) == redacted


def test_tornado_logs_are_redacted_when_the_adapter_is_imported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import hubauth.tornado  # noqa: F401 - installs the filter

    caplog.set_level(logging.INFO, "tornado.general")
    logging.getLogger("tornado.general").info(
        "Malformed HTTP message: %r", "token s3cr3t-token\x01"
    )
    assert "s3cr3t-token" not in caplog.text and "[secret]" in caplog.text


def test_get_next_url_ignores_non_text() -> None:
    auth = oauth()
    assert auth.get_next_url({"next": b"//evil.example"}) == "/services/svc/"
    assert auth.get_next_url({"next": "/services/svc/x"}) == "/services/svc/x"


@pytest.mark.parametrize(
    ("code_token", "known", "why"),
    [
        ("bad token with spaces", TOKENS, "the Hub issued something that cannot be a token"),
        ("unknown-token", {}, "the Hub does not know the token it issued"),
    ],
)
def test_callback_with_an_unusable_token_from_the_hub_is_502(
    code_token: str, known: dict[str, Any], why: str
) -> None:
    auth = oauth()
    state, jar = login(auth)
    d = finish(auth, state, jar, code_token=code_token, tokens=known)
    assert (d.kind, d.status) == ("refuse", 502), why
    assert auth.cookie_name not in cookie_jar(d)


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, False),
        ({"origin": "http://evil.test"}, False),
        ({"origin": "http://svc.test"}, True),
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "same-site", "origin": "http://svc.test"}, False),
    ],
)
def test_cookie_websocket_handshakes_need_same_origin(headers: dict[str, str], ok: bool) -> None:
    """Cross-site websocket hijacking: a handshake is a GET, but a page of another origin
    must not open a websocket with the login cookie.
    """
    auth = oauth()
    d = drive(
        authenticate(auth, view(headers=headers, cookies=logged_in_cookie(auth), is_websocket=True))
    )
    assert d.allowed is ok
    if not ok:
        assert d.status == 403 and "websocket" in d.message
