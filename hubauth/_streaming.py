"""What both drivers share about streamed answers (a spawn's progress events), with no I/O:
the request's bytes, how long each wait for bytes may last, and what a failure means.

A stream is a GET on a connection of its own, closed when the reader stops and never
pooled. Its head (and an error answer's whole body) must come within ``request_timeout``,
as any answer; then each wait for more bytes may last ``request_timeout`` (the Hub sends a
keep-alive every 8 s), and the whole stream at most the caller's ``timeout``. A stream that
breaks off ends its pieces: the reader of the events says what that means.
"""

from __future__ import annotations

import dataclasses
import logging

from ._http import Endpoint, ProtocolError, ResponseParser
from ._pool import prepare, unreachable
from ._protocol import MAX_BODY_BYTES, HubRequest
from .config import Config
from .errors import HubUnavailable

__all__ = ["Waits", "broke_off", "feed", "feed_head", "head_read", "prepare_stream"]

log = logging.getLogger("hubauth")


def prepare_stream(req: HubRequest) -> tuple[Endpoint, bytes]:
    """Where a stream's request goes, and its bytes: ``Connection: close``, since its
    connection carries nothing after it.
    """
    return prepare(dataclasses.replace(req, headers={**req.headers, "Connection": "close"}))


def head_read(parser: ResponseParser) -> bool:
    """Whether a stream's head is read: a 200's head (the stream's body follows), or an
    error answer whole (its body bounded as any answer's).
    """
    if not parser.has_head:
        return False
    if parser.status == 200:
        return True
    if parser.max_body is None:
        parser.limit(MAX_BODY_BYTES)
    return parser.done


def feed(parser: ResponseParser, data: bytes) -> None:
    """Feed what a read returned: bytes, or ``b""`` for the end of the connection."""
    if data:
        parser.feed(data)
    else:
        parser.feed_eof()


def feed_head(parser: ResponseParser, data: bytes) -> ProtocolError | None:
    """:func:`feed` while reading the head. Garbled framing in body bytes that came along
    with a 200's head is returned, not raised: the stream has begun, and ends at once.
    """
    try:
        feed(parser, data)
    except ProtocolError as e:
        if parser.has_head and parser.status == 200:
            return e
        raise
    return None


class Waits:
    """The time a stream may wait for its next bytes, on the driver's own clock.

    :meth:`head` and :meth:`next` give the seconds the next read may wait (None: no limit),
    or raise ``TimeoutError`` when none is left; :meth:`error` words a timeout.
    """

    __slots__ = ("_end_by", "_head_by", "_request", "capped", "config", "req", "timeout")

    def __init__(self, config: Config, req: HubRequest, timeout: float | None, now: float):
        self.config = config
        self.req = req
        self.timeout = timeout
        self._request = config.request_timeout or None
        self._head_by = now + self._request if self._request else None
        self._end_by = now + timeout if timeout is not None else None
        self.capped = False  # the last wait given was cut short by ``timeout``

    def head(self, now: float) -> float | None:
        """The wait for more of the head (or of an error answer): all within request_timeout."""
        return self._wait(now, self._head_by)

    def next(self, now: float) -> float | None:
        """The wait for the stream's next bytes: request_timeout each time."""
        return self._wait(now, now + self._request if self._request else None)

    def _wait(self, now: float, by: float | None) -> float | None:
        end = self._end_by
        self.capped = end is not None and (by is None or end <= by)
        if self.capped:
            by = end
        if by is None:
            return None
        left = by - now
        if left <= 0:
            raise TimeoutError
        return left

    def error(self, e: BaseException, *, streaming: bool) -> HubUnavailable | None:
        """The error for a timeout (None: not one this stream words itself)."""
        if not isinstance(e, TimeoutError):
            return None
        url, cfg = self.req.url, self.config
        if self.capped:
            return unreachable(url, f"the stream lasted over {self.timeout:g}s (timeout=)", cfg)
        if streaming:
            return unreachable(
                url,
                f"nothing arrived on the stream within {cfg.request_timeout:g}s "
                "(request_timeout; the Hub sends a keep-alive every 8s)",
                cfg,
            )
        return None


def broke_off(req: HubRequest, e: BaseException) -> None:
    """Log why a stream ended early (its reader decides whether that is an error)."""
    log.debug(
        "the stream at %s broke off: %s", req.url.split("?", 1)[0], str(e) or type(e).__name__
    )
