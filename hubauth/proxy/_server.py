"""The proxy put together: its routes, the app's state, the readiness wait, start and stop.

Routes under the prefix: ``healthz`` (no login), ``oauth_callback`` and ``logout`` (the
Tornado adapter's own handlers), then either the app (websocket handshakes and everything
else) or, with ``--forward-auth``, the forward-auth endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import time
import urllib.parse
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.routing import PathMatches, Rule
from tornado.web import Application, RequestHandler

from .._view import log_safe, redact_uri
from ..oauth import HubOAuth
from ..tornado import HubOAuthCallbackHandler, HubOAuthLogoutHandler
from ._activity import Activity
from ._child import Child, ChildError, child_environment
from ._forward_auth import ForwardAuthHandler, ReplayHandler
from ._gate import Gate
from ._headers import make_cookie_filter
from ._http import ProxyHandler, trouble
from ._options import ProxyOptions
from ._upstream import ResponseDelegate, Upstream, UpstreamError
from ._websocket import WebSocketProxy, is_websocket

__all__ = ["ProxyApp", "make_application", "serve"]

log = logging.getLogger("hubauth.proxy")

_READY_POLL = (0.05, 0.1, 0.2, 0.5)


class ProxyApp:
    """What every handler shares: the options, the Hub client, the gate, the app's state."""

    def __init__(self, options: ProxyOptions, auth: HubOAuth) -> None:
        self.options = options
        self.auth = auth
        self.gate = Gate(auth, options)
        self.upstream = (
            Upstream(
                options.upstream,
                connect_timeout=options.connect_timeout,
                max_body_size=options.max_body_size,
            )
            if options.upstream
            else None
        )
        self.is_credential = make_cookie_filter([auth.cookie_name], [auth.state_cookie_name + "-"])
        self.activity = (
            Activity(auth, options.activity_url, options.server_name, options.activity_interval)
            if options.activity_url
            else None
        )
        self.state = "starting" if options.upstream else "up"
        self.started = time.monotonic()

    safe = staticmethod(log_safe)  # what came with a request, fit for a log line

    def touch(self) -> None:
        if self.activity is not None:
            self.activity.touch()

    def not_ready(self) -> tuple[int, str, int] | None:
        """``(status, message, retry-after)`` while the app cannot be reached, else None."""
        if self.state == "starting":
            waited = time.monotonic() - self.started
            return (
                503,
                f"The app is starting (for {waited:.0f}s so far); this page reloads itself.",
                2,
            )
        if self.state == "exited":
            return 502, "The app has stopped; ask an administrator to restart it.", 0
        return None

    def trouble_message(self, status: int) -> str:
        if status == 504:
            return "The app took too long to answer."
        return "The app is not answering properly (it may be restarting); try again shortly."

    def summary(self, handler: RequestHandler) -> str:
        req = handler.request
        user = handler._current_user if hasattr(handler, "_current_user") else None
        who = f" [{log_safe(user.get('name'), 80)}]" if isinstance(user, dict) else ""
        return f"{req.method} {log_safe(redact_uri(req.uri or ''), 300)} ({req.remote_ip}){who}"

    async def probe(self) -> bool:
        """Whether the app answers HTTP at its base path (any status)."""
        if self.upstream is None:
            return False
        headers = HTTPHeaders({"Host": f"{self.upstream.host}:{self.upstream.port}"})
        target = self.options.app_path
        try:
            await self.upstream.exchange(
                "GET", target, headers, None, ResponseDelegate(), response_timeout=10
            )
        except UpstreamError:
            return False
        return True


class _Health(RequestHandler):
    """``<prefix>healthz``: the proxy is up; is the app? 200 when it is, else 503."""

    def initialize(self, app: ProxyApp) -> None:
        self.app = app

    def get(self) -> None:
        app = self.app
        state = "none (forward-auth)" if app.options.forward_auth else app.state
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_status(200 if app.state == "up" else 503)
        self.finish(json.dumps({"proxy": "up", "app": state}))


class _NotFound(RequestHandler):
    def initialize(self, app: ProxyApp) -> None:
        self.app = app

    def prepare(self) -> None:
        trouble(self, 404, f"Nothing here: this proxy serves {self.app.options.prefix}")


