"""HubAuth.user_for_token on the sync path, against a Hub on 127.0.0.1 that answers as told
(:class:`tests.rawhub.RawHub`).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from hubauth import HubAuth, HubResponseError, HubUnavailable

from .conftest import TOKEN
from .rawhub import Action, Raw, RawHub, Reply, Request, Reset
from .services import all_at_once

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


class Scripted:
    """The Hub's answer to ``GET /hub/api/user``, settable per test, with the requests."""

    def __init__(self) -> None:
        self.answer: Callable[[Request], Action] = lambda req: Reply(json=ALICE)

    def __call__(self, req: Request) -> Action:
        return self.answer(req)


@pytest.fixture
def script() -> Scripted:
    return Scripted()


@pytest.fixture
def hub(script: Scripted) -> Iterator[RawHub]:
    with RawHub(script) as h:
        yield h


@pytest.fixture
def auth(hub: RawHub) -> Iterator[HubAuth]:
    a = HubAuth(api_url=hub.api_url, api_token=TOKEN, service_name="svc")
    yield a
    a.close()


def calls(hub: RawHub) -> int:
    return sum(r.path == "/hub/api/user" for r in hub.requests)


def test_known_token_is_the_model(auth: HubAuth, hub: RawHub) -> None:
    assert auth.user_for_token("user-tok-1") == ALICE
    assert hub.requests[0].headers["authorization"] == "token user-tok-1"
    assert hub.requests[0].headers["accept"] == "application/json"
    assert auth.check_scopes(auth.access_scopes, ALICE)


def test_unknown_token_is_none(auth: HubAuth, script: Scripted) -> None:
    script.answer = lambda req: Reply(403, json={"status": 403, "message": "Forbidden"})
    assert auth.user_for_token("nobody-knows") is None


def test_cache_hit_skips_the_hub(auth: HubAuth, hub: RawHub) -> None:
    for _ in range(5):
        assert auth.user_for_token("user-tok-1") == ALICE
    assert calls(hub) == 1
    assert auth.user_for_token("user-tok-1", use_cache=False) == ALICE
    assert calls(hub) == 2


def test_cache_expires_with_max_age(hub: RawHub) -> None:
    clock = Clock()
    auth = HubAuth(api_url=hub.api_url, api_token=TOKEN, cache_max_age=60, timer=clock)
    auth.user_for_token("tok-a")
    clock.now = 59
    auth.user_for_token("tok-a")
    assert calls(hub) == 1
    clock.now = 61
    auth.user_for_token("tok-a")
    assert calls(hub) == 2
    auth.close()


def test_unknown_tokens_are_cached_briefly(hub: RawHub, script: Scripted) -> None:
    clock = Clock()
    auth = HubAuth(api_url=hub.api_url, api_token=TOKEN, cache_negative_max_age=5, timer=clock)
    script.answer = lambda req: Reply(403)
    assert auth.user_for_token("tok-x") is None
    assert auth.user_for_token("tok-x") is None
    assert calls(hub) == 1
    clock.now = 6
    assert auth.user_for_token("tok-x") is None
    assert calls(hub) == 2
    auth.close()


def test_session_id_is_part_of_the_key(auth: HubAuth, hub: RawHub) -> None:
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a", session_id="s2")
    assert calls(hub) == 2


def test_evict_token(auth: HubAuth, hub: RawHub) -> None:
    auth.user_for_token("tok-a", session_id="s1")
    auth.user_for_token("tok-a")
    assert auth.evict_token("tok-a") == 2
    assert auth.evict_token("not a token") == 0
    auth.user_for_token("tok-a")
    assert calls(hub) == 3


@pytest.mark.parametrize("token", ["", "   ", "x" * 5000, "tökén", "a\r\nb", "two words"])
def test_impossible_tokens_never_reach_the_hub(auth: HubAuth, hub: RawHub, token: str) -> None:
    assert auth.user_for_token(token) is None
    assert calls(hub) == 0


_HTML = Reply(200, body=b"<html></html>", headers={"Content-Type": "text/html"})


@pytest.mark.parametrize(
    ("answer", "error", "needle"),
    [
        (Reply(500, body=b"oops"), HubResponseError, "500"),
        (Reply(503, body=b"down"), HubResponseError, "503"),
        (_HTML, HubResponseError, "HTML"),
        (Reply(json={"name": "a"}), HubResponseError, "scopes"),
        (Reply(json=["a"]), HubResponseError, "not an object"),
        (
            Reply(301, headers={"Location": "http://hub.test:8081/hub/api/"}),
            HubResponseError,
            "redirect",
        ),
        (Reset(), HubUnavailable, "connection reset|without an answer"),
        (
            Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", then="close"),
            HubUnavailable,
            "closed before a full answer",
        ),
        (Raw(b"garbage\r\n\r\n", then="close"), HubResponseError, "not HTTP/1.1"),
    ],
)
def test_hub_trouble_is_a_named_error_and_not_cached(
    auth: HubAuth,
    hub: RawHub,
    script: Scripted,
    answer: Action,
    error: type[Exception],
    needle: str,
) -> None:
    script.answer = lambda req: answer
    for _ in range(2):
        with pytest.raises(error, match=needle) as e:
            auth.user_for_token("tok-a")
        assert f"{hub.api_url}/user" in str(e.value)
        assert "tok-a" not in str(e.value)
    assert calls(hub) == 2


def test_huge_body_is_refused(auth: HubAuth, script: Scripted) -> None:
    script.answer = lambda req: Reply(body=b"x" * (2 * 1024 * 1024))
    with pytest.raises(HubResponseError, match="bytes"):
        auth.user_for_token("tok-a")


def test_tls_to_a_plain_http_hub_is_a_named_error() -> None:
    """An https API URL for a Hub that speaks plain HTTP: it answers the TLS hello with an
    HTTP error page, which is a TLS failure naming the settings to check.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def plain_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=plain_http)
    thread.start()
    auth = HubAuth(api_url=f"https://127.0.0.1:{port}/hub/api", api_token=TOKEN)
    with pytest.raises(HubUnavailable, match=r"TLS failed.*JUPYTERHUB_SSL_CLIENT_CA"):
        auth.user_for_token("tok-a")
    thread.join(10)
    listener.close()
    auth.close()


def test_single_flight_across_threads(auth: HubAuth, hub: RawHub, script: Scripted) -> None:
    gate = threading.Event()

    def slow(req: Request) -> Action:
        gate.wait(5)
        return Reply(json={"name": "alice", "scopes": []})

    def in_flight() -> bool:
        return len(auth.cache._threads) == 1

    script.answer = slow
    results = all_at_once(20, lambda: auth.user_for_token("tok-a"), gate, in_flight)
    assert [r["name"] for r in results] == ["alice"] * 20
    assert calls(hub) == 1


def test_tokens_never_logged(
    auth: HubAuth, script: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    script.answer = lambda req: Reply(500)
    with pytest.raises(HubResponseError):
        auth.user_for_token("secret-user-token")
    assert "secret-user-token" not in caplog.text
    assert TOKEN not in caplog.text


def test_refused_connection_for_real() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = s.getsockname()[1]
        auth = HubAuth(api_url=f"http://127.0.0.1:{port}/hub/api", api_token=TOKEN)
        with pytest.raises(HubUnavailable, match=rf"127\.0\.0\.1:{port}.*refused") as e:
            auth.user_for_token("tok-a")
    assert e.value.setting == "api_url"
    assert "JUPYTERHUB_API_URL" in str(e.value)
    auth.close()
