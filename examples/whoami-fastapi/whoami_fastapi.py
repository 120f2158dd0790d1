"""whoami-fastapi: a FastAPI service behind the Hub: browser login, API tokens, a websocket,
and interactive docs whose Authorize button logs in through the Hub.

``uvicorn --workers 4 --host 127.0.0.1 --port 10106 whoami_fastapi:app``. Every path under
the prefix answers the caller's Hub model (a browser is sent to log in first);
``<prefix>admin-only`` needs the ``admin:users`` scope; ``POST <prefix>change`` takes the
login cookie only from the service's own pages; ``<prefix>ws`` is a websocket (token in
``?token=`` or the header, or the login cookie); ``<prefix>docs`` is the API's docs page.
"""

import os
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security, WebSocket

from hubauth.fastapi import HubUser, hub_docs, hub_router, hub_user

app = FastAPI(title="whoami-fastapi", **hub_docs())  # docs under the prefix, Hub login
app.include_router(hub_router(docs=True))  # <prefix>oauth_callback, logout, oauth_token
PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/whoami-fastapi/")


@app.get(PREFIX + "admin-only")
async def admin_only(
    user: Annotated[dict[str, Any], Security(hub_user, scopes=["admin:users"])],
) -> dict[str, Any]:
    """Only for callers with the admin:users scope (instead of the service's access scope)."""
    return {"admin": user["name"]}


@app.post(PREFIX + "change")
async def change(user: HubUser) -> dict[str, Any]:
    """A state-changing call: a token, or the login cookie from this service's own pages."""
    return {"changed_by": user["name"]}


@app.websocket(PREFIX + "ws")
async def hello(websocket: WebSocket, user: HubUser) -> None:
    """Greets whoever opened it; refused before the handshake completes for anyone else."""
    await websocket.accept()
    await websocket.send_json({"hello": user["name"], "pid": os.getpid()})
    await websocket.close()


@app.get(PREFIX + "{path:path}")
def whoami(user: HubUser, request: Request) -> dict[str, Any]:
    """The caller's Hub model, where they asked, and which worker answered (a sync route)."""
    query = request.url.query
    return {**user, "path": request.url.path + (f"?{query}" if query else ""), "pid": os.getpid()}
