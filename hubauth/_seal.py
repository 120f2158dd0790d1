"""Sealed values: what hubauth's cookies and its OAuth ``state`` carry, and the secrets behind them.

:class:`CookieCodec` turns a small JSON payload into a value the browser can neither read nor
alter (Fernet: AES-128-CBC with HMAC-SHA256, keys derived from the configured secrets with
HKDF). The purpose (``"login"``, ``"oauth-state"``), the cookie's name and the issue time are
sealed inside the value, so a state cookie never passes as a login cookie, a cookie set under
another name never authenticates, and age is checked against an injected clock. Decoding
returns ``None`` on any failure and never raises. :meth:`CookieCodec.mac` gives short
keyed digests (the XSRF tokens) from keys derived from the same secrets.

:func:`secret_problem` says why a configured secret is too weak to protect captured cookies
from offline guessing (HKDF has no work factor, so the secret itself must be random).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigError

__all__ = [
    "CLOCK_SKEW",
    "MAX_VALUE_SIZE",
    "MIN_SECRET_BYTES",
    "MIN_SECRET_LENGTH",
    "CookieCodec",
    "secret_problem",
]

log = logging.getLogger("hubauth")

MAX_VALUE_SIZE = 4096
"""Longest sealed value :meth:`CookieCodec.decode` looks at (and :meth:`encode` produces)."""

CLOCK_SKEW = 60.0
"""Seconds an issue time may lie in the future (clocks of several hosts differ a little)."""

MIN_SECRET_BYTES = 32
"""Random bytes a secret must carry (as hex or base64), as JupyterHub makes its own."""

MIN_SECRET_LENGTH = 43
"""Shortest accepted secret text: 32 bytes in unpadded base64 (64 in hex)."""

_MAKE_ONE = "make one with: openssl rand -hex 32"
_ZLIB_OVERHEAD = 11  # bytes zlib adds to any input (header, block, checksum)
_MIN_SQUEEZED_BITS = 264
_FORMAT_VERSION = 1
_HKDF_SALT = b"hubauth.cookies"
_HKDF_INFO = b"hubauth cookie encryption key v1"
_MAC_INFO = b"hubauth keyed digest key v1"

# Fernet tokens are canonical URL-safe base64; anything else is rejected before any crypto.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_B64_RE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _entropy_bits(text: str) -> float:
    """Shannon entropy of ``text``'s characters times its length: a floor on how random it
    looks (a repeated or dictionary-like string scores far below a random one).
    """
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    n = len(text)
    return -sum(k * math.log2(k / n) for k in counts.values())


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` cannot protect hubauth's cookies, or ``None`` when it is strong.

    A strong secret is at least :data:`MIN_SECRET_BYTES` random bytes written as hex or
    base64 (``openssl rand -hex 32``), and looks random (no long repeats, not words).
    """
    if not isinstance(secret, str):
        return f"expected a string, got {type(secret).__name__}"
    text = secret.strip()
    raw: bytes | None = None
    if _HEX_RE.fullmatch(text) and len(text) % 2 == 0:
        raw = bytes.fromhex(text)
    elif _B64_RE.fullmatch(text):
        padded = text.replace("-", "+").replace("_", "/")
        padded += "=" * (-len(padded) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        return (
            f"is not hex or base64 random bytes (it has {len(text)} characters); "
            f"use at least {MIN_SECRET_BYTES} random bytes as hex or base64, {_MAKE_ONE}"
        )
    if len(raw) < MIN_SECRET_BYTES:
        return (
            f"holds only {len(raw)} bytes; at least {MIN_SECRET_BYTES} random bytes are "
            f"needed, {_MAKE_ONE}"
        )
    # Two cheap floors on how random it looks: character statistics (random hex of 32
    # bytes scores ~230 bits, "ab" * 32 scores 64) and what zlib can squeeze out of it
    # (random hex keeps >= 44 bytes of 55, a sequence or a repeated half far fewer).
    squeezed = (len(zlib.compress(text.encode("ascii"), 9)) - _ZLIB_OVERHEAD) * 8
    if _entropy_bits(text) < 128 or squeezed < _MIN_SQUEEZED_BITS:
        return f"does not look random (repeated or predictable characters); {_MAKE_ONE}"
    return None


_process_key: bytes | None = None
_process_key_lock = threading.Lock()


def _random_process_key() -> bytes:
    """The one random Fernet key this process uses when no secret is configured."""
    global _process_key
    with _process_key_lock:
        if _process_key is None:
            _process_key = Fernet.generate_key()
        return _process_key


def _derive(secret: bytes, info: bytes) -> bytes:
    """32 bytes derived from a secret with HKDF, one key per ``info`` (purpose)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info)
    return hkdf.derive(secret)


def _derive_key(secret: str) -> bytes:
    """A Fernet key (URL-safe base64 of 32 bytes) derived from a secret string with HKDF."""
    return base64.urlsafe_b64encode(_derive(secret.encode("utf-8", "surrogatepass"), _HKDF_INFO))


def _digest(key: bytes, purpose: str, message: bytes) -> str:
    mac = hmac.new(key, purpose.encode("utf-8") + b"\0" + message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


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
            problem = secret_problem(secret)
            if problem is not None:
                raise ConfigError(
                    f"HUBAUTH_COOKIE_SECRET: a secret {problem}", setting="cookie_secret"
                )
        if items:
            keys = [_derive_key(s) for s in items]
        else:
            keys = [_random_process_key()]
            log.warning(
                "No cookie secret configured: hubauth encrypts its cookies with a random "
                "per-process key, so logins end when this process restarts and do not span "
                "several workers or replicas. Set HUBAUTH_COOKIE_SECRET (or "
                "HUBAUTH_COOKIE_SECRET_FILE) to a random secret, e.g. from "
                "openssl rand -hex 32."
            )
        # Digest keys are derived apart from the encryption keys (another HKDF info).
        self._mac_keys = [_derive(base64.urlsafe_b64decode(k), _MAC_INFO) for k in keys]
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

    def mac(self, purpose: str, message: bytes) -> str:
        """A keyed digest of ``message`` for ``purpose`` (43 URL-safe characters), made with
        the newest secret: unforgeable without it, the same for the same input.
        """
        return _digest(self._mac_keys[0], purpose, message)

    def check_mac(self, purpose: str, message: bytes, tag: object) -> bool:
        """Whether ``tag`` is :meth:`mac` of ``message`` under any configured secret
        (constant-time; rotated secrets keep their digests valid).
        """
        if not isinstance(tag, str) or len(tag) != 43 or not tag.isascii():
            return False
        ok = False
        for key in self._mac_keys:
            ok |= hmac.compare_digest(_digest(key, purpose, message), tag)
        return ok

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
