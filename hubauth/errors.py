"""The one tree of errors hubauth raises.

Every error carries what it is about as attributes (``url``, ``status``, ``setting``) and a
message that names it and says what to do, so a service log line is enough to act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "HubAPIError",
    "HubAuthError",
    "HubResponseError",
    "HubUnavailable",
    "MissingScope",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "ScopeError",
    "ServiceTokenRejected",
    "UserNotAllowed",
]


class HubAuthError(Exception):
    """Base of every error hubauth raises."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.setting = setting

    def __str__(self) -> str:
        return self.message


class ConfigError(HubAuthError, ValueError):
    """A setting is missing or malformed; ``setting`` names the variable or keyword."""


class ScopeError(HubAuthError, ValueError):
    """A scope string is malformed (for example ``read:users!user``)."""


class HubUnavailable(HubAuthError):
    """The Hub could not be reached: refused, reset, timed out, or TLS failed.

    Services answer 503 for this; it is never cached.
    """


class HubResponseError(HubAuthError):
    """The Hub answered, but not as the protocol says: 5xx, a redirect, HTML, a wrong shape.

    Services answer 502 for this; it is never cached.
    """


class ServiceTokenRejected(HubResponseError):
    """The Hub refused this service's own token (``JUPYTERHUB_API_TOKEN``)."""


class HubAPIError(HubResponseError):
    """A Hub REST API call answered with an error status (see ``status``).

    ``endpoint`` names the call (``"DELETE /users/{name}/server"``) and ``scopes`` the
    scopes any one of which it needs, so the message can say what to grant.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        setting: str | None = None,
        endpoint: str = "",
        scopes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, url=url, status=status, setting=setting)
        self.endpoint = endpoint
        self.scopes = scopes


class MissingScope(HubAPIError):
    """403: the token lacks every scope in ``scopes`` for this call."""


class NotFound(HubAPIError):
    """404: no such user, server, group, ... (or the token's scopes do not reach it)."""


class Conflict(HubAPIError):
    """409: it exists already (a user, group, named server or service)."""


class BadRequest(HubAPIError):
    """400: the Hub refused the request's content (its message says why)."""


class RateLimited(HubAPIError):
    """429 (or a ``Retry-After`` longer than this client waits); ``retry_after`` in seconds."""

    retry_after: float | None = None


class OAuthError(HubAuthError):
    """The OAuth exchange with the Hub failed (bad code, mismatching redirect URI, ...)."""


class UserNotAllowed(HubAuthError):
    """A caller the Hub identified may not pass (``check_hub_user``): answered with 403.

    ``model`` is the caller's Hub model; ``scopes`` the scopes any one of which would have
    let them in (empty when an allow-list refused them).
    """

    def __init__(self, model: Mapping[str, Any], scopes: Iterable[str] = ()) -> None:
        self.model = model
        self.scopes = sorted(scopes)
        who = f"{model.get('kind', 'user')} {model.get('name')}"
        if self.scopes:
            message = f"{who} may not pass: it has none of the scopes {', '.join(self.scopes)}"
        else:
            message = f"{who} may not pass: not in this handler's allow-lists"
        super().__init__(message)
