"""The web app behind the published proxy services in tests/integration/test_migration_services.py.

jhsingle-native-proxy runs it as the app it wraps (``--port {port}``); jupyterhub-mlflow-auth
forwards to it in place of an MLflow server. It knows nothing of the Hub: every answer is
JSON saying what reached it (method, path, body, the headers a proxy forwards), and
``/ws`` is a websocket that echoes each message back with ``echo:`` in front. Listens on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

# Headers a proxy in front may add or pass on; echoed back so a test can see them.
FORWARDED = ("Authorization", "X-Cdsdashboards-Jh-User", "Cookie")


class Echo(RequestHandler):
    """Any method, any path: what arrived, as JSON."""

    def _echo(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "backend": "echo",
                    "method": self.request.method,
                    "path": self.request.path,
                    "query": self.request.query,
                    "body": self.request.body.decode("utf-8", "replace"),
                    "headers": {h: self.request.headers.get(h) for h in FORWARDED},
                }
            )
        )

    get = post = put = delete = patch = _echo


class EchoSocket(WebSocketHandler):
    """Echoes each message, so a test sees data cross the proxy both ways."""

    def on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        self.write_message(f"echo:{text}")


async def main(port: int) -> None:
    app = Application([(r"/ws", EchoSocket), (r"/.*", Echo)])
    server = app.listen(port, address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
