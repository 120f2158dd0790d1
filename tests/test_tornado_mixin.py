"""Tornado-specific parts of the mixins: where ``hub_auth`` comes from, and XSRF."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import requests
from tornado.web import Application, RequestHandler

from hubauth import HubAuth
from hubauth.tornado import HubAuthenticated

from .conftest import TOKEN
from .services import free_port

APP_AUTH = HubAuth(api_url="http://app.test/hub/api", api_token=TOKEN)
OWN_AUTH = HubAuth(api_url="http://own.test/hub/api", api_token=TOKEN)


class Own(HubAuthenticated, RequestHandler):
    def initialize(self) -> None:
        self.hub_auth = OWN_AUTH  # JupyterHub's usual pattern

    async def prepare(self) -> None:
        pass  # this test is about which auth object, not about authenticating

    def get(self) -> None:
        self.write({"api_url": self.hub_auth.api_url})


class Default(Own):
    def initialize(self) -> None:
        pass


@pytest.fixture
def app_url() -> Iterator[str]:
    port = free_port()
    ready = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            server = Application([("/own", Own), ("/default", Default)], hub_auth=APP_AUTH).listen(
                port, "127.0.0.1"
            )
            stop = asyncio.Event()
            box["stop"], box["loop"] = stop, asyncio.get_running_loop()
            ready.set()
            await stop.wait()
            server.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{port}"
    loop = box["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
    thread.join(10)


def test_hub_auth_set_on_a_handler_stays_on_that_handler(app_url: str) -> None:
    for _ in range(2):
        assert (
            requests.get(f"{app_url}/own", timeout=10).json()["api_url"]
            == "http://own.test/hub/api"
        )
        assert (
            requests.get(f"{app_url}/default", timeout=10).json()["api_url"]
            == "http://app.test/hub/api"
        )
