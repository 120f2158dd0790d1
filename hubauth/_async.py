"""The async driver: sends a :class:`HubRequest` on a kept-alive socket of the running loop.

The twin of :mod:`hubauth._sync`: the same framing (:mod:`hubauth._http`), pool checks and
error wording (:mod:`hubauth._pool`), with non-blocking sockets driven by the event loop's
own ``sock_*`` calls. Each event loop has its own bounded pool; its sockets are closed when
the loop shuts down (``asyncio.run`` ends), when the loop is collected, or on ``close()``,
so no socket outlives its loop. :meth:`AsyncDriver.stream` reads a long-lived answer (a
spawn's progress) piece by piece, on a connection of its own, outside the pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

from ._http import Endpoint, ProtocolError, ResponseParser
from ._pool import (
    IDLE_SECONDS,
    MAX_CONNECTIONS,
    UNSAFE_REUSE_SECONDS,
    Conn,
    Idle,
    answer_error,
    cause,
    may_resend,
    prepare,
    ssl_context,
    unreachable,
)
from ._protocol import HubRequest, HubResponse
from ._streaming import Waits, broke_off, feed, feed_head, head_read, prepare_stream
from .config import Config

__all__ = ["AsyncDriver"]

log = logging.getLogger("hubauth")

T = TypeVar("T")
_RECV = 256 * 1024


class _NoAnswer(Exception):
    """A reused connection ended before the Hub sent one byte: safe to send again."""


class _TLS:
    """TLS over a non-blocking socket, through memory buffers (the loop does the I/O)."""

    __slots__ = ("incoming", "obj", "outgoing")

    def __init__(self, ctx: ssl.SSLContext, host: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=host)

    def pending(self) -> int:
        return self.obj.pending() + self.incoming.pending


class _Pool:
    """One loop's connections to one endpoint: the idle ones, and how many are in use; the
    two together never exceed :data:`MAX_CONNECTIONS`.
    """

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.idle = Idle()
        self.in_use = 0  # connections lent out, or slots reserved for connections opening
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.sweeping = False

    def wake(self) -> None:
        """Let the longest-waiting request try again (a connection or a slot is free)."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def sweep(self) -> None:
        """Close idle connections that expired or that the Hub closed (runs on the loop)."""
        self.sweeping = False
        if self.idle.sweep():
            self.schedule_sweep(asyncio.get_running_loop())
        self.wake()

    def schedule_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.sweeping:
            self.sweeping = True
            loop.call_later(IDLE_SECONDS, self.sweep)


class _LoopPools:
    """Every pool of one event loop. Holds no reference to the loop itself, so the loop
    can be collected (and its sockets closed by a finalizer) like any other object.
    """

    def __init__(self) -> None:
        self.pools: dict[Endpoint, _Pool] = {}
        self.closed = False
        self.guard: AsyncIterator[None] | None = None

    def close(self) -> None:
        self.closed = True
        for pool in self.pools.values():
            pool.idle.close()


async def _shutdown_guard(pools: _LoopPools) -> AsyncIterator[None]:
    """An async generator the loop closes in ``shutdown_asyncgens()`` (as ``asyncio.run``
    does on its way out): then this loop's idle sockets are closed, while it still runs.
    """
    try:
        yield
    finally:
        pools.close()


