"""A Hub at the byte level, for transport tests: it answers, or misbehaves, exactly as told.

``RawHub`` listens on 127.0.0.1 (a free port) or on a unix socket, serving each connection
from a thread of its own: it reads HTTP/1.1 requests one after another on the connection,
records each one, and asks its ``handler`` what to do: answer (:class:`Reply`), send raw
bytes and then keep, close or reset the connection (:class:`Raw`), close or reset without a
word, or wait. It can close its idle connections, or restart (every connection dropped, the
same address listened on again), like a Hub that restarts. ``stop()`` leaves nothing open.

    with RawHub(lambda req: Reply(json={"name": "alice", "scopes": []})) as hub:
        HubAuth(api_url=hub.api_url, ...)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "Close",
    "Hang",
    "Raw",
    "RawHub",
    "Reply",
    "Request",
    "Reset",
    "Route",
    "Routes",
]


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    conn: int  # which connection (1, 2, ... in order of acceptance) carried it

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.target.partition("?")[2])


@dataclass(frozen=True)
class Reply:
    """An ordinary answer, written in one piece, keeping the connection open."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # say "Connection: close" and close after

    def encode(self) -> bytes:
        body = self.body
        headers = dict(self.headers)
        if self.json is not None:
            body = json.dumps(self.json).encode()
            headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(body)))
        if self.close:
            headers["Connection"] = "close"
        head = f"HTTP/1.1 {self.status} X\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        return head.encode("latin-1") + b"\r\n" + body


@dataclass(frozen=True)
class Raw:
    """Send ``data`` (``pause`` seconds between its ``pieces``), then ``then``: "keep" the
    connection for the next request, "close" it, "reset" it, or "hang" (wait until stopped).
    """

    data: bytes
    then: str = "keep"
    pieces: int = 1
    pause: float = 0.0


@dataclass(frozen=True)
class Close:
    """Close the connection without answering (the client sees the end of the stream)."""


@dataclass(frozen=True)
class Reset:
    """Drop the connection with a TCP reset, without answering."""


@dataclass(frozen=True)
class Hang:
    """Answer nothing for ``seconds`` (or until the hub stops), then close."""

    seconds: float = 60.0


Action = Reply | Raw | Close | Reset | Hang
Handler = Callable[[Request], Action]


def _default(req: Request) -> Action:
    return Reply(404, json={"status": 404})


class RawHub:
    """See the module docstring. ``requests`` and ``accepted`` tell what happened."""

    def __init__(self, handler: Handler = _default, *, unix_path: str | None = None) -> None:
        self.handler = handler
        self.unix_path = unix_path
        self.requests: list[Request] = []
        self.accepted = 0
        self.port = 0
        self.max_open = 0  # most connections open at once
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: dict[int, socket.socket] = {}
        self._idle: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ addresses

    @property
    def origin(self) -> str:
        if self.unix_path:
            return "http+unix://" + urllib.parse.quote(self.unix_path, safe="")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.origin}/hub/api"

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> RawHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> RawHub:
        self._stopping.clear()
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.unix_path)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            self.port = listener.getsockname()[1]
        listener.listen(128)
        listener.settimeout(0.05)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait for every thread."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(10)
        self._threads = []
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    def restart(self) -> None:
        """Like a Hub restarting: every connection dropped, then the same address again."""
        self.stop()
        self.start()

    def close_idle(self) -> int:
        """Close the connections waiting for their next request (as a Hub's idle timeout
        would); return how many.
        """

        def settled() -> bool:  # every open connection is back waiting for a request
            with self._lock:
                return set(self._conns) <= self._idle

        self.wait_for(settled, 2)
        with self._lock:
            idle = [self._conns[i] for i in self._idle if i in self._conns]
        for conn in idle:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if not any(i in self._conns for i in self._idle):
                    break
            time.sleep(0.01)
        return len(idle)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # ------------------------------------------------------------------ serving

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                number = self.accepted
                self._conns[number] = conn
                self.max_open = max(self.max_open, len(self._conns))
            thread = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(0.05)
        buf = b""
        try:
            while not self._stopping.is_set():
                with self._lock:
                    self._idle.add(number)
                request, buf = self._read_request(conn, buf, number)
                with self._lock:
                    self._idle.discard(number)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                if not self._act(conn, self.handler(request)):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._idle.discard(number)
                self._conns.pop(number, None)
            conn.close()

    def _read_request(
        self, conn: socket.socket, buf: bytes, number: int
    ) -> tuple[Request | None, bytes]:
        while b"\r\n\r\n" not in buf:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            if buf == b"":
                with self._lock:
                    self._idle.discard(number)
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            buf += chunk
        body, buf = buf[:length], buf[length:]
        return Request(method, target, headers, body, number), buf

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stopping.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
        return b""

    def _act(self, conn: socket.socket, action: Action) -> bool:
        """Carry out ``action``; True if the connection carries on."""
        if isinstance(action, Reply):
            conn.sendall(action.encode())
            return not action.close
        if isinstance(action, Raw):
            size = max(1, -(-len(action.data) // action.pieces))
            for i in range(0, len(action.data), size):
                if i and action.pause:
                    self._stopping.wait(action.pause)
                conn.sendall(action.data[i : i + size])
            if action.then == "keep":
                return True
            if action.then == "reset":
                _reset(conn)
            elif action.then == "hang":
                self._stopping.wait(60)
            return False
        if isinstance(action, Reset):
            _reset(conn)
            return False
        if isinstance(action, Hang):
            self._stopping.wait(action.seconds)
        return False


def _reset(conn: socket.socket) -> None:
    if conn.family != socket.AF_UNIX:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextlib.contextmanager
def raw_hub(handler: Handler, *, unix_path: str | None = None) -> Iterator[RawHub]:
    with RawHub(handler, unix_path=unix_path) as hub:
        yield hub


@dataclass
class Route:
    """One scripted answer of :class:`Routes`, and how often it was given."""

    method: str
    path: str
    action: Action
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    json_body: Any = None
    call_count: int = 0

    def matches(self, req: Request) -> bool:
        if req.method != self.method or req.path != self.path:
            return False
        if self.query is not None and {k: v[-1] for k, v in req.query.items()} != self.query:
            return False
        if self.headers and any(req.headers.get(k.lower()) != v for k, v in self.headers.items()):
            return False
        return self.json_body is None or json.loads(req.body or b"null") == self.json_body


class Routes:
    """Answers scripted per method and path, for a :class:`RawHub` handler: of the routes a
    request matches, the first not yet used answers, else the last one again. ``calls`` are
    the requests in order.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.calls: list[Request] = []
        self.api_url = ""  # the serving RawHub's, for whoever builds clients

    def add(
        self,
        method: str,
        path: str,
        action: Action | None = None,
        *,
        status: int = 200,
        json: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Route:
        route = Route(method, path, action or Reply(status, json=json), query, headers, json_body)
        self.routes.append(route)
        return route

    def __call__(self, req: Request) -> Action:
        self.calls.append(req)
        found = [r for r in self.routes if r.matches(req)]
        if not found:
            return Reply(404, json={"status": 404, "message": f"no route for {req.target}"})
        route = next((r for r in found if r.call_count == 0), found[-1])
        route.call_count += 1
        return route.action
