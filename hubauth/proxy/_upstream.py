"""HTTP/1.1 to the app: kept-alive connections, bodies streamed with flow control.

Built on Tornado's own ``HTTP1Connection`` (the parser its server uses, in client mode), so
the app's answer is parsed as strictly as a client's request, a response body is handed
on chunk by chunk and the next chunk is read only once the client took the last one, and
every phase has its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    RequestStartLine,
    ResponseStartLine,
)
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

__all__ = ["Upstream", "UpstreamError"]

_IDLE_KEEP = 32  # idle connections kept per app
_IDLE_SECONDS = 4.0  # shorter than common keep-alive timeouts (uvicorn: 5 s)
_MAX_HEADER = 64 * 1024
_CHUNKED_ALWAYS = frozenset({"POST", "PUT", "PATCH"})  # Tornado frames these itself


class UpstreamError(Exception):
    """The app could not be reached, answered garbage, or took too long. ``phase`` says
    when (``connect``, ``headers``, ``body``); ``sent`` whether the client already had the
    response headers (then only closing the connection can tell it).
    """

    def __init__(self, message: str, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class Upstream:
    """Connections to one app (``http://host:port``), reused while idle for a short time."""

    def __init__(self, url: str, *, connect_timeout: float, max_body_size: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.connect_timeout = connect_timeout
        self.params = HTTP1ConnectionParameters(
            no_keep_alive=False,
            max_header_size=_MAX_HEADER,
            max_body_size=max_body_size,
            decompress=False,
        )
        self._idle: deque[tuple[IOStream, float]] = deque()
        self._tcp = TCPClient()

    async def _connect(self) -> tuple[IOStream, bool]:
        loop = asyncio.get_running_loop()
        while self._idle:
            stream, since = self._idle.pop()
            if loop.time() - since < _IDLE_SECONDS and _still_open(stream):
                return stream, True
            stream.close()
        try:
            stream = await self._tcp.connect(
                self.host,
                self.port,
                ssl_options=ssl.create_default_context() if self.tls else None,
                timeout=self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise UpstreamError(
                f"no connection to {self.url} within {self.connect_timeout:g}s", "connect"
            ) from None
        except (OSError, StreamClosedError) as e:
            raise UpstreamError(f"cannot connect to {self.url}: {_reason(e)}", "connect") from None
        stream.set_nodelay(True)
        return stream, False

    def _release(self, stream: IOStream) -> None:
        if stream.closed() or len(self._idle) >= _IDLE_KEEP:
            stream.close()
            return
        self._idle.append((stream, asyncio.get_running_loop().time()))

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()

    async def exchange(
        self,
        method: str,
        target: str,
        headers: HTTPHeaders,
        body: AsyncIterator[bytes] | None,
        delegate: ResponseDelegate,
        *,
        response_timeout: float,
    ) -> None:
        """Send one request (``body`` streamed, if any) and stream the answer to ``delegate``.

        A kept-alive connection that the app had closed meanwhile is retried once on a new
        one, for a request without a body. Raises :class:`UpstreamError`.
        """
        for attempt in (0, 1):
            stream, reused = await self._connect()
            conn = HTTP1Connection(stream, True, self.params)
            try:
                await self._send(conn, method, target, headers, body, delegate, response_timeout)
            except _Stale:
                conn.close()
                if attempt == 0 and reused and body is None:
                    continue
                raise UpstreamError(
                    f"{self.url} closed the connection or answered with something that is not HTTP",
                    "headers",
                ) from None
            except UpstreamError:
                conn.close()
                raise
            except BaseException:
                conn.close()
                raise
            if delegate.keep_alive and not stream.closed():
                self._release(conn.detach())
            else:
                conn.close()
            return

    async def _send(
        self,
        conn: HTTP1Connection,
        method: str,
        target: str,
        headers: HTTPHeaders,
        body: AsyncIterator[bytes] | None,
        delegate: ResponseDelegate,
        response_timeout: float,
    ) -> None:
        frame = (
            body is not None and "Content-Length" not in headers and method not in _CHUNKED_ALWAYS
        )
        if frame:
            headers["Transfer-Encoding"] = "chunked"  # Tornado frames only POST/PUT/PATCH
        try:
            await conn.write_headers(RequestStartLine(method, target, "HTTP/1.1"), headers)
        except StreamClosedError:
            raise _Stale from None
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            if not delegate.responded:
                timed_out = True
                conn.close()  # the read below ends; the delegate hears the connection close

        timer = asyncio.get_running_loop().call_later(response_timeout, expire)
        delegate.abort = conn.close
        try:
            if body is None:
                conn.finish()
                await _read(conn, delegate)
            else:
                # Read while sending: an app may answer (413, say) before taking the body.
                reading = asyncio.ensure_future(_read(conn, delegate))
                try:
                    await _write_body(conn, body, frame, reading)
                    if not reading.done():
                        conn.finish()
                    await reading
                except BaseException:
                    reading.cancel()
                    with contextlib.suppress(BaseException):
                        await reading
                    raise
        finally:
            timer.cancel()
        if timed_out:
            raise UpstreamError(
                f"{self.url} sent no response headers within {response_timeout:g}s "
                "(--response-timeout)",
                "headers",
            )
        if delegate.error is not None:
            if not delegate.responded and delegate.error == "closed":
                raise _Stale
            raise UpstreamError(delegate.error, "body" if delegate.responded else "headers")


async def _read(conn: HTTP1Connection, delegate: ResponseDelegate) -> None:
    try:
        await conn.read_response(delegate)
    except StreamClosedError:  # closed here (a timeout, the client left) while reading
        delegate.on_connection_close()


async def _write_body(
    conn: HTTP1Connection, body: AsyncIterator[bytes], frame: bool, reading: asyncio.Future[None]
) -> None:
    try:
        async for chunk in body:
            if not chunk:
                continue
            await conn.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if frame else chunk)
            if reading.done():
                return  # the app answered before taking the whole body: stop sending
        if frame:
            await conn.write(b"0\r\n\r\n")
    except StreamClosedError:
        return  # the app closed early; its answer (if any) is read next


class _Stale(Exception):
    """A kept-alive connection turned out to be closed before any answer."""


class ResponseDelegate(HTTPMessageDelegate):
    """Receives the app's answer; subclasses hand it on. ``responded``: the status line and
    headers arrived; ``error``: what went wrong, if anything did; ``abort()`` drops the
    connection to the app (when the client leaves).
    """

    def __init__(self) -> None:
        self.abort: Callable[[], None] = _nothing
        self.error: str | None = None
        self.keep_alive = False
        self.responded = False  # the status line and headers arrived

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        if not isinstance(start_line, ResponseStartLine):
            raise TypeError("a response was expected")
        connection = headers.get("Connection", "").lower()
        self.keep_alive = start_line.version == "HTTP/1.1" and "close" not in connection
        self.responded = True
        return self.on_headers(start_line, headers)

    def on_headers(
        self, start_line: ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        return None

    def finish(self) -> None:
        pass

    def on_connection_close(self) -> None:
        self.keep_alive = False
        if self.error is None:
            self.error = "closed"


def _nothing() -> None:
    pass


def _still_open(stream: IOStream) -> bool:
    """Whether an idle kept-alive connection is still open (the app may have closed it)."""
    sock = stream.socket
    if sock is None:
        return False
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing to read: open and idle
    except OSError:
        return False
    return False  # EOF, or bytes nobody asked for: not reusable either way


def _reason(e: BaseException) -> str:
    if isinstance(e, StreamClosedError) and e.real_error is not None:
        e = e.real_error
    if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the app running and listening there?)"
    return getattr(e, "strerror", None) or type(e).__name__
