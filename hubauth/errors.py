"""The one tree of errors hubauth raises.

Every error carries what it is about as attributes (``url``, ``status``, ``setting``) and a
message that names it and says what to do, so a service log line is enough to act on.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HubAPIError",
    "HubAuthError",
    "HubResponseError",
    "HubUnavailable",
    "OAuthError",
    "ScopeError",
    "ServiceTokenRejected",
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
    """A Hub REST API call answered with an error status (see ``status``)."""


class OAuthError(HubAuthError):
    """The OAuth exchange with the Hub failed (bad code, mismatching redirect URI, ...)."""
