"""``http+unix://`` Hub URLs on both drivers: ``/user``, the code exchange and hubauth.api
over a unix socket, and every way the socket can be wrong (missing, not a socket, nobody
listening, a path through a file, permission denied), each a named ``HubUnavailable``.
The Hub here is :class:`tests.rawhub.RawHub` on a socket; tests/integration has the real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubauth import ConfigError, HubAuth, HubOAuth, HubUnavailable
from hubauth.api import AsyncHubAPI, HubAPI

from .conftest import TOKEN
from .drivers import Driver, driver
from .rawhub import RawHub, Reply, Request
from .test_transport import ALICE, user_handler

__all__ = ["driver"]  # the fixture, shared with test_transport


def unix_url(path: str | Path) -> str:
    return "http+unix://" + urllib.parse.quote(str(path), safe="") + "/hub/api"


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for sockets (a socket path must stay under 108 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="hubauth-"))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def api_handler(req: Request) -> Reply:
    if req.path == "/hub/api/" and req.headers.get("authorization") == f"token {TOKEN}":
        return Reply(json={"version": "6.1.1"})
    if req.path == "/hub/api/users/alice":
        return Reply(json={"name": "alice", "kind": "user"})
    return user_handler(req)


@pytest.fixture
def unix_hub(sock_dir: Path) -> Iterator[RawHub]:
    with RawHub(api_handler, unix_path=str(sock_dir / "hub.sock")) as hub:
        yield hub


def test_user_and_code_exchange_over_a_unix_socket(driver: Driver, unix_hub: RawHub) -> None:
    env = {"JUPYTERHUB_API_URL": unix_hub.api_url, "JUPYTERHUB_API_TOKEN": TOKEN}
    auth = HubOAuth(environ=env, oauth_client_id="service-x", oauth_redirect_uri="/x/cb")
    assert auth.api_url.startswith("http+unix://%2F")
    assert driver.user(auth) == ALICE
    assert driver.user(auth, "unknown") is None
    assert driver.exchange(auth) == "issued-token"
    assert driver.user(auth) == ALICE
    assert unix_hub.accepted == 1  # kept alive over the socket too
    assert {r.headers["host"] for r in unix_hub.requests} == {"localhost"}
    assert [r.path for r in unix_hub.requests if r.method == "POST"] == ["/hub/api/oauth2/token"]
    auth.close()


def test_hub_api_over_a_unix_socket(unix_hub: RawHub) -> None:
    api = HubAPI(api_url=unix_hub.api_url, api_token=TOKEN)
    assert api.info() == {"version": "6.1.1"}
    assert api.user("alice")["name"] == "alice"
    api.close()

    async def main() -> Any:
        client = AsyncHubAPI(api_url=unix_hub.api_url, api_token=TOKEN)
        try:
            return await asyncio.gather(client.info(), client.user("alice"))
        finally:
            client.close()

    assert asyncio.run(main()) == [{"version": "6.1.1"}, {"name": "alice", "kind": "user"}]


def test_a_unix_hub_restarting_answers_on_a_new_connection(
    driver: Driver, unix_hub: RawHub
) -> None:
    auth = HubAuth(api_url=unix_hub.api_url, api_token=TOKEN)
    assert driver.user(auth) == ALICE
    unix_hub.restart()
    assert driver.user(auth) == ALICE
    assert unix_hub.accepted == 2
    auth.close()


def test_the_socket_path_does_not_exist(driver: Driver, sock_dir: Path) -> None:
    path = sock_dir / "nothing.sock"
    auth = HubAuth(api_url=unix_url(path), api_token=TOKEN)
    with pytest.raises(HubUnavailable, match="does not exist") as e:
        driver.user(auth)
    assert str(path) in str(e.value) and "hub_bind_url" in str(e.value)
    assert e.value.url == f"{unix_url(path)}/user"
    auth.close()


def test_the_path_is_not_a_socket(driver: Driver, sock_dir: Path) -> None:
    path = sock_dir / "file"
    path.write_text("not a socket")
    auth = HubAuth(api_url=unix_url(path), api_token=TOKEN)
    with pytest.raises(HubUnavailable, match=f"{path} is not a unix socket") as e:
        driver.user(auth)
    assert e.value.url == f"{unix_url(path)}/user"
    auth.close()


def test_nobody_listens_on_the_socket(driver: Driver, sock_dir: Path) -> None:
    """A socket file left behind by a Hub that died."""
    path = sock_dir / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    auth = HubAuth(api_url=unix_url(path), api_token=TOKEN)
    with pytest.raises(HubUnavailable, match="no process listens on it") as e:
        driver.user(auth)
    assert e.value.url == f"{unix_url(path)}/user"
    auth.close()


def test_a_part_of_the_path_is_a_file(driver: Driver, sock_dir: Path) -> None:
    (sock_dir / "file").write_text("")
    auth = HubAuth(api_url=unix_url(sock_dir / "file" / "hub.sock"), api_token=TOKEN)
    with pytest.raises(HubUnavailable, match="is not a directory"):
        driver.user(auth)
    auth.close()


def _as_nobody(url: str) -> dict[str, str]:
    """Both drivers' errors for ``url``, from a process that is not root (forked, then
    setuid to nobody: the kernel lets root connect to any socket).
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: report and leave at once, whatever happens
        out: dict[str, str] = {}
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            auth = HubAuth(api_url=url, api_token=TOKEN)
            for kind in ("sync", "async"):
                try:
                    if kind == "sync":
                        auth.user_for_token("alice-token")
                    else:
                        asyncio.run(auth.user_for_token("alice-token", sync=False))
                    out[kind] = "no error"
                except HubUnavailable as e:
                    out[kind] = str(e)
        except BaseException as e:
            out["child"] = repr(e)
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        data = f.read()
    os.waitpid(pid, 0)
    result: dict[str, str] = json.loads(data)
    return result


