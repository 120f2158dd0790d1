"""A Hub that knows an externally run service, and a service manager that may add more.

Set EXTERNAL_SERVICE_TOKEN and SERVICE_MANAGER_TOKEN (e.g. ``openssl rand -hex 32``) in the
environment of this Hub and of the processes that use them; see README.md.
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        # Not started by the Hub: no "command". An external service needs its redirect URI
        # spelled out, and its token shared with the process you run.
        "name": "external",
        "url": "http://127.0.0.1:10106",
        "api_token": os.environ["EXTERNAL_SERVICE_TOKEN"],
        "oauth_redirect_uri": "/services/external/oauth_callback",
    },
    {"name": "service-manager", "api_token": os.environ["SERVICE_MANAGER_TOKEN"]},
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services"]},
    {"name": "service-manager", "scopes": ["admin:services"], "services": ["service-manager"]},
]
