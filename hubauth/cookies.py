"""hubauth's cookies: encrypted, authenticated values, and the headers that carry them.

:class:`CookieCodec` turns a small JSON payload into a cookie value the browser can neither
read nor alter (Fernet: AES-128-CBC with HMAC-SHA256, keys derived from the configured
secrets with HKDF). The purpose (``"login"``, ``"oauth-state"``), the cookie's name and the
issue time are sealed inside the value, so a state cookie never passes as a login cookie, a
cookie set under another name never authenticates, and age is checked against an injected
clock. Decoding returns ``None`` on any failure and never raises.

The header helpers (:func:`format_set_cookie`, :func:`format_clear_cookie`,
:func:`parse_cookie_header`) are pure string functions for the framework adapters. Nothing
here does I/O or imports a web framework.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
    "parse_cookie_header",
    "validate_cookie_options",
]

log = logging.getLogger("hubauth")

MAX_VALUE_SIZE = 4096
"""Longest cookie value :meth:`CookieCodec.decode` looks at (and :meth:`encode` produces)."""

CLOCK_SKEW = 60.0
"""Seconds an issue time may lie in the future (clocks of several hosts differ a little)."""

MIN_SECRET_LENGTH = 16
"""Shortest accepted secret; secrets should be random, e.g. ``secrets.token_hex(32)``."""

MAX_HEADER_SIZE = 65536
"""Characters of a ``Cookie`` header :func:`parse_cookie_header` reads; the rest is ignored."""

MAX_COOKIE_PAIRS = 256
"""Most ``name=value`` pairs :func:`parse_cookie_header` returns."""

_FORMAT_VERSION = 1
_HKDF_SALT = b"hubauth.cookies"
_HKDF_INFO = b"hubauth cookie encryption key v1"
_OPTIONS_SETTING = "cookie_options"
_OPTIONS_VAR = "JUPYTERHUB_COOKIE_OPTIONS"

# Fernet tokens are canonical URL-safe base64; anything else is rejected before any crypto.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# RFC 6265 cookie-name (an RFC 7230 token) and cookie-octets.
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_RE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_PATH_RE = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")

_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}

_process_key: bytes | None = None
_process_key_lock = threading.Lock()


def _random_process_key() -> bytes:
    """The one random Fernet key this process uses when no secret is configured."""
    global _process_key
    with _process_key_lock:
        if _process_key is None:
            _process_key = Fernet.generate_key()
        return _process_key


def _derive_key(secret: str) -> bytes:
    """A Fernet key (URL-safe base64 of 32 bytes) derived from a secret string with HKDF."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8", "surrogatepass")))


