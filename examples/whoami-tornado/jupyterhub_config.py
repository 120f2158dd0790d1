"""Run whoami-tornado as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "whoami-tornado",
        "url": "http://127.0.0.1:10102",
        "command": [sys.executable, str(HERE / "whoami_tornado.py")],
    }
]
# Every user may use the service (its access scope); nothing more.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=whoami-tornado"]},
]
