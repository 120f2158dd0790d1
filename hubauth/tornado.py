"""Tornado mixins: ``HubAuthenticated``, ``HubOAuthenticated``, ``HubOAuthCallbackHandler``.

Same names and attributes as JupyterHub's (``hub_auth``, ``hub_scopes``,
``check_hub_user``, ``get_current_user``), so a service switches by import line. The Hub is
asked asynchronously in ``prepare()`` (never with a blocking client on the event loop);
``get_current_user`` returns what it found, and ``@tornado.web.authenticated`` works.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Generator, Iterable
from typing import Any

from tornado.web import Finish, HTTPError, RequestHandler

from ._flow import (
    Flow,
    Step,
    advance,
    authenticate,
    cached_answer,
    callback,
    logout,
    redirect_with_slash,
    run_async,
)
from ._view import Decision, RequestView, redact_text, redact_uri
from .auth import HubAuth
from .cookies import parse_cookie_header
from .oauth import HubOAuth

__all__ = [
    "HubAuthenticated",
    "HubOAuthCallbackHandler",
    "HubOAuthLogoutHandler",
    "HubOAuthenticated",
    "RedactCredentials",
    "view_of",
]

log = logging.getLogger("hubauth")


class RedactCredentials(logging.Filter):
    """Rewrites Tornado's own log records so no token in a request reaches a log.

    Tornado logs a malformed request line or header verbatim (``tornado.general``) before any
    handler runs; this filter, installed on Tornado's loggers when this module is imported,
    replaces what looks like a credential with ``[secret]``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACT = RedactCredentials()
for _name in ("tornado.general", "tornado.access", "tornado.application"):
    if not any(isinstance(f, RedactCredentials) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_REDACT)

_NOT_RESOLVED: Any = object()


class _Done:
    """An awaitable that is already finished (``await`` returns None at once)."""

    def __await__(self) -> Generator[Any, Any, None]:
        yield from ()


_DONE: Awaitable[None] = _Done()


def view_of(handler: RequestHandler) -> RequestView:
    """The neutral view of a Tornado request."""
    req = handler.request
    headers = req.headers  # already a case-insensitive mapping: no copy per request
    cookie = headers.get("Cookie", "")
    xsrf_checked = bool(handler.settings.get("xsrf_cookies")) and req.method not in (
        "GET",
        "HEAD",
        "OPTIONS",
    )
    return RequestView(
        method=req.method or "GET",
        path=req.path,
        query=req.query,
        headers=headers,
        cookies=parse_cookie_header(cookie) if cookie else (),
        scheme=req.protocol,
        host=req.host,
        is_websocket=headers.get("Upgrade", "").lower() == "websocket",
        xsrf_valid=xsrf_checked,  # Tornado checked it before prepare(), or refused already
    )


