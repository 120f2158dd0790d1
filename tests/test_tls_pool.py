"""Kept-alive connections over internal TLS, on both drivers: one handshake, many lookups;
a TLS connection the Hub closed is replaced, not used.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.web import Application

from hubauth import HubAuth

from .conftest import TOKEN
from .drivers import Driver, driver
from .services import free_port, serve_tornado
from .test_tls import ALICE, User, pki

__all__ = ["driver", "pki"]  # fixtures


class CountingServer(HTTPServer):
    """Counts the connections it accepts, and can close them all (as a Hub restart would)."""

    connections = 0
    streams: list[IOStream]

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        CountingServer.connections += 1
        self.streams.append(stream)
        super().handle_stream(stream, address)


@pytest.fixture
def tls_hub(pki: Path) -> Iterator[tuple[str, list[CountingServer]]]:
    port = free_port()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    servers: list[CountingServer] = []

    def start() -> HTTPServer:
        server = CountingServer(Application([("/hub/api/user", User)]), ssl_options=ctx)
        server.streams = []
        server.listen(port, "127.0.0.1")
        servers.append(server)
        return server

    CountingServer.connections = 0
    with serve_tornado(start):
        yield f"https://127.0.0.1:{port}/hub/api", servers


def test_one_tls_handshake_carries_many_lookups(
    driver: Driver, pki: Path, tls_hub: tuple[str, list[CountingServer]]
) -> None:
    url, _ = tls_hub
    auth = HubAuth(api_url=url, api_token=TOKEN, client_ca=str(pki / "ca.pem"))
    for _ in range(5):
        assert driver.user(auth, "alice-token") == ALICE
    assert driver.user(auth, "unknown") is None
    assert CountingServer.connections == 1
    auth.close()


def test_a_tls_connection_the_hub_closed_is_replaced(
    driver: Driver, pki: Path, tls_hub: tuple[str, list[CountingServer]]
) -> None:
    url, servers = tls_hub
    auth = HubAuth(api_url=url, api_token=TOKEN, client_ca=str(pki / "ca.pem"))
    assert driver.user(auth, "alice-token") == ALICE
    loop = servers[0].streams[0].io_loop
    for stream in servers[0].streams:
        loop.add_callback(stream.close)
    deadline = time.monotonic() + 5
    while not all(s.closed() for s in servers[0].streams) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert driver.user(auth, "alice-token") == ALICE
    assert CountingServer.connections == 2
    auth.close()
