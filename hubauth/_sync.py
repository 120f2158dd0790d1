"""The sync driver: sends a :class:`HubRequest` on a kept-alive socket, blocking.

It only moves bytes: HTTP/1.1 framing is :mod:`hubauth._http`'s, the pool and the error
wording :mod:`hubauth._pool`'s. No redirects are followed, bodies are capped, every
transport failure becomes :class:`~hubauth.errors.HubUnavailable` naming the URL. No event
loop, no thread: a cache miss costs one request on an open connection. :meth:`stream`
reads a long-lived answer (a spawn's progress) piece by piece, on a connection of its own.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
import weakref
from collections.abc import Iterator

from ._http import Endpoint, ProtocolError, ResponseParser
from ._pool import (
    IDLE_SECONDS,
    UNSAFE_REUSE_SECONDS,
    Conn,
    Idle,
    answer_error,
    cause,
    may_resend,
    prepare,
    ssl_context,
    too_large,
    unreachable,
)
from ._protocol import HubRequest, HubResponse
from ._streaming import Waits, broke_off, feed, feed_head, head_read, prepare_stream
from .config import Config

__all__ = ["SyncDriver", "too_large", "unreachable"]

log = logging.getLogger("hubauth")

_RECV = 256 * 1024


class _NoAnswer(Exception):
    """A reused connection ended before the Hub sent one byte: safe to send again."""


class SyncDriver:
    """Blocking HTTP to the Hub over pooled keep-alive connections; safe across threads."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._idle = Idle()
        self._ssl: ssl.SSLContext | None = None
        # Sockets still idle when the driver is collected are closed, never left to warn.
        weakref.finalize(self, self._idle.close)

    def send(self, req: HubRequest) -> HubResponse:
        ep, data = prepare(req)
        within = IDLE_SECONDS if req.idempotent else UNSAFE_REUSE_SECONDS
        conn = self._idle.take(ep, within)
        if conn is not None:
            try:
                return self._exchange(req, conn, data)
            except _NoAnswer:  # (only ever for a request that is safe to send twice)
                log.debug("the Hub closed a kept-alive connection; sending again on a new one")
        return self._exchange(req, self._connect(req, ep), data)

    def _connect(self, req: HubRequest, ep: Endpoint) -> Conn:
        cfg = self.config
        timeout = cfg.connect_timeout or None
        sock: socket.socket | None = None
        try:
            if ep.unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(ep.path)
            else:
                sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ep.tls:
                if self._ssl is None:
                    self._ssl = ssl_context(cfg)
                sock = self._ssl.wrap_socket(sock, server_hostname=ep.host)
        except OSError as e:
            if sock is not None:
                sock.close()
            raise unreachable(req.url, cause(e, ep, cfg, connecting=True), cfg) from None
        return Conn(ep, sock)

    def _exchange(self, req: HubRequest, conn: Conn, data: bytes) -> HubResponse:
        """Send ``data`` on ``conn`` and read the answer; the connection goes back to the pool
        if it may carry another request, else it is closed.
        """
        cfg = self.config
        parser = ResponseParser()
        sock = conn.sock
        timeout = cfg.request_timeout or None
        deadline = time.monotonic() + (timeout or 0)
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
            while True:
                if timeout is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    sock.settimeout(left)
                chunk = _recv(sock)
                if not chunk:
                    parser.feed_eof()
                    break
                if parser.feed(chunk):
                    break
        except BaseException as e:
            conn.close()
            if may_resend(e, req, conn, parser.received):
                raise _NoAnswer from None
            error = answer_error(e, req, conn.ep, cfg)
            if error is None:
                raise
            raise error from None
        conn.uses += 1
        if not parser.keep_alive or not self._idle.put(conn):
            conn.close()
        return HubResponse(parser.status, parser.headers, bytes(parser.body))

    @contextlib.contextmanager
    def stream(
        self, req: HubRequest, timeout: float | None = None
    ) -> Iterator[tuple[HubResponse, Iterator[bytes]]]:
        """``(head, chunks)`` of a long-lived GET on a connection of its own: the status and
        headers (a non-200 with its whole, bounded body), then the body's pieces as they
        arrive. ``request_timeout`` bounds the head and then each wait for bytes,
        ``timeout`` the whole stream. The connection is closed as soon as the reader stops
        (``chunks`` closed, or the ``with`` left), never pooled.
        """
        ep, data = prepare_stream(req)
        waits = Waits(self.config, req, timeout, time.monotonic())
        conn = self._connect(req, ep)
        sock = conn.sock
        parser = ResponseParser(max_body=None)
        broken = None
        try:
            try:
                sock.settimeout(waits.head(time.monotonic()))
                sock.sendall(data)
                while broken is None and not head_read(parser):
                    sock.settimeout(waits.head(time.monotonic()))
                    broken = feed_head(parser, _recv(sock))
            except BaseException as e:
                error = waits.error(e, streaming=False) or answer_error(e, req, ep, self.config)
                if error is None:
                    raise
                raise error from None
            if parser.status != 200:
                yield HubResponse(parser.status, parser.headers, bytes(parser.body)), iter(())
            else:
                head = HubResponse(200, parser.headers, b"")
                yield head, self._chunks(req, conn, parser, waits, broken)
        finally:
            conn.close()

    def _chunks(
        self,
        req: HubRequest,
        conn: Conn,
        parser: ResponseParser,
        waits: Waits,
        broken: ProtocolError | None,
    ) -> Iterator[bytes]:
        """A stream's body as it arrives; it ends where the answer ends or breaks off."""
        sock = conn.sock
        try:
            ended = broken is not None
            if broken is not None:
                broke_off(req, broken)
            while True:
                piece = parser.take()
                if piece:
                    yield piece
                if ended or parser.done:
                    return
                try:
                    sock.settimeout(waits.next(time.monotonic()))
                    feed(parser, _recv(sock))
                except (OSError, ProtocolError) as e:
                    error = waits.error(e, streaming=True)
                    if error is not None:
                        raise error from None
                    broke_off(req, e)  # (cut mid-chunk, reset, garbled framing)
                    ended = True
        finally:
            conn.close()

    def close(self) -> None:
        """Close the idle connections (the driver stays usable: new ones open on demand)."""
        self._idle.close(reopen=True)


def _recv(sock: socket.socket) -> bytes:
    """The next bytes from ``sock``; ``b""`` once the Hub has closed it."""
    try:
        return sock.recv(_RECV)
    except ssl.SSLEOFError:
        return b""  # closed without a TLS close_notify: an end of stream