class HubAuthenticated(RequestHandler):
    """Mixin: the Hub identifies the caller by API token; ``self.current_user`` is its model.

    Set ``hub_scopes`` to require scopes other than the service's access scopes.
    Subclass first: ``class Handler(HubAuthenticated, RequestHandler)``.
    """

    hub_scopes: Iterable[str] | None = None
    # Older JupyterHub allow-lists: when set, the caller must ALSO be in one of them.
    hub_users: Iterable[str] | None = None
    hub_groups: Iterable[str] | None = None
    hub_services: Iterable[str] | None = None

    _hub_auth_class: type[HubAuth] = HubAuth
    _hub_auth_shared: dict[type[HubAuth], HubAuth] = {}  # noqa: RUF012 - one per class, on purpose
    _hub_decision: Decision | None = None
    _hub_user: Any = _NOT_RESOLVED

    _hub_auth_own: HubAuth | None = None

    @property
    def hub_auth(self) -> HubAuth:
        """The ``HubAuth``: set on this handler (e.g. in ``initialize``), else the ``hub_auth``
        application setting, else one built from the environment and shared per class.
        """
        if self._hub_auth_own is not None:
            return self._hub_auth_own
        given = self.settings.get("hub_auth")
        if isinstance(given, HubAuth):
            return given
        cls = self._hub_auth_class
        shared = HubAuthenticated._hub_auth_shared
        if cls not in shared:
            shared[cls] = cls()
        return shared[cls]

    @hub_auth.setter
    def hub_auth(self, auth: HubAuth) -> None:
        self._hub_auth_own = auth  # this handler only, never the whole application

    _hub_required_memo: frozenset[str] | None = None

    def _hub_required(self, auth: HubAuth | None = None) -> frozenset[str]:
        """The scopes this handler requires (``hub_scopes``, else the service's access scopes);
        worked out once per request.
        """
        if self._hub_required_memo is None:
            scopes = self.hub_scopes
            if scopes is None:
                scopes = (auth or self.hub_auth).access_scopes
            self._hub_required_memo = frozenset(scopes)
        return self._hub_required_memo

    _hub_scopes_checked = False

    def check_hub_user(self, model: dict[str, Any]) -> dict[str, Any] | None:
        """The model if this caller may use the handler, else ``None`` (answered with 403)."""
        if not self._hub_scopes_checked:
            scopes = self._hub_required()
            if scopes and not self.hub_auth.check_scopes(scopes, model):
                return None
        if self.hub_users is None and self.hub_groups is None and self.hub_services is None:
            return model
        name = model.get("name")
        if model.get("kind", "user") == "service":
            return (
                model if self.hub_services is not None and name in set(self.hub_services) else None
            )
        if self.hub_users is not None and name in set(self.hub_users):
            return model
        groups = set(model.get("groups") or [])
        if self.hub_groups is not None and groups & set(self.hub_groups):
            return model
        log.info("%s is not in this handler's hub_users/hub_groups allow-lists", name)
        return None

    def prepare(self) -> Awaitable[None]:
        """Find out who is calling before the handler method runs.

        Returns an awaitable (so ``await super().prepare()`` works in subclasses). A cached
        caller is known at once and the awaitable is already done; otherwise the Hub is
        asked asynchronously, never with a blocking call on the event loop.
        """
        parent = super().prepare()
        if parent is not None and inspect.isawaitable(parent):
            return self._hub_prepare_after(parent)
        return self._hub_prepare()

    async def _hub_prepare_after(self, parent: Awaitable[Any]) -> None:
        await parent
        await self._hub_prepare()

    def _hub_prepare(self) -> Awaitable[None]:
        if self._finished:
            return _DONE
        auth = self.hub_auth
        scopes = self._hub_required(auth)
        header = self.request.headers.get("Authorization")
        if header:
            known = cached_answer(auth, self.request.path, header, scopes)
            if known is not None:  # a cached token: no view, no flow
                self._hub_apply(known)
                return _DONE
        view = view_of(self)
        slash = redirect_with_slash(auth, view)
        if slash is not None:
            self.redirect(slash.location)
            return _DONE
        flow = authenticate(auth, view, scopes)
        outcome = advance(auth, flow)
        if isinstance(outcome, Decision):
            self._hub_apply(outcome, view)
            return _DONE
        return self._hub_ask(auth, flow, outcome, view)

    async def _hub_ask(self, auth: HubAuth, flow: Flow, step: Step, view: RequestView) -> None:
        self._hub_apply(await run_async(auth, flow, step), view)

    def _hub_apply(self, decision: Decision, view: RequestView | None = None) -> None:
        """Record the decision: the user for ``get_current_user``, a refusal answered now."""
        user = decision.user if decision.kind == "allow" else None
        if user is not None:
            self._hub_scopes_checked = True  # the flow checked them: no need again
            try:
                allowed = self.check_hub_user(user) is not None
            finally:
                self._hub_scopes_checked = False
            if not allowed:
                decision = Decision(
                    kind="deny", status=403, message=f"{user.get('name')} may not use this page."
                )
                user = None
        self._hub_decision = decision
        self._hub_user = user
        if decision.kind == "refuse":
            self._hub_answer(decision, view or view_of(self))
        elif user is not None:
            for cookie in decision.cookies:
                self.add_header("Set-Cookie", cookie)

    @property
    def hub_token(self) -> str:
        """The token that authenticated this request (header, URL or login cookie), or "".

        Lets a service act on the Hub as its visitor (``AsyncHubAPI(api_token=...)``).
        """
        decision = self._hub_decision
        return decision.token if decision is not None and decision.allowed else ""

    def get_current_user(self) -> Any:
        """The model ``prepare()`` found (``None`` when not authenticated or not allowed)."""
        if self._hub_user is _NOT_RESOLVED:
            raise RuntimeError(
                f"{type(self).__name__}.prepare() did not run HubAuthenticated.prepare(): "
                "call (and await) super().prepare() in your prepare()"
            )
        return self._hub_user

    def get_login_url(self) -> str:
        """Called by ``@authenticated``: the Hub's authorize URL for a navigation; otherwise
        the right refusal (401, or 403 for a known caller without the scope), never a loop.
        """
        decision = self._hub_decision
        if decision is not None and decision.kind == "login":
            for cookie in decision.cookies:
                self.add_header("Set-Cookie", cookie)
            return decision.location
        if decision is None:
            decision = Decision(kind="deny", status=401, message="Authentication required.")
        self._hub_answer(decision, view_of(self))
        raise Finish()

    def _hub_answer(self, decision: Decision, view: RequestView) -> None:
        """Write a refusal page (with its cookies) and finish the request."""
        self.clear()
        for cookie in decision.cookies:
            self.add_header("Set-Cookie", cookie)
        if decision.location:
            self.redirect(decision.location)
            return
        self.set_status(decision.status)
        if decision.www_authenticate:
            self.set_header("WWW-Authenticate", 'Bearer realm="JupyterHub"')
        ctype, body = decision.page(view)
        self.set_header("Content-Type", ctype)
        self.finish(body)

    def _request_summary(self) -> str:
        """Tornado's access-log line, without tokens or OAuth codes from the query string."""
        req = self.request
        return f"{req.method} {redact_uri(req.uri or '')} ({req.remote_ip})"

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated requests need no XSRF token; others accept any valid one of
        several ``_xsrf`` cookies (one per path), not only the first.
        """
        if self.request.headers.get("Authorization"):
            return
        submitted = (
            self.get_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
        )
        if not submitted:
            raise HTTPError(403, "'_xsrf' argument missing from POST")
        _, token, _ = self._decode_xsrf_token(submitted)
        cookie_header = self.request.headers.get("Cookie", "")
        for name, value in parse_cookie_header(cookie_header):
            if name != "_xsrf":
                continue
            _, expected, _ = self._decode_xsrf_token(value)
            if token and expected and hmac.compare_digest(token, expected):
                return
        raise HTTPError(403, "XSRF cookie does not match POST argument")


class HubOAuthenticated(HubAuthenticated):
    """Mixin: API tokens as :class:`HubAuthenticated`, plus browser login through the Hub."""

    _hub_auth_class = HubOAuth


class _OAuthHandler(HubOAuthenticated):
    @property
    def hub_oauth(self) -> HubOAuth:
        auth = self.hub_auth
        if not isinstance(auth, HubOAuth):
            raise TypeError("the OAuth callback and logout handlers need a HubOAuth as hub_auth")
        return auth

    async def prepare(self) -> None:
        """These handlers are where logins end: they do not require one themselves."""
        self._hub_user = None


class HubOAuthCallbackHandler(_OAuthHandler):
    """Route ``<prefix>oauth_callback`` here: checks state, exchanges the code, sets the cookie."""

    async def get(self) -> None:
        auth = self.hub_oauth
        view = view_of(self)
        decision = await run_async(auth, callback(auth, view))
        self._hub_answer(decision, view)


class HubOAuthLogoutHandler(_OAuthHandler):
    """Route ``<prefix>logout`` here: clears the login cookie, then logs out of the Hub."""

    def get(self) -> None:
        auth = self.hub_oauth
        view = view_of(self)
        self._hub_answer(logout(auth, view), view)
