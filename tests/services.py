"""The same small service written for each adapter, served on 127.0.0.1 in a thread.

Routes under the prefix ``/services/test-service/``: ``page`` (any caller with the access
scope), ``files/<anything>`` (the same, for deep links), ``scoped`` (needs ``read:users``),
``post`` (POST, protected), ``public`` (no auth), plus the adapter's ``oauth_callback`` and
``logout``. Each protected route answers
``{"name": ..., "kind": ...}`` of the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from tornado.httpserver import HTTPServer
from werkzeug.serving import WSGIRequestHandler, make_server

from hubauth.auth import HubAuth
from hubauth.oauth import HubOAuth
from hubauth.testing import FakeHub

PREFIX = "/services/test-service/"
ADAPTERS = ("tornado", "flask", "wsgi", "asgi", "fastapi", "proxy")


def all_at_once(
    n: int, call: Callable[[], Any], gate: threading.Event, in_flight: Callable[[], bool]
) -> list[Any]:
    """Run ``call`` in ``n`` threads whose load waits at ``gate``: once ``in_flight()`` says
    the load has started, give the other threads a moment to join it, open the gate, and
    return what each call returned or raised.
    """
    outcomes: list[Any] = []

    def run() -> None:
        try:
            outcomes.append(call())
        except Exception as e:
            outcomes.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in range(400):
        if in_flight():
            break
        threading.Event().wait(0.005)
    threading.Event().wait(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    return outcomes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _me(user: dict[str, Any], token: str = "") -> dict[str, Any]:
    """The caller, and (hashed) which token authenticated it: adapters must pass it on."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
    return {"name": user["name"], "kind": user.get("kind"), "token": digest}


def tornado_app(auth: HubAuth) -> Any:
    from tornado.web import Application, RequestHandler, authenticated

    from hubauth.tornado import (
        HubAuthenticated,
        HubOAuthCallbackHandler,
        HubOAuthenticated,
        HubOAuthLogoutHandler,
    )

    base = HubOAuthenticated if isinstance(auth, HubOAuth) else HubAuthenticated

    class Page(base):  # type: ignore[valid-type,misc]
        @authenticated
        def get(self) -> None:
            self.write(_me(self.current_user, self.hub_token))

    class Scoped(Page):
        hub_scopes = frozenset({"read:users"})

    class Post(base):  # type: ignore[valid-type,misc]
        @authenticated
        def post(self) -> None:
            self.write(_me(self.current_user, self.hub_token))

    class Public(RequestHandler):
        def get(self) -> None:
            self.write({"public": True})

    return Application(
        [
            (PREFIX + "public", Public),
            (PREFIX + "oauth_callback", HubOAuthCallbackHandler),
            (PREFIX + "logout", HubOAuthLogoutHandler),
            (PREFIX + "scoped", Scoped),
            (PREFIX + "post", Post),
            (PREFIX + "files/.*", Page),
            (PREFIX.rstrip("/") + r"/?(?:page)?", Page),
        ],
        hub_auth=auth,
    )


def flask_app(auth: HubAuth) -> Any:
    from flask import Flask, g

    from hubauth.flask import FlaskHubAuth, hub_authenticated

    app = Flask("test-service")
    FlaskHubAuth(app, auth=auth)

    @app.route(PREFIX.rstrip("/"), strict_slashes=False)
    @app.route(PREFIX + "page")
    @app.route(PREFIX + "files/<path:name>")
    @hub_authenticated
    def page(name: str = "") -> Any:
        return _me(g.hub_user, g.hub_token)

    @app.route(PREFIX + "scoped")
    @hub_authenticated(scopes=["read:users"])
    async def scoped() -> Any:  # an async view, on purpose
        return _me(g.hub_user, g.hub_token)

    @app.route(PREFIX + "post", methods=["POST"])
    @hub_authenticated
    def post() -> Any:
        return _me(g.hub_user, g.hub_token)

    @app.route(PREFIX + "public")
    def public() -> Any:
        return {"public": True}

    return app


