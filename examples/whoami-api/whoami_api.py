"""whoami-api: a token-only JSON service. ``GET <prefix>`` answers the caller's Hub model.

Run by the Hub as a managed service (see jupyterhub_config.py); call it with
``curl -H "Authorization: token $TOKEN" http://127.0.0.1:8000/services/whoami-api/``.
Without a valid token it answers 403, as JupyterHub's token-only mixin does (it never sends
anyone to a login page it could not complete).
"""

from __future__ import annotations

import asyncio
import os
import signal
from urllib.parse import urlsplit

from tornado.web import Application, RequestHandler, authenticated

from hubauth.tornado import HubAuthenticated


class WhoAmI(HubAuthenticated, RequestHandler):
    @authenticated
    def get(self) -> None:
        self.write(self.current_user)


async def main() -> None:
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/whoami-api/")
    app = Application([(prefix.rstrip("/") + "/?", WhoAmI)])
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()  # the Hub stops its services with SIGTERM: exit cleanly
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
