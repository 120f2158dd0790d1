"""Run whoami-api as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``."""

import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "whoami-api",
        "url": "http://127.0.0.1:10101",
        "command": [sys.executable, str(Path(__file__).resolve().parent / "whoami_api.py")],
    }
]
# Users may call the service with their own tokens.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=whoami-api"]},
]
