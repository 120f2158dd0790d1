"""Run grader-dashboard as a Hub-managed service: ``jupyterhub -f jupyterhub_config.py``.

Log in as ``teacher`` to see the members of ``students``; as anyone else, you are told no.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "grader-dashboard",
        "url": "http://127.0.0.1:10105",
        "command": [sys.executable, str(HERE / "grader_dashboard.py")],
        # No role for the service itself: it may only ask visitors for this.
        "oauth_client_allowed_scopes": ["read:groups!group=students"],
    }
]
c.JupyterHub.load_groups = {
    "students": {"users": ["ada", "grace"]},
    "teachers": {"users": ["teacher"]},
}
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=grader-dashboard"]},
    {"name": "graders", "scopes": ["read:groups!group=students"], "groups": ["teachers"]},
]