def wsgi_app(auth: HubAuth) -> Any:
    from hubauth.wsgi import HubAuthMiddleware

    def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        user = environ.get("hubauth.user")
        if path == PREFIX + "public":
            body: dict[str, Any] = {"public": True}
        else:
            body = _me(user, environ.get("hubauth.token", ""))
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]

    scoped = HubAuthMiddleware(inner, auth, scopes=["read:users"])
    default = HubAuthMiddleware(inner, auth, public_paths=[PREFIX + "public"])

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = scoped if environ["PATH_INFO"] == PREFIX + "scoped" else default
        return app(environ, start_response)

    return route


@contextmanager
def serve_uvicorn(app: Any, port: int) -> Iterator[None]:
    """Run ``app`` under a real uvicorn on 127.0.0.1:port in a thread, until the block ends.
    uvicorn leaves logging alone (its access log reaches the tests' log checks).
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.01)
    if not server.started:
        raise RuntimeError("uvicorn did not start within 10 s")
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_tornado(start: Callable[[], HTTPServer]) -> Iterator[None]:
    """Run the Tornado server ``start()`` makes (called on a new event loop) in a thread,
    until the block ends; then stop it and close its connections.
    """
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            server = start()
            holder["stop"] = asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            started.set()
            await holder["stop"].wait()
            server.stop()
            await server.close_all_connections()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the Tornado server did not start within 10 s")
    try:
        yield
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


@contextmanager
def serve(adapter: str, auth: HubAuth, port: int) -> Iterator[str]:
    """Run the service for ``adapter`` on 127.0.0.1:port; yield its origin."""
    if adapter == "tornado":
        with serve_tornado(lambda: tornado_app(auth).listen(port, "127.0.0.1")):
            yield f"http://127.0.0.1:{port}"
        return
    if adapter in ("asgi", "fastapi"):
        from .asgi_apps import asgi_app, fastapi_app

        with serve_uvicorn(asgi_app(auth) if adapter == "asgi" else fastapi_app(auth), port):
            yield f"http://127.0.0.1:{port}"
        return
    if adapter == "proxy":  # hubauth-proxy in front of an app told who is calling
        from .proxy_apps import proxy_adapter

        with proxy_adapter(auth, port) as url:
            yield url
        return
    app = flask_app(auth) if adapter == "flask" else wsgi_app(auth)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


SECRET = "5507aed8d589c7c2a6111e097e16373ea687929b2f2db4d903bb88bd67c3c55c"


@dataclass
class Service:
    url: str
    auth: HubOAuth
    hub: FakeHub
    adapter: str

    def page(self, path: str = "page") -> str:
        return f"{self.url}{PREFIX}{path}"


def make_auth(hub: FakeHub, origin: str, **settings: object) -> HubOAuth:
    env = hub.service_env("test-service", url=origin)
    settings.setdefault("cookie_secret", SECRET)
    return HubOAuth(environ=env, hub_host=hub.url, **settings)


@pytest.fixture(params=ADAPTERS)
def svc(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Service]:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    auth = make_auth(fake_hub, origin)
    with serve(request.param, auth, port) as url:
        yield Service(url, auth, fake_hub, request.param)
    auth.close()


def browser() -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html"
    return s


def log_in(
    svc: Service, b: requests.Session, user: str = "alice", path: str = "page"
) -> requests.Response:
    b.get(f"{svc.hub.url}/hub/login", params={"user": user}, allow_redirects=False)
    return b.get(svc.page(path))


def refusal(r: requests.Response) -> tuple[int, str]:
    """``(status, message)`` of a JSON refusal: hubauth's ``{"status", "message"}``, or
    FastAPI's ``{"detail": message}`` (what FastAPI users expect from their errors).
    """
    body = r.json()
    if "detail" in body:
        return r.status_code, str(body["detail"])
    return int(body["status"]), str(body["message"])


def login_cookie(svc: Service, b: requests.Session) -> str:
    return next(c.value for c in b.cookies if c.name == svc.auth.cookie_name)
