"""The token cache: bounded, TTL'd, keyed by a SHA-256 of the token, with single flight.

A token itself is never a key, never logged. Users are kept ``cache_max_age`` seconds, the
Hub's "unknown token" answers only ``cache_negative_max_age``; errors are never stored.
Concurrent misses for one key share one load: threads on the sync path, tasks on the async
path.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from cachetools import TLRUCache

__all__ = ["TokenCache", "token_digest"]

Model = dict[str, Any]
CacheKey = tuple[str, str]
Loader = Callable[[], "Model | None"]
AsyncLoader = Callable[[], Awaitable["Model | None"]]

_MISS: Any = object()


def token_digest(token: str) -> str:
    """The SHA-256 hex digest standing for a token wherever a name for it is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _copy(value: Model | None) -> Model | None:
    """A fresh copy of a cached model (or None), so callers cannot alter what the cache holds."""
    return None if value is None else _copy_json(value)


def _copy_json(value: Any) -> Any:
    """A fresh copy of a JSON value, so callers cannot alter what the cache holds."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


class TokenCache:
    """Hub answers per (token digest, session-id digest); bounded LRU with per-entry TTL."""

    def __init__(
        self,
        *,
        maxsize: int = 10_000,
        max_age: float = 300,
        negative_max_age: float = 10,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.negative_max_age = min(negative_max_age, max_age)
        self._data: TLRUCache[CacheKey, Model | None] = TLRUCache(
            maxsize=maxsize, ttu=self._expires, timer=timer
        )
        self._lock = threading.Lock()
        self._threads: dict[CacheKey, Future[Model | None]] = {}
        self._tasks: dict[tuple[CacheKey, int], asyncio.Future[Model | None]] = {}

    def _expires(self, _key: CacheKey, value: Model | None, now: float) -> float:
        return now + (self.max_age if value is not None else self.negative_max_age)

    @staticmethod
    def key(token: str, session_id: str = "") -> CacheKey:
        """The cache key for a token seen with a Hub session id (both hashed)."""
        return (token_digest(token), token_digest(session_id) if session_id else "")

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    @property
    def maxsize(self) -> int:
        return int(self._data.maxsize)

    def get(self, key: CacheKey) -> Any:
        """The cached answer (a model copy or ``None``), or the ``MISS`` sentinel."""
        with self._lock:
            value = self._data.get(key, _MISS)
        return value if value is _MISS else _copy(value)

    def put(self, key: CacheKey, value: Model | None) -> None:
        if self.max_age <= 0 or (value is None and self.negative_max_age <= 0):
            return
        with self._lock:
            self._data[key] = _copy(value)

    def evict(self, token: str) -> int:
        """Forget every cached answer about ``token`` (all session ids); return how many."""
        digest = token_digest(token)
        with self._lock:
            keys = [k for k in list(self._data.keys()) if k[0] == digest]
            for k in keys:
                self._data.pop(k, None)
        return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def load_sync(self, key: CacheKey, loader: Loader, *, use_cache: bool = True) -> Model | None:
        """Answer from the cache, or run ``loader`` once however many threads ask at once."""
        if not use_cache:
            value = loader()
            self.put(key, value)
            return _copy(value)
        with self._lock:
            cached = self._data.get(key, _MISS)
            if cached is not _MISS:
                return _copy(cached)
            flight = self._threads.get(key)
            leader = flight is None
            if flight is None:
                flight = self._threads[key] = Future()
        if not leader:
            return _copy(flight.result())
        try:
            value = loader()
        except BaseException as e:
            flight.set_exception(e)
            raise
        else:
            self.put(key, value)
            flight.set_result(value)
            return _copy(value)
        finally:
            with self._lock:
                self._threads.pop(key, None)

    async def load_async(
        self, key: CacheKey, loader: AsyncLoader, *, use_cache: bool = True
    ) -> Model | None:
        """Answer from the cache, or await ``loader`` once however many tasks ask at once."""
        if not use_cache:
            value = await loader()
            self.put(key, value)
            return _copy(value)
        cached = self.get(key)
        if cached is not _MISS:
            return cached  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        slot = (key, id(loop))
        flight = self._tasks.get(slot)
        if flight is not None:
            try:
                return _copy(await asyncio.shield(flight))
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise
                # The task that was loading was cancelled, not us: load again.
                return await self.load_async(key, loader)
        flight = self._tasks[slot] = loop.create_future()
        try:
            value = await loader()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as e:
            flight.set_exception(e)
            # Mark the exception retrieved: waiters (if any) re-raise it themselves.
            flight.exception()
            raise
        else:
            self.put(key, value)
            flight.set_result(value)
            return _copy(value)
        finally:
            self._tasks.pop(slot, None)


MISS = _MISS
