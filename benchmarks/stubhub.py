"""A stub Hub for the benchmarks: ``GET /hub/api/user`` on 127.0.0.1, in a background thread.

200 with a JSON model for a known token, 403 for any other; every request is counted, per
token and in total. ``delay`` (seconds) makes each answer wait, to widen race windows.
HTTP/1.1 keep-alive is on (tornado's server default), so clients that pool connections can.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

__all__ = ["StubHub", "user_model"]


def user_model(name: str) -> dict[str, Any]:
    """A model shaped like JupyterHub 5/6's ``/hub/api/user`` reply for a user's token."""
    scopes = [
        f"access:servers!user={name}",
        f"delete:servers!user={name}",
        f"read:servers!user={name}",
        f"read:tokens!user={name}",
        f"read:users!user={name}",
        f"read:users:activity!user={name}",
        f"read:users:groups!user={name}",
        f"read:users:name!user={name}",
        f"servers!user={name}",
        f"tokens!user={name}",
        f"users:activity!user={name}",
        "access:services",
        "read:groups:name!group=staff",
    ]
    return {
        "kind": "user",
        "name": name,
        "admin": False,
        "groups": ["staff"],
        "roles": ["user"],
        "server": f"/user/{name}/",
        "pending": None,
        "created": "2024-01-01T00:00:00.000000Z",
        "last_activity": "2024-06-01T12:00:00.000000Z",
        "servers": {},
        "token_id": "a17",
        "session_id": None,
        "scopes": scopes,
    }


class _UserHandler(RequestHandler):
    hub: StubHub

    def initialize(self, hub: StubHub) -> None:
        self.hub = hub

    async def get(self) -> None:
        hub = self.hub
        kind, _, token = self.request.headers.get("Authorization", "").partition(" ")
        token = token.strip() if kind.lower() in ("token", "bearer") else ""
        hub.requests += 1
        hub.by_token[token] += 1
        if hub.delay:
            await asyncio.sleep(hub.delay)
        self.set_header("Content-Type", "application/json")
        model = hub.users.get(token)
        if model is None:
            self.set_status(403)
            self.finish(b'{"status": 403, "message": "Forbidden"}')
        else:
            self.finish(json.dumps(model).encode())


class StubHub:
    """``with StubHub({"tok": model}) as hub: ... hub.api_url ... hub.by_token["tok"]``."""

    def __init__(self, users: dict[str, dict[str, Any]] | None = None, delay: float = 0.0):
        self.users = dict(users or {})
        self.delay = delay
        self.requests = 0
        self.by_token: Counter[str] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HTTPServer | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"

    def reset_counts(self) -> None:
        self.requests = 0
        self.by_token.clear()

    def start(self) -> StubHub:
        sockets = bind_sockets(0, "127.0.0.1", backlog=1024)
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            app = Application(
                [(r"/hub/api/user", _UserHandler, {"hub": self})],
                log_function=lambda _handler: None,  # no access log: 403s would log warnings
            )
            self._server = HTTPServer(app)
            self._server.add_sockets(sockets)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="stub-hub", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.stop()
                await self._server.close_all_connections()
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> StubHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
