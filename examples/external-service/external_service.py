"""external-service: a service the Hub does NOT start; you run it, with the settings the Hub
would have given it in its environment (see README.md).

It answers ``<prefix>`` with the caller's model, for API tokens and for browsers (OAuth).
"""

from __future__ import annotations

import asyncio
import os
import signal
from urllib.parse import urlsplit

from tornado.web import Application, RequestHandler, authenticated

from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated, HubOAuthLogoutHandler


class WhoAmI(HubOAuthenticated, RequestHandler):
    @authenticated
    def get(self) -> None:
        self.write({**self.current_user, "served_by": "external-service"})


async def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10106"))
    app = Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "logout", HubOAuthLogoutHandler),
            (prefix.rstrip("/") + "/?.*", WhoAmI),
        ]
    )
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
