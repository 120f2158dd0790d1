"""What the WSGI and ASGI middlewares share: the auth object, the scopes, the public paths.

Only settings live here; each middleware translates its own protocol (``hubauth.wsgi``,
``hubauth.asgi``) and leaves every decision to the core flows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .auth import HubAuth
from .oauth import HubOAuth

__all__ = ["MiddlewareSettings"]


class MiddlewareSettings:
    """``app`` wrapped with ``auth`` (a :class:`~hubauth.HubOAuth` from the environment when
    omitted), ``scopes`` replacing the service's access scopes, and ``public_paths``: exact
    paths, or prefixes ending in ``/``, that pass unauthenticated.
    """

    def __init__(
        self,
        app: Any,
        auth: HubAuth | None = None,
        *,
        scopes: Iterable[str] | None = None,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.auth = auth if auth is not None else HubOAuth()
        self.scopes = None if scopes is None else frozenset(scopes)
        self.public_paths = tuple(public_paths)

    def is_public(self, path: str) -> bool:
        """Exact matches, or everything under a public path that ends with ``/``."""
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.public_paths)