class AsyncDriver:
    """Non-blocking HTTP to the Hub on the running event loop; a bounded pool per loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        weakref.finalize(self, _close_all, self._loops)

    async def _pools(self, loop: asyncio.AbstractEventLoop) -> _LoopPools:
        pools = self._loops.get(loop)
        if pools is not None and not pools.closed:
            return pools
        with self._lock:
            for other, old in list(self._loops.items()):
                if other.is_closed():  # a loop closed without shutting down: close its sockets
                    old.close()
                    del self._loops[other]
            pools = self._loops[loop] = _LoopPools()
        weakref.finalize(loop, pools.close)
        if not getattr(loop, "_asyncgens_shutdown_called", False):
            guard = _shutdown_guard(pools)
            await guard.__anext__()  # started on this loop: registered for its shutdown
            # The loop keeps its guard alive (the guard refers to the loop, so the pools must
            # not hold it, or the loop could never be collected and finalized).
            try:
                guards = loop.__dict__.setdefault("_hubauth_guards", [])
                guards.append(guard)
            except AttributeError:  # a loop without a __dict__ (uvloop): the pools keep it
                pools.guard = guard
        return pools

    async def send(self, req: HubRequest) -> HubResponse:
        cfg = self.config
        ep, data = prepare(req)
        loop = asyncio.get_running_loop()
        pools = self._loops.get(loop)
        if pools is None or pools.closed:
            pools = await self._pools(loop)
        pool = pools.pools.get(ep)
        if pool is None:
            pool = pools.pools[ep] = _Pool(ep)
        within = IDLE_SECONDS if req.idempotent else UNSAFE_REUSE_SECONDS
        conn = await self._acquire(loop, pool, req, within, _deadline(loop, cfg.request_timeout))
        if conn is not None:
            try:
                return await self._exchange(loop, pool, req, conn, data)
            except _NoAnswer:  # (only ever for a request that is safe to send twice)
                log.debug("the Hub closed a kept-alive connection; sending again on a new one")
        conn = await self._connect(loop, pool, req)
        return await self._exchange(loop, pool, req, conn, data)

    async def _acquire(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: _Pool,
        req: HubRequest,
        within: float,
        deadline: float | None,
    ) -> Conn | None:
        """An idle usable connection, or None with a slot reserved for a new one; waits
        (until the deadline) while the pool is at its bound.
        """
        while True:
            conn = pool.idle.take(pool.ep, within)
            if conn is not None:
                pool.in_use += 1
                return conn
            if pool.in_use + pool.idle.count(pool.ep) < MAX_CONNECTIONS:
                pool.in_use += 1
                return None
            # At the bound. Idle connections left are too old for this request: close one
            # to open a new connection in its place.
            oldest = pool.idle.pop_oldest(pool.ep)
            if oldest is not None:
                oldest.close()
                pool.in_use += 1
                return None
            fut: asyncio.Future[None] = loop.create_future()
            pool.waiters.append(fut)
            try:
                await _within(fut, deadline, loop)
            except TimeoutError:
                raise unreachable(
                    req.url,
                    f"no free connection within {self.config.request_timeout:g}s "
                    f"(request_timeout; {MAX_CONNECTIONS} requests to the Hub in flight)",
                    self.config,
                ) from None
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    pool.wake()  # we were woken but will not use it: pass it on
                raise

    def _release(self, pool: _Pool, conn: Conn | None, keep: bool) -> None:
        """Give back a connection (kept for reuse if ``keep``, else closed) or a reserved
        slot (``conn`` None), and wake a waiting request.
        """
        pool.in_use -= 1
        if conn is not None:
            if keep and pool.idle.put(conn):
                pool.schedule_sweep(asyncio.get_running_loop())
            else:
                conn.close()
        pool.wake()

    async def _connect(self, loop: asyncio.AbstractEventLoop, pool: _Pool, req: HubRequest) -> Conn:
        try:
            return await self._new_conn(loop, pool.ep, req)
        except BaseException:
            self._release(pool, None, keep=False)
            raise

    async def _new_conn(
        self, loop: asyncio.AbstractEventLoop, ep: Endpoint, req: HubRequest
    ) -> Conn:
        """A new connection to ``ep`` within ``connect_timeout`` (nothing left open on failure)."""
        cfg = self.config
        holder: list[socket.socket] = []
        try:
            tls = await _within(self._open(loop, ep, holder), _deadline(loop, cfg.connect_timeout))
        except BaseException as e:
            for sock in holder:
                sock.close()
            if isinstance(e, OSError):
                raise unreachable(req.url, cause(e, ep, cfg, connecting=True), cfg) from None
            raise
        return Conn(ep, holder[-1], tls)

    async def _open(
        self, loop: asyncio.AbstractEventLoop, ep: Endpoint, holder: list[socket.socket]
    ) -> _TLS | None:
        """Connect a non-blocking socket to ``ep`` (appended to ``holder`` as soon as it
        exists, so the caller can close it whatever happens), with its TLS handshake.
        """
        if ep.unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            holder.append(sock)
            sock.setblocking(False)
            await loop.sock_connect(sock, ep.path)
        else:
            error: OSError | None = None
            for family, address in await _addresses(loop, ep):
                sock = socket.socket(family, socket.SOCK_STREAM)
                holder.append(sock)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, address)
                    break
                except OSError as e:
                    error = e
                    holder.pop().close()
            else:
                raise error or OSError("no address")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not ep.tls:
            return None
        if self._ssl is None:
            self._ssl = ssl_context(self.config)
        tls = _TLS(self._ssl, ep.host)
        while True:
            try:
                tls.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await _flush(loop, sock, tls)
                data = await loop.sock_recv(sock, _RECV)
                if not data:
                    raise ConnectionResetError("the Hub closed the connection during TLS") from None
                tls.incoming.write(data)
        await _flush(loop, sock, tls)
        return tls

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: _Pool,
        req: HubRequest,
        conn: Conn,
        data: bytes,
    ) -> HubResponse:
        """Send ``data`` on ``conn`` and read the answer within ``request_timeout``; the
        connection goes back to the pool if it may carry another request, else it is closed.
        """
        cfg = self.config
        parser = ResponseParser()
        try:
            await _within(_talk(loop, conn, data, parser), _deadline(loop, cfg.request_timeout))
        except BaseException as e:
            conn.close()
            if may_resend(e, req, conn, parser.received):
                raise _NoAnswer from None  # the slot stays reserved for the new connection
            self._release(pool, None, keep=False)
            error = answer_error(e, req, conn.ep, cfg)
            if error is None:
                raise
            raise error from None
        conn.uses += 1
        self._release(pool, conn, keep=parser.keep_alive)
        return HubResponse(parser.status, parser.headers, bytes(parser.body))

    @contextlib.asynccontextmanager
    async def stream(
        self, req: HubRequest, timeout: float | None = None
    ) -> AsyncIterator[tuple[HubResponse, AsyncIterator[bytes]]]:
        """The async twin of :meth:`SyncDriver.stream <hubauth._sync.SyncDriver.stream>`:
        ``(head, chunks)`` on a connection of its own, closed as soon as the reader stops.
        """
        ep, data = prepare_stream(req)
        loop = asyncio.get_running_loop()
        waits = Waits(self.config, req, timeout, loop.time())
        conn = await self._new_conn(loop, ep, req)
        # Closes the socket when the loop is collected, should it be closed without
        # shutting down its async generators (asyncio.run does; then they close it).
        closer = weakref.finalize(loop, conn.close)
        parser = ResponseParser(max_body=None)
        broken = None
        try:
            try:
                await _within(_write(loop, conn, data), _until(loop, waits.head(loop.time())))
                while broken is None and not head_read(parser):
                    wait = _until(loop, waits.head(loop.time()))
                    broken = feed_head(parser, await _within(_read(loop, conn), wait, loop))
            except BaseException as e:
                error = waits.error(e, streaming=False) or answer_error(e, req, ep, self.config)
                if error is None:
                    raise
                raise error from None
            if parser.status != 200:
                yield HubResponse(parser.status, parser.headers, bytes(parser.body)), _none()
            else:
                head = HubResponse(200, parser.headers, b"")
                yield head, _chunks(loop, req, conn, parser, waits, broken, closer)
        finally:
            closer()

    def close(self) -> None:
        """Close every loop's idle connections (the driver stays usable)."""
        _close_all(self._loops)


