"""What both drivers share about connections to the Hub: the TLS context, the idle pool and
its checks, and the errors that say why the Hub could not be reached.

A connection is a socket (TCP, TLS or unix) that carried a request and may carry the next.
Idle ones wait in a bounded :class:`Idle` pool; before one is used again it must be young
enough and show nothing to read (a readable idle socket means the Hub closed it, or sent
bytes nobody asked for). Sockets are only ever closed here, by whoever holds them.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import stat
import threading
import time
from typing import Any

from ._http import (
    BodyTooLarge,
    Endpoint,
    IncompleteResponse,
    ProtocolError,
    encode_request,
    endpoint,
)
from ._protocol import MAX_BODY_BYTES, HubRequest
from .config import Config
from .errors import ConfigError, HubAuthError, HubResponseError, HubUnavailable

__all__ = [
    "IDLE_SECONDS",
    "MAX_CONNECTIONS",
    "UNSAFE_REUSE_SECONDS",
    "Conn",
    "Idle",
    "answer_error",
    "cause",
    "may_resend",
    "not_http",
    "prepare",
    "ssl_context",
    "too_large",
    "unreachable",
]

#: Connections one pool keeps to one Hub endpoint (the async driver: open at once, per loop).
MAX_CONNECTIONS = 100
#: An idle connection older than this is closed rather than used again.
IDLE_SECONDS = 15.0
#: A request that must not be sent twice (the OAuth code exchange) only goes on a new
#: connection, or on one the Hub answered on this recently.
UNSAFE_REUSE_SECONDS = 1.0

_POLL_EVENTS = getattr(select, "POLLIN", 1) | getattr(select, "POLLPRI", 2)


def unreachable(url: str, cause: str, config: Config) -> HubUnavailable:
    """The error for a Hub that could not be reached, with the likely fix."""
    where = url.split("?", 1)[0]
    return HubUnavailable(
        f"could not reach the Hub at {where}: {cause}. Is the Hub running, and is "
        f"JUPYTERHUB_API_URL ({config.api_url}) reachable from this service?",
        url=url,
        setting="api_url",
    )


def too_large(url: str) -> HubResponseError:
    return HubResponseError(
        f"the Hub at {url.split('?', 1)[0]} answered with a body over {MAX_BODY_BYTES} bytes; "
        "is JUPYTERHUB_API_URL the Hub's API?",
        url=url,
        setting="api_url",
    )


def not_http(url: str, detail: str, config: Config) -> HubResponseError:
    return HubResponseError(
        f"the Hub at {url.split('?', 1)[0]} answered something that is not HTTP/1.1 "
        f"({detail}); is JUPYTERHUB_API_URL ({config.api_url}) the Hub's API, with the "
        "right scheme (http, https or http+unix)?",
        url=url,
        setting="api_url",
    )


def prepare(req: HubRequest) -> tuple[Endpoint, bytes]:
    """Where ``req`` goes and its bytes; a URL no request can be sent to is a ConfigError."""
    try:
        ep, target = endpoint(req.url)
        return ep, encode_request(req, ep, target)
    except ValueError as e:
        raise ConfigError(f"cannot send {req.method} {req.url}: {e}", setting="api_url") from None


def may_resend(e: BaseException, req: HubRequest, conn: Conn, received: int) -> bool:
    """Whether a failed request may go again on a new connection: only one that is safe to
    send twice, whose reused connection ended before the Hub sent a single byte (the Hub
    closed it while idle). Never after a timeout, never after any answer byte.
    """
    return (
        conn.uses > 0
        and received == 0
        and req.idempotent
        and isinstance(e, OSError | IncompleteResponse)
        and not isinstance(e, TimeoutError)
    )


def answer_error(
    e: BaseException, req: HubRequest, ep: Endpoint, config: Config
) -> HubAuthError | None:
    """The error to raise for a failure while sending or reading an answer (None: not ours,
    re-raise it as it is).
    """
    if isinstance(e, BodyTooLarge):
        return too_large(req.url)
    if isinstance(e, ProtocolError) and not isinstance(e, IncompleteResponse):
        return not_http(req.url, str(e), config)
    if isinstance(e, OSError | IncompleteResponse):
        return unreachable(req.url, cause(e, ep, config, connecting=False), config)
    return None


def cause(e: BaseException, ep: Endpoint, config: Config, *, connecting: bool) -> str:
    """Why a connection to ``ep`` failed, in words that point at the fix."""
    tls_hint = "check JUPYTERHUB_SSL_CLIENT_CA, _CERTFILE and _KEYFILE"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS failed ({e.verify_message or 'certificate verify failed'}); {tls_hint}"
    if isinstance(e, ssl.SSLError):
        return f"TLS failed ({e.reason or type(e).__name__}); {tls_hint}"
    if isinstance(e, TimeoutError):
        if connecting:
            return f"no connection within {config.connect_timeout:g}s (connect_timeout)"
        return f"no answer within {config.request_timeout:g}s (request_timeout)"
    if isinstance(e, IncompleteResponse):
        return str(e)
    if ep.unix:
        found = _unix_cause(e, ep.path)
        if found:
            return found
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "connection reset"
    if isinstance(e, socket.gaierror):
        return f"host name {ep.host!r} not found"
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return type(e).__name__


def _unix_cause(e: BaseException, path: str) -> str:
    if isinstance(e, FileNotFoundError):
        return (
            f"the unix socket {path} does not exist (is the Hub running, with "
            "JupyterHub.hub_bind_url naming this path?)"
        )
    if isinstance(e, PermissionError):
        return (
            f"permission denied on the unix socket {path}: this service's user may not "
            "connect to it (the Hub sets its mode with JupyterHub.hub_socket_mode)"
        )
    if isinstance(e, NotADirectoryError):
        return f"a part of the path {path} is not a directory"
    if isinstance(e, ConnectionRefusedError):
        try:
            is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError:
            is_socket = True
        if not is_socket:
            return f"{path} is not a unix socket"
        return f"connection refused on the unix socket {path} (no process listens on it)"
    if isinstance(e, OSError) and "too long" in str(e).lower():
        return f"the unix socket path {path} is too long"
    return ""


def ssl_context(config: Config) -> ssl.SSLContext:
    """The client TLS context for the Hub: its CA (or the system's), the client certificate."""
    ctx = ssl.create_default_context(cafile=config.client_ca or None)
    if config.certfile:
        ctx.load_cert_chain(config.certfile, config.keyfile or None)
    return ctx


def readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read (end of stream, or stray bytes)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, _POLL_EVENTS)
        return bool(poller.poll(0))
    ready, _, _ = select.select([fd], [], [], 0)  # platforms without poll
    return bool(ready)


