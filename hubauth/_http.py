"""HTTP/1.1 to the Hub, with no I/O: where a URL points, a request's bytes, and a parser for
the answer.

Both drivers (:mod:`hubauth._sync`, :mod:`hubauth._async`) move bytes between a socket and
these functions, so framing, limits and keep-alive are decided once. The request target is
sent exactly as built (no normalisation of ``%2E`` or ``..``), and a parsed answer says
whether its connection may carry the next request.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ._protocol import MAX_BODY_BYTES, HubRequest

__all__ = [
    "MAX_HEAD_BYTES",
    "BodyTooLarge",
    "Endpoint",
    "IncompleteResponse",
    "ProtocolError",
    "ResponseParser",
    "encode_request",
    "endpoint",
    "unix_socket_path",
]

#: The status line and headers of an answer may take this many bytes at most.
MAX_HEAD_BYTES = 64 * 1024
_MAX_HEADERS = 100
_MAX_CHUNK_LINE = 1024
_UNIX_SCHEMES = ("http+unix", "unix+http")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_NO_BODY = frozenset({204, 304})


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.1 as hubauth reads it (the text says what is wrong)."""


class IncompleteResponse(ProtocolError):
    """The connection ended before the answer was complete; ``received`` bytes had come."""

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received


class BodyTooLarge(ProtocolError):
    """The answer's body is over the limit (declared or as it arrived)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a Hub URL's requests go: a TCP host and port (maybe TLS), or a unix socket."""

    scheme: str  # "http", "https" or "http+unix"
    host: str  # TCP host name or address (no brackets); "" for a unix socket
    port: int  # 0 for a unix socket
    path: str  # the unix socket's path; "" for TCP
    host_header: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        return f"unix socket {self.path}" if self.path else f"{self.host}:{self.port}"


def unix_socket_path(netloc: str) -> str:
    """The socket path an ``http+unix://`` URL's host part names (percent-encoded)."""
    return urllib.parse.unquote(netloc)


_endpoints: dict[str, Endpoint] = {}


def endpoint(url: str) -> tuple[Endpoint, str]:
    """The endpoint of ``url`` and the request target (path and query) to send there.

    Raises ``ValueError`` for a URL no request can be sent to. Endpoints are remembered per
    origin: a service talks to one Hub.
    """
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    target, _, _ = (slash + tail).partition("#")
    if not target.startswith("/"):
        target = "/" + target
    if not sep or not target.isascii() or not target.isprintable() or " " in target:
        raise ValueError(f"cannot send a request to {url.split('?', 1)[0]!r}")
    origin = url[: len(scheme) + 3 + len(netloc)]
    found = _endpoints.get(origin)
    if found is None:
        found = _parse_origin(scheme.lower(), netloc)
        if len(_endpoints) < 64:  # one or two Hubs per process; never grow without bound
            _endpoints[origin] = found
    return found, target


