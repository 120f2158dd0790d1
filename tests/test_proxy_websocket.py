"""hubauth-proxy forwarding websockets: messages both ways, subprotocols, pings, close codes,
who may open one, and what happens when either side goes away.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from hubauth.testing import FakeHub

from .proxy_apps import Running, free_port
from .test_proxy import PREFIX, browser, make_proxy_fixture, port_of, proxy_fixture

__all__ = ["make_proxy_fixture", "proxy_fixture"]  # the fixtures this module uses


def ws_url(proxy: Running, path: str = "ws") -> str:
    return proxy.url.replace("http://", "ws://") + PREFIX + path


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro(), 30))


async def connect(
    url: str, headers: dict[str, str] | None = None, **kw: Any
) -> WebSocketClientConnection:
    return await websocket_connect(HTTPRequest(url, headers=headers or {}), **kw)


async def close(conn: WebSocketClientConnection) -> None:
    """Close and wait for the close handshake, so no socket is left behind."""
    conn.close()
    while await conn.read_message() is not None:
        pass


def test_messages_both_ways(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")

    async def go() -> list[Any]:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"})
        hello = json.loads(await conn.read_message())  # type: ignore[arg-type]
        await conn.write_message("text ü")
        text = await conn.read_message()
        await conn.write_message(b"\x00\xffbinary", binary=True)
        binary = await conn.read_message()
        big = b"x" * 3_000_000
        await conn.write_message(big, binary=True)
        echoed = await conn.read_message()
        await close(conn)
        return [hello, text, binary, echoed == big]

    hello, text, binary, big_ok = run(go)
    assert hello == {"hello": "alice", "protocol": None}  # the app was told who
    assert text == "text ü" and binary == b"\x00\xffbinary" and big_ok


def test_subprotocols(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")

    async def go(offer: list[str] | None) -> tuple[str | None, Any]:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"}, subprotocols=offer)
        hello = json.loads(await conn.read_message())  # type: ignore[arg-type]
        chosen = conn.selected_subprotocol
        await close(conn)
        return chosen, hello["protocol"]

    assert run(lambda: go(["other", "chat"])) == ("chat", "chat")
    assert run(lambda: go(["other"])) == (None, None)
    assert run(lambda: go(None)) == (None, None)


def test_close_codes_both_ways(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")

    async def app_closes() -> tuple[int | None, str | None]:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"})
        await conn.read_message()
        await conn.write_message("close:4001:bye now")
        while await conn.read_message() is not None:
            pass
        conn.close()
        return conn.close_code, conn.close_reason

    assert run(app_closes) == (4001, "bye now")

    async def client_closes() -> None:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"})
        await conn.read_message()
        conn.close(4002, "leaving")
        for _ in range(100):
            if proxy.echo.closes[1:]:
                return
            await asyncio.sleep(0.05)

    run(client_closes)
    assert proxy.echo.closes[-1] == (4002, "leaving")


class _Pinged(WebSocketClientConnection):
    pings: list[bytes]

    def on_ping(self, data: bytes) -> None:
        self.pings.append(data)


def test_pings_both_ways(proxy: Running, fake_hub: FakeHub) -> None:
    """A client's ping reaches the app; the app's ping reaches the client."""
    token = fake_hub.add_user("alice")

    async def go() -> tuple[list[bytes], Any]:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"})
        conn.__class__ = _Pinged
        conn.pings = []  # type: ignore[attr-defined]
        await conn.read_message()
        conn.ping(b"from-client")
        await conn.write_message("ping-me")
        await conn.write_message("pings?")
        seen_by_app = json.loads(await conn.read_message())  # type: ignore[arg-type]
        for _ in range(100):
            if conn.pings:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.02)
        pings = list(conn.pings)  # type: ignore[attr-defined]
        await close(conn)
        return pings, seen_by_app

    pings, seen_by_app = run(go)
    assert pings == [b"from-app"]
    assert seen_by_app == ["from-client"]


def test_websocket_needs_authentication(proxy: Running, fake_hub: FakeHub) -> None:
    async def go(headers: dict[str, str]) -> int:
        try:
            conn = await connect(ws_url(proxy), headers)
        except HTTPClientError as e:
            return e.code
        await close(conn)
        return 101

    assert run(lambda: go({})) == 401
    assert run(lambda: go({"Authorization": "token nope-not-a-token"})) == 401
    refused = fake_hub.add_user("eve", scopes=["read:users:name"])
    assert run(lambda: go({"Authorization": f"token {refused}"})) == 403
    assert proxy.echo.closes == []


def test_token_in_the_url_is_not_passed_on(proxy: Running, fake_hub: FakeHub) -> None:
    """A websocket handshake may carry ``?token=`` (browsers cannot set headers on one);
    the app gets the identity, never that credential.
    """
    token = fake_hub.add_user("alice")

    async def go() -> Any:
        conn = await connect(ws_url(proxy, f"ws?token={token}&room=1"))
        hello = json.loads(await conn.read_message())  # type: ignore[arg-type]
        await close(conn)
        return hello

    assert run(go)["hello"] == "alice"


def test_cross_site_websocket_with_the_cookie_is_refused(proxy: Running, fake_hub: FakeHub) -> None:
    """Attack: cross-site websocket hijacking. A page elsewhere opens a websocket to the
    app; the browser adds the login cookie. The handshake is refused: cookie-authenticated
    websockets must come from this origin.
    """
    b = browser(proxy, fake_hub)
    cookie = "; ".join(f"{c.name}={c.value}" for c in b.cookies if c.name.startswith("service-"))

    async def go(origin: str, site: str = "", proto: str = "") -> int:
        headers = {"Cookie": cookie, "Origin": origin, "Sec-Fetch-Site": site}
        headers["X-Forwarded-Proto"] = proto
        try:
            conn = await connect(ws_url(proxy), {k: v for k, v in headers.items() if v})
        except HTTPClientError as e:
            return e.code
        await close(conn)
        return 101

    assert run(lambda: go("http://evil.example", "cross-site")) == 403
    assert run(lambda: go("http://evil.example")) == 403
    assert run(lambda: go(proxy.url, "same-origin")) == 101
    # Chromium sends no Sec-Fetch-Site on a websocket handshake, and JupyterHub's proxy
    # says X-Forwarded-Proto: ws: the page's http Origin is still this origin.
    assert run(lambda: go(proxy.url)) == 101
    assert run(lambda: go(proxy.url, proto="ws")) == 101
    assert run(lambda: go(proxy.url.replace("http:", "https:"), proto="ws")) == 403


def test_app_down_or_refusing(make_proxy: Any, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    down = make_proxy(upstream=f"http://127.0.0.1:{free_port()}")

    async def go(p: Running, path: str) -> int:
        try:
            conn = await connect(ws_url(p, path), {"Authorization": f"token {token}"})
        except HTTPClientError as e:
            return e.code
        await close(conn)
        return 101

    assert run(lambda: go(down, "ws")) == 502
    up = make_proxy()
    assert run(lambda: go(up, "not-a-socket")) == 502  # the app answered, but no websocket


def test_client_vanishing_mid_websocket(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.sendall(
            f"GET {PREFIX}ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: token {token}\r\n\r\n".encode()
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 101")

    async def wait() -> None:
        for _ in range(200):
            if proxy.echo.closes:
                return
            await asyncio.sleep(0.05)

    run(wait)
    assert proxy.echo.closes  # the app's side was closed too


@pytest.mark.parametrize("payload", ["x" * 70_000, "\u2603" * 10])
def test_text_sizes(proxy: Running, fake_hub: FakeHub, payload: str) -> None:
    token = fake_hub.add_user("alice")

    async def go() -> Any:
        conn = await connect(ws_url(proxy), {"Authorization": f"token {token}"})
        await conn.read_message()
        await conn.write_message(payload)
        got = await conn.read_message()
        await close(conn)
        return got

    assert run(go) == payload
