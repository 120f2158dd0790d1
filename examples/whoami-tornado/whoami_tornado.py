"""whoami-tornado: a browser service; visitors log in through the Hub and see who they are.

Run by the Hub as a managed service (see jupyterhub_config.py) and open
http://127.0.0.1:8000/services/whoami-tornado/ . API clients may send a token instead.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import signal
from urllib.parse import urlsplit

from tornado.web import Application, RequestHandler, authenticated

from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated, HubOAuthLogoutHandler


class WhoAmI(HubOAuthenticated, RequestHandler):
    @authenticated
    def get(self) -> None:
        user = self.current_user
        if "application/json" in self.request.headers.get("Accept", ""):
            self.write(user)
            return
        self.write(
            f"<!doctype html><title>whoami</title><h1>Hello, {html.escape(user['name'])}</h1>"
            f"<pre id=model>{html.escape(json.dumps(user, indent=1, sort_keys=True))}</pre>"
            f"<a href='{self.hub_auth.base_url}logout'>Log out</a>"
        )


def make_app() -> Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/whoami-tornado/")
    return Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "logout", HubOAuthLogoutHandler),
            (prefix.rstrip("/") + "/?.*", WhoAmI),
        ]
    )


async def main() -> None:
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10102"))
    make_app().listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()  # the Hub stops its services with SIGTERM: exit cleanly
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
