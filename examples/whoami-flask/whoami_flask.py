"""whoami-flask: the Flask take on whoami; runs under gunicorn with several workers.

``gunicorn -w 4 -b 127.0.0.1:10103 whoami_flask:app``; the Hub runs it for you with the
jupyterhub_config.py beside this file. Logins work whichever worker answers, because the
OAuth state and the login live in cookies encrypted with HUBAUTH_COOKIE_SECRET.
"""

from __future__ import annotations

import os

from flask import Flask, g, request

from hubauth.flask import FlaskHubAuth, hub_authenticated

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/whoami-flask/")

app = Flask(__name__)
FlaskHubAuth(app)


@app.route(PREFIX, defaults={"rest": ""})
@app.route(PREFIX + "<path:rest>")
@hub_authenticated
def whoami(rest: str) -> object:
    return {**g.hub_user, "path": request.full_path.rstrip("?"), "pid": os.getpid()}


@app.route(PREFIX + "admin-only")
@hub_authenticated(scopes=["admin:users"])
def admin_only() -> object:
    return {"admin": g.hub_user["name"]}


@app.route(PREFIX + "change", methods=["POST"])
@hub_authenticated
def change() -> object:
    return {"changed_by": g.hub_user["name"]}
