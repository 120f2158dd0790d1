"""HubAuth.user_for_token on the sync path, with the Hub played by ``responses``."""

from __future__ import annotations

import logging
import threading

import pytest
import requests
import responses

from hubauth import HubAuth, HubResponseError, HubUnavailable

from .conftest import TOKEN
from .services import all_at_once

API = "http://hub.test:8081/hub/api"
USER_URL = f"{API}/user"
ALICE = {
    "kind": "user",
    "name": "alice",
    "admin": False,
    "groups": ["staff"],
    "scopes": ["access:services"],
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def auth() -> HubAuth:
    return HubAuth(api_url=API, api_token=TOKEN, service_name="svc")


@responses.activate
def test_known_token_is_the_model(auth: HubAuth) -> None:
    responses.get(
        USER_URL,
        json=ALICE,
        match=[responses.matchers.header_matcher({"Authorization": "token user-tok-1"})],
    )
    assert auth.user_for_token("user-tok-1") == ALICE
    assert auth.check_scopes(auth.access_scopes, ALICE)


@responses.activate
def test_unknown_token_is_none(auth: HubAuth) -> None:
    responses.get(USER_URL, status=403, json={"status": 403, "message": "Forbidden"})
    assert auth.user_for_token("nobody-knows") is None


@responses.activate
def test_cache_hit_skips_the_hub(auth: HubAuth) -> None:
    rsp = responses.get(USER_URL, json=ALICE)
    for _ in range(5):
        assert auth.user_for_token("user-tok-1") == ALICE
    assert rsp.call_count == 1
    assert auth.user_for_token("user-tok-1", use_cache=False) == ALICE
    assert rsp.call_count == 2


@responses.activate
def test_cache_expires_with_max_age() -> None:
    clock = Clock()
    auth = HubAuth(api_url=API, api_token=TOKEN, cache_max_age=60, timer=clock)
    rsp = responses.get(USER_URL, json=ALICE)
    auth.user_for_token("tok-a")
    clock.now = 59
    auth.user_for_token("tok-a")
    assert rsp.call_count == 1
    clock.now = 61
    auth.user_for_token("tok-a")
    assert rsp.call_count == 2


@responses.activate
def test_unknown_tokens_are_cached_briefly() -> None:
    clock = Clock()
    auth = HubAuth(api_url=API, api_token=TOKEN, cache_negative_max_age=5, timer=clock)
    rsp = responses.get(USER_URL, status=403)
    assert auth.user_for_token("tok-x") is None
    assert auth.user_for_token("tok-x") is None
    assert rsp.call_count == 1
    clock.now = 6
    assert auth.user_for_token("tok-x") is None
    assert rsp.call_count == 2


@responses.activate
def test_session_id_is_part_of_the_key(auth: HubAuth) -> None:
    rsp = responses.get(USER_URL, json=ALICE)
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a", session_id="s2")
    assert rsp.call_count == 2


@responses.activate
def test_evict_token(auth: HubAuth) -> None:
    rsp = responses.get(USER_URL, json=ALICE)
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a")
    assert auth.evict_token("tok-a") == 2
    assert auth.evict_token("not a token") == 0
    auth.user_for_token("tok-a")
    assert rsp.call_count == 3


@responses.activate
@pytest.mark.parametrize("token", ["", "   ", "x" * 5000, "tökén", "a\r\nb", "two words"])
def test_impossible_tokens_never_reach_the_hub(auth: HubAuth, token: str) -> None:
    rsp = responses.get(USER_URL, json=ALICE)
    assert auth.user_for_token(token) is None
    assert rsp.call_count == 0


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"status": 500, "body": "oops"}, HubResponseError, "500"),
        ({"status": 503, "body": "down"}, HubResponseError, "503"),
        (
            {"status": 200, "body": "<html></html>", "content_type": "text/html"},
            HubResponseError,
            "HTML",
        ),
        ({"status": 200, "json": {"name": "a"}}, HubResponseError, "scopes"),
        ({"status": 200, "json": ["a"]}, HubResponseError, "not an object"),
        (
            {"status": 301, "headers": {"Location": "http://hub.test:8081/hub/api/"}},
            HubResponseError,
            "redirect",
        ),
        (
            {"body": requests.exceptions.ConnectionError("Connection refused")},
            HubUnavailable,
            "refused",
        ),
        ({"body": requests.exceptions.ConnectTimeout()}, HubUnavailable, "connect_timeout"),
        ({"body": requests.exceptions.ReadTimeout()}, HubUnavailable, "request_timeout"),
        ({"body": requests.exceptions.SSLError()}, HubUnavailable, "JUPYTERHUB_SSL_CLIENT_CA"),
        (
            {"body": requests.exceptions.ChunkedEncodingError()},
            HubUnavailable,
            "ChunkedEncodingError",
        ),
    ],
)
def test_hub_trouble_is_a_named_error_and_not_cached(
    auth: HubAuth, kwargs: dict[str, object], error: type[Exception], needle: str
) -> None:
    rsp = responses.get(USER_URL, **kwargs)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(error, match=needle) as e:
            auth.user_for_token("tok-a")
        assert USER_URL in str(e.value)
        assert "tok-a" not in str(e.value)
    assert rsp.call_count == 2


@responses.activate
def test_huge_body_is_refused(auth: HubAuth) -> None:
    responses.get(USER_URL, body=b"x" * (2 * 1024 * 1024))
    with pytest.raises(HubResponseError, match="bytes"):
        auth.user_for_token("tok-a")


@responses.activate
def test_single_flight_across_threads(auth: HubAuth) -> None:
    gate = threading.Event()

    def slow(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        gate.wait(5)
        return 200, {}, '{"name": "alice", "scopes": []}'

    def in_flight() -> bool:
        return len(auth.cache._threads) == 1

    responses.add_callback(responses.GET, USER_URL, callback=slow)
    results = all_at_once(20, lambda: auth.user_for_token("tok-a"), gate, in_flight)
    assert [r["name"] for r in results] == ["alice"] * 20
    assert len(responses.calls) == 1


@responses.activate
def test_tokens_never_logged(auth: HubAuth, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(USER_URL, status=500)
    with pytest.raises(HubResponseError):
        auth.user_for_token("secret-user-token")
    assert "secret-user-token" not in caplog.text
    assert TOKEN not in caplog.text


def test_refused_connection_for_real() -> None:
    auth = HubAuth(api_url="http://127.0.0.1:1/hub/api", api_token=TOKEN, connect_timeout=2)
    with pytest.raises(HubUnavailable, match=r"127\.0\.0\.1:1") as e:
        auth.user_for_token("tok-a")
    assert e.value.setting == "api_url"
    assert "JUPYTERHUB_API_URL" in str(e.value)
