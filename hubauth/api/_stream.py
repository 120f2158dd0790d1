"""Long-lived streamed GETs (a spawn's progress events), blocking and async.

Thin wrappers over the drivers' ``stream()`` (:mod:`hubauth._sync`, :mod:`hubauth._async`),
so a stream goes where every other call goes (TCP, TLS or ``http+unix://``) and fails in
the same words. Each stream has a connection of its own, closed as soon as the caller stops
reading; ``request_timeout`` bounds each wait for bytes (the Hub sends a keep-alive every
8 s), ``timeout`` the whole stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager

from .._async import AsyncDriver
from .._protocol import HubRequest, HubResponse
from .._sync import SyncDriver
from ..config import Config

__all__ = ["async_stream", "sync_stream"]


def sync_stream(
    config: Config, req: HubRequest, timeout: float | None = None
) -> AbstractContextManager[tuple[HubResponse, Iterator[bytes]]]:
    """``(head, chunks)``: the answer's status and headers (with the whole, bounded body
    when it is not a 200), and its body's chunks as they arrive."""
    return SyncDriver(config).stream(req, timeout)


def async_stream(
    config: Config, req: HubRequest, timeout: float | None = None
) -> AbstractAsyncContextManager[tuple[HubResponse, AsyncIterator[bytes]]]:
    """The async twin of :func:`sync_stream`."""
    return AsyncDriver(config).stream(req, timeout)
