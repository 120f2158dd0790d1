"""A Streamlit app as every user's own server, behind hubauth-proxy.

``jupyterhub -f jupyterhub_config.py``, log in, and the Hub starts your server at /user/<you>/.
"""

import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
c = get_config()  # type: ignore[name-defined]  # noqa: F821

# {port} and {prefix} (/user/<name>/) are filled in by hubauth-proxy.
streamlit = [sys.executable, "-m", "streamlit", "run", str(HERE / "app.py")]
streamlit += ["--server.port", "{port}", "--server.address", "127.0.0.1"]
streamlit += ["--server.baseUrlPath", "{prefix}", "--server.headless", "true"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"  # no system users needed for the demo
c.Spawner.cmd = [sys.executable, "-m", "hubauth.proxy", "--", *streamlit]
c.Spawner.environment = {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}
# As a service instead:
# c.JupyterHub.services = [{"name": "streamlit", "url": "http://127.0.0.1:10204",
#                           "command": [sys.executable, "-m", "hubauth.proxy", "--", *streamlit]}]
