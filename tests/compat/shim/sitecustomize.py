"""Answer every import of ``jupyterhub.services.auth`` with hubauth (compatibility suite).

On ``PYTHONPATH`` for JupyterHub's own service tests and the services they start, so code
written for JupyterHub's module runs on hubauth with nothing else changed: the drop-in
claim, tested. Only the module's public names are mapped; ``_ExpiringDict`` (a private
helper whose own test is listed in ``known_differences.py``) is a stand-in that refuses use.
"""

from __future__ import annotations

import sys
import types


class _ExpiringDict(dict):  # type: ignore[type-arg]
    """JupyterHub's private in-memory cache, which hubauth does not have (nor need)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("hubauth keeps no in-memory OAuth state: no _ExpiringDict")


def _install() -> None:
    import hubauth
    import hubauth.tornado

    module = types.ModuleType("jupyterhub.services.auth", "jupyterhub.services.auth, by hubauth")
    for name in ("HubAuth", "HubOAuth", "UserNotAllowed", "check_scopes"):
        setattr(module, name, getattr(hubauth, name))
    for name in ("HubAuthenticated", "HubOAuthenticated", "HubOAuthCallbackHandler"):
        setattr(module, name, getattr(hubauth.tornado, name))
    module._ExpiringDict = _ExpiringDict  # type: ignore[attr-defined]
    module.__hubauth__ = True  # type: ignore[attr-defined]
    sys.modules["jupyterhub.services.auth"] = module


_install()
