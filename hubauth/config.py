"""Settings: read once from the environment the Hub sets, overridable by keyword, validated.

This is the only module of the library that reads ``os.environ``. Every setting is declared
once in :data:`SETTINGS` (:mod:`hubauth._settings`: name, environment variables, default,
meaning), from which the documentation's configuration reference is generated; here each is
read and validated. A missing or malformed value raises
:class:`~hubauth.errors.ConfigError` naming the variable, at construction, never later.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ._seal import secret_problem
from ._settings import SETTINGS as SETTINGS
from ._settings import Setting as Setting
from .errors import ConfigError, ScopeError
from .scopes import parse_scope

__all__ = ["SETTINGS", "Config", "Setting", "load_config"]

log = logging.getLogger("hubauth")

# Keyword aliases accepted for JupyterHub compatibility: alias -> setting name.
_ALIASES = {
    "cookie_cache_max_age": "cache_max_age",
    "client_secret": "api_token",
    "oauth_scopes": "access_scopes",
}

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"", "0", "false", "no", "off", "n"})

_MIN_TOKEN_LENGTH = 8


_ENV_OF = {s.name: f"{s.env[0]} ({s.name})" if s.env else s.name for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Config:
    """Validated settings of one :class:`~hubauth.HubAuth`; immutable, safe across threads."""

    api_token: str
    api_url: str
    hub_prefix: str
    base_url: str
    hub_host: str
    service_name: str
    service_url: str
    access_scopes: frozenset[str]
    oauth_client_allowed_scopes: frozenset[str]
    oauth_client_id: str
    oauth_redirect_uri: str
    oauth_redirect_uri_explicit: bool
    public_url: str
    public_hub_url: str
    certfile: str
    keyfile: str
    client_ca: str
    cookie_options: Mapping[str, Any]
    cookie_host_prefix_enabled: bool
    allow_token_in_url: bool
    allow_websocket_cookie_auth: bool
    cookie_secret: tuple[str, ...]
    cache_max_age: float
    cache_negative_max_age: float
    stale_max_age: float
    cache_maxsize: int
    connect_timeout: float
    request_timeout: float
    oauth_state_max_age: float
    login_url: str = ""

    def __repr__(self) -> str:
        # Secrets are never shown, so a Config can be logged or printed safely.
        shown = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("api_token", "cookie_secret")
        }
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"Config(api_token=[secure], cookie_secret=[secure], {body})"


def _fail(setting: str, message: str) -> ConfigError:
    return ConfigError(f"{_ENV_OF.get(setting, setting)}: {message}", setting=setting)


def _as_bool(setting: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise _fail(setting, f"expected true/false (1/0, yes/no), got {raw!r}")


def _as_number(setting: str, raw: object, *, integer: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise _fail(setting, f"expected a number, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise _fail(setting, f"expected a number, got {raw!r}") from None
    if value != value or value < 0 or value == float("inf"):
        raise _fail(setting, f"expected a finite number >= 0, got {raw!r}")
    if integer and value != int(value):
        raise _fail(setting, f"expected a whole number, got {raw!r}")
    return value


def _as_str(setting: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise _fail(setting, f"expected a string, got {type(raw).__name__}")
    return raw.strip()


def _json(setting: str, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise _fail(setting, f"is not valid JSON ({e.msg} at position {e.pos})") from None


def _as_scopes(setting: str, raw: object) -> frozenset[str]:
    value = _json(setting, raw)
    if isinstance(value, (set, frozenset, tuple)):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _fail(
            setting, f'expected a JSON list of scope strings like ["read:users"], got {raw!r}'
        )
    for scope in value:
        try:
            parse_scope(scope)
        except ScopeError as e:
            raise _fail(setting, str(e)) from None
    return frozenset(value)


def _as_http_url(setting: str, raw: object, *, path_allowed: bool = True) -> str:
    value = _as_str(setting, raw)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(
            setting, f"expected an http(s) URL such as http://127.0.0.1:8081, got {value!r}"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise _fail(setting, f"has a malformed port: {value!r}") from None
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise _fail(setting, f"must not carry a query, fragment or user info: {value!r}")
    if not path_allowed and parts.path not in ("", "/"):
        raise _fail(setting, f"must be a scheme and host only (no path), got {value!r}")
    return value.rstrip("/") if path_allowed else f"{parts.scheme}://{parts.netloc}"


# Longest unix socket path the kernel takes (sun_path less its NUL byte).
_MAX_UNIX_PATH = 103 if sys.platform == "darwin" else 107


def _as_api_url(setting: str, raw: object) -> str:
    """An http(s) URL, or an ``http+unix://`` one naming the Hub's unix socket."""
    value = _as_str(setting, raw)
    if value.partition("://")[0].lower() not in ("http+unix", "unix+http"):
        return _as_http_url(setting, value)
    example = "http+unix://%2Fsrv%2Fjupyterhub%2Fhub.sock/hub/api"
    parts = urllib.parse.urlsplit(value)
    path = urllib.parse.unquote(parts.netloc)
    if not path.startswith("/"):
        raise _fail(
            setting,
            f"expected the socket's absolute path percent-encoded as the host, like {example} "
            f"(%2F for each /), got {value!r}",
        )
    if "\0" in path or len(path.encode()) > _MAX_UNIX_PATH:
        raise _fail(
            setting, f"the unix socket path must be at most {_MAX_UNIX_PATH} bytes: {path!r}"
        )
    if parts.query or parts.fragment:
        raise _fail(setting, f"must not carry a query or fragment: {value!r}")
    return f"http+unix://{parts.netloc}{parts.path.rstrip('/')}"


