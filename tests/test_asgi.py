"""hubauth.asgi.HubAuthMiddleware: bad input, websockets, the Starlette convention, and a
client that leaves while the Hub is asked (issue 13).

Most tests call the middleware in-process with hand-made ASGI messages (what a server
would send, and some things a server would not); the websocket, log and disconnect tests
also go through a real uvicorn. The shared adapter, attack and fault suites run this
middleware too (tests/services.py, adapter ``asgi``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import websockets.sync.client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus

from hubauth._asgi import RedactAccessLog, close_code, view_from_scope
from hubauth._view import Decision
from hubauth.asgi import ANONYMOUS, HubAuthMiddleware, HubAuthUser
from hubauth.oauth import HubOAuth
from hubauth.testing import FakeHub

from .services import PREFIX, SECRET, free_port, make_auth, serve_uvicorn

Message = dict[str, Any]


# ---------------------------------------------------------------- an in-process ASGI server


class Inner:
    """The app behind the middleware: records what reached it, answers with the caller."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, Any]] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope, receive, send))
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": scope["user"].name})
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        user = scope["user"]
        data = json.dumps(
            {"name": user.get("name"), "auth": scope["auth"].scopes, "body": body.decode()}
        ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": data})


def http_scope(
    path: str = PREFIX + "page",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    method: str = "GET",
    query: bytes = b"",
    kind: str = "http",
) -> dict[str, Any]:
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def run(
    app: Any,
    scope: dict[str, Any],
    messages: list[Message] | None = None,
    *,
    then: Callable[[], Message] | None = None,
) -> list[Message]:
    """Call ``app`` once on a new event loop; return what it sent. ``receive`` hands out
    ``messages`` in turn; after them ``then()`` (run in a thread, so it may wait) or, by
    default, waits as a server does while the client stays.
    """
    inbox = list(messages if messages is not None else [{"type": "http.request", "body": b""}])
    sent: list[Message] = []

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        if then is not None:
            return await asyncio.to_thread(then)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def answer(sent: list[Message]) -> tuple[int, dict[str, str], bytes]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers: dict[str, str] = {}
    for k, v in start["headers"]:
        headers.setdefault(k.decode(), v.decode())
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


@pytest.fixture
def auth(fake_hub: FakeHub) -> Iterator[HubOAuth]:
    a = make_auth(fake_hub, "http://127.0.0.1:8000")
    yield a
    a.close()


def token_header(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"127.0.0.1:8000"), (b"authorization", f"token {token}".encode())]


# ---------------------------------------------------------------- pass-through


@pytest.mark.parametrize("kind", ["lifespan", "webtransport", "something-new"])
def test_other_scope_types_pass_through_untouched(
    auth: HubOAuth, fake_hub: FakeHub, kind: str
) -> None:
    """Lifespan (and scope types from later ASGI versions) are not requests: the app gets
    the very same scope, receive and send, and the Hub is never asked.
    """
    inner = Inner()
    scope = {"type": kind, "asgi": {"version": "3.0"}, "state": {}}

    async def main() -> None:
        async def receive() -> Message:
            return {"type": f"{kind}.startup"}

        async def send(message: Message) -> None:
            pass

        await HubAuthMiddleware(inner, auth)(scope, receive, send)
        assert inner.calls == [(scope, receive, send)]
        assert inner.calls[0][0] is scope and scope == {
            "type": kind,
            "asgi": {"version": "3.0"},
            "state": {},
        }

    fake_hub.reset_counts()
    asyncio.run(main())
    assert fake_hub.requests == []


def test_public_path_passes_with_an_unauthenticated_user(auth: HubOAuth) -> None:
    inner = Inner()
    app = HubAuthMiddleware(inner, auth, public_paths=[PREFIX + "health"])
    status, _, body = answer(run(app, http_scope(PREFIX + "health")))
    assert status == 200 and json.loads(body) == {"name": None, "auth": [], "body": ""}
    assert inner.calls[0][0]["user"] is ANONYMOUS and not ANONYMOUS.is_authenticated
    assert inner.calls[0][0]["hubauth.user"] is None


# ---------------------------------------------------------------- the Starlette convention


