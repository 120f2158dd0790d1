"""A Voila dashboard as a Hub service behind hubauth-proxy: ``jupyterhub -f jupyterhub_config.py``.

Open http://127.0.0.1:8000/services/voila/
"""

import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

# {port} and {prefix} are filled in by hubauth-proxy; Voila passes X-Forwarded-User to the
# kernel as the environment variable HTTP_X_FORWARDED_USER.
voila = [sys.executable, "-m", "voila", str(HERE / "app.ipynb"), "--port={port}"]
voila += ["--no-browser", "--Voila.ip=127.0.0.1", "--Voila.base_url={prefix}"]
voila += ["--VoilaConfiguration.http_header_envs=['X-Forwarded-User']"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "voila",
        "url": "http://127.0.0.1:10206",
        "command": [sys.executable, "-m", "hubauth.proxy", "--ready-timeout", "120", "--", *voila],
        "environment": {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)},
    }
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=voila"]},
]
# As every user's own server instead: c.Spawner.cmd = ["hubauth-proxy", "--", *voila]