def test_permission_denied_on_the_socket(sock_dir: Path) -> None:
    """The Hub makes its socket 0600 (hub_socket_mode): another user's service may not
    connect, and is told so and where to change it.
    """
    path = sock_dir / "hub.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    os.chmod(path, 0o600)
    sock_dir.chmod(0o755)
    try:
        if os.geteuid() == 0:
            errors = _as_nobody(unix_url(path))
        else:
            os.chmod(path, 0o000)
            auth = HubAuth(api_url=unix_url(path), api_token=TOKEN)
            errors = {}
            for kind in ("sync", "async"):
                d = Driver(kind)
                try:
                    with pytest.raises(HubUnavailable) as e:
                        d.user(auth)
                    errors[kind] = str(e.value)
                finally:
                    d.close()
            auth.close()
    finally:
        listener.close()
    assert set(errors) == {"sync", "async"}, errors
    for message in errors.values():
        assert f"could not reach the Hub at {unix_url(path)}/user" in message
        assert f"permission denied on the unix socket {path}" in message
        assert "hub_socket_mode" in message


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http+unix:///srv/hub.sock/hub/api", "percent-encoded"),
        ("http+unix://srv%2Fhub.sock/hub/api", "percent-encoded"),
        ("http+unix://%2F" + "x" * 200 + "/hub/api", "at most 10"),
        ("http+unix://%2Fsrv%2Fhub.sock/hub/api?x=1", "query"),
    ],
)
def test_malformed_unix_urls_fail_at_construction(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        HubAuth(environ={"JUPYTERHUB_API_URL": url, "JUPYTERHUB_API_TOKEN": TOKEN})
    assert "JUPYTERHUB_API_URL" in str(e.value)


def test_unix_http_spelling_is_accepted() -> None:
    """JupyterHub's older ``unix+http://`` spelling means the same socket."""
    auth = HubAuth(api_url="unix+http://%2Frun%2Fhub.sock/hub/api/", api_token=TOKEN)
    assert auth.api_url == "http+unix://%2Frun%2Fhub.sock/hub/api"
