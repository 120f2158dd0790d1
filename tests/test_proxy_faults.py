"""hubauth-proxy when something goes wrong: the app down, slow, cut short or answering
garbage; clients that smuggle, dawdle or leave halfway. Never a traceback, never a 500,
and the proxy goes on serving.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hubauth.testing import FakeHub

from .proxy_apps import Running, free_port
from .test_proxy import (
    PREFIX,
    browser,
    call,
    make_proxy_fixture,
    port_of,
    proxy_fixture,
    raw,
)

__all__ = ["make_proxy_fixture", "proxy_fixture"]  # the fixtures this module uses

# ---------------------------------------------------------------- the app in trouble


def test_app_down_is_a_502_page(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(upstream=f"http://127.0.0.1:{free_port()}")
    token = fake_hub.add_user("alice")
    r = call(proxy, token)
    assert r.status_code == 502 and r.json()["status"] == 502
    page = browser(proxy, fake_hub).get(f"{proxy.url}{PREFIX}page", timeout=30)
    assert page.status_code == 502 and "<h1>502" in page.text
    assert "Traceback" not in page.text


@pytest.mark.parametrize("what", ["garbage", "cut"])
def test_app_answering_garbage_or_cut_short(proxy: Running, fake_hub: FakeHub, what: str) -> None:
    token = fake_hub.add_user("alice")
    if what == "garbage":
        r = call(proxy, token, "trouble/garbage")
        assert r.status_code == 502 and "Traceback" not in r.text
    else:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            call(proxy, token, "trouble/cut").content  # noqa: B018
    assert call(proxy, token).status_code == 200  # and the proxy goes on


def test_slow_app_is_a_504(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(response_timeout=0.5)
    token = fake_hub.add_user("alice")
    r = call(proxy, token, "trouble/slow?s=3")
    assert r.status_code == 504 and "too long" in r.json()["message"]


def test_starting_page_and_health(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    health = f"{proxy.url}{PREFIX}healthz"
    assert requests.get(health, timeout=30).json() == {"proxy": "up", "app": "up"}
    proxy.app.state = "starting"
    r = requests.get(health, timeout=30)
    assert r.status_code == 503 and r.json()["app"] == "starting"
    page = call(proxy, token, headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    assert "starting" in page.text
    # Before any login too: the Hub's own check of a user's server waits for the app.
    anonymous = requests.get(f"{proxy.url}{PREFIX}", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 503
    assert proxy.echo.seen == []
    proxy.app.state = "up"
    assert call(proxy, token).status_code == 200


# ---------------------------------------------------------------- bad clients


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 7\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
    ],
)
def test_request_smuggling_is_refused(proxy: Running, fake_hub: FakeHub, framing: bytes) -> None:
    """Attack: request smuggling. Conflicting or unusual framing (both Content-Length and
    Transfer-Encoding, two lengths) is refused with 400 before it reaches the app.
    """
    token = fake_hub.add_user("alice")
    request = (
        f"POST {PREFIX}x HTTP/1.1\r\nHost: a\r\nAuthorization: token {token}\r\n".encode()
        + framing
        + b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    out = raw(port_of(proxy), request)
    assert out.startswith(b"HTTP/1.1 400")
    assert proxy.echo.seen == []


def test_slowloris_is_bounded(make_proxy: Any) -> None:
    """A client that sends its headers a byte at a time is cut off after --idle-timeout."""
    proxy = make_proxy(idle_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 8:
            try:
                s.sendall(b"X")
            except OSError:
                closed = True
                break
            s.settimeout(0.3)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
    assert closed


def test_client_leaving_mid_upload(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.sendall(
            f"POST {PREFIX}up HTTP/1.1\r\nHost: a\r\nAuthorization: token {token}\r\n"
            "Content-Length: 50000000\r\n\r\n".encode()
        )
        s.sendall(b"x" * 2_000_000)
    assert call(proxy, token).status_code == 200
    assert all(s["path"] != f"{PREFIX}up" for s in proxy.echo.seen)


def test_client_leaving_mid_download(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.sendall(
            f"GET {PREFIX}trouble/download?size=500000000 HTTP/1.1\r\nHost: a\r\n"
            f"Authorization: token {token}\r\n\r\n".encode()
        )
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    assert call(proxy, token).status_code == 200


# ---------------------------------------------------------------- what the app sends back


class _Canned(socketserver.BaseRequestHandler):
    answer = b""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        self.request.sendall(self.answer)


@pytest.fixture
def canned(make_proxy: Any) -> Iterator[Any]:
    """``canned(raw bytes)``: a proxy in front of an 'app' that answers exactly that."""
    servers: list[socketserver.TCPServer] = []

    def make(answer: bytes) -> Running:
        handler = type("Handler", (_Canned,), {"answer": answer})
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return make_proxy(upstream=f"http://127.0.0.1:{server.server_address[1]}")

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_app_answer_with_conflicting_framing_is_a_502(canned: Any, fake_hub: FakeHub) -> None:
    """Response smuggling from the app's side: both framings at once is not passed on."""
    proxy = canned(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nHTTP/1.1 200 OK\r\nX-Smuggled: 1\r\n\r\n"
    )
    r = call(proxy, fake_hub.add_user("alice"))
    assert r.status_code == 502 and "X-Smuggled" not in r.headers


def test_hop_by_hop_response_headers_stop_at_the_proxy(canned: Any, fake_hub: FakeHub) -> None:
    proxy = canned(
        b"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n"
        b"Proxy-Authenticate: Basic\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok"
    )
    r = call(proxy, fake_hub.add_user("alice"))
    assert r.status_code == 200 and r.content == b"ok"
    for name in ("X-Secret", "Keep-Alive", "Proxy-Authenticate"):
        assert name not in r.headers
    assert r.headers["X-End"] == "kept"


def test_an_answer_without_a_length_is_passed_on_whole(canned: Any, fake_hub: FakeHub) -> None:
    proxy = canned(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * 100_000)
    r = call(proxy, fake_hub.add_user("alice"))
    assert r.status_code == 200 and r.content == b"y" * 100_000


def test_a_header_the_client_could_not_parse_is_dropped(canned: Any, fake_hub: FakeHub) -> None:
    proxy = canned(b"HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nX-Good: g\r\nContent-Length: 2\r\n\r\nok")
    r = call(proxy, fake_hub.add_user("alice"))
    assert r.status_code in (200, 502)  # either dropped, or the whole answer refused
    assert "X-Bad" not in r.headers and "Traceback" not in r.text