def test_the_caller_in_the_scope_the_starlette_way(auth: HubOAuth, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice", scopes=["access:services", "read:users!group=staff"])
    inner = Inner()
    status, _, body = answer(
        run(HubAuthMiddleware(inner, auth), http_scope(headers=token_header(token)))
    )
    assert status == 200
    scope = inner.calls[0][0]
    user = scope["user"]
    assert isinstance(user, HubAuthUser)
    assert (user.is_authenticated, user.display_name, user.identity, user.kind) == (
        True,
        "alice",
        "alice",
        "user",
    )
    assert user["name"] == "alice" and dict(user) == scope["hubauth.user"]
    assert scope["hubauth.token"] == token
    assert json.loads(body)["auth"] == [
        "authenticated",
        "access:services",
        "read:users!group=staff",
    ]
    assert "hubauth.user" not in http_scope()  # the server's scope was copied, not changed


def test_starlette_requires_decides_on_hub_scopes(auth: HubOAuth, fake_hub: FakeHub) -> None:
    """``@requires("read:users")`` compares the caller's Hub scopes, string for string."""
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    @requires(["authenticated", "read:users"])
    async def readers(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.user.display_name)

    app = HubAuthMiddleware(Starlette(routes=[Route(PREFIX + "page", readers)]), auth)
    reader = fake_hub.add_user("rita", scopes=["access:services", "read:users"])
    other = fake_hub.add_user("otto", scopes=["access:services"])
    status, _, body = answer(run(app, http_scope(headers=token_header(reader))))
    assert (status, body) == (200, b"rita")
    status, _, _ = answer(run(app, http_scope(headers=token_header(other))))
    assert status == 403


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"token \xff\xfe\x00bytes")],
        [(b"authorization", b"token a"), (b"authorization", b"token b")],
        [(b"Authorization", b"Basic " + b"A" * 100_000)],
        [(b"authorization", b"token " + b"x" * 1_000_000)],
        [(b"cookie", b"a" * 1_000_000 + b"=b")],
        [(b"cookie", b"; ".join(b"c%d=v" % i for i in range(20_000)))],
        [(b"\xff\xfe", b"\x00\x01"), (b"", b""), (b"x" * 10_000, b"y")],
        [(b"accept", b"application/json"), (b"host", b"\xe9vil:-1")],
    ],
)
def test_malformed_and_oversized_headers_get_a_clear_refusal(
    auth: HubOAuth, headers: list[tuple[bytes, bytes]]
) -> None:
    """Whatever bytes a server passes on, the answer is a 401 (JSON for API calls) or a
    login redirect, never an exception; the app is not reached.
    """
    inner = Inner()
    scope = http_scope(headers=[(b"accept", b"application/json"), *headers])
    status, hdrs, body = answer(run(HubAuthMiddleware(inner, auth), scope))
    assert status == 401, body[:300]
    assert json.loads(body)["status"] == 401 and hdrs["cache-control"] == "no-store"
    assert inner.calls == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"cookie", b"host", b"accept", b"origin", b"x"]),
            st.binary(max_size=300),
        ),
        max_size=6,
    ),
    path=st.text(max_size=40),
    query=st.binary(max_size=100),
    method=st.sampled_from(["GET", "POST", "HEAD", "DELETE", "OPTIONS", "BREW"]),
)
def test_fuzz_the_scope(
    auth: HubOAuth, headers: list[tuple[bytes, bytes]], path: str, query: bytes, method: str
) -> None:
    """Random headers, paths, query strings and methods: never an exception, never a 5xx,
    and nobody reaches the app without a credential the Hub knows (the fake Hub knows none).
    """
    inner = Inner()
    scope = http_scope("/" + path, headers, method=method, query=query)
    status, _, _ = answer(run(HubAuthMiddleware(inner, auth), scope))
    assert status in (302, 400, 401, 403), status
    assert inner.calls == []


def test_view_of_a_scope_combines_repeated_headers() -> None:
    view = view_from_scope(
        http_scope(
            "/services/x/caf\u00e9 page",
            [(b"Cookie", b"a=1"), (b"cookie", b"b=2"), (b"x-forwarded-proto", b"https, http")],
            query=b"q=1",
            kind="websocket",
        )
    )
    assert view.cookies == [("a", "1"), ("b", "2")]
    assert view.path == "/services/x/caf%C3%A9%20page" and view.uri.endswith("?q=1")
    assert (view.method, view.is_websocket, view.scheme, view.host) == (
        "GET",
        True,
        "http",
        "127.0.0.1:8000",
    )


