"""The sync and the async driver behind one calling convention, for tests that run every
case on both: ``driver.user(auth)``, ``driver.exchange(auth)``, ``driver.send(auth, req)``.

The async one runs on one long-lived event loop in a thread of its own (as a Tornado service
does), so its connection pool outlives a single call; the loop ends with ``asyncio.run``'s
shutdown when the fixture is torn down.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from hubauth import HubAuth, HubOAuth
from hubauth._protocol import HubRequest

__all__ = ["Driver", "LoopThread", "driver"]

T = TypeVar("T")


class LoopThread:
    """One event loop running in a thread until stopped (with ``asyncio.run``)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()
        self._stop: asyncio.Event | None = None

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        ready.wait(10)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Driver:
    """The sync or the async driver behind one calling convention."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.loop = LoopThread() if kind == "async" else None

    def user(self, auth: HubAuth, token: str | None = None) -> Any:
        token = token or "alice-token"
        if self.loop is None:
            return auth.user_for_token(token, use_cache=False)
        return self.loop.run(_awaited(auth.user_for_token(token, use_cache=False, sync=False)))

    def exchange(self, auth: HubOAuth, code: str = "the-code") -> str:
        if self.loop is None:
            return auth.token_for_code(code, code_verifier="v" * 43)
        return self.loop.run(
            _awaited(auth.token_for_code(code, code_verifier="v" * 43, sync=False))
        )

    def send(self, auth: HubAuth, req: HubRequest) -> Any:
        if self.loop is None:
            return auth._sync.send(req)
        return self.loop.run(auth._async.send(req))

    def many(self, auth: HubAuth, n: int) -> list[Any]:
        """``n`` lookups at once (threads, or tasks on the loop)."""
        if self.loop is None:
            out: list[Any] = []
            threads = [
                threading.Thread(target=lambda: out.append(self._try(auth))) for _ in range(n)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            return out

        async def gather() -> list[Any]:
            calls = (
                auth.user_for_token("alice-token", use_cache=False, sync=False) for _ in range(n)
            )
            return list(await asyncio.gather(*calls, return_exceptions=True))

        return self.loop.run(gather())

    def _try(self, auth: HubAuth) -> Any:
        try:
            return self.user(auth)
        except Exception as e:
            return e

    def close(self) -> None:
        if self.loop is not None:
            self.loop.stop()


async def _awaited(aw: Any) -> Any:
    return await aw


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    d = Driver(request.param)
    yield d
    d.close()
