"""hubauth's cookie headers: ``Set-Cookie`` values, cookie options, the ``Cookie`` header.

Pure string functions for the framework adapters (:func:`format_set_cookie`,
:func:`format_clear_cookie`, :func:`parse_cookie_header`); nothing here does I/O or imports
a web framework. What the cookies hold is sealed by :class:`~hubauth._seal.CookieCodec`,
re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from ._seal import CLOCK_SKEW as CLOCK_SKEW
from ._seal import MAX_VALUE_SIZE as MAX_VALUE_SIZE
from ._seal import MIN_SECRET_LENGTH as MIN_SECRET_LENGTH
from ._seal import CookieCodec as CookieCodec
from ._seal import secret_problem as secret_problem
from .errors import ConfigError

__all__ = [
    "CLOCK_SKEW",
    "MAX_COOKIE_PAIRS",
    "MAX_HEADER_SIZE",
    "MAX_VALUE_SIZE",
    "MIN_SECRET_LENGTH",
    "CookieAttributes",
    "CookieCodec",
    "cookie_attributes",
    "cookie_values",
    "format_clear_cookie",
    "format_set_cookie",
    "is_cookie_name",
    "parse_cookie_header",
    "secret_problem",
    "validate_cookie_options",
]

MAX_HEADER_SIZE = 65536
"""Characters of a ``Cookie`` header :func:`parse_cookie_header` reads; the rest is ignored."""

MAX_COOKIE_PAIRS = 256
"""Most ``name=value`` pairs :func:`parse_cookie_header` returns."""

_OPTIONS_SETTING = "cookie_options"
_OPTIONS_VAR = "JUPYTERHUB_COOKIE_OPTIONS"

# RFC 6265 cookie-name (an RFC 7230 token) and cookie-octets.
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_PATH_RE = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")

_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


def is_cookie_name(name: object) -> bool:
    """Whether ``name`` may be a cookie's name (an RFC 7230 token): others are never set."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


_OPTION_ALIASES = {
    "domain": "domain",
    "samesite": "samesite",
    "same_site": "samesite",
    "secure": "secure",
    "httponly": "httponly",
    "http_only": "httponly",
    "max_age": "max_age",
    "expires_days": "expires_days",
}
_REFUSED_OPTIONS = {
    "path": "the cookie path is the service prefix (JUPYTERHUB_SERVICE_PREFIX), "
    "or / for __Host- cookies",
    "expires": "use expires_days or max_age (seconds) instead",
}


def _option_error(message: str) -> ConfigError:
    return ConfigError(f"{_OPTIONS_VAR}: {message}", setting=_OPTIONS_SETTING)


