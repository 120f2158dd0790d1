"""hubauth: authenticate the callers of a JupyterHub service through the Hub.

Drop-in for ``jupyterhub.services.auth``: ``HubAuth``, ``HubOAuth``, the Tornado mixins
(imported lazily, so token-only services never import tornado.web), Flask, WSGI, ASGI and
FastAPI adapters in :mod:`hubauth.flask`, :mod:`hubauth.wsgi`, :mod:`hubauth.asgi` and
:mod:`hubauth.fastapi` (imported only by name), and a Hub REST client (``HubAPI``,
``AsyncHubAPI``) for services that act on the Hub. Apps that are not written for any of
these go behind the ``hubauth-proxy`` command (``hubauth.proxy``).
"""

from __future__ import annotations

from typing import Any

from .auth import HubAuth as HubAuth
from .errors import BadRequest as BadRequest
from .errors import ConfigError as ConfigError
from .errors import Conflict as Conflict
from .errors import HubAPIError as HubAPIError
from .errors import HubAuthError as HubAuthError
from .errors import HubResponseError as HubResponseError
from .errors import HubUnavailable as HubUnavailable
from .errors import MissingScope as MissingScope
from .errors import NotFound as NotFound
from .errors import OAuthError as OAuthError
from .errors import RateLimited as RateLimited
from .errors import ScopeError as ScopeError
from .errors import ServiceTokenRejected as ServiceTokenRejected
from .errors import UserNotAllowed as UserNotAllowed
from .scopes import check_scopes as check_scopes

__version__ = "0.1.0"

__all__ = [
    "AsyncHubAPI",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "HubAPI",
    "HubAPIError",
    "HubAuth",
    "HubAuthError",
    "HubAuthenticated",
    "HubOAuth",
    "HubOAuthCallbackHandler",
    "HubOAuthenticated",
    "HubResponseError",
    "HubUnavailable",
    "MissingScope",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "ScopeError",
    "ServiceTokenRejected",
    "UserNotAllowed",
    "check_scopes",
]

_LAZY = {
    "HubAPI": "hubauth.api",
    "AsyncHubAPI": "hubauth.api",
    "HubOAuth": "hubauth.oauth",
    "HubAuthenticated": "hubauth.tornado",
    "HubOAuthenticated": "hubauth.tornado",
    "HubOAuthCallbackHandler": "hubauth.tornado",
}


def __getattr__(name: str) -> Any:
    """Import the heavier parts (cookies, Tornado mixins) only when first used."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubauth' has no attribute {name!r}")
