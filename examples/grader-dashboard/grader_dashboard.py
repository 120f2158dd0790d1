"""grader-dashboard: lists a group's members, acting with the VISITOR's own Hub token.

The service holds no permissions of its own. Its OAuth client may ask for
``read:groups!group=students`` (``oauth_client_allowed_scopes`` in the Hub config), so a
visitor who may read that group (a teacher) sees its members, and anyone else is told they
may not. Run by the Hub as a managed service; see jupyterhub_config.py.
"""

from __future__ import annotations

import asyncio
import html
import os
import signal
from urllib.parse import urlsplit

from tornado.web import Application, RequestHandler, authenticated

from hubauth import AsyncHubAPI, HubAPIError, HubAuthError
from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated, HubOAuthLogoutHandler

GROUP = os.environ.get("DASHBOARD_GROUP", "students")


class Dashboard(HubOAuthenticated, RequestHandler):
    @authenticated
    async def get(self) -> None:
        name = html.escape(self.current_user["name"])
        api = AsyncHubAPI(api_token=self.hub_token, retries=1)  # acts as the visitor
        try:
            group = await api.group(GROUP)
        except HubAPIError as e:
            if e.status not in (403, 404):
                raise
            self.set_status(403)
            self.finish(f"<h1>Sorry, {name}</h1><p>You may not read the group {GROUP}.</p>")
            return
        except HubAuthError as e:
            self.set_status(503)
            self.finish(f"<h1>The Hub could not be asked</h1><p>{html.escape(str(e))}</p>")
            return
        finally:
            api.close()
        members = "".join(f"<li>{html.escape(u)}</li>" for u in sorted(group.get("users", [])))
        self.finish(
            f"<!doctype html><title>{GROUP}</title><h1>Members of {GROUP}</h1>"
            f"<p>Seen by {name}, with their own permissions.</p><ul id=members>{members}</ul>"
        )


def make_app() -> Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/grader-dashboard/")
    return Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + "logout", HubOAuthLogoutHandler),
            (prefix.rstrip("/") + "/?", Dashboard),
        ]
    )


async def main() -> None:
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10105"))
    make_app().listen(url.port or 80, url.hostname or "127.0.0.1")
    stop = asyncio.Event()  # the Hub stops its services with SIGTERM: exit cleanly
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
