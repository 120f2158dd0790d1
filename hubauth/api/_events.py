"""A spawn's progress stream (``text/event-stream``) read with no I/O: bytes in, events out.

The Hub sends ``data: {json}`` events separated by blank lines, and bare newlines as
keep-alives every few seconds; the last event has ``ready`` or ``failed``. A stream that
ends inside an event, or before the last one, is an error: the spawn's outcome is unknown.
"""

from __future__ import annotations

import json
from typing import cast

from ..errors import HubResponseError
from ._models import ProgressEvent

__all__ = ["MAX_EVENT_BYTES", "EventParser", "Progress"]

#: An event larger than this is refused (the Hub's are a few hundred bytes).
MAX_EVENT_BYTES = 1024 * 1024


class EventParser:
    """Server-sent events: feed chunks split anywhere, get each event's ``data`` text.

    Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; ``data`` lines of one event are joined with
    ``\\n``; comments (``:``) and other fields are skipped; a blank line ends an event.
    """

    def __init__(self, url: str = "") -> None:
        self.url = url
        self._buffer = b""
        self._data: list[str] = []
        self._size = 0
        self._cr = False  # the last chunk ended in \r: a \n starting the next belongs to it

    @property
    def partial(self) -> bool:
        """Whether an event was begun and not finished."""
        return bool(self._data or self._buffer.strip())

    def feed(self, chunk: bytes) -> list[str]:
        if not chunk:
            return []
        if self._cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._cr = chunk.endswith(b"\r")
        self._buffer += chunk
        events: list[str] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line, self._buffer = self._buffer[:end], self._buffer[end + skip :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > MAX_EVENT_BYTES:
            raise HubResponseError(
                f"the progress stream at {self.url} sent an event over {MAX_EVENT_BYTES} bytes",
                url=self.url,
                status=200,
            )
        return events

    def _line(self, raw: bytes) -> str | None:
        if not raw:
            if not self._data:
                return None
            event, self._data, self._size = "\n".join(self._data), [], 0
            return event
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if not colon or not name:  # a field without value, or a comment
            return None
        if name == "data":
            value = value[1:] if value.startswith(" ") else value
            self._data.append(value)
            self._size += len(raw)
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Where the first line of ``buffer`` ends and how long its end is, if it is complete.

    A ``\\r`` at the very end may be the first half of ``\\r\\n``, but it ends the line
    either way: a ``\\n`` that follows in the next chunk is dropped by :meth:`feed`.
    """
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, 1
    return cr, 2 if buffer[cr + 1 : cr + 2] == b"\n" else 1


class Progress:
    """A spawn's events from the stream's bytes, and whether the stream ended properly."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.parser = EventParser(url)
        self.done = False

    def feed(self, chunk: bytes) -> list[ProgressEvent]:
        events: list[ProgressEvent] = []
        for text in self.parser.feed(chunk):
            if self.done:
                break
            try:
                event = json.loads(text)
            except ValueError:
                raise self._error(f"an event that is not JSON ({text[:100]!r})") from None
            if not isinstance(event, dict):
                raise self._error(f"an event that is not a JSON object ({text[:100]!r})")
            events.append(cast(ProgressEvent, event))
            if event.get("ready") or event.get("failed"):
                self.done = True
        return events

    def end(self) -> None:
        """The stream closed: fine after the last event, else the error saying where it broke."""
        if self.done:
            return
        if self.parser.partial:
            raise self._error("a stream that stopped in the middle of an event")
        raise self._error("a stream that ended before the spawn was ready or had failed")

    def _error(self, what: str) -> HubResponseError:
        return HubResponseError(
            f"the progress stream at {self.url} answered {what}; the spawn's outcome is "
            "unknown: read the server's state with api.server()",
            url=self.url,
            status=200,
        )
