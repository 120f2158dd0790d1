"""Run whoami-fastapi as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``."""

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
        "name": "whoami-fastapi",
        "url": "http://127.0.0.1:10106",
        "command": [
            sys.executable,
            "-m",
            "uvicorn",
            "--workers",
            "4",
            "--host",
            "127.0.0.1",
            "--port",
            "10106",
            "--app-dir",
            str(HERE),
            "whoami_fastapi:app",
        ],
        # One secret for all four workers: a login may come back to any of them.
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
# Every user may use the service (its access scope); nothing more.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=whoami-fastapi"]},
]
