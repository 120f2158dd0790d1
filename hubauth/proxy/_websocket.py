"""Forwarding websockets: text and binary messages both ways, subprotocols, pings, close codes.

The proxy opens its own websocket to the app (offering the client's subprotocols) before it
accepts the client's, so the client gets the subprotocol the app chose, or the app's
refusal. Each direction reads its next message only once the last one was written out
(back-pressure), and a close on either side closes the other with the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tornado import httpclient
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    WebSocketHandler,
)

from ..tornado import view_of
from ._gate import answer
from ._headers import identity_headers, request_headers
from ._http import app_target, drop_token_param, trouble

if TYPE_CHECKING:
    from ._server import ProxyApp

__all__ = ["WebSocketProxy", "is_websocket"]

log = logging.getLogger("hubauth.proxy")

# Close codes that are never sent in a close frame (RFC 6455 §7.4.1).
_UNSENDABLE = frozenset({1005, 1006, 1015})


def is_websocket(headers: Any) -> bool:
    return str(headers.get("Upgrade", "")).lower() == "websocket"


class _AppSide(WebSocketClientConnection):
    """The proxy's websocket to the app. Each message from the app goes to ``deliver``
    (whose awaitable, if any, Tornado waits for before it reads the next frame: the
    back-pressure), pings to ``on_app_ping``, the end of the connection to ``on_app_closed``.
    """

    deliver: Callable[[str | bytes], Awaitable[None] | None] = staticmethod(lambda m: None)
    on_app_ping: Callable[[bytes], None] = staticmethod(lambda d: None)
    on_app_closed: Callable[[], None] = staticmethod(lambda: None)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        return self.deliver(message)

    def on_ping(self, data: bytes) -> None:
        self.on_app_ping(data)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.on_app_closed()


async def _quietly(future: Awaitable[None]) -> None:
    """Wait for a write; a connection that closed meanwhile is told by its close callback."""
    with contextlib.suppress(StreamClosedError, WebSocketClosedError):
        await future


def _retrieve(future: Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failure shows up as the connection closing


def _settled(future: Future[None], stream: IOStream | None) -> Awaitable[None] | None:
    """What to wait for before reading the next message: nothing while the message went
    straight to the socket, the write itself while the other side is slow (its bytes queue
    up in ``stream``), so a fast sender cannot fill the proxy's memory.
    """
    if stream is not None and stream.writing():
        return _quietly(future)
    future.add_done_callback(_retrieve)
    return None


class WebSocketProxy(WebSocketHandler):
    """A websocket handshake under the prefix: authenticated, then joined to the app."""

    app: ProxyApp
    _upstream: _AppSide | None = None
    _token = ""
    _opened = False
    _early: list[str | bytes] | None = None

    def initialize(self, app: ProxyApp) -> None:
        self.app = app

    def _request_summary(self) -> str:
        return self.app.summary(self)

    async def prepare(self) -> None:
        app = self.app
        self._identity: list[tuple[str, str]] = []
        if app.gate.is_public(self.request.path):
            return
        decision = await app.gate.decide(self)
        if not decision.allowed or decision.user is None:
            answer(self, decision, view_of(self))
            return
        self._current_user = decision.user
        self._token = decision.token
        opts = app.options
        self._identity = identity_headers(
            decision.user,
            token=decision.token if opts.forward_token else "",
            model=opts.forward_model,
        )

    def check_origin(self, origin: str) -> bool:
        """Decided in prepare() by the core flows, which refuse a cookie-authenticated
        handshake from another site (no cross-site websocket hijacking); a token in the
        header or URL is proof enough, and a public path carries no credentials.
        """
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        app = self.app
        problem = app.not_ready()
        if problem is not None:
            trouble(self, problem[0], problem[1])
            return
        try:
            self._upstream = await self._connect()
        except HTTPClientError as e:
            status = e.code if 400 <= e.code < 600 and e.code != 599 else 502
            log.warning("The app refused a websocket handshake: %s", e)
            trouble(self, status, "The app refused this websocket." if status < 500 else
                    app.trouble_message(502))  # fmt: skip
            return
        except WebSocketError:
            log.warning("The app answered a websocket handshake without a websocket")
            trouble(self, 502, "The app does not take a websocket at this address.")
            return
        except (OSError, StreamClosedError, asyncio.TimeoutError) as e:
            log.warning("Could not open a websocket to the app: %s", type(e).__name__)
            trouble(self, 502, app.trouble_message(502))
            return
        self._upstream.on_app_ping = self._app_pinged
        await super().get(*args, **kwargs)
        if self.ws_connection is None and self._upstream is not None:
            self._upstream.close()  # our handshake with the client failed

    async def _connect(self) -> _AppSide:
        app = self.app
        opts = app.options
        req = self.request
        headers = request_headers(
            req.headers,
            remote_ip=req.remote_ip or "",
            scheme=req.protocol,
            prefix=opts.prefix,
            strip_prefix=opts.strip_prefix,
            identity=self._identity,
            forward_credentials=opts.forward_token,
            is_credential=app.is_credential,
            websocket=True,
        )
        protocols = [
            p.strip() for p in req.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        query = req.query if opts.forward_token else drop_token_param(req.query, self._token)
        target = app_target(app, req.path, query)
        origin = urllib.parse.urlsplit(opts.upstream)
        url = f"{'wss' if origin.scheme == 'https' else 'ws'}://{origin.netloc}{target}"
        request = HTTPRequest(
            url,
            headers=headers,
            connect_timeout=opts.connect_timeout,
            request_timeout=opts.response_timeout,
            follow_redirects=False,
        )
        proxied = httpclient._RequestProxy(request, httpclient.HTTPRequest._DEFAULTS)
        conn = _AppSide(
            proxied,  # type: ignore[arg-type]
            max_message_size=self.max_message_size,
            subprotocols=protocols or None,
        )
        # From the first frame on: the app may speak before the client's handshake is done.
        conn.deliver = self._from_app
        conn.on_app_ping = self._app_pinged
        conn.on_app_closed = self._app_closed
        return await conn.connect_future  # type: ignore[return-value]

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        chosen = self._upstream.selected_subprotocol if self._upstream is not None else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.app.touch()
        self._opened = True
        for message in self._early or ():
            self._from_app(message)
        self._early = None
        upstream = self._upstream
        if upstream is not None and upstream.protocol is None:
            self._app_closed()  # the app hung up during the handshake

    def _from_app(self, message: str | bytes) -> Awaitable[None] | None:
        if not self._opened:
            if self._early is None:
                self._early = []
            self._early.append(message)
            return None
        self.app.touch()
        try:
            sent = self.write_message(message, binary=isinstance(message, bytes))
            return _settled(sent, self.ws_connection.stream if self.ws_connection else None)
        except WebSocketClosedError:
            if self._upstream is not None:
                self._upstream.close(1001, "client gone")
            return None

    def _app_closed(self) -> None:
        upstream = self._upstream
        if upstream is None or not self._opened or self.ws_connection is None:
            return
        code, reason = upstream.close_code, upstream.close_reason
        upstream.close()  # already closed by the app: this only lets go of it
        if code is None or code in _UNSENDABLE:
            self.close()
        else:
            self.close(code, reason)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        upstream = self._upstream
        if upstream is None:
            return None
        self.app.touch()
        try:
            sent = upstream.write_message(message, binary=isinstance(message, bytes))
            return _settled(sent, upstream.protocol.stream if upstream.protocol else None)
        except WebSocketClosedError:
            self.close(1011, "the app closed the connection")
            return None

    def on_ping(self, data: bytes) -> None:
        if self._upstream is not None and self._upstream.protocol is not None:
            self._upstream.ping(data)

    def _app_pinged(self, data: bytes) -> None:
        if self._opened and self.ws_connection is not None and not self.ws_connection.is_closing():
            self.ping(data)

    def on_close(self) -> None:
        upstream = self._upstream
        if upstream is not None:
            code = self.close_code
            if code is None or code in _UNSENDABLE:
                upstream.close()
            else:
                upstream.close(code, self.close_reason)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self.ws_connection is None and self._upstream is not None:
            self._upstream.close()
