"""hubauth-proxy forwarding HTTP: what the app is told, what it is not, and streaming.

Each test runs the proxy's real Tornado application on 127.0.0.1 with the echo app from
``tests/proxy_apps.py`` behind it and the fake Hub (``hubauth.testing``) in front; clients
are ``requests`` and, where the bytes on the wire matter, raw sockets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hubauth.oauth import HubOAuth
from hubauth.proxy._options import ProxyOptions
from hubauth.testing import FakeHub

from .proxy_apps import Running, free_port, proxy_options, running_proxy

PREFIX = "/services/app/"
SECRET = secrets.token_hex(32)


def make_auth(hub: FakeHub, port: int) -> HubOAuth:
    env = hub.service_env("app", url=f"http://127.0.0.1:{port}")
    return HubOAuth(environ=env, hub_host=hub.url, cookie_secret=SECRET)


@pytest.fixture(name="make_proxy")
def make_proxy_fixture(fake_hub: FakeHub) -> Iterator[Any]:
    """``make_proxy(**options)``: a running proxy (closed after the test)."""
    stack: list[Any] = []

    def make(**kw: Any) -> Running:
        port = free_port()
        auth = make_auth(fake_hub, port)
        echo_prefix = kw.pop("echo_prefix", None)
        upstream = kw.pop("upstream", None)
        cm = running_proxy(
            auth, proxy_options(PREFIX, **kw), port=port, echo_prefix=echo_prefix, upstream=upstream
        )
        running = cm.__enter__()
        stack.append((cm, auth))
        return running

    yield make
    for cm, auth in reversed(stack):
        cm.__exit__(None, None, None)
        auth.close()


@pytest.fixture(name="proxy")
def proxy_fixture(make_proxy: Any) -> Running:
    return make_proxy()


def seen_headers(seen: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in seen["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def call(
    proxy: Running, token: str, path: str = "page", method: str = "GET", **kw: Any
) -> requests.Response:
    headers = {"Authorization": f"token {token}", **kw.pop("headers", {})}
    return requests.request(method, f"{proxy.url}{PREFIX}{path}", headers=headers, timeout=30, **kw)


def raw(port: int, data: bytes, *, read_for: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until the proxy closes it (or a pause)."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_for) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def browser(proxy: Running, hub: FakeHub, user: str = "alice") -> requests.Session:
    """A browser-like session logged in to the fake Hub and through the proxy."""
    b = requests.Session()
    b.headers["Accept"] = "text/html"
    b.get(f"{hub.url}/hub/login", params={"user": user}, allow_redirects=False, timeout=30)
    b.get(f"{proxy.url}{PREFIX}healthz", timeout=30)
    r = b.get(f"{proxy.url}{PREFIX}", timeout=30)
    assert any(c.name == proxy.app.auth.cookie_name for c in b.cookies), r.text
    return b


def port_of(proxy: Running) -> int:
    return int(proxy.url.rsplit(":", 1)[1])


# ---------------------------------------------------------------- what the app is told


def test_the_app_is_told_who_not_the_token(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice", groups=["staff", "r&d"])
    r = call(proxy, token, "page?x=1")
    assert r.status_code == 200, r.text
    seen = r.json()
    h = seen_headers(seen)
    assert seen["path"] == f"{PREFIX}page" and seen["query"] == "x=1"
    assert h["x-forwarded-user"] == ["alice"]
    assert h["x-forwarded-groups"] == ["staff,r&d"]
    assert "authorization" not in h and "x-forwarded-access-token" not in h
    assert "x-forwarded-hub-model" not in h  # opt-in only
    assert token not in json.dumps(seen)
    assert r.headers["X-App"] == "echo"


def test_forward_model_and_token_when_asked(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(forward_model=True, forward_token=True)
    token = fake_hub.add_user("alice", groups=["staff"])
    h = seen_headers(call(proxy, token).json())
    model = json.loads(h["x-forwarded-hub-model"][0])
    assert (model["name"], model["groups"], model["kind"]) == ("alice", ["staff"], "user")
    assert "session_id" not in model and "token_id" not in model
    assert h["x-forwarded-access-token"] == [token]
    assert h["authorization"] == [f"token {token}"]


def test_a_service_is_named_as_a_service_never_as_a_user(proxy: Running, fake_hub: FakeHub) -> None:
    """A service called ``alice`` must not pass as the user alice."""
    token = fake_hub.add_service("alice", scopes=["access:services"])
    h = seen_headers(call(proxy, token).json())
    assert h["x-forwarded-service"] == ["alice"]
    assert "x-forwarded-user" not in h and "x-forwarded-groups" not in h


SPOOFED = {
    "X-Forwarded-User": "admin",
    "X_Forwarded_User": "admin",
    "x-forwarded-groups": "admins",
    "X-Forwarded-Service": "cull-idle",
    "X-Forwarded-Hub-Model": '{"name": "admin", "admin": true}',
    "X-Forwarded-Access-Token": "stolen",
    "X-Forwarded-Prefix": "/evil/",
}


def test_spoofed_identity_headers_are_removed(proxy: Running, fake_hub: FakeHub) -> None:
    """Attack: a client sends the identity headers itself, also spelt with underscores
    (WSGI servers read X_Forwarded_User as HTTP_X_FORWARDED_USER). Only the proxy's own
    values reach the app, and on a public path none at all.
    """
    token = fake_hub.add_user("mallory")
    h = seen_headers(call(proxy, token, headers=SPOOFED).json())
    assert h["x-forwarded-user"] == ["mallory"] and h["x-forwarded-groups"] == [""]
    for name in SPOOFED:
        if name.lower() not in ("x-forwarded-user", "x-forwarded-groups"):
            assert name.lower() not in h, name
    assert "x_forwarded_user" not in h


def test_spoofed_identity_headers_are_removed_on_public_paths(
    make_proxy: Any,
) -> None:
    proxy = make_proxy(public_paths=(PREFIX + "static/",))
    r = requests.get(f"{proxy.url}{PREFIX}static/app.js", headers=SPOOFED, timeout=30)
    assert r.status_code == 200
    h = seen_headers(r.json())
    for name in SPOOFED:
        assert name.lower() not in h, name
    # Not public: the login is still required just beside it.
    r = requests.get(
        f"{proxy.url}{PREFIX}static", headers={"Accept": "application/json"}, timeout=30
    )
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("evil\r\nX-Admin: 1", "evil%0D%0AX-Admin:%201"),
        ("josé", "jos%C3%A9"),
        ("a b", "a%20b"),
        ("100%", "100%25"),
    ],
)
def test_names_that_could_break_a_header_are_encoded(
    proxy: Running, fake_hub: FakeHub, name: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: header injection through the forwarded identity. A Hub user name (or group)
    with a newline, non-ASCII or a comma arrives %-encoded, one header, never raw.
    """
    token = fake_hub.add_user(name, groups=[name, "x,y"])
    r = call(proxy, token)
    assert r.status_code == 200
    h = seen_headers(r.json())
    assert h["x-forwarded-user"] == [expected]
    assert h["x-forwarded-groups"] == [f"{expected},x%2Cy"]
    assert "x-admin" not in h
    assert "\n" not in "".join(r.getMessage() for r in caplog.records if "GET" in r.getMessage())