def _as_path(setting: str, raw: object) -> str:
    value = _as_str(setting, raw) or "/"
    if "://" in value or "?" in value or "#" in value or "\\" in value or value.startswith("//"):
        raise _fail(setting, f"expected a URL path such as /services/name/, got {value!r}")
    if not value.startswith("/"):
        value = "/" + value
    if not value.endswith("/"):
        value += "/"
    return value


def _read_secret_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise _fail(
            "cookie_secret", f"cannot read HUBAUTH_COOKIE_SECRET_FILE {path!r}: {e.strerror}"
        ) from None


def _secret_text(item: str | bytes) -> str:
    """A secret as text: bytes that are not ASCII are raw key material, kept as hex."""
    if isinstance(item, bytes):
        try:
            return item.decode("ascii").strip()
        except UnicodeDecodeError:
            return item.hex()
    return item.strip()


def _as_secrets(raw: object) -> tuple[str, ...]:
    if isinstance(raw, (bytes, str)):
        text = _secret_text(raw)
        items = [s.strip() for s in text.split(",")]
    elif isinstance(raw, (list, tuple)) and all(isinstance(s, (str, bytes)) for s in raw):
        items = [_secret_text(s) for s in raw]
    else:
        raise _fail("cookie_secret", "expected a string (comma-separated for rotation) or a list")
    items = [s for s in items if s]
    for position, s in enumerate(items, 1):
        problem = secret_problem(s)
        if problem is not None:
            which = f"secret {position} of {len(items)}" if len(items) > 1 else "the secret"
            raise _fail(
                "cookie_secret",
                f"{which} {problem} (a weak secret lets anyone holding a captured cookie "
                "guess the key offline)",
            )
    return tuple(items)


def _pick(
    name: str, overrides: dict[str, object], environ: Mapping[str, str], default: object
) -> object:
    """Keyword override first, then the setting's environment variables in order, then default."""
    if name in overrides:
        return overrides.pop(name)
    for var in next(s.env for s in SETTINGS if s.name == name):
        if environ.get(var):
            return environ[var]
    return default


