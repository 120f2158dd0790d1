"""A Bokeh app as a Hub service behind hubauth-proxy: ``jupyterhub -f jupyterhub_config.py``.

Only members of the group ``dashboards`` may open it (``--group``); the app learns who
they are from ``X-Forwarded-User``. Open http://127.0.0.1:8000/services/dashboard/dashboard
"""

import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

# The app: hubauth-proxy replaces {port} with a free port and {prefix} with the service's
# prefix (/services/dashboard/). The proxy refuses cross-site websockets itself, so Bokeh
# may accept any origin.
bokeh = [sys.executable, "-m", "bokeh", "serve", str(HERE / "dashboard.py")]
bokeh += ["--port", "{port}", "--address", "127.0.0.1", "--prefix", "{prefix}"]
bokeh += ["--allow-websocket-origin", "*"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "dashboard",
        "url": "http://127.0.0.1:10201",
        "command": [sys.executable, "-m", "hubauth.proxy", "--group", "dashboards", "--", *bokeh],
        # Logins survive restarts of the service (a fixed one: openssl rand -hex 32).
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
c.JupyterHub.load_groups = {"dashboards": {"users": ["ada", "grace"]}}
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=dashboard"]},
]
