"""whoami-wsgi: any WSGI app behind ``HubAuthMiddleware``; the model is in the environ.

``gunicorn -w 4 -b 127.0.0.1:10104 whoami_wsgi:app``; ``<prefix>health`` stays public,
``<prefix>admin-only`` needs the ``admin:users`` scope, and every path takes any method.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from hubauth import HubOAuth
from hubauth.wsgi import HubAuthMiddleware

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/whoami-wsgi/")


def whoami(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    user = environ["hubauth.user"]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if path == PREFIX + "health":
        body: dict[str, Any] = {"ok": True}
    elif path == PREFIX + "admin-only":
        body = {"admin": user["name"]}
    else:
        query = environ.get("QUERY_STRING", "")
        body = {**user, "path": path + (f"?{query}" if query else ""), "pid": os.getpid()}
    data = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


auth = HubOAuth()
users = HubAuthMiddleware(whoami, auth, public_paths=[PREFIX + "health"])
admins = HubAuthMiddleware(whoami, auth, scopes=["admin:users"])


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``<prefix>admin-only`` goes through the stricter middleware; the rest through ``users``."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return (admins if path == PREFIX + "admin-only" else users)(environ, start_response)
