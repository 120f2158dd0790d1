"""Apps to put behind ``hubauth-proxy`` in tests, and a way to run the proxy in a thread.

``EchoApp`` (Tornado, 127.0.0.1) says back what reached it: the method, path, headers, and
the size and SHA-256 of the body (streamed: a 100 MB upload is hashed, never held), and
misbehaves on purpose on some paths (slow, garbage, cut short). ``running_proxy`` runs the
proxy's own application (``hubauth.proxy._server``) with an ``EchoApp`` behind it on one
event loop in a daemon thread, the way ``tests.services.serve_tornado`` runs adapters.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.web import Application, RequestHandler, stream_request_body
from tornado.websocket import WebSocketHandler

from hubauth.oauth import HubOAuth
from hubauth.proxy._options import ProxyOptions
from hubauth.proxy._server import ProxyApp, make_application

__all__ = ["EchoApp", "Running", "echo_application", "free_port", "running_proxy"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EchoApp:
    """What the echo app saw: every request's headers, websocket pings, and so on."""

    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)


@stream_request_body
class _Echo(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND")

    def initialize(self, echo: EchoApp) -> None:
        self.echo = echo
        self.digest = hashlib.sha256()
        self.size = 0

    def data_received(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)

    def _answer(self, *args: Any) -> None:
        req = self.request
        seen = {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": [[k, v] for k, v in req.headers.get_all()],
            "size": self.size,
            "sha256": self.digest.hexdigest(),
            "peer": req.connection.stream.socket.getpeername()[1],  # type: ignore[attr-defined]
        }
        self.echo.seen.append(seen)
        self.set_header("Content-Type", "application/json")
        self.set_header("X-App", "echo")
        self.finish(json.dumps(seen))

    get = head = post = put = patch = delete = options = propfind = _answer


class _Misbehave(RequestHandler):
    """``/trouble/<what>``: slow, garbage, cut-short and redirecting answers."""

    def initialize(self, echo: EchoApp) -> None:
        self.echo = echo

    async def get(self, what: str) -> None:
        arg = self.get_query_argument
        if what == "slow":
            await asyncio.sleep(float(arg("s", "5")))
            self.finish("slow")
        elif what == "garbage":
            stream = self.request.connection.detach()  # type: ignore[attr-defined]
            await stream.write(b"this is not HTTP at all\r\n\r\n")
            stream.close()
        elif what == "cut":
            self.set_header("Content-Length", "100000")
            self.write(b"x" * 1000)
            await self.flush()
            self.request.connection.stream.close()  # type: ignore[attr-defined]
        elif what == "redirect":
            self.redirect(arg("to"), status=int(arg("status", "302")))
        elif what == "cookie":
            self.add_header("Set-Cookie", f"{arg('name')}=overwritten; Path=/")
            self.add_header("Set-Cookie", "app-cookie=kept; Path=/")
            self.finish("cookies")
        elif what == "sse":
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            for i in range(int(arg("n", "5"))):
                self.write(f"data: event {i}\n\n")
                try:
                    await self.flush()
                except StreamClosedError:
                    return
                await asyncio.sleep(float(arg("delay", "0.2")))
            self.finish()
        elif what == "download":
            size = int(arg("size", "1000000"))
            self.set_header("Content-Length", str(size))
            self.set_header("Content-Type", "application/octet-stream")
            chunk = b"\0" * 65536
            sent = 0
            while sent < size:
                piece = chunk[: min(len(chunk), size - sent)]
                self.write(piece)
                try:
                    await self.flush()
                except StreamClosedError:
                    return
                sent += len(piece)
            self.finish()
        else:
            self.set_status(404)
            self.finish("no such trouble")


class _EchoSocket(WebSocketHandler):
    """Echoes text and binary; ``close:CODE:REASON`` closes; ``ping-me`` pings the client;
    ``pings?`` says how many pings arrived; ``flood:N`` sends N MiB; picks the subprotocol
    ``chat`` if offered.
    """

    def initialize(self, echo: EchoApp) -> None:
        self.echo = echo

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat" if "chat" in subprotocols else None

    def open(self, *args: Any) -> None:
        who = self.request.headers.get("X-Forwarded-User", "")
        self.write_message(json.dumps({"hello": who, "protocol": self.selected_subprotocol}))

    async def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self.write_message(message, binary=True)
        elif message == "ping-me":
            self.ping(b"from-app")
        elif message == "pings?":
            await self.write_message(json.dumps([p.decode() for p in self.echo.pings]))
        elif message.startswith("flood:"):  # N binary messages of 1 MiB, as fast as it can
            block = b"\0" * (1024 * 1024)
            for _ in range(int(message[6:])):
                await self.write_message(block, binary=True)
        elif message.startswith("close:"):
            _, code, reason = message.split(":", 2)
            self.close(int(code), reason)
        else:
            await self.write_message(message)

    def on_ping(self, data: bytes) -> None:
        self.echo.pings.append(data)

    def on_close(self) -> None:
        self.echo.closes.append((self.close_code, self.close_reason))

    def check_origin(self, origin: str) -> bool:
        return True


def echo_application(echo: EchoApp, prefix: str = "/") -> Application:
    """The echo app, serving everything under ``prefix`` (``/`` when the proxy strips it)."""
    base = prefix.rstrip("/")
    kw = {"echo": echo}
    return Application(
        [
            (base + r"/ws", _EchoSocket, kw),
            (base + r"/trouble/(\w+)", _Misbehave, kw),
            (base + r"/.*", _Echo, kw),
            (base or "/", _Echo, kw),
        ],
        log_function=lambda _h: None,
    )


class _Who(RequestHandler):
    """What the shared adapter suite expects of its service: who the proxy says is calling
    (from the model header), a digest of the token it forwarded, or ``public``.
    """

    SUPPORTED_METHODS = ("GET", "POST")

    def get(self, *args: Any) -> None:
        if self.request.path.endswith("/public"):
            self.finish({"public": True})
            return
        model = json.loads(self.request.headers.get("X-Forwarded-Hub-Model", "{}"))
        token = self.request.headers.get("X-Forwarded-Access-Token", "")
        digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
        self.finish({"name": model.get("name"), "kind": model.get("kind"), "token": digest})

    post = get


def who_application(echo: EchoApp, prefix: str) -> Application:
    return Application([(r"/.*", _Who)], log_function=lambda _h: None)


@contextmanager
def proxy_adapter(auth: HubOAuth, port: int) -> Iterator[str]:
    """``tests.services.serve("proxy", ...)``: the proxy in front of the "who" app, set up
    as the shared suite's service (``public`` open, ``scoped`` needs ``read:users``), telling
    the app the model and token so the suite can check who passed.
    """
    prefix = auth.base_url
    options = proxy_options(
        prefix,
        forward_token=True,
        forward_model=True,
        public_paths=(prefix + "public",),
        path_scopes=((prefix + "scoped", frozenset({"read:users"})),),
    )
    with running_proxy(auth, options, port=port, application=who_application) as running:
        yield running.url


@dataclass
class Running:
    url: str  # the proxy's origin
    app: ProxyApp
    echo: EchoApp
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the proxy's loop and return its result."""

        async def go() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)


