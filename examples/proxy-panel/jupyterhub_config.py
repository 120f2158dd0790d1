"""A Panel app as a Hub service behind hubauth-proxy: ``jupyterhub -f jupyterhub_config.py``.

Open http://127.0.0.1:8000/services/panel/app (Panel serves app.py at <prefix>app).
"""

import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

# {port} and {prefix} are filled in by hubauth-proxy; the proxy refuses cross-site
# websockets itself, so Panel may accept any origin.
panel = [sys.executable, "-m", "panel", "serve", str(HERE / "app.py")]
panel += ["--port", "{port}", "--address", "127.0.0.1", "--prefix", "{prefix}"]
panel += ["--allow-websocket-origin", "*"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "panel",
        "url": "http://127.0.0.1:10203",
        "command": [sys.executable, "-m", "hubauth.proxy", "--", *panel],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=panel"]},
]
# As every user's own server instead: c.Spawner.cmd = ["hubauth-proxy", "--", *panel]
