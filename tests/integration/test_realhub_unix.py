"""A real JupyterHub whose API is bound to a unix socket (``hub_bind_url =
"http+unix://..."``), and a service it starts.

JupyterHub 6 then gives its services ``JUPYTERHUB_API_URL=http+unix://<socket>/hub/api``
(the connect URL follows the bind URL) and its proxy reaches the Hub over the socket too.
The service (apps/unix_service.py) identifies visitors by token and by browser login (code
exchange) and calls the REST API, on both drivers, all over the socket; this process talks
to the socket directly as well.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import hubauth
from hubauth.api import HubAPI
from tests.realhub import RealHub

from .conftest import browse, hub_login

SERVICE = "unix-whoami"
APP = Path(__file__).resolve().parent / "apps" / "unix_service.py"

pytestmark = pytest.mark.timeout(300)


class UnixSocketHub(RealHub):
    """A RealHub whose own API listens only on a unix socket (the proxy stays on TCP)."""

    def __init__(self, socket_path: str, **kwargs: Any) -> None:
        self.socket_url = "http+unix://" + urllib.parse.quote(socket_path, safe="")
        extra = f"c.JupyterHub.hub_bind_url = {self.socket_url!r}\n"
        super().__init__(extra_config=extra, **kwargs)

    @property
    def hub_api_url(self) -> str:
        # There is no Hub port: the admin helpers go through the proxy.
        return self.api_url


@pytest.fixture(scope="module")
def unix_hub() -> Iterator[UnixSocketHub]:
    folder = tempfile.mkdtemp(prefix="hubauth-unix-")
    service = {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{_free_port()}",
        "command": [sys.executable, str(APP)],
        "oauth_no_confirm": True,
    }
    hub = UnixSocketHub(
        os.path.join(folder, "hub.sock"),
        services=[service],
        roles=[
            {"name": "unix-reader", "scopes": ["read:users"], "services": [SERVICE]},
            {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]},
        ],
    )
    with hub:
        hub.wait_for_service(SERVICE)
        yield hub
    shutil.rmtree(folder, ignore_errors=True)  # the Hub leaves its socket file behind


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def alice(unix_hub: UnixSocketHub) -> str:
    unix_hub.create_user("alice")
    return unix_hub.user_token("alice")


def test_the_hub_listens_on_the_socket_only(unix_hub: UnixSocketHub) -> None:
    assert "Hub API listening on http+unix://" in unix_hub.log_text()
    assert Path(urllib.parse.unquote(unix_hub.socket_url[len("http+unix://") :])).is_socket()


def test_the_service_is_given_an_http_unix_api_url_and_identifies_a_login_over_it(
    unix_hub: UnixSocketHub,
) -> None:
    """A browser logs in: the service exchanges the code and looks the user up, over the
    socket (async driver).
    """
    session = hub_login(unix_hub, f"ada-{secrets.token_hex(3)}")
    r = browse(session, unix_hub.service_url(SERVICE))
    assert r.status_code == 200, r.text[:500]
    data = r.json()
    assert data["api_url"] == f"{unix_hub.socket_url}/hub/api"
    assert data["user"]["name"].startswith("ada-")


def test_a_token_over_the_socket_on_both_drivers(unix_hub: UnixSocketHub, alice: str) -> None:
    headers = {"Authorization": f"token {alice}"}
    r = requests.get(unix_hub.service_url(SERVICE), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["name"] == "alice"
    r = requests.get(unix_hub.service_url(SERVICE, "sync"), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["name"] == "alice"  # sync HubAuth over the socket
    assert r.json()["api_user"]["name"] == "alice"  # blocking HubAPI over the socket


def test_async_hub_api_over_the_socket(unix_hub: UnixSocketHub, alice: str) -> None:
    r = requests.get(
        unix_hub.service_url(SERVICE, "async-api"),
        headers={"Authorization": f"token {alice}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"].startswith("6.")
    assert r.json()["api_user"]["name"] == "alice"


def test_this_process_over_the_socket(unix_hub: UnixSocketHub, alice: str) -> None:
    api_url = f"{unix_hub.socket_url}/hub/api"
    auth = hubauth.HubAuth(api_url=api_url, api_token=unix_hub.admin_token)
    assert auth.user_for_token(alice)["name"] == "alice"

    async def twice() -> list[object]:
        first = await auth.user_for_token(alice, use_cache=False, sync=False)
        second = await auth.user_for_token("not-a-real-token-123", sync=False)
        return [first and first["name"], second]

    assert asyncio.run(twice()) == ["alice", None]
    auth.close()
    api = HubAPI(api_url=api_url, api_token=unix_hub.admin_token)
    assert api.user("alice")["name"] == "alice"
    api.close()
