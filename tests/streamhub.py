"""A Hub that answers a progress stream byte by byte, as scripted, and watches the client.

``StreamHub(script)`` listens on 127.0.0.1 (a free port), on a unix socket, or with TLS.
For each connection it reads the request head (kept as raw bytes in ``heads``), asks
``script(head)`` for a :class:`Script`, and writes its parts: bytes, pauses (seconds), or
gates (a :class:`threading.Event` it waits for). Then it closes, resets, or keeps reading
until the client closes, and records that in ``peer_closed`` (one Event per connection), so
a test sees when the client let go of a stream.

    with StreamHub(lambda head: Script([chunked_head(), chunk(READY), LAST])) as hub:
        HubAPI(api_url=hub.api_url, ...).progress("a")
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["LAST", "Script", "StreamHub", "chunk", "head"]

Part = bytes | float | threading.Event

#: The last chunk of a chunked body.
LAST = b"0\r\n\r\n"


def head(status: int = 200, *, framing: str = "chunked", length: int = 0, **headers: str) -> bytes:
    """A status line and headers; ``framing``: "chunked", "length" (``length`` bytes) or
    "close" (the body ends when the connection does)."""
    lines = [f"HTTP/1.1 {status} X", "Content-Type: text/event-stream"]
    if framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    elif framing == "length":
        lines.append(f"Content-Length: {length}")
    else:
        lines.append("Connection: close")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes, extension: str = "") -> bytes:
    """``data`` as one chunk of a chunked body."""
    return f"{len(data):x}{extension}\r\n".encode() + data + b"\r\n"


@dataclass
class Script:
    """What to send on a connection, then ``then``: "close", "reset", or "wait" (read until
    the client closes)."""

    parts: Sequence[Part]
    then: str = "wait"


class StreamHub:
    """See the module docstring."""

    def __init__(
        self,
        script: Callable[[bytes], Script],
        *,
        unix_path: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = script
        self.unix_path = unix_path
        self.tls = tls
        self.heads: list[bytes] = []
        self.peer_closed: list[threading.Event] = []
        self.port = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def api_url(self) -> str:
        if self.unix_path:
            return "http+unix://" + urllib.parse.quote(self.unix_path, safe="") + "/hub/api"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hub/api"

    def __enter__(self) -> StreamHub:
        if self.unix_path:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.unix_path)
        else:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            self.port = listener.getsockname()[1]
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(10)
        if self._listener is not None:
            self._listener.close()
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Whether the client closed the latest connection (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                event = self.peer_closed[-1] if self.peer_closed else None
            if event is None:
                time.sleep(0.01)
            elif event.wait(0.05):
                return True
        return False

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, conn)

    def _serve(self, raw: socket.socket) -> None:
        closed = threading.Event()
        conn = raw
        try:
            if self.tls is not None:
                raw.settimeout(10)
                conn = self.tls.wrap_socket(raw, server_side=True)
            with self._lock:
                self._conns.append(conn)
                self.peer_closed.append(closed)
            conn.settimeout(0.05)
            data = b""
            while b"\r\n\r\n" not in data:
                piece = self._recv(conn)
                if not piece:
                    return
                data += piece
            request = data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
            with self._lock:
                self.heads.append(request)
            script = self.script(request)
            for part in script.parts:
                if isinstance(part, bytes):
                    conn.sendall(part)
                elif isinstance(part, threading.Event):
                    while not part.wait(0.05) and not self._stopping.is_set():
                        pass
                else:
                    self._stopping.wait(part)
            if script.then == "reset" and conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif script.then == "wait":
                while self._recv(conn):
                    pass  # whatever the client sends after its request: read until it closes
                if not self._stopping.is_set():
                    closed.set()
        except (OSError, ssl.SSLError):
            if not self._stopping.is_set():
                closed.set()  # a write failed or the read was reset: the client let go
        finally:
            conn.close()

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stopping.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLWantReadError:
                continue
        return b""
