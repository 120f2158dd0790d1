"""``HubAuthMiddleware``: Hub authentication in front of any WSGI app.

The caller's model is in ``environ["hubauth.user"]`` and the token that authenticated it in
``environ["hubauth.token"]``; the OAuth callback and logout routes
are answered by the middleware itself; ``public_paths`` pass through unauthenticated.
The translation between WSGI and the core (:func:`view_from_environ`,
:func:`decision_response`) is shared with the Flask extension.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._flow import callback, decide_sync, logout, run_sync
from ._middleware import MiddlewareSettings
from ._view import Decision, RequestView
from .auth import HubAuth
from .cookies import parse_cookie_header
from .oauth import HubOAuth

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["TOKEN_KEY", "USER_KEY", "HubAuthMiddleware", "decision_response", "view_from_environ"]

USER_KEY = "hubauth.user"
TOKEN_KEY = "hubauth.token"  # noqa: S105 - an environ key, not a secret

_REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def view_from_environ(environ: WSGIEnvironment) -> RequestView:
    """The neutral view of a WSGI request (PEP 3333 environ). An XSRF token is read from the
    ``X-XSRFToken`` / ``X-CSRFToken`` headers (the body is the app's to read, not ours).
    """
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return RequestView(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=_request_path(environ),
        query=str(environ.get("QUERY_STRING", "")),
        headers=headers,
        cookies=parse_cookie_header(headers.get("cookie", "")),
        scheme=str(environ.get("wsgi.url_scheme", "http")),
        host=headers.get("host") or str(environ.get("SERVER_NAME", "")),
        is_websocket=headers.get("upgrade", "").lower() == "websocket",
        xsrf_token=headers.get("x-xsrftoken") or headers.get("x-csrftoken") or "",
    )


def _request_path(environ: WSGIEnvironment) -> str:
    """The request's path as the client sent it (still percent-encoded), so a deep link
    comes back exactly (``c%2Bd`` stays ``c%2Bd``): from the server's raw request URI when
    it gives one that agrees with ``PATH_INFO``, else re-encoded from ``PATH_INFO``.
    """
    decoded = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    # PEP 3333 hands the path as latin-1 decoded bytes; recover what the client sent.
    decoded = decoded.encode("latin-1", "replace").decode("utf-8", "replace")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn / werkzeug
    if isinstance(raw, str) and raw.startswith("/"):
        path = raw.split("?", 1)[0]
        if urllib.parse.unquote(path) == decoded:
            return path
    return urllib.parse.quote(decoded, safe="/%:@!$&'()*+,;=-._~")


def decision_response(
    decision: Decision, view: RequestView
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers, body)`` answering a decision that is not ``allow``."""
    headers = [("Set-Cookie", c) for c in decision.cookies]
    headers.append(("Cache-Control", "no-store"))
    if decision.location:
        headers.append(("Location", decision.location))
        return decision.status, headers, b""
    if decision.www_authenticate:
        headers.append(("WWW-Authenticate", 'Bearer realm="JupyterHub"'))
    ctype, body = decision.page(view)
    headers += [("Content-Type", ctype), ("Content-Length", str(len(body)))]
    return decision.status, headers, body


def callback_path(auth: HubOAuth) -> str:
    """The path part of the OAuth redirect URI: where the callback route lives."""
    return urllib.parse.urlsplit(auth.oauth_redirect_uri).path


def logout_path(auth: HubAuth) -> str:
    return f"{auth.base_url}logout"


class HubAuthMiddleware(MiddlewareSettings):
    """Wrap a WSGI app so only callers the Hub vouches for (with the scopes) reach it:
    ``HubAuthMiddleware(app, auth=None, *, scopes=None, public_paths=())``.
    """

    app: WSGIApplication

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        auth = self.auth
        view = view_from_environ(environ)
        decision: Decision | None = None
        if isinstance(auth, HubOAuth) and view.path == callback_path(auth):
            decision = run_sync(auth, callback(auth, view))
        elif isinstance(auth, HubOAuth) and view.path == logout_path(auth):
            decision = logout(auth, view)
        elif self.is_public(view.path):
            environ[USER_KEY] = None
            environ[TOKEN_KEY] = ""
            return self.app(environ, start_response)
        else:
            decision = decide_sync(auth, view, self.scopes)
        if decision.allowed:
            environ[USER_KEY] = decision.user
            environ[TOKEN_KEY] = decision.token
            return self.app(environ, _with_cookies(start_response, decision.cookies))
        status, headers, body = decision_response(decision, view)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]


def _with_cookies(start_response: StartResponse, cookies: tuple[str, ...]) -> StartResponse:
    if not cookies:
        return start_response

    def start(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        return start_response(status, [*headers, *(("Set-Cookie", c) for c in cookies)], exc_info)

    return start
