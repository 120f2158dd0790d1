"""Forward-auth: the proxy answers for a reverse proxy that serves the app itself.

``<prefix>auth-request`` is for nginx ``auth_request`` (which accepts only 2xx, 401 and
403: a login is a 401 there, and nginx's ``error_page`` sends the browser back here to be
redirected); ``<prefix>forward-auth`` is for Traefik ``ForwardAuth`` and Caddy
``forward_auth`` (which hand a non-2xx answer to the client as it is: the login redirect
with its state cookie, the 401, the 403). Both answer 200 with the identity headers for a
caller who may pass. The original request is described by ``X-Forwarded-Method``,
``X-Forwarded-Uri``, ``X-Forwarded-Host`` and ``X-Forwarded-Proto`` (nginx examples often
say ``X-Original-URI`` and ``X-Original-Method``: both are read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tornado.web import RequestHandler

from .._view import Decision, RequestView, safe_next_url
from ..cookies import parse_cookie_header
from ..tornado import view_of
from ._gate import answer
from ._headers import identity_headers
from ._http import METHODS, trouble

if TYPE_CHECKING:
    from ._server import ProxyApp

__all__ = ["ForwardAuthHandler", "ReplayHandler", "original_view"]


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def original_view(handler: RequestHandler) -> RequestView | None:
    """The request the reverse proxy asks about, or None if it did not say which."""
    h = handler.request.headers
    uri = h.get("X-Forwarded-Uri") or h.get("X-Original-URI") or h.get("X-Original-Url") or ""
    if not uri.startswith("/") or uri.startswith("//") or any(ord(c) < 0x21 for c in uri):
        return None
    method = (h.get("X-Forwarded-Method") or h.get("X-Original-Method") or "GET").upper()
    path, _, query = uri.partition("?")
    cookie = h.get("Cookie", "")
    upgrade = h.get("Upgrade", "").lower() == "websocket"
    return RequestView(
        method=method if method.isalpha() else "GET",
        path=path,
        query=query,
        headers=h,
        cookies=parse_cookie_header(cookie) if cookie else (),
        scheme=_first(h.get("X-Forwarded-Proto", "")) or handler.request.protocol,
        host=_first(h.get("X-Forwarded-Host", "")) or handler.request.host,
        is_websocket=upgrade or h.get("Sec-Fetch-Mode", "").lower() == "websocket",
    )


class ForwardAuthHandler(RequestHandler):
    """``<prefix>forward-auth`` (``nginx=False``) and ``<prefix>auth-request`` (``True``)."""

    SUPPORTED_METHODS = METHODS
    app: ProxyApp

    def initialize(self, app: ProxyApp, nginx: bool) -> None:
        self.app = app
        self.nginx = nginx

    def _request_summary(self) -> str:
        return self.app.summary(self)

    async def get(self, *args: Any) -> None:
        view = original_view(self)
        if view is None:
            trouble(
                self,
                400,
                "Forward-auth needs the original request: set X-Forwarded-Uri (and "
                "X-Forwarded-Method, -Host, -Proto) in the reverse proxy's configuration.",
            )
            return
        decision = await self.app.gate.decide(self, view)
        self.set_header("Cache-Control", "no-store")
        if decision.allowed and decision.user is not None:
            opts = self.app.options
            for name, value in identity_headers(
                decision.user,
                token=decision.token if opts.forward_token else "",
                model=opts.forward_model,
            ):
                self.set_header(name, value)
            for cookie in decision.cookies:
                self.add_header("Set-Cookie", cookie)
            self.app.touch()
            self.set_status(200)
            self.finish()
            return
        if self.nginx:
            # nginx passes only 401 and 403 on (anything else becomes a 500); its error_page
            # sends the request back to this proxy, which answers it in full (ReplayHandler).
            self.set_status(401 if decision.kind == "login" else decision.status)
            self.finish()
            return
        answer(self, decision, view)

    post = put = patch = delete = head = options = get


class ReplayHandler(RequestHandler):
    """Forward-auth mode, any other path under the prefix: the request nginx's ``error_page``
    sent back here. Answers the decision in full (the login redirect, the 401 or 403 page);
    a caller who may pass after all is sent back to the same URL.
    """

    SUPPORTED_METHODS = METHODS
    app: ProxyApp

    def initialize(self, app: ProxyApp) -> None:
        self.app = app

    def _request_summary(self) -> str:
        return self.app.summary(self)

    async def get(self, *args: Any) -> None:
        view = view_of(self)
        decision = await self.app.gate.decide(self, view)
        if decision.allowed:
            target = safe_next_url(self.request.uri or "", self.app.options.prefix)
            decision = Decision(kind="redirect", status=307, location=target)
        answer(self, decision, view)

    post = put = patch = delete = head = options = get