def _parse_origin(scheme: str, netloc: str) -> Endpoint:
    if scheme in _UNIX_SCHEMES:
        path = unix_socket_path(netloc)
        if not path.startswith("/") or "\0" in path:
            raise ValueError(f"http+unix URL names no absolute socket path: {netloc!r}")
        return Endpoint("http+unix", "", 0, path, "localhost")
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme {scheme!r}")
    parts = urllib.parse.urlsplit(f"{scheme}://{netloc}")
    host = parts.hostname
    if not host or "@" in netloc:
        raise ValueError(f"no host in {netloc!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    return Endpoint(scheme, host, port, "", netloc)


def encode_request(req: HubRequest, ep: Endpoint, target: str) -> bytes:
    """The bytes of ``req`` as an HTTP/1.1 request to ``ep`` (one write)."""
    lines = [f"{req.method} {target} HTTP/1.1", f"Host: {ep.host_header}"]
    for name, value in req.headers.items():
        if not value.isprintable() or not _TOKEN.fullmatch(name.encode("latin-1", "replace")):
            raise ValueError(f"header {name!r} cannot be sent (control characters)")
        lines.append(f"{name}: {value}")
    body = req.body
    if body is not None or req.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


# ---------------------------------------------------------------- the answer

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Reads one HTTP/1.1 answer from the bytes fed to it, in whatever pieces they come.

    ``feed()`` returns True once the answer is complete; ``feed_eof()`` says the peer closed.
    Afterwards: ``status``, ``headers`` (lower-case names; repeated ones joined by ", "),
    ``body``, and ``keep_alive`` (the connection may carry another request). ``received``
    counts every byte seen, so a driver knows whether the peer answered anything at all.
    Interim 1xx answers are skipped. Raises :class:`ProtocolError` (or a subclass).

    For a stream, ``max_body=None`` lifts the bound and :meth:`take` hands out the body's
    bytes as they are parsed; ``has_head`` says when ``status`` and ``headers`` are known.
    """

    __slots__ = (
        "_buf",
        "_left",
        "_state",
        "body",
        "headers",
        "keep_alive",
        "max_body",
        "received",
        "status",
    )

    def __init__(self, *, max_body: int | None = MAX_BODY_BYTES) -> None:
        self.max_body = max_body
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.keep_alive = False
        self.received = 0
        self._buf = bytearray()
        self._state = _HEAD
        self._left = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def has_head(self) -> bool:
        """Whether the final answer's status line and headers have been read."""
        return self._state != _HEAD

    def take(self) -> bytes:
        """The body's bytes parsed since the last call (a stream's next piece), cleared here."""
        piece = bytes(self.body)
        self.body.clear()
        return piece

    def limit(self, max_body: int) -> None:
        """Bound the body from now on (a streaming reader met an error answer and reads it
        whole); raises :class:`BodyTooLarge` if what is declared or read is already over.
        """
        self.max_body = max_body
        left = self._left if self._state in (_LENGTH, _CHUNK_DATA) else 0
        if len(self.body) + left > max_body:
            raise BodyTooLarge(f"the body is over {max_body} bytes")

    def feed(self, data: bytes) -> bool:
        """Take the next bytes from the connection; True when the answer is complete."""
        self.received += len(data)
        if self._state == _DONE:
            if data:
                self.keep_alive = False  # bytes nobody asked for: never reuse this connection
            return True
        self._buf += data
        while self._state != _DONE and self._step():
            pass
        if self._state == _DONE and self._buf:
            self.keep_alive = False
        return self._state == _DONE

    def feed_eof(self) -> None:
        """The peer closed the connection: the end of a close-delimited body, or an error."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
            self.keep_alive = False
            return
        if self._state != _DONE:
            raise IncompleteResponse(
                "the connection closed before a full answer"
                if self.received
                else "the connection closed without an answer",
                self.received,
            )

    # One step of the state machine; False when it needs more bytes.
    def _step(self) -> bool:
        state, buf = self._state, self._buf
        if state == _HEAD:
            if buf.startswith((b"\r", b"\n")):  # blank lines before a status line: skipped
                del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            end = _HEAD_END.search(buf, 0, MAX_HEAD_BYTES + 4)
            if end is None:
                if len(buf) > MAX_HEAD_BYTES:
                    raise ProtocolError(
                        f"the status line and headers exceed {MAX_HEAD_BYTES} bytes"
                    )
                if buf and not b"HTTP/1.".startswith(bytes(buf[:7])):
                    raise ProtocolError("the answer does not start with an HTTP/1.x status line")
                return False
            head = bytes(buf[: end.start()])
            del buf[: end.end()]
            self._read_head(head)
            return True
        if state == _LENGTH:
            take = min(self._left, len(buf))
            self.body += buf[:take]
            del buf[:take]
            self._left -= take
            if self._left == 0:
                self._state = _DONE
                return True
            return False
        if state == _UNTIL_CLOSE:
            self.body += buf
            buf.clear()
            self._check_size()
            return False
        if state == _CHUNK_DATA:
            take = min(self._left, len(buf))
            self.body += buf[:take]
            del buf[:take]
            self._left -= take
            if self._left == 0:
                self._state = _CHUNK_END
                return True
            return False
        # The line-based states: a chunk size, the CRLF after a chunk, trailer lines.
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > _MAX_CHUNK_LINE:
                raise ProtocolError("a chunked-encoding line is too long")
            return False
        line = bytes(buf[:nl]).rstrip(b"\r")
        del buf[: nl + 1]
        if state == _CHUNK_END:
            if line:
                raise ProtocolError("a chunk is longer than its declared size")
            self._state = _CHUNK_SIZE
        elif state == _CHUNK_SIZE:
            size_text = line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise ProtocolError("a chunk size is not a hexadecimal number")
            size = int(size_text, 16)
            if size == 0:
                self._state = _TRAILERS
            else:
                if self.max_body is not None and len(self.body) + size > self.max_body:
                    raise BodyTooLarge(f"the body is over {self.max_body} bytes")
                self._left = size
                self._state = _CHUNK_DATA
        elif not line:  # _TRAILERS: an empty line ends them
            self._state = _DONE
        return True

    def _read_head(self, head: bytes) -> None:
        lines = _LINE.split(head)
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not _VERSION.fullmatch(version) or len(code) != 3 or not code.isdigit():
            raise ProtocolError("the answer does not start with an HTTP/1.x status line")
        if len(rest) > 3 and rest[3:4] != b" ":
            raise ProtocolError("the status line is malformed")
        status = int(code)
        if len(lines) > _MAX_HEADERS + 1:
            raise ProtocolError(f"the answer has more than {_MAX_HEADERS} headers")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, colon, value = raw.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise ProtocolError("a header line is malformed")
            if b"\0" in value or b"\r" in value:
                raise ProtocolError("a header value holds control characters")
            text = value.strip(b" \t").decode("latin-1")
            key = name.decode("ascii").lower()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("the Hub switched protocols (101) unasked")
            return  # an interim answer: the real one follows
        self.status, self.headers = status, headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        if version == b"HTTP/1.1":
            self.keep_alive = "close" not in tokens
        else:
            self.keep_alive = "keep-alive" in tokens
        coding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in _NO_BODY:
            self._state = _DONE
        elif coding is not None:
            if length is not None:
                raise ProtocolError("the answer has both Content-Length and Transfer-Encoding")
            if coding.strip().lower() != "chunked":
                raise ProtocolError(f"unsupported Transfer-Encoding {coding[:40]!r}")
            self._state = _CHUNK_SIZE
        elif length is not None:
            values = {v.strip() for v in length.split(",")}
            value = values.pop() if len(values) == 1 else ""
            if not value.isdigit() or len(value) > 18:
                raise ProtocolError("the Content-Length header is not a number")
            self._left = int(value)
            if self.max_body is not None and self._left > self.max_body:
                raise BodyTooLarge(f"the body is over {self.max_body} bytes")
            self._state = _LENGTH if self._left else _DONE
        else:
            self.keep_alive = False  # the body ends when the connection does
            self._state = _UNTIL_CLOSE

    def _check_size(self) -> None:
        if self.max_body is not None and len(self.body) > self.max_body:
            raise BodyTooLarge(f"the body is over {self.max_body} bytes")
