"""The token cache: TTLs with an injected clock, bounds, keys, copies and single flight."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hubauth.cache import MISS, TokenCache, token_digest

from .services import all_at_once


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MODEL = {"name": "alice", "scopes": ["read:users"], "groups": ["g"]}


def test_positive_and_negative_ttls() -> None:
    clock = Clock()
    cache = TokenCache(max_age=300, negative_max_age=10, timer=clock)
    user, unknown = cache.key("t-user"), cache.key("t-unknown")
    cache.put(user, MODEL)
    cache.put(unknown, None)
    assert cache.get(user) == MODEL
    assert cache.get(unknown) is None
    clock.now += 11
    assert cache.get(unknown) is MISS
    assert cache.get(user) == MODEL
    clock.now += 300
    assert cache.get(user) is MISS


def test_bounded_size() -> None:
    cache = TokenCache(maxsize=100)
    for i in range(1000):
        cache.put(cache.key(f"token-{i}"), None)
    assert len(cache) == 100


def test_keys_are_hashes_and_include_session() -> None:
    key = TokenCache.key("secret-token", "session-1")
    assert "secret-token" not in repr(key)
    assert key[0] == token_digest("secret-token")
    assert key != TokenCache.key("secret-token", "session-2")
    assert key != TokenCache.key("secret-token")


def test_callers_cannot_poison_the_cache() -> None:
    cache = TokenCache()
    key = cache.key("t")
    cache.put(key, {"name": "a", "scopes": ["x"]})
    got = cache.get(key)
    got["scopes"].append("admin:users")
    got["name"] = "mallory"
    assert cache.get(key) == {"name": "a", "scopes": ["x"]}


def test_evict_forgets_every_session_of_a_token() -> None:
    cache = TokenCache()
    for s in ("", "s1", "s2"):
        cache.put(cache.key("tok", s), MODEL)
    cache.put(cache.key("other"), MODEL)
    assert cache.evict("tok") == 3
    assert cache.get(cache.key("tok", "s1")) is MISS
    assert cache.get(cache.key("other")) == MODEL


def test_zero_max_age_disables_caching() -> None:
    cache = TokenCache(max_age=0)
    cache.put(cache.key("t"), MODEL)
    assert cache.get(cache.key("t")) is MISS


def test_errors_are_not_cached() -> None:
    cache = TokenCache()
    calls = 0

    def boom() -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        raise RuntimeError("hub down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            cache.load_sync(cache.key("t"), boom)
    assert calls == 2


def test_use_cache_false_bypasses_but_refreshes() -> None:
    cache = TokenCache()
    key = cache.key("t")
    cache.put(key, {"name": "old", "scopes": []})
    assert cache.load_sync(key, lambda: {"name": "new", "scopes": []}, use_cache=False) == {
        "name": "new",
        "scopes": [],
    }
    assert cache.get(key)["name"] == "new"


def test_single_flight_threads() -> None:
    cache = TokenCache()
    release = threading.Event()
    calls = 0

    def slow() -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        release.wait(5)
        return MODEL

    def in_flight() -> bool:
        return len(cache._threads) == 1

    results = all_at_once(20, lambda: cache.load_sync(cache.key("t"), slow), release, in_flight)
    assert calls == 1
    assert results == [MODEL] * 20


def test_single_flight_threads_share_errors_then_retry() -> None:
    cache = TokenCache()
    go = threading.Event()
    calls = 0

    def fail() -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        go.wait(5)
        raise OSError("hub down")

    def in_flight() -> bool:
        return len(cache._threads) == 1

    errors = all_at_once(5, lambda: cache.load_sync(cache.key("t"), fail), go, in_flight)
    assert len(errors) == 5
    assert all(isinstance(e, OSError) for e in errors)
    assert calls == 1
    assert cache.load_sync(cache.key("t"), lambda: MODEL) == MODEL


def test_single_flight_tasks() -> None:
    cache = TokenCache()
    calls = 0

    async def slow() -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return MODEL

    async def main() -> list[Any]:
        return await asyncio.gather(*(cache.load_async(cache.key("t"), slow) for _ in range(50)))

    assert asyncio.run(main()) == [MODEL] * 50
    assert calls == 1


def test_single_flight_tasks_survive_leader_cancellation() -> None:
    cache = TokenCache()
    calls = 0

    async def slow() -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return MODEL

    async def main() -> Any:
        leader = asyncio.ensure_future(cache.load_async(cache.key("t"), slow))
        await asyncio.sleep(0)
        follower = asyncio.ensure_future(cache.load_async(cache.key("t"), slow))
        await asyncio.sleep(0.01)
        leader.cancel()
        return await follower

    assert asyncio.run(main()) == MODEL
    assert calls == 2


def test_single_flight_tasks_errors_not_cached() -> None:
    cache = TokenCache()

    async def fail() -> dict[str, Any] | None:
        await asyncio.sleep(0.01)
        raise OSError("down")

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.load_async(cache.key("t"), fail) for _ in range(5)), return_exceptions=True
        )

    assert all(isinstance(r, OSError) for r in asyncio.run(main()))
    assert cache.get(cache.key("t")) is MISS


def test_the_read_index_stays_bounded_and_agrees_with_the_store() -> None:
    clock = Clock()
    cache = TokenCache(maxsize=50, max_age=100, timer=clock)
    for i in range(2000):
        cache.put(cache.key(f"token-{i}"), {"name": f"u{i}", "scopes": []})
        assert len(cache._index) <= 50 + cache._slack
    assert len(cache) == 50
    # What the store dropped is gone for readers too, even if the index still held it.
    assert cache.get(cache.key("token-0")) is MISS or cache.key("token-0") in cache._store
    assert cache.get(cache.key("token-1999"))["name"] == "u1999"
    clock.now += 101
    assert cache.get(cache.key("token-1999")) is MISS


def test_nested_values_are_copied_too() -> None:
    cache = TokenCache()
    key = cache.key("t")
    cache.put(
        key, {"name": "a", "scopes": ["x"], "servers": {"": {"ready": True}}, "l": [{"a": 1}]}
    )
    got = cache.get(key)
    got["servers"][""]["ready"] = False
    got["l"][0]["a"] = 2
    got["scopes"].append("y")
    assert cache.get(key) == {
        "name": "a",
        "scopes": ["x"],
        "servers": {"": {"ready": True}},
        "l": [{"a": 1}],
    }
