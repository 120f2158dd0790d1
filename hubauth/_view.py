"""What adapters hand the core (a neutral request view) and get back (a decision).

Tornado, Flask and WSGI each translate their request into a :class:`RequestView` and apply
a :class:`Decision`; everything in between is framework-free and written once.
"""

from __future__ import annotations

import html
import json
import re
import string
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Decision",
    "RequestView",
    "is_api_request",
    "is_navigation",
    "log_safe",
    "redact_text",
    "redact_uri",
    "safe_next_url",
    "wants_page",
]

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PATH_CHARS = frozenset(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%?#[]")


@dataclass(slots=True)
class RequestView:
    """The parts of an HTTP request that authentication looks at."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    cookies: Sequence[tuple[str, str]] = ()  # every occurrence, in order
    scheme: str = "http"
    host: str = ""
    is_websocket: bool = False
    # The XSRF token the request submitted (form field or X-XSRFToken header), checked by
    # the core against the login; and whether the app requires one (Tornado xsrf_cookies).
    xsrf_token: str = ""
    xsrf_required: bool = False

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def cookie_values(self, name: str) -> list[str]:
        return [v for k, v in self.cookies if k == name]

    def cookie(self, name: str) -> str:
        values = self.cookie_values(name)
        return values[0] if values else ""

    def query_values(self, name: str) -> list[str]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True).get(name, [])

    def query_value(self, name: str) -> str:
        values = self.query_values(name)
        return values[0] if values else ""

    @property
    def unsafe(self) -> bool:
        return self.method.upper() in _UNSAFE_METHODS

    @property
    def uri(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(slots=True)
class Decision:
    """The outcome, by ``kind``: ``allow`` (``user`` set), ``login`` (redirect to the Hub),
    ``redirect`` (elsewhere), ``deny`` (401/403 a protected route answers), or ``refuse``
    (answer ``status`` now, even on routes where authentication is optional).
    """

    kind: str = "allow"
    user: dict[str, Any] | None = None
    status: int = 200
    location: str = ""
    message: str = ""
    cookies: tuple[str, ...] = ()  # Set-Cookie header values
    token: str = field(default="", repr=False)  # the token that authenticated ``user``
    www_authenticate: bool = False
    source: str = ""  # where ``token`` came from: "header", "url" or "cookie"
    failures: int = 0  # failed logins in a row before this one (login decisions)

    @property
    def allowed(self) -> bool:
        return self.kind == "allow" and self.user is not None

    def page(self, view: RequestView) -> tuple[str, bytes]:
        """``(content type, body)`` saying why: JSON for API requests, else a small page."""
        if not wants_page(view):
            body = json.dumps({"status": self.status, "message": self.message})
            return "application/json", body.encode()
        text = html.escape(self.message or "")
        title = {401: "Not logged in", 403: "Forbidden", 502: "Bad gateway"}.get(
            self.status, "Service unavailable" if self.status == 503 else "Error"
        )
        doc = (
            f"<!doctype html><meta charset=utf-8><title>{self.status} {title}</title>"
            f"<h1>{self.status} {title}</h1><p>{text}</p>"
        )
        return "text/html; charset=utf-8", doc.encode()


def is_api_request(view: RequestView) -> bool:
    """API-style: an Authorization header, a non-GET, or a JSON ``Accept`` (SPEC §5)."""
    if view.header("authorization") or view.method.upper() not in ("GET", "HEAD"):
        return True
    accept = view.header("accept").lower()
    return "application/json" in accept and "text/html" not in accept


def wants_page(view: RequestView) -> bool:
    """Whether a refusal should be an HTML page (browsers, forms) rather than JSON."""
    if view.is_websocket or view.header("authorization"):
        return False
    if not is_api_request(view):
        return True
    return "text/html" in view.header("accept") or view.header("sec-fetch-dest") == "document"


def is_navigation(view: RequestView) -> bool:
    """A top-level browser navigation, the only kind of request sent to the Hub to log in."""
    if is_api_request(view) or view.is_websocket:
        return False
    mode = view.header("sec-fetch-mode").lower()
    dest = view.header("sec-fetch-dest").lower()
    if not mode and not dest:
        return True  # an older browser or a plain client: no fetch metadata at all
    return mode == "navigate" or dest == "document"


_SECRET_PARAMS = frozenset({"token", "code", "state", "_xsrf", "access_token"})


def redact_uri(uri: str) -> str:
    """``uri`` with the values of secret-bearing query parameters replaced, for logs."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    parts = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        secret = urllib.parse.unquote_plus(name).lower() in _SECRET_PARAMS
        parts.append(f"{name}=[secret]" if eq and secret else piece)
    return f"{path}?{'&'.join(parts)}"


_CREDENTIAL = re.compile(
    r"(?i)(?:\b(token|bearer)(\s+|=)|(?<=[?&;])(code|state|_xsrf|access_token)(=))[^\s&'\";]+"
)


def redact_text(text: str) -> str:
    """``text`` with anything that looks like ``token <t>``, ``bearer <t>``, ``token=<t>``
    or a query's ``code=``/``state=``/``_xsrf=`` value replaced: for log lines written by
    code that is not hubauth's (Tornado's HTTP parser, its uncaught-exception lines).
    """
    return _CREDENTIAL.sub(
        lambda m: f"{m.group(1) or m.group(3)}{m.group(2) or m.group(4)}[secret]", text
    )


_EMPTY_FIRST_SEGMENT = re.compile(r"/[ ]*[/\\]")


def safe_next_url(url: str, fallback: str) -> str:
    """``url`` if it is a same-origin path (``/x``, never ``//host``, ``/\\host``, a scheme);
    otherwise ``fallback``.

    Refuses only what could leave the origin, after up to three rounds of percent-decoding
    (browsers and proxies may decode more than once): raw characters a browser would strip
    or rewrite, a first segment that decodes to another ``/`` or ``\\``, and control
    characters (header-injection shapes). Encoded spaces and the like stay, so a deep link
    such as ``/files/My%20Notebook.ipynb`` survives a login.
    """
    if not url or len(url) > 4096 or not url.startswith("/"):
        return fallback
    if any(c not in _PATH_CHARS for c in url):
        return fallback  # raw whitespace, controls, backslashes, non-ASCII look-alikes
    decoded = url
    for _ in range(3):
        decoded = urllib.parse.unquote(decoded)
        path = decoded.split("?", 1)[0]
        if _EMPTY_FIRST_SEGMENT.match(path):
            return fallback
        if any(ord(c) < 0x20 or c == "\x7f" for c in path):
            return fallback
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return fallback
    return url


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def log_safe(text: object, limit: int = 200) -> str:
    """``text`` fit for one log line: control characters (newlines too) shown as escapes,
    so a request cannot forge log lines, and cut to ``limit`` characters.
    """
    value = text if isinstance(text, str) else str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
