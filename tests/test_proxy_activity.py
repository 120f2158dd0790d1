"""Activity reports of hubauth-proxy as a user's server: what it posts, and how often.

A small Tornado server stands in for the Hub's ``POST /users/:name/activity`` here and
records what arrives (the real Hub's answer is checked in
tests/integration/test_realhub_proxy.py); authentication goes to the fake Hub.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.web import Application, RequestHandler
from tornado.websocket import websocket_connect

from hubauth.testing import FakeHub

from .proxy_apps import free_port, proxy_options, running_proxy
from .services import serve_tornado
from .test_proxy import PREFIX, make_auth


@pytest.fixture
def reports() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Activity(RequestHandler):
        def post(self, name: str) -> None:
            got.append(
                {
                    "name": name,
                    "auth": self.request.headers.get("Authorization", ""),
                    "body": json.loads(self.request.body),
                }
            )
            self.set_status(204)

    port = free_port()
    app = Application([(r"/hub/api/users/(\w+)/activity", Activity)], log_function=lambda h: None)
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield f"http://127.0.0.1:{port}/hub/api/users/alice/activity", got


def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_traffic_is_reported_throttled(
    fake_hub: FakeHub, reports: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = reports
    port = free_port()
    auth = make_auth(fake_hub, port)
    options = replace(
        proxy_options(PREFIX), activity_url=url, activity_interval=1.0, server_name="lab"
    )
    token = fake_hub.add_user("alice")
    with running_proxy(auth, options, port=port) as proxy:
        time.sleep(0.3)
        assert got == []  # no traffic, no report
        with requests.Session() as s:
            s.headers["Authorization"] = f"token {token}"
            for i in range(30):
                assert s.get(f"{proxy.url}{PREFIX}p{i}", timeout=30).status_code == 200
        wait_for(lambda: len(got) >= 1)
        first = got[0]
        assert first["name"] == "alice"
        assert first["auth"] == f"token {auth.api_token}"  # the server's own token
        stamp = first["body"]["servers"]["lab"]["last_activity"]
        assert stamp.endswith("Z") and first["body"]["last_activity"] == stamp
        # Traffic went on after the first report: one more, at the end of the interval.
        wait_for(lambda: len(got) >= 2)
        time.sleep(1.5)
        assert len(got) == 2  # 30 requests, 2 reports; quiet since: none
        assert got[1]["body"]["last_activity"] > stamp
    auth.close()


def test_websocket_messages_count_as_activity(
    fake_hub: FakeHub, reports: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = reports
    port = free_port()
    auth = make_auth(fake_hub, port)
    options = replace(proxy_options(PREFIX), activity_url=url, activity_interval=0.5)
    token = fake_hub.add_user("alice")
    with running_proxy(auth, options, port=port) as proxy:
        ws = proxy.url.replace("http", "ws") + PREFIX + "ws"

        async def chat() -> None:
            conn = await websocket_connect(
                HTTPRequest(ws, headers={"Authorization": f"token {token}"})
            )
            await conn.read_message()
            for _ in range(3):
                await conn.write_message("hi")
                await conn.read_message()
                await asyncio.sleep(0.6)
            conn.close()
            while await conn.read_message() is not None:
                pass

        asyncio.run(asyncio.wait_for(chat(), 30))
        wait_for(lambda: len(got) >= 2)  # the messages after the first report, reported too
    auth.close()


def test_the_hub_refusing_reports_is_logged_not_fatal(
    fake_hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    auth = make_auth(fake_hub, port)
    dead = f"http://127.0.0.1:{free_port()}/hub/api/users/alice/activity"
    options = replace(proxy_options(PREFIX), activity_url=dead, activity_interval=0.2)
    token = fake_hub.add_user("alice")
    with running_proxy(auth, options, port=port) as proxy:
        r = requests.get(
            f"{proxy.url}{PREFIX}", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert r.status_code == 200
        wait_for(lambda: "Could not report activity" in caplog.text)
        r = requests.get(
            f"{proxy.url}{PREFIX}", headers={"Authorization": f"token {token}"}, timeout=30
        )
        assert r.status_code == 200
    auth.close()
