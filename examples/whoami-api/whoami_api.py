"""whoami-api: a token-only JSON service. ``GET <prefix>`` answers the caller's Hub model.

Run by the Hub as a managed service (see jupyterhub_config.py); call it with
``curl -H "Authorization: token $TOKEN" http://127.0.0.1:8000/services/whoami-api/``.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import urlsplit

from tornado.web import Application, RequestHandler

from hubauth import HubAuth, HubAuthError

auth = HubAuth()  # every setting comes from the environment the Hub sets


class WhoAmI(RequestHandler):
    async def get(self) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'token realm="JupyterHub"')
            self.finish({"error": "send Authorization: token <your Hub API token>"})
            return
        try:
            user = await auth.user_for_token(token, sync=False)
        except HubAuthError as e:
            self.set_status(503)
            self.finish({"error": f"the Hub could not be asked: {e}"})
            return
        if user is None:
            self.set_status(401)
            self.finish({"error": "the Hub does not know this token"})
            return
        if not auth.check_scopes(auth.access_scopes, user):
            self.set_status(403)
            self.finish({"error": f"this token lacks {sorted(auth.access_scopes)}"})
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(user, indent=1, sort_keys=True))


async def main() -> None:
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app = Application([(auth.base_url.rstrip("/") + "/?", WhoAmI)])
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
