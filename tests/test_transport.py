"""Talking to the Hub over kept-alive connections, on both drivers: reuse, the Hub closing
connections (idle, mid-answer, after a restart), timeouts, bad answers, the pool's bound.

Every case runs on the sync driver and on the async driver (:mod:`tests.drivers`), the latter
on one long-lived event loop in a thread (as in a Tornado service), so connections outlive a
call.
The Hub is :class:`tests.rawhub.RawHub`, which misbehaves at the byte level on demand.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from hubauth import HubAuth, HubOAuth, HubResponseError, HubUnavailable
from hubauth._pool import Idle
from hubauth._protocol import HubRequest

from .conftest import TOKEN
from .drivers import Driver, driver
from .rawhub import Close, Hang, Raw, RawHub, Reply, Request, Reset

__all__ = ["driver"]  # the fixture

ALICE = {"kind": "user", "name": "alice", "scopes": ["access:services"], "groups": []}
ALICE_REPLY = Reply(json=ALICE)


def user_handler(req: Request) -> Reply:
    if req.path == "/hub/api/user":
        if req.headers.get("authorization") == "token alice-token":
            return ALICE_REPLY
        return Reply(403, json={"status": 403})
    if req.path == "/hub/api/oauth2/token":
        return Reply(json={"access_token": "issued-token", "token_type": "Bearer"})
    return Reply(404, json={})


@pytest.fixture
def hub() -> Iterator[RawHub]:
    with RawHub(user_handler) as h:
        yield h


def make(hub: RawHub, cls: type[HubAuth] = HubAuth, **settings: Any) -> Any:
    extra: dict[str, Any] = {"oauth_client_id": "service-x", "oauth_redirect_uri": "/x/cb"}
    return cls(
        api_url=hub.api_url,
        api_token=TOKEN,
        **(extra if cls is HubOAuth else {}),
        **settings,
    )


def posts(hub: RawHub) -> list[Request]:
    return [r for r in hub.requests if r.method == "POST"]


# ------------------------------------------------------------------ reuse


def test_connections_are_kept_alive(driver: Driver, hub: RawHub) -> None:
    auth = make(hub)
    for _ in range(5):
        assert driver.user(auth) == ALICE
    assert driver.user(auth, "nobody") is None
    assert len(hub.requests) == 6
    assert hub.accepted == 1  # one connection carried all six
    auth.close()


def test_the_hub_closing_idle_connections_is_not_an_error(driver: Driver, hub: RawHub) -> None:
    """A Hub (or a proxy in front of it) closes connections that sat idle: the pool sees it
    before reuse and opens a new one; the request is sent once.
    """
    auth = make(hub)
    assert driver.user(auth) == ALICE
    assert hub.close_idle() == 1
    assert driver.user(auth) == ALICE
    assert hub.accepted == 2
    assert len(hub.requests) == 2
    auth.close()


@pytest.mark.parametrize("action", [Close(), Reset()], ids=["closed", "reset"])
def test_a_reused_connection_that_dies_unanswered_is_retried_once_for_a_lookup(
    driver: Driver, action: Close | Reset
) -> None:
    """The race no check can see: the Hub closes a kept-alive connection just as the next
    request goes out. Not one byte came back, and a lookup is safe to send twice: it goes
    again, once, on a new connection.
    """
    seen: list[int] = []

    def handler(req: Request) -> Any:
        seen.append(req.conn)
        return action if len(seen) == 2 else user_handler(req)

    with RawHub(handler) as hub:
        auth = make(hub)
        assert driver.user(auth) == ALICE
        assert driver.user(auth) == ALICE
        assert seen == [1, 1, 2]  # sent on the kept connection, then again on a new one
        auth.close()


def test_a_lookup_is_not_retried_when_a_new_connection_dies(driver: Driver) -> None:
    with RawHub(lambda req: Close()) as hub:
        auth = make(hub)
        with pytest.raises(HubUnavailable, match="closed without an answer"):
            driver.user(auth)
        assert len(hub.requests) == 1
        auth.close()


def test_the_code_exchange_is_never_sent_twice(driver: Driver) -> None:
    """The OAuth code POST is not idempotent: the Hub may have used the code before the
    connection died. It goes only on a connection the Hub answered on moments ago (or a new
    one), and a failure is the caller's error, never a second POST.
    """

    def handler(req: Request) -> Any:
        return Close() if req.method == "POST" else user_handler(req)

    with RawHub(handler) as hub:
        auth = make(hub, HubOAuth)
        assert driver.user(auth) == ALICE
        with pytest.raises(HubUnavailable, match="closed without an answer"):
            driver.exchange(auth)
        assert len(posts(hub)) == 1
        auth.close()


def test_the_code_exchange_takes_a_new_connection_after_a_pause(
    driver: Driver, hub: RawHub
) -> None:
    auth = make(hub, HubOAuth)
    assert driver.user(auth) == ALICE
    assert driver.exchange(auth) == "issued-token"
    assert [r.conn for r in hub.requests] == [1, 1]  # answered moments ago: reused
    time.sleep(1.2)
    assert driver.exchange(auth) == "issued-token"
    assert posts(hub)[-1].conn == 2  # idle for over a second: a new connection
    assert driver.user(auth) == ALICE
    auth.close()


def test_closing_mid_answer_is_hub_unavailable_and_not_retried(driver: Driver) -> None:
    """Bytes came back: whatever the Hub did, sending again could double it. Named error."""
    partial = Raw(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"name": "al', then="close")
    answers = iter([ALICE_REPLY, partial, partial])
    with RawHub(lambda req: next(answers)) as hub:
        auth = make(hub)
        assert driver.user(auth) == ALICE
        with pytest.raises(HubUnavailable, match="closed before a full answer") as e:
            driver.user(auth)  # on the reused connection
        assert e.value.url == f"{hub.api_url}/user"
        with pytest.raises(HubUnavailable, match="closed before a full answer"):
            driver.user(auth)  # on a new one
        assert len(hub.requests) == 3
        auth.close()


def test_a_restarted_hub_answers_on_a_new_connection(driver: Driver, hub: RawHub) -> None:
    """Kept connections die with the Hub process; the next request must not fail for it."""
    auth = make(hub)
    assert driver.user(auth) == ALICE
    hub.restart()
    assert driver.user(auth) == ALICE
    assert driver.user(auth) == ALICE
    assert hub.accepted == 2
    auth.close()


def test_connection_close_is_honoured(driver: Driver) -> None:
    with RawHub(lambda req: Reply(json=ALICE, close=True)) as hub:
        auth = make(hub)
        for _ in range(3):
            assert driver.user(auth) == ALICE
        assert hub.accepted == 3
        auth.close()


def test_close_closes_idle_connections_and_the_driver_stays_usable(
    driver: Driver, hub: RawHub
) -> None:
    auth = make(hub)
    assert driver.user(auth) == ALICE
    assert hub.open_connections() == 1
    auth.close()
    assert hub.wait_for(lambda: hub.open_connections() == 0)
    assert driver.user(auth) == ALICE
    auth.close()


# ------------------------------------------------------------------ timeouts


def test_no_answer_times_out_with_request_timeout(driver: Driver) -> None:
    with RawHub(lambda req: Hang()) as hub:
        auth = make(hub, request_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(HubUnavailable, match=r"no answer within 0\.5s \(request_timeout\)"):
            driver.user(auth)
        assert time.monotonic() - start < 5
        auth.close()


def test_a_dribbling_answer_cannot_outlast_request_timeout(driver: Driver) -> None:
    """request_timeout bounds the whole answer, not the wait for each byte."""
    slow = Raw(ALICE_REPLY.encode(), pieces=40, pause=0.1)  # 4 s in all
    with RawHub(lambda req: slow) as hub:
        auth = make(hub, request_timeout=1)
        start = time.monotonic()
        with pytest.raises(HubUnavailable, match=r"no answer within 1s"):
            driver.user(auth)
        assert time.monotonic() - start < 3.5
        auth.close()


def test_no_connection_times_out_with_connect_timeout(driver: Driver) -> None:
    # A listening socket whose accept queue is full: the kernel drops further SYNs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        auth = HubAuth(
            api_url=f"http://127.0.0.1:{port}/hub/api", api_token=TOKEN, connect_timeout=0.5
        )
        start = time.monotonic()
        with pytest.raises(HubUnavailable, match=r"no connection within 0\.5s \(connect_timeout\)"):
            driver.user(auth)
        assert time.monotonic() - start < 5
        auth.close()
    finally:
        filler.close()
        listener.close()


def test_refused(driver: Driver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        auth = HubAuth(api_url=f"http://127.0.0.1:{port}/hub/api", api_token=TOKEN)
        with pytest.raises(HubUnavailable, match="connection refused") as e:
            driver.user(auth)
        assert f"127.0.0.1:{port}" in str(e.value) and "JUPYTERHUB_API_URL" in str(e.value)
        auth.close()


# ------------------------------------------------------------------ bad answers


@pytest.mark.parametrize(
    ("answer", "error", "needle"),
    [
        (Raw(b"SSH-2.0-OpenSSH_9.6\r\n", then="close"), HubResponseError, "not HTTP/1.1"),
        (Raw(b"\x15\x03\x03\x00\x02\x02\x46", then="close"), HubResponseError, "not HTTP/1.1"),
        (
            Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HubResponseError,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n"),
            HubResponseError,
            "body over",
        ),
        (
            Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", then="close"),
            HubResponseError,
            "hexadecimal",
        ),
        (
            Raw(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 70_000 + b"\r\n\r\n"),
            HubResponseError,
            "exceed",
        ),
        (
            Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", then="reset"),
            HubUnavailable,
            "connection reset|closed before a full answer",
        ),
    ],
    ids=["ssh", "tls-alert", "cl-and-te", "huge", "bad-chunk", "huge-head", "reset-mid-body"],
)
def test_bad_answers_are_named_errors(
    driver: Driver, answer: Raw, error: type[Exception], needle: str
) -> None:
    with RawHub(lambda req: answer) as hub:
        auth = make(hub, request_timeout=5)
        with pytest.raises(error, match=needle) as e:
            driver.user(auth)
        assert e.value.url == f"{hub.api_url}/user"  # type: ignore[attr-defined]
        assert "alice-token" not in str(e.value)
        auth.close()


@pytest.mark.parametrize(
    "answer",
    [
        Raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
        Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\n{\r\n1;x=y\r\n}\r\n0\r\nT: 1\r\n\r\n"
        ),
        Raw(b"HTTP/1.0 200 OK\r\n\r\n{}", then="close"),
        Raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}"),
    ],
    ids=["interim-100", "chunked-with-trailer", "until-close", "bare-newlines"],
)
def test_every_framing_of_an_answer_is_read(driver: Driver, answer: Raw) -> None:
    with RawHub(lambda req: answer) as hub:
        auth = make(hub)
        resp = driver.send(auth, HubRequest("GET", f"{hub.api_url}/"))
        assert (resp.status, resp.body) == (200, b"{}")
        auth.close()


def test_the_request_target_is_sent_as_built(driver: Driver, hub: RawHub) -> None:
    """``%2E%2E`` and ``..`` are not normalised away: the Hub gets exactly the path."""
    auth = make(hub)
    driver.send(auth, HubRequest("GET", f"{hub.api_url}/users/%2E%2E/x/../y?a=%2F&b=1"))
    assert hub.requests[-1].target == "/hub/api/users/%2E%2E/x/../y?a=%2F&b=1"
    assert hub.requests[-1].headers["host"] == f"127.0.0.1:{hub.port}"
    auth.close()


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/users/a b", {}),
        ("/users/a\r\nX-Injected: 1", {}),
        ("/users/ok", {"X-Test": "a\r\nX-Injected: 1"}),
        ("/users/ok", {"Bad Name": "x"}),
    ],
)
def test_requests_that_could_split_are_refused_before_sending(
    driver: Driver, hub: RawHub, url: str, headers: dict[str, str]
) -> None:
    from hubauth import ConfigError

    auth = make(hub)
    with pytest.raises(ConfigError, match="cannot send"):
        driver.send(auth, HubRequest("GET", f"{hub.api_url}{url}", headers))
    assert hub.requests == []
    auth.close()


# ------------------------------------------------------------------ the pool


def test_the_async_pool_is_bounded(driver: Driver) -> None:
    """150 lookups at once on one loop: at most 100 connections, every lookup answered."""
    slow = Raw(ALICE_REPLY.encode(), pieces=2, pause=0.05)
    with RawHub(lambda req: slow) as hub:
        auth = make(hub)
        results = driver.many(auth, 150 if driver.kind == "async" else 20)
        assert results == [ALICE] * len(results)
        if driver.kind == "async":
            assert hub.max_open <= 100
        auth.close()


def test_a_cancelled_lookup_leaves_no_half_used_connection() -> None:
    answers = iter([Hang(5), ALICE_REPLY])
    with RawHub(lambda req: next(answers)) as hub:
        auth = make(hub)

        async def main() -> Any:
            task = asyncio.ensure_future(auth.user_for_token("alice-token", sync=False))
            while not hub.requests:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await auth.user_for_token("alice-token", sync=False)

        assert asyncio.run(main()) == ALICE
        assert hub.accepted == 2  # the cancelled one's connection was not reused
        auth.close()


def test_asyncio_run_per_call_leaves_no_socket_open(hub: RawHub) -> None:
    """Many callers run each lookup in its own ``asyncio.run()``: each loop's connection
    is closed as that loop shuts down, none is left for the collector (no ResourceWarning).
    """
    auth = make(hub)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(20):
            assert asyncio.run(auth.user_for_token("alice-token", use_cache=False, sync=False))
            assert hub.wait_for(lambda: hub.open_connections() == 0)
        gc.collect()
    assert hub.accepted == 20


def test_a_loop_closed_without_shutdown_leaves_no_socket_behind(hub: RawHub) -> None:
    """``loop.close()`` without ``shutdown_asyncgens()``: the loop's sockets are closed on
    the next call from another loop, or when the loop is collected; nothing warns.
    """
    auth = make(hub)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(3):
            loop = asyncio.new_event_loop()
            assert loop.run_until_complete(
                auth.user_for_token("alice-token", sync=False, use_cache=False)
            )
            loop.close()
        assert hub.wait_for(lambda: hub.open_connections() <= 1)  # the last loop's, until gc
        del loop
        gc.collect()
        assert hub.wait_for(lambda: hub.open_connections() == 0)
    auth.close()


def test_a_collected_auth_closes_its_sockets(hub: RawHub) -> None:
    auth = make(hub)
    assert auth.user_for_token("alice-token") == ALICE
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del auth
        gc.collect()
    assert hub.wait_for(lambda: hub.open_connections() == 0)


def test_a_forked_child_never_uses_the_parents_connections(
    hub: RawHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``fork()`` (gunicorn --preload), parent and child would share one socket and
    read each other's answers: the child drops what it inherited and connects anew.
    """
    auth = make(hub)
    assert auth.user_for_token("alice-token", use_cache=False) == ALICE
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # as os.getpid() is in the child
    assert auth.user_for_token("alice-token", use_cache=False) == ALICE
    assert hub.accepted == 2
    auth.close()


def test_idle_pool_is_bounded_and_expires() -> None:
    pool = Idle(limit=2)
    socks = [socket.socketpair() for _ in range(3)]
    from hubauth._http import endpoint
    from hubauth._pool import Conn

    ep, _ = endpoint("http://127.0.0.1:1/hub/api")
    conns = [Conn(ep, a) for a, _ in socks]
    assert [pool.put(c) for c in conns] == [True, True, False]
    conns[2].close()
    socks[1][1].close()  # the peer of the newest idle connection goes away
    assert pool.take(ep) is conns[0]  # the closed one was dropped on the way
    assert conns[1].sock.fileno() == -1
    conns[0].close()
    pool.close()
    for a, b in socks:
        a.close()
        b.close()