async def _chunks(
    loop: asyncio.AbstractEventLoop,
    req: HubRequest,
    conn: Conn,
    parser: ResponseParser,
    waits: Waits,
    broken: ProtocolError | None,
    closer: Callable[[], object],
) -> AsyncIterator[bytes]:
    """A stream's body as it arrives; it ends where the answer ends or breaks off."""
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
                wait = _until(loop, waits.next(loop.time()))
                feed(parser, await _within(_read(loop, conn), wait, loop))
            except (OSError, ProtocolError) as e:
                error = waits.error(e, streaming=True)
                if error is not None:
                    raise error from None
                broke_off(req, e)  # (cut mid-chunk, reset, garbled framing)
                ended = True
    finally:
        closer()  # closes the connection (at once, with no await: safe in any finalizer)


async def _none() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


async def _talk(
    loop: asyncio.AbstractEventLoop, conn: Conn, data: bytes, parser: ResponseParser
) -> None:
    """Send one request and feed the answer to ``parser`` until it is complete."""
    await _write(loop, conn, data)
    while True:
        chunk = await _read(loop, conn)
        if not chunk:
            parser.feed_eof()
            return
        if parser.feed(chunk):
            return


async def _write(loop: asyncio.AbstractEventLoop, conn: Conn, data: bytes) -> None:
    if conn.tls is None:
        await loop.sock_sendall(conn.sock, data)
    else:
        conn.tls.obj.write(data)
        await _flush(loop, conn.sock, conn.tls)


