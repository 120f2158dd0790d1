"""A Hub-managed service for a Hub whose API is bound to a unix socket.

The Hub starts it with ``JUPYTERHUB_API_URL=http+unix://...``; everything it does with the
Hub goes over that socket, through both drivers:

- ``<prefix>``: a browser page (``HubOAuthenticated``: the async driver's ``/user`` and the
  OAuth code exchange) answering the visitor's model as JSON, with the API URL it was given;
- ``<prefix>sync``: the visitor's token (``Authorization`` header) looked up by a sync
  ``HubAuth`` in a thread, and the visitor's user model read with the blocking ``HubAPI``;
- ``<prefix>async-api``: the Hub's version and the visitor's model from ``AsyncHubAPI``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any
from urllib.parse import urlsplit

from tornado.web import Application, HTTPError, RequestHandler, authenticated

from hubauth import HubAuth
from hubauth.api import AsyncHubAPI, HubAPI
from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated

SYNC_AUTH = HubAuth()
SYNC_API = HubAPI()
ASYNC_API = AsyncHubAPI()


class Page(HubOAuthenticated, RequestHandler):
    @authenticated
    def get(self) -> None:
        self.write({"user": self.current_user, "api_url": os.environ["JUPYTERHUB_API_URL"]})


def sync_lookup(token: str) -> dict[str, Any]:
    model = SYNC_AUTH.user_for_token(token, use_cache=False)
    if model is None:
        raise HTTPError(403)
    return {"user": model, "api_user": SYNC_API.user(model["name"])}


class Sync(RequestHandler):
    async def get(self) -> None:
        token = self.request.headers.get("Authorization", "").partition(" ")[2]
        loop = asyncio.get_running_loop()
        self.write(await loop.run_in_executor(None, sync_lookup, token))


class AsyncAPI(HubOAuthenticated, RequestHandler):
    @authenticated
    async def get(self) -> None:
        info, user = await asyncio.gather(
            ASYNC_API.info(), ASYNC_API.user(self.current_user["name"])
        )
        self.write({"version": info["version"], "api_user": user})


async def main() -> None:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "sync", Sync),
            (prefix + "async-api", AsyncAPI),
            (prefix.rstrip("/") + "/?", Page),
        ]
    )
    url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
