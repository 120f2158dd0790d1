"""Every setting hubauth reads, declared once: its keyword, variables, default and meaning.

:mod:`hubauth.config` validates them; the documentation's configuration reference is
generated from this table (``docs/_ext/hubauth_settings.py``).
"""

from __future__ import annotations

import dataclasses

__all__ = ["SETTINGS", "Setting"]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One documented setting: its keyword, environment variables, default and meaning."""

    name: str
    env: tuple[str, ...]
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "api_token",
        ("JUPYTERHUB_API_TOKEN",),
        "(required)",
        "The service's own token; also its OAuth client secret (alias `client_secret`).",
    ),
    Setting(
        "api_url",
        ("JUPYTERHUB_API_URL",),
        "`http://127.0.0.1:8081<hub_prefix>api`",
        "Base URL of the Hub's REST API, as seen from this service: `http(s)://host:port/...`, "
        "or `http+unix://<percent-encoded socket path>/...` for a Hub bound to a unix socket.",
    ),
    Setting(
        "hub_prefix",
        ("JUPYTERHUB_BASE_URL",),
        "`<JUPYTERHUB_BASE_URL>hub/` (`/hub/`)",
        "URL path prefix of the Hub; the authorize and login URLs live under it.",
    ),
    Setting(
        "base_url",
        ("JUPYTERHUB_SERVICE_PREFIX",),
        "`/`",
        "URL prefix of this service, e.g. `/services/name/`: routes and cookie path.",
    ),
    Setting(
        "hub_host",
        ("JUPYTERHUB_HOST",),
        "empty",
        "Public scheme and host of the Hub (no path) when servers live on other hosts.",
    ),
    Setting(
        "service_name",
        ("JUPYTERHUB_SERVICE_NAME",),
        "empty",
        "This service's name; the default access scope names it.",
    ),
    Setting(
        "service_url",
        ("JUPYTERHUB_SERVICE_URL",),
        "empty",
        "Where a Hub-proxied service should listen.",
    ),
    Setting(
        "access_scopes",
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES"),
        "`access:services!service=<service_name>`",
        "JSON list of scopes any one of which grants access to this service.",
    ),
    Setting(
        "oauth_client_allowed_scopes",
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES",),
        "`[]`",
        "JSON list of scopes this client may request for users (informational).",
    ),
    Setting(
        "oauth_client_id",
        ("JUPYTERHUB_CLIENT_ID",),
        "`service-<service_name>`",
        "OAuth client id; also the name of the login cookie.",
    ),
    Setting(
        "oauth_redirect_uri",
        ("JUPYTERHUB_OAUTH_CALLBACK_URL",),
        "`<base_url>oauth_callback`",
        "Where the Hub sends the browser back after login; must match the Hub's record.",
    ),
    Setting(
        "public_url",
        ("JUPYTERHUB_PUBLIC_URL",),
        "empty",
        "Public URL of the service; an `https` one makes cookies `Secure`.",
    ),
    Setting(
        "public_hub_url",
        ("JUPYTERHUB_PUBLIC_HUB_URL",),
        "empty",
        "Public URL of the Hub; when `public_url` is unset, an https one makes cookies Secure.",
    ),
    Setting(
        "certfile",
        ("JUPYTERHUB_SSL_CERTFILE",),
        "empty",
        "Client certificate for internal TLS to the Hub (with `keyfile`).",
    ),
    Setting(
        "keyfile",
        ("JUPYTERHUB_SSL_KEYFILE",),
        "empty",
        "Key of the client certificate for internal TLS (with `certfile`).",
    ),
    Setting(
        "client_ca",
        ("JUPYTERHUB_SSL_CLIENT_CA",),
        "empty (system CAs)",
        "CA bundle that verifies the Hub's certificate; applies without a client cert too.",
    ),
    Setting(
        "cookie_options",
        ("JUPYTERHUB_COOKIE_OPTIONS",),
        "`{}`",
        'JSON object of extra cookie attributes (e.g. `{"domain": ...}`).',
    ),
    Setting(
        "cookie_host_prefix_enabled",
        ("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED",),
        "`false`",
        "Use `__Host-` cookie names (forces `Path=/` and `Secure`).",
    ),
    Setting(
        "allow_token_in_url",
        ("JUPYTERHUB_ALLOW_TOKEN_IN_URL",),
        "`false`",
        "Accept `?token=` on ordinary requests (websocket handshakes always may).",
    ),
    Setting(
        "allow_websocket_cookie_auth",
        ("JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH",),
        "`true`",
        "Accept the login cookie alone on websocket handshakes.",
    ),
    Setting(
        "cookie_secret",
        ("HUBAUTH_COOKIE_SECRET", "HUBAUTH_COOKIE_SECRET_FILE"),
        "random per process (warns)",
        "Secret(s) encrypting hubauth's cookies; comma-separated list rotates keys.",
    ),
    Setting(
        "cache_max_age",
        (),
        "`300`",
        "Seconds a Hub answer about a token is cached (alias `cookie_cache_max_age`).",
    ),
    Setting(
        "cache_negative_max_age",
        (),
        "`10`",
        "Seconds a Hub 'unknown token' answer is cached (never longer than `cache_max_age`).",
    ),
    Setting(
        "stale_max_age",
        (),
        "`300`",
        "Seconds past `cache_max_age` a known user's cached answer may still be given while "
        "the Hub cannot answer (refused, reset, timeout, 5xx; never on 403); 0 turns it off.",
    ),
    Setting(
        "cache_maxsize",
        (),
        "`10000`",
        "Most token answers kept in the cache; the least recently used go first.",
    ),
    Setting(
        "connect_timeout",
        (),
        "`5.0`",
        "Seconds to wait for a connection to the Hub.",
    ),
    Setting(
        "request_timeout",
        (),
        "`15.0`",
        "Seconds to wait for the Hub's whole answer.",
    ),
    Setting(
        "oauth_state_max_age",
        (),
        "`600`",
        "Seconds a login may take between leaving for the Hub and coming back.",
    ),
)