def test_cookies_for_other_services_do_not_count(auth: HubOAuth, fake_hub: FakeHub) -> None:
    """The sibling's login cookie, under its name or under ours, among others: refused; with
    our own valid login cookie in the same header: that one decides.
    """
    sibling = HubOAuth(
        environ=fake_hub.service_env("sibling", url="http://127.0.0.1:8000"),
        hub_host=fake_hub.url,
        cookie_secret=SECRET,
    )
    theirs = sibling.cookies.encode("login", sibling.cookie_name, {"t": fake_hub.add_user("eve")})
    ours = auth.login_cookie(fake_hub.add_user("alice"), secure=False).split(";")[0]
    app = HubAuthMiddleware(Inner(), auth)
    json_accept = (b"accept", b"application/json")
    for cookie in (f"{sibling.cookie_name}={theirs}", f"{auth.cookie_name}={theirs}"):
        status, _, _ = answer(
            run(app, http_scope(headers=[json_accept, (b"cookie", cookie.encode())]))
        )
        assert status == 401
    mixed = f"{sibling.cookie_name}={theirs}; {auth.cookie_name}={theirs}; {ours}; x=y"
    status, _, body = answer(
        run(app, http_scope(headers=[json_accept, (b"cookie", mixed.encode())]))
    )
    assert status == 200 and json.loads(body)["name"] == "alice"
    sibling.close()


def test_set_cookie_of_an_allowed_request_is_added_to_the_apps_answer(
    fake_hub: FakeHub,
) -> None:
    """With URL tokens allowed, a navigation authenticated by ``?token=`` keeps a login
    cookie: the middleware adds it to the app's own response start.
    """
    auth = make_auth(fake_hub, "http://127.0.0.1:8000", allow_token_in_url=True)
    token = fake_hub.add_user("alice")
    sent = run(HubAuthMiddleware(Inner(), auth), http_scope(query=f"token={token}".encode()))
    status, _, _ = answer(sent)
    start = next(m for m in sent if m["type"] == "http.response.start")
    cookies = [v.decode() for k, v in start["headers"] if k == b"set-cookie"]
    assert status == 200 and [c.split("=")[0] for c in cookies] == [auth.cookie_name]
    auth.close()


# ---------------------------------------------------------------- websockets


def ws_connect() -> list[Message]:
    return [{"type": "websocket.connect"}]


@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        (b"", [], 1008),  # no credential at all
        (b"token=unknown-token", [], 1008),  # a token the Hub does not know
        (b"token=", [], 1008),
        (b"token=" + b"x" * 100_000, [], 1008),  # longer than any token
        (b"", [(b"authorization", b"Basic Zm9vOmJhcg==")], 1008),  # not a token scheme
    ],
)
def test_websocket_handshake_without_a_good_token_is_closed_never_accepted(
    auth: HubOAuth, query: bytes, headers: list[tuple[bytes, bytes]], code: int
) -> None:
    inner = Inner()
    scope = http_scope(query=query, headers=[(b"host", b"x"), *headers], kind="websocket")
    sent = run(HubAuthMiddleware(inner, auth), scope, ws_connect())
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == code and len(sent[0]["reason"].encode()) <= 123
    assert inner.calls == []


def test_websocket_when_the_hub_is_down_is_closed_try_again_later(
    auth: HubOAuth, fake_hub: FakeHub
) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "down"
    scope = http_scope(query=f"token={token}".encode(), kind="websocket")
    sent = run(HubAuthMiddleware(Inner(), auth), scope, ws_connect())
    fake_hub.fault = None
    assert [(m["type"], m["code"]) for m in sent] == [("websocket.close", 1013)]
    assert close_code(Decision(kind="refuse", status=502)) == 1014