def test_credentials_are_not_forwarded(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    cookies = {
        "jupyterhub-hub-login": "hub-cookie",
        "jupyterhub-session-id": "sess",
        "jupyterhub-user-alice": "server-cookie",
        "__Host-jupyterhub-hub-login": "x",
        proxy.app.auth.cookie_name: "ours",
        proxy.app.auth.state_cookie_name + "-abc": "state",
        "app-session": "keep-me",
    }
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    h = seen_headers(call(proxy, token, headers={"Cookie": header}).json())
    assert h["cookie"] == ["app-session=keep-me"]


def test_the_apps_cookies_cannot_overwrite_the_login_cookie(
    proxy: Running, fake_hub: FakeHub
) -> None:
    token = fake_hub.add_user("alice")
    name = proxy.app.auth.cookie_name
    r = call(proxy, token, f"trouble/cookie?name={name}")
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert cookies == ["app-cookie=kept; Path=/"]


def test_forwarded_headers(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    r = call(
        proxy,
        token,
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    h = seen_headers(r.json())
    assert h["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["https"]
    assert h["host"] == [f"127.0.0.1:{port_of(proxy)}"]  # the public Host, kept
    assert h["x-forwarded-host"] == [f"127.0.0.1:{port_of(proxy)}"]
    assert "x-forwarded-prefix" not in h  # the prefix is kept: nothing was stripped


def test_hop_by_hop_request_headers_stop_at_the_proxy(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    r = call(
        proxy,
        token,
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eDp5",
            "X-End-To-End": "kept",
        },
    )
    h = seen_headers(r.json())
    for name in ("x-private-hop", "keep-alive", "te", "proxy-authorization", "upgrade"):
        assert name not in h, name
    assert h["x-end-to-end"] == ["kept"]


# ---------------------------------------------------------------- methods and bodies


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "POST"])
def test_every_method(proxy: Running, fake_hub: FakeHub, method: str) -> None:
    token = fake_hub.add_user("alice")
    r = call(proxy, token, "thing", method, data=b"body")
    assert r.status_code == 200 and r.json()["method"] == method
    assert r.json()["size"] == 4


def test_head(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    r = call(proxy, token, "thing", "HEAD")
    assert r.status_code == 200 and r.content == b""
    assert proxy.echo.seen[-1]["method"] == "HEAD"


def test_trace_is_refused(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    assert call(proxy, token, "thing", "TRACE").status_code == 405
    assert proxy.echo.seen == []


def test_uploads_stream_through_intact(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    body = bytes(range(256)) * 40_000  # 10 MB
    r = call(proxy, token, "upload", "POST", data=body)
    assert r.json()["size"] == len(body)
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        for i in range(100):
            yield bytes([i]) * 10_000

    for method in ("PUT", "DELETE"):  # DELETE: the proxy frames the chunks itself
        r = call(proxy, token, "upload", method, data=chunks())
        expected = hashlib.sha256(b"".join(chunks())).hexdigest()
        assert (r.json()["size"], r.json()["sha256"]) == (1_000_000, expected)


def test_downloads_stream_through_intact(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    size = 30_000_000
    with call(proxy, token, f"trouble/download?size={size}", stream=True) as r:
        assert r.headers["Content-Length"] == str(size)
        got = sum(len(c) for c in r.iter_content(65536))
    assert got == size


def test_server_sent_events_arrive_as_sent(proxy: Running, fake_hub: FakeHub) -> None:
    """Each event reaches the client while the app is still sending the stream: the proxy
    buffers nothing (the app waits 0.5 s between events and the client reads each one
    before the next is written).
    """
    token = fake_hub.add_user("alice")
    arrivals = []
    start = time.monotonic()
    with call(proxy, token, "trouble/sse?n=4&delay=0.5", stream=True) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        assert "Content-Length" not in r.headers
        for line in r.iter_lines(chunk_size=1):
            if line:
                arrivals.append((line.decode(), time.monotonic() - start))
    assert [a[0] for a in arrivals] == [f"data: event {i}" for i in range(4)]
    # The first event came before the stream was done: ordering, not a speed target.
    assert arrivals[0][1] < arrivals[-1][1] - 1.0


def test_a_refused_upload_never_reaches_the_app(proxy: Running) -> None:
    r = requests.post(
        f"{proxy.url}{PREFIX}upload",
        data=b"x" * 5_000_000,
        headers={"Authorization": "token unknown-token-123"},
        timeout=30,
    )
    assert r.status_code == 401
    assert r.headers["Connection"] == "close"  # the rest of the upload is not read
    assert proxy.echo.seen == []


def test_refusals_keep_the_connection_alive(proxy: Running) -> None:
    """A browser's connection survives a login redirect or a 401 (requests without a body
    are answered once read, so the connection can serve the next request).
    """
    with requests.Session() as s:
        for i in range(5):
            r = s.get(f"{proxy.url}{PREFIX}p{i}", headers={"Accept": "text/html"},
                      allow_redirects=False, timeout=30)  # fmt: skip
            assert r.status_code == 302 and "Connection" not in r.headers
            r = s.get(
                f"{proxy.url}{PREFIX}p{i}", headers={"Accept": "application/json"}, timeout=30
            )
            assert r.status_code == 401


# ---------------------------------------------------------------- prefix and redirects


def test_absolute_redirects_to_the_app_become_public_paths(
    proxy: Running, fake_hub: FakeHub
) -> None:
    token = fake_hub.add_user("alice")
    app_origin = f"http://127.0.0.1:{proxy.echo.port}"
    cases = {
        f"{app_origin}{PREFIX}next?a=1": f"{PREFIX}next?a=1",
        f"http://localhost:{proxy.echo.port}{PREFIX}x": f"{PREFIX}x",
        "https://example.org/elsewhere": "https://example.org/elsewhere",
        f"{PREFIX}plain": f"{PREFIX}plain",
    }
    for to, expected in cases.items():
        r = call(proxy, token, "trouble/redirect", params={"to": to}, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == expected, to


def test_strip_prefix(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(strip_prefix=True, echo_prefix="/")
    token = fake_hub.add_user("alice")
    seen = call(proxy, token, "a/b?c=d").json()
    assert (seen["path"], seen["query"]) == ("/a/b", "c=d")
    assert seen_headers(seen)["x-forwarded-prefix"] == ["/services/app"]
    app_origin = f"http://127.0.0.1:{proxy.echo.port}"
    for to, expected in {
        "/login": f"{PREFIX}login",
        f"{app_origin}/x?y=1": f"{PREFIX}x?y=1",
        f"{PREFIX}already": f"{PREFIX}already",  # an app that read X-Forwarded-Prefix
        "relative": "relative",
    }.items():
        r = call(proxy, token, "trouble/redirect", params={"to": to}, allow_redirects=False)
        assert r.headers["Location"] == expected, to


def test_outside_the_prefix_is_404(proxy: Running, fake_hub: FakeHub) -> None:
    r = requests.get(f"{proxy.url}/elsewhere", headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 404 and PREFIX in r.json()["message"]


# ---------------------------------------------------------------- who may pass


def test_group_shortcut(make_proxy: Any, fake_hub: FakeHub) -> None:
    """``--group staff``: the access scope AND membership, by the Hub's answer."""
    proxy = make_proxy(groups=frozenset({"staff"}))
    assert call(proxy, fake_hub.add_user("ann", groups=["staff"])).status_code == 200
    r = call(proxy, fake_hub.add_user("bob", groups=["students"]))
    assert r.status_code == 403 and "bob" in r.json()["message"]
    # In the group but without the access scope: still refused (an intersection).
    outsider = fake_hub.add_user("cat", groups=["staff"], scopes=["read:users:name"])
    assert call(proxy, outsider).status_code == 403
    service = fake_hub.add_service("staff", scopes=["access:services"])
    assert call(proxy, service).status_code == 403
    assert len(proxy.echo.seen) == 1


def test_user_shortcut_and_scope_option(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(users=frozenset({"ann"}), scopes=frozenset({"read:users"}))
    ann = fake_hub.add_user("ann", scopes=["read:users"])
    assert call(proxy, ann).status_code == 200
    assert call(proxy, fake_hub.add_user("ann")).status_code == 403  # no read:users
    assert call(proxy, fake_hub.add_user("bob", scopes=["read:users"])).status_code == 403


def test_path_scopes(make_proxy: Any, fake_hub: FakeHub) -> None:
    proxy = make_proxy(path_scopes=((PREFIX + "admin/", frozenset({"admin:users"})),))
    plain = fake_hub.add_user("ann")
    assert call(proxy, plain, "page").status_code == 200
    assert call(proxy, plain, "admin/x").status_code == 403
    admin = fake_hub.add_user("root", scopes=["access:services", "admin:users"])
    assert call(proxy, admin, "admin/x").status_code == 200


# ---------------------------------------------------------------- options


def test_options_are_frozen() -> None:
    options = proxy_options(PREFIX)
    assert isinstance(options, ProxyOptions)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.prefix = "/x/"  # type: ignore[misc]


def test_many_requests_share_connections_to_the_app(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    with requests.Session() as s:
        s.headers["Authorization"] = f"token {token}"
        results = [s.get(f"{proxy.url}{PREFIX}n{i}", timeout=30).status_code for i in range(50)]
    assert results == [200] * 50
    connections = {x["peer"] for x in proxy.echo.seen}
    assert len(connections) < 5  # kept alive: not one connection to the app per request


def test_concurrent_requests(proxy: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    codes: list[int] = []

    def worker() -> None:
        for i in range(10):
            codes.append(call(proxy, token, f"c{i}").status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [200] * 80
