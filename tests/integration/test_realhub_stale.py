"""A real JupyterHub restarted while services on every adapter keep letting known users in.

The same small service (tests/services.py) runs once per adapter (Tornado, Flask, WSGI) in
this process, each with its own HubOAuth (cache_max_age 60 s, stale_max_age 300 s, a test
clock) talking to the Hub's own port. Two users are known to every service: ``fresh``
(looked up moments ago) and ``expired`` (its cached model expired a second ago). The Hub
is then restarted with a pause: while its port refuses connections, both still get in on
every adapter and a token never seen before gets 503; once the Hub is back, every token
works again on connections opened anew (the kept ones died with the old Hub).
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests

from hubauth import HubOAuth
from tests.realhub import RealHub

from ..services import ADAPTERS, PREFIX, SECRET, free_port, serve

SERVICE = "stale-probe"
SERVICE_TOKEN = secrets.token_hex(24)
MAX_AGE = 60

pytestmark = pytest.mark.timeout(300)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def hub() -> Iterator[RealHub]:
    with RealHub(
        services=[{"name": SERVICE, "api_token": SERVICE_TOKEN}],
        roles=[{"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]}],
    ) as h:
        yield h


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_a_hub_restart_keeps_known_users_in_on_every_adapter(
    hub: RealHub, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = {}
    for name in ("fresh", "expired", "newcomer"):
        hub.create_user(name)
        tokens[name] = hub.user_token(name)
    clocks = {adapter: Clock() for adapter in ADAPTERS}
    with ExitStack() as stack:
        urls = {}
        for adapter in ADAPTERS:
            port = free_port()
            auth = HubOAuth(
                api_url=hub.hub_api_url,
                api_token=SERVICE_TOKEN,
                service_name=SERVICE,
                base_url=PREFIX,
                cookie_secret=SECRET,
                cache_max_age=MAX_AGE,
                stale_max_age=300,
                connect_timeout=2,
                request_timeout=5,
                timer=clocks[adapter],
            )
            stack.callback(auth.close)
            origin = stack.enter_context(serve(adapter, auth, port))
            urls[adapter] = f"{origin}{PREFIX}page"

        def get(adapter: str, who: str) -> int:
            r = requests.get(
                urls[adapter], headers={"Authorization": f"token {tokens[who]}"}, timeout=30
            )
            if r.status_code == 200:
                assert r.json()["name"] == who
            return r.status_code

        for adapter in ADAPTERS:
            assert get(adapter, "expired") == 200
            clocks[adapter].now += MAX_AGE + 1  # expired's model expired a second ago
            assert get(adapter, "fresh") == 200

        caplog.set_level(logging.WARNING, "hubauth")
        restarting = threading.Thread(target=hub.restart, kwargs={"pause": 4.0})
        restarting.start()
        deadline = time.monotonic() + 30
        while not refused(hub.hub_port):
            assert time.monotonic() < deadline, "the Hub did not go down"
            time.sleep(0.02)
        during = {adapter: [get(adapter, w) for w in tokens] for adapter in ADAPTERS}
        still_down = refused(hub.hub_port)
        restarting.join(120)
        assert still_down, "the Hub came back before every request was made"
        assert during == {adapter: [200, 200, 503] for adapter in ADAPTERS}
        assert any("served user expired from its cached model" in m for m in caplog.messages)

        for adapter in ADAPTERS:
            clocks[adapter].now += 10  # past the pause in which stale answers skip the Hub
            assert [get(adapter, w) for w in tokens] == [200, 200, 200], adapter
