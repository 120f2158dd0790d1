"""A real spawn's progress stream from a real JupyterHub bound to a unix socket, on both
clients: ``hubauth.api`` speaks ``http+unix://`` for streams as for every other call.

The Hub is test_realhub_unix.py's (its fixture, not a copy). The spawn is started from a
thread while the stream is opened, so the stream carries the spawn's events as they happen
(until the spawn is pending the Hub answers 404 or 400: the reader tries again).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any

import pytest

from hubauth.api import AsyncHubAPI, HubAPI
from hubauth.errors import BadRequest, NotFound

from .test_realhub_unix import UnixSocketHub, unix_hub

__all__ = ["unix_hub"]  # the fixture

pytestmark = pytest.mark.timeout(300)


def _events(kind: str, api_url: str, token: str, user: str) -> list[dict[str, Any]]:
    """The progress events of ``user``'s default server, read to the end, opening the
    stream again while the Hub says there is no spawn yet."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if kind == "sync":
                with HubAPI(api_url=api_url, api_token=token) as api:
                    return list(api.progress(user, timeout=60))

            async def run() -> list[dict[str, Any]]:
                async with AsyncHubAPI(api_url=api_url, api_token=token) as api:
                    return [e async for e in api.progress(user, timeout=60)]

            return asyncio.run(run())
        except (BadRequest, NotFound):  # the spawn has not begun yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_real_spawns_progress_over_the_unix_socket(unix_hub: UnixSocketHub, kind: str) -> None:
    api_url = f"{unix_hub.socket_url}/hub/api"
    user = f"stream-{kind}-{secrets.token_hex(3)}"
    admin = HubAPI(api_url=api_url, api_token=unix_hub.admin_token)
    admin.create_user(user)
    started: list[int] = []
    spawn = threading.Thread(target=lambda: started.append(admin.start_server(user)))
    spawn.start()
    try:
        events = _events(kind, api_url, unix_hub.admin_token, user)
    finally:
        spawn.join(60)
    assert started and started[0] in (201, 202)
    assert events[-1]["ready"] is True and events[-1]["url"] == f"/user/{user}/"
    # Opened while the spawn was pending (it takes a Python process's start-up, retries are
    # 20 ms apart): its events, then the Hub's ready event, in order.
    assert len(events) >= 2, events
    assert [e["progress"] for e in events] == sorted(e["progress"] for e in events)
    admin.stop_server(user)
    admin.delete_user(user)
    admin.close()
