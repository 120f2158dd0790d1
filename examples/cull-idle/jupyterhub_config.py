"""Run cull-idle as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``."""

import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True  # named servers are culled too

c.JupyterHub.services = [
    {
        "name": "cull-idle",
        "command": [
            sys.executable,
            str(Path(__file__).resolve().parent / "cull_idle_servers.py"),
            "--timeout=3600",
            "--cull-every=600",
        ],
    }
]
# The scopes of jupyterhub-idle-culler's role: list users, read their activity and servers,
# stop servers.
c.JupyterHub.load_roles = [
    {
        "name": "cull-idle",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["cull-idle"],
    }
]
