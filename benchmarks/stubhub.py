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
from typing import Any, ClassVar

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

__all__ = ["StubHub", "StubProcess", "serve_process", "user_model"]


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


# ------------------------------------------------------------------ the stub in a process


class _FastStub(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one write per answer (as Tornado writes them), no framework:
    so that the clients, not the stub, are what a miss benchmark measures.

    ``GET /hub/api/user``: 200 and a model for a token ``known-<name>-...``, else 403.
    ``POST /hub/api/oauth2/token``: 200 and a fresh ``known-`` access token.
    ``GET /stub/count``: how many requests it has answered.
    """

    count: ClassVar[int] = 0
    models: ClassVar[dict[str, bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            headers = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (ln.partition(b":") for ln in lines[1:])
            )
            length = int(headers.get(b"content-length", b"0"))
            if len(rest) < length:
                return
            self.buf = rest[length:]
            self.transport.write(self.answer(method, target, headers))

    def answer(self, method: bytes, target: bytes, headers: dict[bytes, bytes]) -> bytes:
        _FastStub.count += 1
        if target == b"/hub/api/user":
            token = headers.get(b"authorization", b"").partition(b" ")[2]
            if token.startswith(b"known-"):
                name = token.split(b"-")[1].decode()
                body = self.models.get(name)
                if body is None:
                    body = self.models[name] = json.dumps(user_model(name)).encode()
                return _ok(body)
            return _reply(403, b'{"status": 403, "message": "Forbidden"}')
        if target == b"/hub/api/oauth2/token" and method == b"POST":
            token = f"known-oauth-{_FastStub.count:09d}-{'t' * 24}"
            body = json.dumps({"access_token": token, "token_type": "Bearer"}).encode()
            return _ok(body)
        if target == b"/stub/count":
            return _ok(json.dumps({"requests": _FastStub.count}).encode())
        return _reply(404, b"{}")


def _reply(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _ok(body: bytes) -> bytes:
    return _reply(200, body)


def serve_process(unix_path: str | None) -> None:
    """Serve the fast stub on a free 127.0.0.1 port (and ``unix_path``) until stdin closes;
    print the port first.
    """
    import os
    import sys

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FastStub, "127.0.0.1", 0, backlog=1024)
        servers = [server]
        if unix_path:
            servers.append(await loop.create_unix_server(_FastStub, unix_path, backlog=1024))
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        for s in servers:
            s.close()
            await s.wait_closed()
        if unix_path:
            os.unlink(unix_path)

    asyncio.run(main())


class StubProcess:
    """The fast stub in a process of its own (so its work never shares the GIL with the
    clients): ``with StubProcess(unix_path) as stub: stub.api_url, stub.unix_api_url``.
    """

    def __init__(self, unix_path: str | None = None) -> None:
        self.unix_path = unix_path
        self.port = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"

    @property
    def unix_api_url(self) -> str:
        import urllib.parse

        assert self.unix_path
        return "http+unix://" + urllib.parse.quote(self.unix_path, safe="") + "/hub/api"

    def requests(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stub/count") as r:
            return int(json.loads(r.read())["requests"]) - 1

    def __enter__(self) -> StubProcess:
        import subprocess
        import sys

        cmd = [sys.executable, __file__, "--serve"]
        if self.unix_path:
            cmd += ["--unix", self.unix_path]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the fast stub Hub, in a process")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--unix", default=None)
    serve_process(parser.parse_args().unix)
