"""A Dash app as a Hub service behind hubauth-proxy: ``jupyterhub -f jupyterhub_config.py``.

Open http://127.0.0.1:8000/services/dash/
"""

import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "dash",
        "url": "http://127.0.0.1:10205",
        "command": [
            sys.executable,
            "-m",
            "hubauth.proxy",
            "--group",
            "analysts",
            "--",
            sys.executable,
            str(HERE / "app.py"),
            "{port}",
        ],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
c.JupyterHub.load_groups = {"analysts": {"users": ["ada"]}}
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=dash"]},
]
