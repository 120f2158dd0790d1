"""Which headers cross the proxy, in each direction, and what the app is told.

Hop-by-hop headers (RFC 9110 §7.6.1) stop here; identity headers are removed from what
clients send and set from the Hub's answer only; credentials (the Hub's and hubauth's
cookies, ``Authorization``) stay out unless the operator forwards them; the app's own
``Location`` headers are turned into public paths.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tornado.httputil import HTTPHeaders

__all__ = [
    "IDENTITY_HEADERS",
    "encode_value",
    "hop_by_hop",
    "identity_headers",
    "is_identity_header",
    "make_cookie_filter",
    "request_headers",
    "response_headers",
    "rewrite_location",
]

# RFC 9110 §7.6.1 connection-specific fields, plus the old Proxy-Connection and Keep-Alive.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
USER, GROUPS, SERVICE = "X-Forwarded-User", "X-Forwarded-Groups", "X-Forwarded-Service"
MODEL, TOKEN, PREFIX = "X-Forwarded-Hub-Model", "X-Forwarded-Access-Token", "X-Forwarded-Prefix"
IDENTITY_HEADERS = (USER, GROUPS, SERVICE, MODEL, TOKEN, PREFIX)
_IDENTITY = frozenset(h.lower() for h in IDENTITY_HEADERS)
# Fields of the Hub's model the app never needs (they name the session and the token).
_MODEL_OMIT = frozenset({"session_id", "token_id", "oauth_client", "expires_at"})
# Characters sent as they are in identity values; everything else is %-encoded (UTF-8).
_PLAIN = re.compile(r"[!#$&'()*+\-./0-9:;<=>?@A-Z\[\]^_`a-z{|}~]*")


def encode_value(text: str) -> str:
    """``text`` as a header value that cannot break the header: printable ASCII is kept,
    anything else (spaces, controls, newlines, non-ASCII, ``%`` and ``,``) is %-encoded.
    """
    if _PLAIN.fullmatch(text):
        return text
    return urllib.parse.quote(text, safe="!#$&'()*+-./:;<=>?@[]^_`{|}~")


def is_identity_header(name: str) -> bool:
    """Whether ``name`` would be read as one of the identity headers: ``_`` counts as ``-``
    (WSGI servers map both to the same ``HTTP_X_FORWARDED_USER``).
    """
    return name.lower().replace("_", "-") in _IDENTITY


def hop_by_hop(headers: HTTPHeaders) -> frozenset[str]:
    """The hop-by-hop names of this message: the fixed set plus those ``Connection`` lists."""
    listed = {
        token.strip().lower()
        for value in headers.get_list("Connection")
        for token in value.split(",")
        if token.strip()
    }
    return _HOP_BY_HOP | listed


def identity_headers(
    user: Mapping[str, Any], *, token: str = "", model: bool = False
) -> list[tuple[str, str]]:
    """What the app is told about the caller: a user's name and groups, or a service's name;
    with ``model`` the Hub's model (minus session and token ids) as JSON, with ``token`` the
    token in ``X-Forwarded-Access-Token``.
    """
    out: list[tuple[str, str]] = []
    name = str(user.get("name", ""))
    if user.get("kind", "user") == "service":
        out.append((SERVICE, encode_value(name)))
    else:
        out.append((USER, encode_value(name)))
        groups = [g for g in user.get("groups") or () if isinstance(g, str)]
        out.append((GROUPS, ",".join(encode_value(g) for g in groups)))
    if model:
        shown = {k: v for k, v in user.items() if k not in _MODEL_OMIT}
        out.append((MODEL, json.dumps(shown, ensure_ascii=True, separators=(",", ":"))))
    if token:
        out.append((TOKEN, token))
    return out


def make_cookie_filter(
    own_names: Iterable[str], own_prefixes: Iterable[str]
) -> Callable[[str], bool]:
    """A test for cookie names that are credentials: hubauth's own (login, state) and the
    Hub's (``jupyterhub-*``), with or without a ``__Host-``/``__Secure-`` prefix.
    """
    names = frozenset(own_names)
    prefixes = (*own_prefixes, "jupyterhub-")

    def is_credential(name: str) -> bool:
        bare = name
        for mark in ("__Host-", "__Secure-"):
            if bare.startswith(mark):
                bare = bare[len(mark) :]
        return name in names or bare in names or bare.startswith(prefixes)

    return is_credential


def _filter_cookie(value: str, is_credential: Callable[[str], bool]) -> str:
    kept = []
    for piece in value.split(";"):
        name = piece.split("=", 1)[0].strip()
        if name and not is_credential(name):
            kept.append(piece.strip())
    return "; ".join(kept)


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def request_headers(
    incoming: HTTPHeaders,
    *,
    remote_ip: str,
    scheme: str,
    prefix: str,
    strip_prefix: bool,
    identity: list[tuple[str, str]],
    forward_credentials: bool,
    is_credential: Callable[[str], bool],
    websocket: bool = False,
) -> HTTPHeaders:
    """The headers to send the app for a client request with ``incoming`` headers."""
    drop = hop_by_hop(incoming) | {"expect"}
    out = HTTPHeaders()
    for name, value in incoming.get_all():
        low = name.lower()
        if low in drop or is_identity_header(name):
            continue
        if websocket and low.startswith("sec-websocket-"):
            continue  # the proxy's own handshake with the app sets these
        if low == "authorization" and not forward_credentials:
            continue
        if low == "cookie" and not forward_credentials:
            value = _filter_cookie(value, is_credential)
            if not value:
                continue
        if low.startswith("x-forwarded-"):
            continue  # rebuilt below
        out.add(name, value)
    forwarded_for = ", ".join([*incoming.get_list("X-Forwarded-For"), remote_ip])
    out["X-Forwarded-For"] = forwarded_for
    out["X-Forwarded-Proto"] = _first(incoming.get("X-Forwarded-Proto", "")) or scheme
    host = _first(incoming.get("X-Forwarded-Host", "")) or incoming.get("Host", "")
    if host:
        out["X-Forwarded-Host"] = host
    port = _first(incoming.get("X-Forwarded-Port", ""))
    if port:
        out["X-Forwarded-Port"] = port
    if strip_prefix:
        out[PREFIX] = prefix.rstrip("/")
    for name, value in identity:
        out[name] = value
    return out


def rewrite_location(location: str, *, upstream: str, prefix: str, strip_prefix: bool) -> str:
    """A ``Location`` the app sent, as the client must see it: an absolute URL to the app's
    own address becomes a path on the public origin; with ``strip_prefix`` an app-root path
    gets the prefix back.
    """
    up = urllib.parse.urlsplit(upstream)
    target = urllib.parse.urlsplit(location)
    local = {up.hostname, "127.0.0.1", "localhost", "0.0.0.0", "::1"}  # noqa: S104
    if target.scheme or target.netloc:
        try:
            port = target.port or (443 if target.scheme == "https" else 80)
        except ValueError:
            return location
        up_port = up.port or (443 if up.scheme == "https" else 80)
        if target.hostname not in local or port != up_port:
            return location  # somewhere else: the app meant it
        location = urllib.parse.urlunsplit(
            ("", "", target.path or "/", target.query, target.fragment)
        )
    elif not location.startswith("/") or location.startswith("//"):
        return location  # relative to the current path: already right
    if not strip_prefix or location.startswith(prefix) or location + "/" == prefix:
        return location
    base = up.path.rstrip("/")
    if base and (location == base or location.startswith(base + "/")):
        location = location[len(base) :] or "/"
    return prefix + location[1:]


def response_headers(
    incoming: HTTPHeaders,
    *,
    relocate: Callable[[str], str],
    is_credential: Callable[[str], bool],
) -> list[tuple[str, str]]:
    """The app's response headers the client gets: no hop-by-hop ones, ``Location`` made
    public, and no ``Set-Cookie`` that would overwrite a login cookie.
    """
    drop = hop_by_hop(incoming)
    out = []
    for name, value in incoming.get_all():
        low = name.lower()
        if low in drop:
            continue
        if low == "location":
            value = relocate(value)
        elif low == "set-cookie" and is_credential(value.split("=", 1)[0].strip()):
            continue
        out.append((name, value))
    return out
