"""A Gradio app as a Hub service behind hubauth-proxy: ``jupyterhub -f jupyterhub_config.py``.

Open http://127.0.0.1:8000/services/gradio/
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
        "name": "gradio",
        "url": "http://127.0.0.1:10207",
        # Gradio serves at /: the proxy strips the prefix; the app knows it as root_path.
        "command": [
            sys.executable,
            "-m",
            "hubauth.proxy",
            "--strip-prefix",
            "--",
            sys.executable,
            str(HERE / "app.py"),
            "{port}",
        ],
        "environment": {
            "HUBAUTH_COOKIE_SECRET": secrets.token_hex(32),
            "GRADIO_ANALYTICS_ENABLED": "False",
        },
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=gradio"]},
]