async def _read(loop: asyncio.AbstractEventLoop, conn: Conn) -> bytes:
    """The next bytes the Hub sent on ``conn`` (decrypted); ``b""`` once it has closed."""
    sock, tls = conn.sock, cast("_TLS | None", conn.tls)
    if tls is None:
        return await loop.sock_recv(sock, _RECV)
    while True:
        try:
            return tls.obj.read(_RECV)
        except ssl.SSLWantReadError:
            await _flush(loop, sock, tls)
            received = await loop.sock_recv(sock, _RECV)
            if received:
                tls.incoming.write(received)
            else:
                tls.incoming.write_eof()
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""  # the end of the stream (with or without a TLS close_notify)


async def _flush(loop: asyncio.AbstractEventLoop, sock: socket.socket, tls: _TLS) -> None:
    data = tls.outgoing.read()
    if data:
        await loop.sock_sendall(sock, data)


async def _addresses(
    loop: asyncio.AbstractEventLoop, ep: Endpoint
) -> list[tuple[int, tuple[Any, ...]]]:
    """Where ``ep``'s host is: an address literal as it is, a name through the resolver."""
    try:
        ip = ipaddress.ip_address(ep.host)
    except ValueError:
        infos = await loop.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM)
        return [(family, address) for family, _, _, _, address in infos]
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, (ep.host, ep.port))]


def _deadline(loop: asyncio.AbstractEventLoop, seconds: float) -> float | None:
    return loop.time() + seconds if seconds else None


def _until(loop: asyncio.AbstractEventLoop, wait: float | None) -> float | None:
    return None if wait is None else loop.time() + wait


async def _within(
    aw: Awaitable[T], deadline: float | None, loop: asyncio.AbstractEventLoop | None = None
) -> T:
    """Await ``aw`` until the loop time ``deadline`` (None: no limit); TimeoutError after."""
    if deadline is None:
        return await aw
    if sys.version_info >= (3, 11):
        async with asyncio.timeout_at(deadline):
            return await aw
    loop = loop or asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(aw, max(deadline - loop.time(), 0))
    except asyncio.TimeoutError:
        raise TimeoutError from None


def _close_all(loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools]) -> None:
    for pools in list(loops.values()):
        for pool in pools.pools.values():
            pool.idle.close(reopen=True)