def _lifetime(key: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _option_error(f"{key} must be a number or null, got {value!r}")
    seconds = value * 86400 if key == "expires_days" else value
    if not math.isfinite(seconds) or seconds < 0:
        raise _option_error(f"{key} must be a finite number >= 0, got {value!r}")
    return int(seconds)


def validate_cookie_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check extra cookie attributes (``JUPYTERHUB_COOKIE_OPTIONS``) and normalise them.

    Accepted keys (any case, ``-`` or ``_``): ``domain``, ``samesite`` (Lax, Strict, None),
    ``secure`` and ``httponly`` (booleans; they can only switch the attribute on, hubauth's
    cookies are HttpOnly and Secure-on-https anyway), and the lifetime as ``max_age``
    (seconds) or ``expires_days``, ``null`` meaning a session cookie. The result uses the keys
    ``domain``, ``samesite``, ``secure``, ``httponly``, ``max_age`` and is itself valid input.
    Anything else raises :class:`~hubauth.errors.ConfigError`.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise _option_error(
            f'expected a JSON object like {{"domain": "example.org"}}, got {options!r}'
        )
    result: dict[str, Any] = {}
    lifetime_key = ""
    for raw_key, value in options.items():
        if not isinstance(raw_key, str):
            raise _option_error(f"option names must be strings, got {raw_key!r}")
        key = raw_key.strip().lower().replace("-", "_")
        if key in _REFUSED_OPTIONS:
            raise _option_error(f"{raw_key!r} is not accepted: {_REFUSED_OPTIONS[key]}")
        canonical = _OPTION_ALIASES.get(key)
        if canonical is None:
            allowed = ", ".join(sorted(set(_OPTION_ALIASES.values())))
            raise _option_error(f"unknown cookie option {raw_key!r}; accepted: {allowed}")
        if canonical in ("max_age", "expires_days"):
            if lifetime_key:
                raise _option_error(f"give one lifetime, not both {lifetime_key!r} and {raw_key!r}")
            lifetime_key = raw_key
            result["max_age"] = _lifetime(canonical, value)
        elif canonical in ("secure", "httponly"):
            if not isinstance(value, bool):
                raise _option_error(f"{raw_key} must be true or false, got {value!r}")
            if value:
                result[canonical] = True
        elif canonical == "samesite":
            if value is None:
                continue
            if not isinstance(value, str) or value.strip().lower() not in _SAME_SITE:
                raise _option_error(f"samesite must be Lax, Strict or None, got {value!r}")
            result["samesite"] = _SAME_SITE[value.strip().lower()]
        else:  # domain
            if value is None or value == "":
                continue
            if not isinstance(value, str) or len(value) > 253 or not _DOMAIN_RE.fullmatch(value):
                raise _option_error(f"domain must be a host name like example.org, got {value!r}")
            result["domain"] = value
    return result


@dataclasses.dataclass(frozen=True)
class CookieAttributes:
    """The attributes of one Set-Cookie, after __Host- rules and options were applied."""

    path: str
    secure: bool
    http_only: bool
    same_site: str
    max_age: int | None
    domain: str | None = None
    clear: bool = False

    def header(self, name: str, value: str = "") -> str:
        """The ``Set-Cookie`` header value for ``name=value`` with these attributes."""
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"invalid cookie name {name!r}")
        if self.clear:
            value = ""
        if not _VALUE_RE.fullmatch(value):
            raise ValueError(f"invalid characters in the value of cookie {name!r}")
        parts = [f"{name}={value}", f"Path={self.path}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.clear:
            parts += ["Max-Age=0", f"Expires={_EPOCH}"]
        elif self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        if self.secure:
            parts.append("Secure")
        if self.http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={self.same_site}")
        return "; ".join(parts)


def cookie_attributes(
    name: str,
    *,
    path: str,
    secure: bool,
    max_age: float | None = None,
    options: Mapping[str, Any] | None = None,
    stretchable: bool = True,
    http_only: bool = True,
    clear: bool = False,
) -> CookieAttributes:
    """The attributes for cookie ``name``: caller's defaults, then options, then prefix rules.

    ``options`` are extra attributes (see :func:`validate_cookie_options`). Their lifetime
    applies only when ``stretchable``; a short-lived cookie (the OAuth state) passes
    ``stretchable=False`` and keeps exactly its ``max_age``. ``__Host-`` names get
    ``Path=/``, ``Secure`` and no ``Domain``; ``__Secure-`` names get ``Secure``; both also
    when clearing. ``SameSite=None`` implies ``Secure`` (browsers drop it otherwise).
    """
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid cookie name {name!r}")
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        raise ValueError(f"cookie path must be an absolute URL path, got {path!r}")
    seconds: int | None = None
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
            raise TypeError(f"max_age must be a number of seconds or None, got {max_age!r}")
        if not math.isfinite(max_age) or max_age < 0:
            raise ValueError(f"max_age must be a finite number >= 0, got {max_age!r}")
        seconds = int(max_age)
    extra = validate_cookie_options(options)
    same_site = extra.get("samesite", "Lax")
    domain: str | None = extra.get("domain")
    secure = bool(secure) or extra.get("secure", False) or same_site == "None"
    http_only = bool(http_only) or extra.get("httponly", False)
    if stretchable and "max_age" in extra:
        seconds = extra["max_age"]
    if name.startswith("__Host-"):
        path, secure, domain = "/", True, None
    elif name.startswith("__Secure-"):
        secure = True
    return CookieAttributes(
        path=path,
        secure=secure,
        http_only=http_only,
        same_site=same_site,
        max_age=seconds,
        domain=domain,
        clear=clear,
    )


def format_set_cookie(
    name: str,
    value: str,
    *,
    path: str,
    secure: bool,
    max_age: float | None = None,
    options: Mapping[str, Any] | None = None,
    stretchable: bool = True,
    http_only: bool = True,
) -> str:
    """A ``Set-Cookie`` header value (HttpOnly, SameSite=Lax by default); see cookie_attributes."""
    attrs = cookie_attributes(
        name,
        path=path,
        secure=secure,
        max_age=max_age,
        options=options,
        stretchable=stretchable,
        http_only=http_only,
    )
    return attrs.header(name, value)


def format_clear_cookie(
    name: str,
    *,
    path: str,
    secure: bool,
    options: Mapping[str, Any] | None = None,
    http_only: bool = True,
) -> str:
    """A ``Set-Cookie`` value deleting ``name`` (same path/domain as set, Max-Age=0, epoch)."""
    attrs = cookie_attributes(
        name,
        path=path,
        secure=secure,
        options=options,
        stretchable=False,
        http_only=http_only,
        clear=True,
    )
    return attrs.header(name)


# --- the Cookie request header -----------------------------------------------------------


def parse_cookie_header(header: str) -> list[tuple[str, str]]:
    """Every ``(name, value)`` in a ``Cookie`` header, in order, duplicates kept; never raises.

    Browsers send one cookie per matching path, so one name may appear several times; the
    caller tries them in order. Pieces without ``=`` or a name are skipped, one pair of
    surrounding double quotes is removed, and at most :data:`MAX_HEADER_SIZE` characters and
    :data:`MAX_COOKIE_PAIRS` pairs are read.
    """
    if not isinstance(header, str):
        return []
    pairs: list[tuple[str, str]] = []
    for piece in header[:MAX_HEADER_SIZE].split(";"):
        name, sep, value = piece.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pairs.append((name, value))
        if len(pairs) >= MAX_COOKIE_PAIRS:
            break
    return pairs


def cookie_values(header: str, name: str) -> list[str]:
    """All values of cookie ``name`` in a ``Cookie`` header, in the order the browser sent."""
    return [v for n, v in parse_cookie_header(header) if n == name]