@contextmanager
def running_proxy(
    auth: HubOAuth,
    options: ProxyOptions,
    *,
    port: int = 0,
    echo_prefix: str | None = None,
    upstream: str | None = None,
    application: Any = echo_application,
) -> Iterator[Running]:
    """The proxy on 127.0.0.1:``port`` with an echo app behind it, in a thread, until the
    block ends. ``upstream`` points the proxy elsewhere (then no echo app is started).
    """
    port = port or free_port()
    echo = EchoApp(port=free_port())
    if upstream is None:
        upstream = f"http://127.0.0.1:{echo.port}"
    options = replace(options, upstream=upstream, port=port)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            app = ProxyApp(options, auth)
            app.state = "up"
            proxy = HTTPServer(
                make_application(app),
                max_body_size=options.max_body_size,
                idle_connection_timeout=options.idle_timeout,
            )
            proxy.listen(port, "127.0.0.1")
            servers = [proxy]
            if upstream.endswith(f":{echo.port}"):
                prefix = echo_prefix if echo_prefix is not None else options.prefix
                app_server = HTTPServer(application(echo, prefix))
                app_server.listen(echo.port, "127.0.0.1")
                servers.append(app_server)
            holder["app"] = app
            holder["stop"] = asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            started.set()
            await holder["stop"].wait()
            for server in servers:
                server.stop()
                await server.close_all_connections()
            if app.upstream is not None:
                app.upstream.close()
            if app.activity is not None:
                app.activity.close()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the proxy did not start within 10 s")
    try:
        yield Running(f"http://127.0.0.1:{port}", holder["app"], echo, holder["loop"])
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


def proxy_options(prefix: str, **kw: Any) -> ProxyOptions:
    """Options as the command line would give them, for a proxy on ``prefix``."""
    return ProxyOptions(prefix=prefix, ip="127.0.0.1", port=0, upstream="http://x", **kw)


if __name__ == "__main__":  # python tests/proxy_apps.py PORT PREFIX: the echo app alone
    import sys

    async def _serve(port: int, prefix: str) -> None:
        HTTPServer(echo_application(EchoApp(port=port), prefix)).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(_serve(int(sys.argv[1]), sys.argv[2]))