def test_websocket_with_a_token_in_the_url_is_accepted(auth: HubOAuth, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    scope = http_scope(query=f"token={token}".encode(), kind="websocket")
    sent = run(HubAuthMiddleware(Inner(), auth), scope, ws_connect())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "alice"


@pytest.fixture(params=[True, False], ids=["cookie-auth-on", "cookie-auth-off"])
def ws_service(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[tuple[str, HubOAuth]]:
    """A Starlette websocket endpoint behind the middleware, under a real uvicorn."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello {websocket.user.display_name}")
        await websocket.close()

    port = free_port()
    auth = make_auth(
        fake_hub, f"http://127.0.0.1:{port}", allow_websocket_cookie_auth=request.param
    )
    app = HubAuthMiddleware(Starlette(routes=[WebSocketRoute(PREFIX + "ws", hello)]), auth)
    client_log = logging.getLogger("websockets.client")  # the test's own client, as urllib3
    level, client_log.level = client_log.level, logging.INFO
    try:
        with serve_uvicorn(app, port):
            yield f"ws://127.0.0.1:{port}{PREFIX}ws", auth
    finally:
        client_log.setLevel(level)
        auth.close()


def greeting(url: str, **kwargs: Any) -> str:
    with websockets.sync.client.connect(url, open_timeout=10, **kwargs) as ws:
        return str(ws.recv(timeout=10))


def refused_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        greeting(url, **kwargs)
    return info.value.response.status_code


def test_websockets_through_uvicorn(ws_service: tuple[str, HubOAuth], fake_hub: FakeHub) -> None:
    """A real handshake: a token in the URL or header is accepted; none, or an unknown one,
    is refused before the websocket opens (uvicorn answers the close with HTTP 403); the
    login cookie counts only when ``JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH`` allows it, and
    only from the service's own origin (cross-site websocket hijacking: a page elsewhere
    that opens the websocket gets the browser to send the cookie, and its Origin).
    """
    url, auth = ws_service
    token = fake_hub.add_user("alice")
    assert greeting(f"{url}?token={token}") == "hello alice"
    assert greeting(url, additional_headers={"Authorization": f"Bearer {token}"}) == "hello alice"
    assert refused_status(url) == 403
    assert refused_status(f"{url}?token=not-a-token") == 403
    cookie = auth.login_cookie(fake_hub.add_user("carol"), secure=False).split(";")[0]
    origin = "http" + url.removeprefix("ws").split(PREFIX)[0]
    ours = {"Cookie": cookie, "Origin": origin}
    if auth.allow_websocket_cookie_auth:
        assert greeting(url, additional_headers=ours) == "hello carol"
    else:
        assert refused_status(url, additional_headers=ours) == 403
    # A page of another origin, or no origin at all: the cookie alone does not open it.
    for other in ({"Origin": "http://127.0.0.1:1"}, {"Origin": "http://evil.example"}, {}):
        assert refused_status(url, additional_headers={"Cookie": cookie, **other}) == 403


# ---------------------------------------------------------------- the client leaves


def test_a_client_that_leaves_while_the_hub_is_asked_is_not_answered(
    auth: HubOAuth, fake_hub: FakeHub
) -> None:
    """The Hub is slow; the client disconnects meanwhile: the app never runs, nothing is
    sent, the lookup is abandoned, and another request for the same token (waiting on the
    same lookup) still gets its answer.
    """
    token = fake_hub.add_user("alice")
    fake_hub.delay, fake_hub.fault = 1.0, "slow"
    inner = Inner()
    app = HubAuthMiddleware(inner, auth)

    def leave() -> Message:
        while fake_hub.count("/hub/api/user") < 1:
            time.sleep(0.005)
        return {"type": "http.disconnect"}

    async def both() -> tuple[list[Message], list[Message]]:
        gone: list[Message] = []
        stayed: list[Message] = []
        inbox = [{"type": "http.request", "body": b""}]

        async def leaving() -> Message:
            return inbox.pop(0) if inbox else await asyncio.to_thread(leave)

        staying_inbox = [{"type": "http.request", "body": b""}]

        async def staying() -> Message:
            if staying_inbox:
                return staying_inbox.pop(0)
            await asyncio.sleep(30)  # the client stays (longer than the test)
            return {"type": "http.disconnect"}

        async def record(into: list[Message]) -> Callable[[Message], Any]:
            async def send(message: Message) -> None:
                into.append(message)

            return send

        await asyncio.gather(
            app(http_scope(headers=token_header(token)), leaving, await record(gone)),
            app(http_scope(headers=token_header(token)), staying, await record(stayed)),
        )
        return gone, stayed

    fake_hub.reset_counts()
    gone, stayed = asyncio.run(both())
    fake_hub.fault = None
    assert gone == []
    assert answer(stayed)[0] == 200 and len(inner.calls) == 1


def test_a_body_read_while_the_hub_is_asked_reaches_the_app(
    auth: HubOAuth, fake_hub: FakeHub
) -> None:
    """Watching for a disconnect reads the request body; the app still gets all of it."""
    token = fake_hub.add_user("alice")
    fake_hub.delay, fake_hub.fault = 0.3, "slow"
    inner = Inner()
    messages = [{"type": "http.request", "body": b"x=1", "more_body": False}]
    scope = http_scope(headers=token_header(token), method="POST")
    status, _, body = answer(
        run(
            HubAuthMiddleware(inner, auth),
            scope,
            messages,
        )
    )
    fake_hub.fault = None
    assert status == 200 and json.loads(body)["body"] == "x=1"
    # A body in several parts: watching stops after the first, the app reads the rest.
    parts = [
        {"type": "http.request", "body": b"a" * 10, "more_body": True},
        {"type": "http.request", "body": b"b" * 10, "more_body": False},
    ]
    fake_hub.fault = "slow"
    auth.evict_token(token)
    status, _, body = answer(run(HubAuthMiddleware(inner, auth), scope, parts))
    fake_hub.fault = None
    assert status == 200 and json.loads(body)["body"] == "a" * 10 + "b" * 10


def test_a_client_leaving_uvicorn_mid_lookup(
    fake_hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    """Through a real uvicorn: the client closes its socket while the (slow) Hub is asked.
    Nothing fails: no error is logged, the app is not run for it, the service goes on.
    """
    inner = Inner()
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    token = fake_hub.add_user("alice")
    caplog.set_level(logging.INFO)
    with serve_uvicorn(HubAuthMiddleware(inner, auth), port):
        fake_hub.delay, fake_hub.fault = 1.0, "slow"
        fake_hub.reset_counts()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            head = f"GET {PREFIX}page HTTP/1.1\r\nHost: x\r\nAuthorization: token {token}"
            s.sendall(head.encode() + b"\r\n\r\n")
            while fake_hub.count("/hub/api/user") < 1:
                time.sleep(0.005)
        time.sleep(1.5)  # the Hub has answered by now (or the lookup was abandoned)
        fake_hub.fault = None
        r = requests.get(
            f"http://127.0.0.1:{port}{PREFIX}page",
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["name"] == "alice"
    auth.close()
    assert len(inner.calls) == 1  # only the second request reached the app
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "The client left" in caplog.text


# ---------------------------------------------------------------- logs and imports


def test_uvicorn_access_log_lines_lose_tokens_codes_and_states() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/s/x/?token=SECRET1&q=1&code=SECRET2&state=SECRET3", "1.1", 200),
        None,
    )
    assert RedactAccessLog().filter(record)
    text = record.getMessage()
    assert "SECRET" not in text and "q=1" in text and "token=[secret]" in text
    assert any(isinstance(f, RedactAccessLog) for f in logging.getLogger("uvicorn.access").filters)


def test_importing_hubauth_imports_no_asgi_framework() -> None:
    code = (
        "import sys, hubauth, hubauth.asgi, hubauth.wsgi\n"
        "hubauth.HubOAuth\n"
        "bad = [m for m in ('starlette', 'fastapi', 'uvicorn', 'pydantic') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_close_reasons_fit_a_close_frame_in_whole_characters() -> None:
    from hubauth._asgi import close_reason

    text = "é" * 100  # 200 bytes of UTF-8
    reason = close_reason(text)
    assert len(reason.encode()) <= 123 and reason == "é" * 61


def test_a_cookie_websocket_through_a_proxy_that_says_ws(auth: HubOAuth, fake_hub: FakeHub) -> None:
    """JupyterHub's proxy (node http-proxy) forwards a websocket handshake with
    ``X-Forwarded-Proto: ws``; the page's ``Origin`` is ``http://...``: that is the same
    origin, and the login cookie opens the websocket; another origin's page does not.
    """
    cookie = auth.login_cookie(fake_hub.add_user("carol"), secure=False).split(";")[0]
    headers = [
        (b"host", b"hub.example:8000"),
        (b"x-forwarded-proto", b"ws"),
        (b"x-forwarded-host", b"hub.example:8000"),
        (b"cookie", cookie.encode()),
    ]
    for origin, opened in ((b"http://hub.example:8000", True), (b"http://evil.example", False)):
        scope = http_scope(headers=[*headers, (b"origin", origin)], kind="websocket")
        sent = run(HubAuthMiddleware(Inner(), auth), scope, ws_connect())
        assert (sent[0]["type"] == "websocket.accept") is opened, (origin, sent)
