"""Run whoami-wsgi as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``."""

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
        "name": "whoami-wsgi",
        "url": "http://127.0.0.1:10104",
        "command": [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "4",
            "-b",
            "127.0.0.1:10104",
            "--chdir",
            str(HERE),
            "whoami_wsgi:app",
        ],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
# Every user may use the service (its access scope); nothing more.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=whoami-wsgi"]},
]