def load_config(
    environ: Mapping[str, str] | None = None,
    *,
    oauth: bool = False,
    **overrides: object,
) -> Config:
    """Build a validated :class:`Config` from ``environ`` (default ``os.environ``) and keywords.

    ``oauth=True`` also requires what the browser login needs (a client id and a redirect
    URI the Hub will accept).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    given = dict(overrides)
    for alias, name in _ALIASES.items():
        if alias in given:
            if name in given:
                raise ConfigError(f"give either {alias}= or {name}=, not both", setting=name)
            given[name] = given.pop(alias)
    known = {s.name for s in SETTINGS} | {"login_url"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(sorted(known))}",
            setting=unknown[0],
        )

    def pick(name: str, default: object = "") -> object:
        return _pick(name, given, env, default)

    api_token = _as_str("api_token", pick("api_token"))
    if not api_token:
        raise _fail(
            "api_token",
            "is not set. A Hub-managed service gets it from the Hub; an external service "
            "sets it to the api_token in its c.JupyterHub.services entry (or passes api_token=).",
        )
    if len(api_token) < _MIN_TOKEN_LENGTH or any(c.isspace() for c in api_token):
        raise _fail(
            "api_token",
            f"must be at least {_MIN_TOKEN_LENGTH} characters with no spaces "
            "(the Hub ignores shorter tokens); make one with: openssl rand -hex 32",
        )

    hub_prefix = _as_path("hub_prefix", pick("hub_prefix", "/"))
    if "hub_prefix" not in overrides:
        hub_prefix = hub_prefix + "hub/"
    api_url = _as_api_url("api_url", pick("api_url", f"http://127.0.0.1:8081{hub_prefix}api"))
    base_url_raw = pick("base_url", None)
    base_url = _as_path("base_url", base_url_raw or "/")
    hub_host_raw = _as_str("hub_host", pick("hub_host"))
    hub_host = _as_http_url("hub_host", hub_host_raw, path_allowed=False) if hub_host_raw else ""
    service_name = _as_str("service_name", pick("service_name"))
    service_url = _as_str("service_url", pick("service_url"))
    if service_url:
        service_url = _as_http_url("service_url", service_url)

    default_scopes = [f"access:services!service={service_name}"] if service_name else []
    access_scopes = _as_scopes("access_scopes", pick("access_scopes", default_scopes))
    allowed = _as_scopes("oauth_client_allowed_scopes", pick("oauth_client_allowed_scopes", []))

    client_id = _as_str(
        "oauth_client_id",
        pick("oauth_client_id", f"service-{service_name}" if service_name else ""),
    )
    if client_id and not all(c.isalnum() or c in "-_.:" for c in client_id):
        raise _fail("oauth_client_id", f"may hold only letters, digits and -_.: ({client_id!r})")
    redirect_raw = _as_str("oauth_redirect_uri", pick("oauth_redirect_uri"))
    redirect_uri = redirect_raw or f"{base_url}oauth_callback"
    # The Hub gives a service without a URL a relative "oauth_callback": harmless unless
    # this object runs the browser login, which needs a real one.
    if oauth and redirect_raw and not (redirect_raw.startswith("/") or "://" in redirect_raw):
        raise _fail(
            "oauth_redirect_uri", f"expected a path or an absolute URL, got {redirect_raw!r}"
        )
    if oauth:
        if not client_id:
            raise _fail(
                "oauth_client_id",
                "is not set and JUPYTERHUB_SERVICE_NAME is empty: set JUPYTERHUB_CLIENT_ID "
                "(service-<name> for a service) or pass oauth_client_id=",
            )
        if not redirect_raw and not base_url_raw:
            raise _fail(
                "oauth_redirect_uri",
                "cannot be derived: neither JUPYTERHUB_OAUTH_CALLBACK_URL nor "
                "JUPYTERHUB_SERVICE_PREFIX is set, and the Hub would refuse '/oauth_callback' "
                '("Mismatching redirect URI"). Set one of them, or give oauth_redirect_uri= '
                "matching the service's oauth_redirect_uri in the Hub config.",
            )

    public_url = _as_str("public_url", pick("public_url"))
    if public_url:
        public_url = _as_http_url("public_url", public_url)
    public_hub_url = _as_str("public_hub_url", pick("public_hub_url"))
    if public_hub_url:
        public_hub_url = _as_http_url("public_hub_url", public_hub_url)

    certfile = _as_str("certfile", pick("certfile"))
    keyfile = _as_str("keyfile", pick("keyfile"))
    client_ca = _as_str("client_ca", pick("client_ca"))
    if bool(certfile) != bool(keyfile):
        raise _fail(
            "certfile" if not certfile else "keyfile",
            "internal TLS needs both JUPYTERHUB_SSL_CERTFILE and JUPYTERHUB_SSL_KEYFILE",
        )
    for name, path in (("certfile", certfile), ("keyfile", keyfile), ("client_ca", client_ca)):
        if path and not os.path.isfile(path):
            raise _fail(name, f"file {path!r} does not exist")

    cookie_options = _json("cookie_options", pick("cookie_options", {}))
    if not isinstance(cookie_options, Mapping):
        raise _fail(
            "cookie_options",
            f'expected a JSON object like {{"domain": "x"}}, got {cookie_options!r}',
        )

    secret_raw = given.pop("cookie_secret", None)
    if secret_raw is None:
        if env.get("HUBAUTH_COOKIE_SECRET"):
            secret_raw = env["HUBAUTH_COOKIE_SECRET"]
        elif env.get("HUBAUTH_COOKIE_SECRET_FILE"):
            secret_raw = _read_secret_file(env["HUBAUTH_COOKIE_SECRET_FILE"])
        else:
            secret_raw = ""
    cookie_secret = _as_secrets(secret_raw)

    cache_max_age = _as_number("cache_max_age", pick("cache_max_age", 300))
    negative = _as_number("cache_negative_max_age", pick("cache_negative_max_age", 10))
    stale = _as_number("stale_max_age", pick("stale_max_age", 300))
    maxsize = _as_number("cache_maxsize", pick("cache_maxsize", 10_000), integer=True)
    if maxsize < 1:
        raise _fail("cache_maxsize", "must be at least 1")

    return Config(
        api_token=api_token,
        api_url=api_url,
        hub_prefix=hub_prefix,
        base_url=base_url,
        hub_host=hub_host,
        service_name=service_name,
        service_url=service_url,
        access_scopes=access_scopes,
        oauth_client_allowed_scopes=allowed,
        oauth_client_id=client_id,
        oauth_redirect_uri=redirect_uri,
        oauth_redirect_uri_explicit=bool(redirect_raw),
        public_url=public_url,
        public_hub_url=public_hub_url,
        certfile=certfile,
        keyfile=keyfile,
        client_ca=client_ca,
        cookie_options=dict(cookie_options),
        cookie_host_prefix_enabled=_as_bool(
            "cookie_host_prefix_enabled", pick("cookie_host_prefix_enabled", False)
        ),
        allow_token_in_url=_as_bool("allow_token_in_url", pick("allow_token_in_url", False)),
        allow_websocket_cookie_auth=_as_bool(
            "allow_websocket_cookie_auth", pick("allow_websocket_cookie_auth", True)
        ),
        cookie_secret=cookie_secret,
        cache_max_age=cache_max_age,
        cache_negative_max_age=min(negative, cache_max_age),
        stale_max_age=stale,
        cache_maxsize=int(maxsize),
        connect_timeout=_as_number("connect_timeout", pick("connect_timeout", 5.0)),
        request_timeout=_as_number("request_timeout", pick("request_timeout", 15.0)),
        oauth_state_max_age=_as_number("oauth_state_max_age", pick("oauth_state_max_age", 600)),
        login_url=_as_str("login_url", given.pop("login_url", "")),
    )