class Conn:
    """One open connection: its socket, and for the async driver's TLS its TLS state."""

    __slots__ = ("ep", "last_used", "sock", "tls", "uses")

    def __init__(self, ep: Endpoint, sock: socket.socket, tls: Any = None) -> None:
        self.ep = ep
        self.sock = sock
        self.tls = tls  # an object with pending() -> int (async TLS), or None
        self.last_used = time.monotonic()
        self.uses = 0  # answers it has carried: > 0 means "reused"

    def usable(self, now: float, within: float) -> bool:
        """Young enough, not closed by the Hub, nothing unread: fit to send on again."""
        if now - self.last_used > within:
            return False
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        if self.tls is not None and self.tls.pending():
            return False
        return not readable(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Idle:
    """Idle connections per endpoint, newest first out, at most ``limit`` per endpoint.

    Thread-safe; forgets (and closes) what a parent process left behind after a fork, so two
    processes never share a connection.
    """

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self._conns: dict[Endpoint, list[Conn]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.closed = False

    def take(self, ep: Endpoint, within: float = IDLE_SECONDS) -> Conn | None:
        """The newest usable idle connection to ``ep`` if it was used at most ``within``
        seconds ago; unusable ones met on the way are closed, older usable ones stay.
        """
        drop: list[Conn] = []
        found = None
        now = time.monotonic()
        with self._lock:
            self._after_fork()
            conns = self._conns.get(ep)
            while conns:
                conn = conns[-1]
                if not conn.usable(now, IDLE_SECONDS):
                    drop.append(conns.pop())
                    continue
                if now - conn.last_used <= within:
                    found = conns.pop()
                break
        for conn in drop:
            conn.close()
        return found

    def pop_oldest(self, ep: Endpoint) -> Conn | None:
        """The idle connection to ``ep`` unused the longest (to close it, freeing its slot)."""
        with self._lock:
            conns = self._conns.get(ep)
            return conns.pop(0) if conns else None

    def put(self, conn: Conn) -> bool:
        """Keep ``conn`` for reuse; False (and the caller closes it) when full or closed."""
        conn.last_used = now = time.monotonic()
        with self._lock:
            self._after_fork()
            if self.closed:
                return False
            conns = self._conns.setdefault(conn.ep, [])
            # Drop the expired ones from the old end while we are here.
            expired = [c for c in conns if now - c.last_used > IDLE_SECONDS]
            if expired:
                conns[:] = [c for c in conns if c not in expired]
            if len(conns) >= self.limit:
                expired.append(conn)
                kept = False
            else:
                conns.append(conn)
                kept = True
        for c in expired:
            if c is not conn:
                c.close()
        return kept

    def count(self, ep: Endpoint | None = None) -> int:
        with self._lock:
            if ep is not None:
                return len(self._conns.get(ep, ()))
            return sum(len(c) for c in self._conns.values())

    def sweep(self) -> int:
        """Close expired and unusable idle connections; return how many are left."""
        now = time.monotonic()
        drop: list[Conn] = []
        with self._lock:
            for conns in self._conns.values():
                keep = [c for c in conns if c.usable(now, IDLE_SECONDS)]
                drop.extend(c for c in conns if c not in keep)
                conns[:] = keep
            left = sum(len(c) for c in self._conns.values())
        for conn in drop:
            conn.close()
        return left

    def close(self, *, reopen: bool = False) -> None:
        """Close every idle connection; ``reopen`` keeps the pool usable afterwards."""
        with self._lock:
            conns = [c for group in self._conns.values() for c in group]
            self._conns.clear()
            self.closed = not reopen
        for conn in conns:
            conn.close()

    def _after_fork(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            # The parent's sockets: closing our copy of each leaves the parent's intact.
            for group in self._conns.values():
                for conn in group:
                    conn.close()
            self._conns.clear()
            self._pid = pid
