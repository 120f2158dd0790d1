"""The Hub service ``app``: nginx serves it, hubauth-proxy --forward-auth checks each caller.

``jupyterhub -f jupyterhub_config.py`` after nginx runs with hubauth-forward-auth.conf.
"""

import secrets
import sys

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "app",
        "url": "http://127.0.0.1:8000",  # nginx; the Hub's proxy routes /services/app/ there
        "command": [sys.executable, "-m", "hubauth.proxy", "--forward-auth", "--port", "9100"],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=app"]},
]
