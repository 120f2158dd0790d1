"""Forwarding HTTP requests: every method, bodies streamed both ways with flow control.

The request body reaches the app while the client is still sending it (at most a chunk
or two in memory); the app's answer reaches the client chunk by chunk, and the next chunk
is read from the app only once the client has taken the last one. A refused request
never reaches the app; the app's trouble is a short 502/503/504 page, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPHeaders, ResponseStartLine
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler, stream_request_body

from .._view import Decision, RequestView
from ..tornado import view_of
from ._gate import answer
from ._gate import answer_page as _answer_page
from ._headers import identity_headers, request_headers, response_headers, rewrite_location
from ._upstream import ResponseDelegate, UpstreamError

if TYPE_CHECKING:
    from ._server import ProxyApp

__all__ = ["ProxyHandler", "app_target", "drop_token_param", "trouble"]

log = logging.getLogger("hubauth.proxy")

# Every method a reverse proxy passes on (RFC 9110 and WebDAV); CONNECT and TRACE are not.
METHODS = (
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
)  # fmt: skip


def app_target(app: ProxyApp, path: str, query: str) -> str:
    """The request target at the app for a public ``path`` and ``query``."""
    opts = app.options
    base = urllib.parse.urlsplit(opts.upstream).path.rstrip("/")
    if opts.strip_prefix:
        rest = path[len(opts.prefix) - 1 :] if path.startswith(opts.prefix) else "/"
    else:
        rest = path
    return base + rest + (f"?{query}" if query else "")


def drop_token_param(query: str, token: str) -> str:
    """``query`` without the ``token=`` parameter that carried ``token`` (a credential the
    app must not see); other parameters, and other ``token`` values, are kept.
    """
    if not token or "token=" not in query:
        return query
    kept = []
    for piece in query.split("&"):
        name, _, value = piece.partition("=")
        if name == "token" and urllib.parse.unquote_plus(value) == token:
            continue
        kept.append(piece)
    return "&".join(kept)


def trouble(handler: RequestHandler, status: int, message: str, retry: int = 0) -> None:
    """Answer a problem with the app (or the proxy) with a short page or JSON; ``retry``:
    seconds after which to try again (a browser reloads the page by itself).
    """
    view = view_of(handler)
    handler.clear()
    if retry:
        handler.set_header("Retry-After", str(retry))
        handler.set_header("Refresh", str(retry))
    _answer_page(handler, Decision(kind="refuse", status=status, message=message), view)


class _ToClient(ResponseDelegate):
    """Hands the app's answer to the client as it arrives."""

    def __init__(self, handler: ProxyHandler) -> None:
        super().__init__()
        self.handler = handler
        self.client_gone = False
        self.flushed = False

    def on_headers(
        self, start_line: ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        h = self.handler
        app = h.app
        opts = app.options
        h.set_status(start_line.code, start_line.reason or None)
        for default in ("Content-Type", "Server", "Date"):
            h.clear_header(default)

        def relocate(value: str) -> str:
            return rewrite_location(
                value, upstream=opts.upstream, prefix=opts.prefix, strip_prefix=opts.strip_prefix
            )

        for name, value in response_headers(
            headers, relocate=relocate, is_credential=app.is_credential
        ):
            try:
                h.add_header(name, value)
            except ValueError:
                log.warning("Dropped a response header from the app with control characters")
        conn = h.request.connection
        if isinstance(conn, HTTP1Connection) and conn.stream is not None:
            conn.stream.set_nodelay(True)  # each flush goes out at once (no Nagle delay)
        if headers.get("Content-Length", "0") not in ("", "0"):
            return None  # a body follows at once: the headers go out with its first chunk
        return self._flush()  # a stream (SSE) or no body: the client gets the headers now

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.client_gone:
            return None
        self.handler.app.touch()
        self.handler.write(chunk)
        return self._flush()

    async def _flush(self) -> None:
        self.flushed = True  # the client has the status line and headers from here on
        try:
            await self.handler.flush()
        except StreamClosedError:
            self.client_gone = True  # the client left: the exchange is abandoned


@stream_request_body
class ProxyHandler(RequestHandler):
    """Everything under the prefix that is not one of the proxy's own routes."""

    SUPPORTED_METHODS = METHODS
    app: ProxyApp
    _body: asyncio.Queue[bytes | None] | None = None
    _exchange: asyncio.Future[None] | None = None
    _view: RequestView | None = None
    _refused_body = False
    _request: tuple[str, str, HTTPHeaders] | None = None
    _respond_later: Callable[[], None] | None = None
    _delegate: _ToClient | None = None

    def initialize(self, app: ProxyApp) -> None:
        self.app = app

    def _request_summary(self) -> str:
        return self.app.summary(self)

    async def prepare(self) -> None:
        app = self.app
        req = self.request
        path = req.path
        problem = app.not_ready()
        if problem is not None:
            # Before any login: while the app starts (or after it stopped), everyone gets
            # this page, the Hub's own check included, so the Hub waits for a user's server.
            self._refuse(lambda: trouble(self, *problem))
            return
        decision: Decision | None = None
        if not app.gate.is_public(path):
            decision = await app.gate.decide(self)
            if not decision.allowed:
                refusal = decision
                self._refuse(lambda: answer(self, refusal, view_of(self)))
                return
        app.touch()
        user = decision.user if decision is not None else None
        token = decision.token if decision is not None else ""
        opts = app.options
        identity = (
            identity_headers(
                user,
                token=token if opts.forward_token else "",
                model=opts.forward_model,
            )
            if user is not None
            else []
        )
        if user is not None:
            self._current_user = user  # for the access log
        for cookie in decision.cookies if decision is not None else ():
            self.add_header("Set-Cookie", cookie)
        headers = request_headers(
            req.headers,
            remote_ip=req.remote_ip or "",
            scheme=req.protocol,
            prefix=opts.prefix,
            strip_prefix=opts.strip_prefix,
            identity=identity,
            forward_credentials=opts.forward_token,
            is_credential=app.is_credential,
        )
        query = req.query if opts.forward_token else drop_token_param(req.query, token)
        target = app_target(app, path, query)
        self._delegate = _ToClient(self)
        if _has_body(req.headers):
            # Start now: the body goes to the app while the client is still sending it.
            self._body = asyncio.Queue(maxsize=1)
            forward = self._forward(req.method or "GET", target, headers, self._chunks(self._body))
            self._exchange = asyncio.ensure_future(forward)
        else:
            self._request = (req.method or "GET", target, headers)

    def _refuse(self, respond: Callable[[], None]) -> None:
        """Answer a request that does not reach the app. With a body coming: now, and close
        the connection (never read an upload nobody wants); without: once the request is
        read (answering from prepare() would make Tornado close a kept-alive connection).
        """
        if _has_body(self.request.headers):
            self._refused_body = True  # clear() adds Connection: close
            respond()
        else:
            self._respond_later = respond

    def clear(self) -> None:
        super().clear()
        if self._refused_body:
            self.set_header("Connection", "close")  # tell the client: the rest is not read

    @staticmethod
    async def _chunks(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            yield chunk

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._body is not None and self._exchange is not None and not self._exchange.done():
            return self._body.put(chunk)
        if self._refused_body and self._finished:
            _close(self)
            self._refused_body = False  # refused: do not read the rest of the upload
        return None

    async def _forward(
        self, method: str, target: str, headers: HTTPHeaders, body: AsyncIterator[bytes] | None
    ) -> None:
        app = self.app
        delegate = self._delegate
        if app.upstream is None or delegate is None:
            return
        try:
            await app.upstream.exchange(
                method,
                target,
                headers,
                body,
                delegate,
                response_timeout=app.options.response_timeout,
            )
        except UpstreamError as e:
            if delegate.client_gone:
                return
            if delegate.flushed:
                log.warning("The app's answer to %s broke off: %s", method, e)
                _close(self)
                return
            self.clear()  # the app's headers were read, but nothing reached the client yet
            status = 504 if "within" in str(e) and e.phase == "headers" else 502
            log.warning("%s for %s %s: %s", status, method, app.safe(target), e)
            trouble(self, status, app.trouble_message(status))
        if delegate.client_gone:
            _close(self)

    async def _proxy(self, *args: Any) -> None:
        if self._respond_later is not None:
            self._respond_later()
            return
        if self._request is not None:
            await self._forward(*self._request, None)
        if self._exchange is None:
            if not self._finished and not _closed(self):
                self.finish()
            return
        if self._body is not None:
            await self._body.put(None)
        await asyncio.wait([self._exchange])  # a cancelled exchange: the client left
        if not self._finished and not _closed(self):
            self.finish()

    def on_connection_close(self) -> None:
        exchange = self._exchange
        if exchange is not None and not exchange.done():
            exchange.cancel()  # the client left mid-request: stop talking to the app
        if self._delegate is not None:
            self._delegate.client_gone = True
            self._delegate.abort()
        super().on_connection_close()

    def compute_etag(self) -> str | None:
        return None  # the app's answer as it was, never a tag the app did not set


for _method in METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler._proxy)


def _has_body(headers: HTTPHeaders) -> bool:
    length = headers.get("Content-Length", "")
    if length:
        return length.strip() != "0"
    return "chunked" in headers.get("Transfer-Encoding", "").lower()


def _close(handler: RequestHandler) -> None:
    """Close the client's connection (the only way to say a streamed answer broke off)."""
    conn = handler.request.connection
    if isinstance(conn, HTTP1Connection):
        conn.close()


def _closed(handler: RequestHandler) -> bool:
    conn = handler.request.connection
    return isinstance(conn, HTTP1Connection) and (conn.stream is None or conn.stream.closed())
