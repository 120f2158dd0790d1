"""The token cache: bounded, TTL'd, keyed by a SHA-256 of the token, with single flight.

A token itself is never a key, never logged. Users are kept ``cache_max_age`` seconds, the
Hub's "unknown token" answers only ``cache_negative_max_age``; errors are never stored. A
user's entry stays ``stale_max_age`` seconds longer, for :meth:`TokenCache.stale` to give
while the Hub cannot answer; an "unknown token" answer never does.
Concurrent misses for one key share one load: threads on the sync path, tasks on the async
path. A loader must return a fresh value: its first caller gets it as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, NamedTuple, cast

from cachetools import TLRUCache

__all__ = ["TokenCache", "token_digest"]

Model = dict[str, Any]
CacheKey = tuple[str, str]
Loader = Callable[[], "Model | None"]
AsyncLoader = Callable[[], Awaitable["Model | None"]]

_MISS: Any = object()


def _expiry(_key: object, entry: _Entry, _now: float) -> float:
    return entry.keep


def token_digest(token: str) -> str:
    """The SHA-256 hex digest standing for a token wherever a name for it is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _copy_json(value: Any) -> Any:
    """A fresh copy of a JSON value (dicts and lists copied, strings and numbers shared)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if kind is list:
        return [_copy_json(v) for v in value]
    return value


def _fresh(value: Model | None) -> Model | None:
    """A copy of a model just loaded, for one caller."""
    return None if value is None else cast(Model, _copy_json(value))


class _Entry(NamedTuple):
    """A cached answer, when it expires, until when it is kept as a stale answer, and which
    of its values a caller could mutate: ``flat`` lists of plain values (a shallow copy will
    do) and ``nested`` containers.
    """

    expires: float
    model: Model | None
    flat: tuple[str, ...]
    nested: tuple[str, ...]
    keep: float


def _entry(expires: float, model: Model | None, stale: float = 0.0) -> _Entry:
    flat: list[str] = []
    nested: list[str] = []
    for k, v in (model or {}).items():
        if type(v) is list and not any(type(i) in (list, dict) for i in v):
            flat.append(k)
        elif type(v) in (list, dict):
            nested.append(k)
    keep = expires + stale if model is not None else expires
    return _Entry(expires, model, tuple(flat), tuple(nested), keep)


def _thaw(entry: _Entry) -> Model | None:
    """A copy of a cached model that shares nothing mutable with the cache; cheap, as it
    runs on every hit: only the list and dict values are copied.
    """
    model = entry.model
    if model is None:
        return None
    out = model.copy()
    for k in entry.flat:
        out[k] = model[k].copy()
    for k in entry.nested:
        out[k] = _copy_json(model[k])
    return out


class TokenCache:
    """Hub answers per (token digest, session-id digest), bounded, with per-entry TTL.

    ``cachetools.TLRUCache`` holds the entries and decides what to drop when full; a plain
    dict indexes the same entries so that a cache hit reads without taking the lock.
    """

    def __init__(
        self,
        *,
        maxsize: int = 10_000,
        max_age: float = 300,
        negative_max_age: float = 10,
        stale_max_age: float = 0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.negative_max_age = min(negative_max_age, max_age)
        self.stale_max_age = stale_max_age
        self._timer = timer
        self._store: TLRUCache[CacheKey, _Entry] = TLRUCache(
            maxsize=maxsize, ttu=_expiry, timer=timer
        )
        self._index: dict[CacheKey, _Entry] = {}
        self._slack = max(16, maxsize // 10)
        self._lock = threading.Lock()
        self._threads: dict[CacheKey, Future[Model | None]] = {}
        self._tasks: dict[tuple[CacheKey, int], asyncio.Future[Model | None]] = {}

    @staticmethod
    def key(token: str, session_id: str = "") -> CacheKey:
        """The cache key for a token seen with a Hub session id (both hashed)."""
        return (token_digest(token), token_digest(session_id) if session_id else "")

    def __len__(self) -> int:
        with self._lock:
            self._store.expire()
            return len(self._store)

    @property
    def maxsize(self) -> int:
        return int(self._store.maxsize)

    def get(self, key: CacheKey) -> Any:
        """The cached answer (a model copy or ``None``), or the ``MISS`` sentinel. Lock-free."""
        entry = self._index.get(key)
        if entry is None or entry.expires <= self._timer():
            return _MISS
        return _thaw(entry)

    def stale(self, key: CacheKey) -> Any:
        """A copy of the user model cached for ``key`` if it expired at most
        ``stale_max_age`` seconds ago (or has not expired), else ``MISS``. Never an "unknown
        token" answer. For when the Hub cannot answer: the entry is not extended.
        """
        entry = self._index.get(key)
        if entry is None or entry.model is None or entry.keep <= self._timer():
            return _MISS
        return _thaw(entry)

    def put(self, key: CacheKey, value: Model | None) -> Model | None:
        """Cache ``value`` (a copy of it) for ``key``; return the copy, which nobody may
        change (single-flight waiters copy their answers from it).
        """
        ttl = self.max_age if value is not None else self.negative_max_age
        stored = _fresh(value)
        if ttl <= 0:
            return stored
        entry = _entry(self._timer() + ttl, stored, self.stale_max_age)
        with self._lock:
            self._store[key] = entry
            self._index[key] = entry
            if len(self._index) > len(self._store) + self._slack:
                # The store dropped entries (full or expired): drop them from the index too.
                self._store.expire()
                self._index = dict(self._store.items())
        return stored

    def evict(self, token: str) -> int:
        """Forget every cached answer about ``token`` (all session ids); return how many."""
        digest = token_digest(token)
        with self._lock:
            keys = [k for k in self._index if k[0] == digest]
            for k in keys:
                self._store.pop(k, None)
                self._index.pop(k, None)
        return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
            self._index = {}

    def load_sync(self, key: CacheKey, loader: Loader, *, use_cache: bool = True) -> Model | None:
        """Answer from the cache, or run ``loader`` once however many threads ask at once."""
        if not use_cache:
            value = loader()
            self.put(key, value)
            return value  # freshly loaded: the caller may have it, the cache keeps a copy
        cached = self.get(key)
        if cached is not _MISS:
            return cached  # type: ignore[no-any-return]
        with self._lock:
            cached = self.get(key)  # a load may have finished since the look above
            if cached is not _MISS:
                return cached  # type: ignore[no-any-return]
            flight = self._threads.get(key)
            leader = flight is None
            if flight is None:
                flight = self._threads[key] = Future()
        if not leader:
            return _fresh(flight.result())
        try:
            value = loader()
        except BaseException as e:
            flight.set_exception(e)
            raise
        else:
            flight.set_result(self.put(key, value))  # waiters copy from the cache's copy
            return value  # freshly loaded: the caller may have it, the cache keeps a copy
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
            return value  # freshly loaded: the caller may have it, the cache keeps a copy
        cached = self.get(key)
        if cached is not _MISS:
            return cached  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        slot = (key, id(loop))
        flight = self._tasks.get(slot)
        if flight is not None:
            try:
                return _fresh(await asyncio.shield(flight))
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
            flight.set_result(self.put(key, value))  # waiters copy from the cache's copy
            return value  # freshly loaded: the caller may have it, the cache keeps a copy
        finally:
            self._tasks.pop(slot, None)


MISS = _MISS