def _same(a: str, b: str) -> bool:
    """Constant-time string equality (``hmac.compare_digest`` wants bytes for non-ASCII)."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _check_label(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"cookie {kind} must be a non-empty str, got {value!r}")
    return value


class CookieCodec:
    """Seal JSON payloads into cookie values bound to a purpose, a cookie name and a time.

    ``secrets``: the first one encrypts, every one decrypts, so a new secret is put first and
    an old one dropped once its cookies have expired. A single ``str`` counts as one secret.
    With no secrets, a random per-process key is used and a warning logged: sessions then
    end when the process restarts and are not shared between workers or replicas.
    """

    def __init__(
        self,
        secrets: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        items = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        for secret in items:
            if not isinstance(secret, str):
                raise ConfigError(
                    "HUBAUTH_COOKIE_SECRET: each secret must be a str, "
                    f"got {type(secret).__name__}",
                    setting="cookie_secret",
                )
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"HUBAUTH_COOKIE_SECRET: each secret must have at least {MIN_SECRET_LENGTH} "
                    "characters; make one with: "
                    "python -c 'import secrets; print(secrets.token_hex(32))'",
                    setting="cookie_secret",
                )
        if items:
            keys = [_derive_key(s) for s in items]
        else:
            keys = [_random_process_key()]
            log.warning(
                "No cookie secret configured: hubauth encrypts its cookies with a random "
                "per-process key, so logins end when this process restarts and do not span "
                "several workers or replicas. Set HUBAUTH_COOKIE_SECRET (or "
                "HUBAUTH_COOKIE_SECRET_FILE) to a random string, e.g. from "
                "python -c 'import secrets; print(secrets.token_hex(32))'."
            )
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._key_count = len(keys)
        self._random = not items
        self._clock = clock

    def __repr__(self) -> str:
        if self._random:
            return "CookieCodec(keys=[random per-process])"
        return f"CookieCodec(keys=[secure] x {self._key_count})"

    @property
    def random_key(self) -> bool:
        """Whether no secret was configured (cookies are valid in this process only)."""
        return self._random

    def encode(self, purpose: str, name: str, payload: Mapping[str, Any]) -> str:
        """The cookie value sealing ``payload`` for ``purpose`` and cookie ``name``, issued now.

        Raises ``TypeError``/``ValueError`` for a payload that is not a JSON object with
        string keys, or one too large for a cookie.
        """
        _check_label("purpose", purpose)
        _check_label("name", name)
        if not isinstance(payload, Mapping) or not all(isinstance(k, str) for k in payload):
            raise TypeError("cookie payload must be a mapping with str keys")
        issued = float(self._clock())
        if not math.isfinite(issued):
            raise ValueError(f"clock returned a non-finite time {issued!r}")
        envelope = {
            "v": _FORMAT_VERSION,
            "p": purpose,
            "n": name,
            "t": round(issued, 3),
            "d": dict(payload),
        }
        data = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        token = self._fernet.encrypt_at_time(data.encode("utf-8"), int(issued)).decode("ascii")
        if len(token) > MAX_VALUE_SIZE:
            raise ValueError(
                f"cookie payload too large: the value would be {len(token)} characters, "
                f"at most {MAX_VALUE_SIZE} are accepted"
            )
        return token

    def decode(
        self, purpose: str, name: str, value: str, *, max_age: float
    ) -> dict[str, Any] | None:
        """The payload sealed in ``value``, or ``None`` if it is not valid for these now."""
        found = self.decode_with_time(purpose, name, value, max_age=max_age)
        return None if found is None else found[0]

    def decode_with_time(
        self, purpose: str, name: str, value: str, *, max_age: float
    ) -> tuple[dict[str, Any], float] | None:
        """``(payload, issue time)`` sealed in ``value``, or ``None`` on any failure.

        Fails for a wrong or retired key, any alteration, a purpose or cookie name other than
        the given ones, an age over ``max_age`` seconds, an issue time more than
        :data:`CLOCK_SKEW` in the future, or a value over :data:`MAX_VALUE_SIZE`.
        """
        try:
            return self._open(purpose, name, value, max_age)
        # binascii.Error, UnicodeDecodeError and JSONDecodeError are all ValueErrors.
        except (InvalidToken, ValueError, TypeError, RecursionError, OverflowError):
            return None

    def decode_first(
        self, purpose: str, name: str, values: Iterable[str], *, max_age: float
    ) -> dict[str, Any] | None:
        """The payload of the first valid value among ``values`` (e.g. same-named cookies)."""
        for value in values:
            payload = self.decode(purpose, name, value, max_age=max_age)
            if payload is not None:
                return payload
        return None

    def _open(
        self, purpose: str, name: str, value: object, max_age: float
    ) -> tuple[dict[str, Any], float] | None:
        if not isinstance(value, str) or not isinstance(purpose, str) or not isinstance(name, str):
            return None
        if not isinstance(max_age, (int, float)) or not max_age >= 0:  # also rejects NaN
            return None
        if len(value) > MAX_VALUE_SIZE or not value.isascii() or not _TOKEN_RE.fullmatch(value):
            return None
        # Only the canonical encoding is accepted, so every changed character is a failure.
        raw = base64.b64decode(value, altchars=b"-_", validate=True)
        if base64.urlsafe_b64encode(raw).decode("ascii") != value:
            return None
        envelope = json.loads(self._fernet.decrypt(value).decode("utf-8"))
        if not isinstance(envelope, dict) or envelope.get("v") != _FORMAT_VERSION:
            return None
        got_purpose, got_name = envelope.get("p"), envelope.get("n")
        issued, payload = envelope.get("t"), envelope.get("d")
        if not isinstance(got_purpose, str) or not isinstance(got_name, str):
            return None
        # Evaluate both comparisons, so neither mismatch is quicker to find than the other.
        same_purpose = _same(got_purpose, purpose)
        same_name = _same(got_name, name)
        if not (same_purpose and same_name):
            return None
        if isinstance(issued, bool) or not isinstance(issued, (int, float)):
            return None
        if not isinstance(payload, dict):
            return None
        issued = float(issued)
        now = float(self._clock())
        if not math.isfinite(issued) or not math.isfinite(now):
            return None
        if issued > now + CLOCK_SKEW or now - issued > max_age:
            return None
        return payload, issued


# --- cookie options and Set-Cookie headers -----------------------------------------------

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