class _WebSocketPath(PathMatches):
    """The path rule, for websocket handshakes only."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if not is_websocket(request.headers):
            return None
        return super().match(request)


def make_application(app: ProxyApp) -> Application:
    """The Tornado application serving ``app``'s routes."""
    opts = app.options
    prefix = opts.prefix
    here = re.escape(prefix)
    callback = urllib.parse.urlsplit(app.auth.oauth_redirect_uri).path or prefix + "oauth_callback"
    kw = {"app": app}
    rules: list[Rule] = [
        Rule(PathMatches(here + "healthz"), _Health, kw),
        Rule(PathMatches(re.escape(callback)), HubOAuthCallbackHandler),
        Rule(PathMatches(here + "logout"), HubOAuthLogoutHandler),
    ]
    under = re.escape(prefix.rstrip("/")) + "(?:/.*)?"
    if opts.forward_auth:
        rules += [
            Rule(PathMatches(here + "auth-request"), ForwardAuthHandler, {**kw, "nginx": True}),
            Rule(PathMatches(here + "forward-auth"), ForwardAuthHandler, {**kw, "nginx": False}),
            Rule(PathMatches(under), ReplayHandler, kw),
        ]
    else:
        rules += [
            Rule(_WebSocketPath(under), WebSocketProxy, kw),
            Rule(PathMatches(under), ProxyHandler, kw),
        ]

    def log_request(handler: RequestHandler) -> None:
        status = handler.get_status()
        level = logging.INFO if status < 500 else logging.WARNING
        if not log.isEnabledFor(level):
            return
        ms = 1000.0 * handler.request.request_time()
        log.log(level, "%d %s %.1fms", status, app.summary(handler), ms)

    return Application(
        rules,
        hub_auth=app.auth,
        default_handler_class=_NotFound,
        default_handler_args=kw,
        log_function=log_request,
        websocket_max_message_size=64 * 1024 * 1024,
    )


async def _wait_ready(app: ProxyApp, child: Child | None) -> bool:
    """Poll the app until it answers, for at most ``--ready-timeout`` seconds."""
    deadline = time.monotonic() + app.options.ready_timeout
    for attempt in range(1_000_000):
        if child is not None and child.returncode is not None:
            return False
        if await app.probe():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_READY_POLL[min(attempt // 10, len(_READY_POLL) - 1)])
    return False


async def serve(options: ProxyOptions) -> int:
    """Run the proxy until SIGTERM/SIGINT or until the app exits; the exit status."""
    auth = HubOAuth(environ=options.environ, base_url=options.prefix)
    app = ProxyApp(options, auth)
    server = HTTPServer(
        make_application(app),
        max_body_size=options.max_body_size,
        idle_connection_timeout=options.idle_timeout,
        max_header_size=64 * 1024,
    )
    try:
        server.listen(options.port, options.ip)
    except OSError as e:
        log.error("Cannot listen on %s:%s: %s", options.ip, options.port, e.strerror or e)
        return 1
    log.info(
        "hubauth-proxy serving %s on http://%s:%s%s",
        options.prefix,
        options.ip,
        options.port,
        f" for {options.upstream}" if options.upstream else " (forward-auth)",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    child: Child | None = None
    code = 0
    try:
        if options.command:
            env = child_environment(options.environ, keep_secrets=options.forward_token)
            child = Child(options.command, env, options.stop_timeout)
            try:
                await child.start()
            except ChildError as e:
                log.error("%s", e)
                return 1
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if child is not None:
            waits.append(asyncio.ensure_future(child.wait()))
        if app.upstream is not None:
            ready = asyncio.ensure_future(_wait_ready(app, child))
            done, _ = await asyncio.wait([ready, *waits], return_when=asyncio.FIRST_COMPLETED)
            if ready in done and ready.result():
                app.state = "up"
                log.info("The app answers at %s", options.upstream)
            elif ready in done and child is not None and child.returncode is None:
                log.error(
                    "The app did not answer at %s within %gs (--ready-timeout): stopping",
                    options.upstream,
                    options.ready_timeout,
                )
                return 1
            elif ready in done and child is None:
                log.warning("The app does not answer at %s yet", options.upstream)
                app.state = "up"  # an external app: answer 502 until it does
            else:
                ready.cancel()  # stopped, or the app exited while starting
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if child is not None and child.returncode is not None:
            code = child.returncode
            app.state = "exited"
            log.info("The app exited with status %s: stopping", code)
        for w in waits:
            w.cancel()
    finally:
        server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 5)
        if child is not None:
            await child.stop()
            if child.returncode is not None and code == 0 and not stop.is_set():
                code = child.returncode
        if app.activity is not None:
            app.activity.close()
        if app.upstream is not None:
            app.upstream.close()
        auth.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return code
