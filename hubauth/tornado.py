"""Tornado mixins: ``HubAuthenticated``, ``HubOAuthenticated``, ``HubOAuthCallbackHandler``.

Same names and attributes as JupyterHub's (``hub_auth``, ``hub_scopes``,
``check_hub_user``, ``get_current_user``), so a service switches by import line. The Hub is
asked asynchronously in ``prepare()`` (never with a blocking client on the event loop);
``get_current_user`` returns what it found, and ``@tornado.web.authenticated`` works.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Awaitable, Generator, Iterable
from typing import Any

from tornado.web import Finish, HTTPError, RequestHandler

from ._compat import SESSION_COOKIE
from ._decisions import deny_scopes
from ._flow import (
    Flow,
    Step,
    advance,
    authenticate,
    cached_answer,
    callback,
    is_secure,
    login_redirect,
    logout,
    redirect_with_slash,
    run_async,
    run_sync,
)
from ._view import Decision, RequestView, log_safe, redact_text, redact_uri
from .auth import HubAuth
from .cookies import parse_cookie_header
from .errors import UserNotAllowed
from .oauth import HubOAuth

__all__ = [
    "HubAuthenticated",
    "HubOAuthCallbackHandler",
    "HubOAuthLogoutHandler",
    "HubOAuthenticated",
    "RedactCredentials",
    "UserNotAllowed",
    "answer",
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
    method = req.method or "GET"
    xsrf_token = ""
    xsrf_required = False
    if method not in _READ_ONLY:
        xsrf_required = bool(handler.settings.get("xsrf_cookies"))
        xsrf_token = _submitted_xsrf(handler)
    return RequestView(
        method=method,
        path=req.path,
        query=req.query,
        headers=headers,
        cookies=parse_cookie_header(cookie) if cookie else (),
        scheme=req.protocol,
        host=req.host,
        is_websocket=headers.get("Upgrade", "").lower() == "websocket",
        xsrf_token=xsrf_token,
        xsrf_required=xsrf_required,
    )


_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_SCOPES: frozenset[str] = frozenset()


def _submitted_xsrf(handler: RequestHandler) -> str:
    """The XSRF token a request submitted: the ``_xsrf`` form field or a header."""
    value = (
        handler.get_argument("_xsrf", None)
        or handler.request.headers.get("X-Xsrftoken")
        or handler.request.headers.get("X-Csrftoken")
        or ""
    )
    return value if isinstance(value, str) and len(value) < 256 else ""


class HubAuthenticated(RequestHandler):
    """Mixin: the Hub identifies the caller by API token; ``self.current_user`` is its model.

    Who may pass follows JupyterHub exactly: :attr:`hub_scopes` (default: the service's
    access scopes) decide when set; without them, the pre-2.0 allow-lists ``hub_users``,
    ``hub_groups``, ``hub_services`` and ``allow_admin``; with none of these, everyone the
    Hub knows (:attr:`allow_all`). Override :meth:`check_hub_user` for other rules.
    Subclass first: ``class Handler(HubAuthenticated, RequestHandler)``.
    """

    # Older JupyterHub allow-lists, used only when hub_scopes is None.
    hub_services: Iterable[str] | None = None
    hub_users: Iterable[str] | None = None
    hub_groups: Iterable[str] | None = None
    allow_admin: bool = False

    hub_auth_class: type[HubAuth] = HubAuth
    _hub_decision: Decision | None = None
    _hub_user: Any = _NOT_RESOLVED
    _hub_auth_own: HubAuth | None = None
    _hub_login_url: str | None = None

    @property
    def hub_scopes(self) -> Iterable[str] | None:
        """Scopes any one of which lets a caller in (default: the service's access scopes,
        ``None`` when there are none). Override as a class attribute or a property.
        """
        return self.hub_auth.access_scopes or None

    @property
    def allow_all(self) -> bool:
        """Whether everyone the Hub identifies may pass: no scopes, no allow-lists."""
        return (
            self.hub_scopes is None
            and self.hub_services is None
            and self.hub_users is None
            and self.hub_groups is None
            and not self.allow_admin
        )

    @property
    def hub_auth(self) -> HubAuth:
        """The ``HubAuth``: set on this handler (e.g. in ``initialize``), else the ``hub_auth``
        application setting, else ``hub_auth_class.instance()`` (one per class, from the
        environment).
        """
        if self._hub_auth_own is not None:
            return self._hub_auth_own
        given = self.settings.get("hub_auth")
        if isinstance(given, HubAuth):
            return given
        return self.hub_auth_class.instance()

    @hub_auth.setter
    def hub_auth(self, auth: HubAuth) -> None:
        self._hub_auth_own = auth  # this handler only, never the whole application

    def check_hub_user(self, model: dict[str, Any]) -> dict[str, Any] | None:
        """The model if this caller may use the handler; raises :class:`UserNotAllowed`
        (answered with 403) if not. JupyterHub's rules, in its order.
        """
        name = model["name"]
        kind = model.setdefault("kind", "user")
        if self.allow_all:
            return model
        scopes = self.hub_scopes
        if scopes:
            if self.hub_auth.check_scopes(scopes, model):
                return model
            # With scopes, only scopes decide: the allow-lists below are not consulted.
            raise UserNotAllowed(model, scopes)
        warnings.warn(
            "hub_scopes is empty (JUPYTERHUB_OAUTH_ACCESS_SCOPES not set): using the "
            "pre-2.0 allow-lists hub_users, hub_groups, hub_services and allow_admin",
            DeprecationWarning,
            stacklevel=2,
        )
        if self.allow_admin and model.get("admin", False):
            return model
        if kind == "service":
            if self.hub_services and name in self.hub_services:
                return model
            raise UserNotAllowed(model)
        if self.hub_users and name in self.hub_users:
            return model
        if self.hub_groups and set(model.get("groups") or ()) & set(self.hub_groups):
            return model
        raise UserNotAllowed(model)

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
        header = self.request.headers.get("Authorization")
        if header:
            known = cached_answer(auth, self.request.path, header, _NO_SCOPES)
            if known is not None:  # a cached token: no view, no flow
                self._hub_apply(known)
                return _DONE
        view = view_of(self)
        slash = redirect_with_slash(auth, view)
        if slash is not None:
            self.redirect(slash.location)
            return _DONE
        # Identify only: who may pass is check_hub_user's to say (JupyterHub's rules).
        flow = authenticate(auth, view, _NO_SCOPES, lazy_login=True)
        outcome = advance(auth, flow)
        if isinstance(outcome, Decision):
            self._hub_apply(outcome, view)
            return _DONE
        return self._hub_ask(auth, flow, outcome, view)

    async def _hub_ask(self, auth: HubAuth, flow: Flow, step: Step, view: RequestView) -> None:
        self._hub_apply(await run_async(auth, flow, step), view)

    def _hub_apply(self, decision: Decision, view: RequestView | None = None) -> None:
        """Record the decision: the user for ``get_current_user`` (if ``check_hub_user``
        lets them in), a refusal answered now.
        """
        user = decision.user if decision.kind == "allow" else None
        if user is not None:
            allowed = self._hub_check(user)
            if allowed is None:
                scopes = self.hub_scopes
                decision = deny_scopes(user, scopes) if scopes else _not_allowed(user)
            user = allowed
        self._hub_decision = decision
        self._hub_user = user
        if decision.kind == "refuse":
            self._hub_answer(decision, view or view_of(self))
        elif user is not None:
            for cookie in decision.cookies:
                self.add_header("Set-Cookie", cookie)

    def _hub_check(self, model: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.check_hub_user(model)
        except UserNotAllowed:
            return None

    @property
    def hub_token(self) -> str:
        """The token that authenticated this request (header, URL or login cookie), or "".

        Lets a service act on the Hub as its visitor (``AsyncHubAPI(api_token=...)``).
        """
        decision = self._hub_decision
        if decision is None or not decision.allowed or self._hub_user is None:
            return ""
        return decision.token

    def get_current_user(self) -> Any:
        """The model ``prepare()`` found (``None`` when not authenticated or not allowed).

        Also stored as ``self._hub_auth_user_cache`` once called, and only then, as in
        JupyterHub: services test ``hasattr(self, "_hub_auth_user_cache")`` to learn whether
        the handler has asked who is calling (jhsingle-native-proxy does, on websockets).
        """
        if self._hub_user is _NOT_RESOLVED:
            # prepare() was overridden without super().prepare(): ask the Hub now, blocking,
            # as JupyterHub's mixin does, and say how to avoid it.
            _warn_no_prepare(type(self))
            auth, view = self.hub_auth, view_of(self)
            decision = run_sync(auth, authenticate(auth, view, _NO_SCOPES, lazy_login=True))
            if decision.kind == "refuse":
                raise HTTPError(decision.status, reason=decision.message[:120])
            self._hub_apply(decision, view)
        self._hub_auth_user_cache = self._hub_user
        return self._hub_user

    def get_login_url(self) -> str:
        """Called by ``@authenticated``: the Hub's authorize URL for a navigation (with a
        fresh state, made now); otherwise the right refusal, never a loop: 401 for an API
        request, 403 for a known caller who may not pass, and 403 from a token-only
        service (as JupyterHub), which cannot log a browser in.
        """
        if self._hub_login_url is not None:
            return self._hub_login_url
        auth = self.hub_auth
        decision = self._hub_decision
        if decision is not None and decision.kind == "login" and isinstance(auth, HubOAuth):
            if not decision.location:
                decision = login_redirect(
                    auth, view_of(self), cookies=decision.cookies, failures=decision.failures
                )
            for cookie in decision.cookies:
                self.add_header("Set-Cookie", cookie)
            self._hub_login_url = decision.location
            return decision.location
        if decision is None or (decision.status == 401 and not isinstance(auth, HubOAuth)):
            decision = Decision(
                kind="deny",
                status=403,
                message="Authentication required: send 'Authorization: token <token>' "
                "(this service does not log browsers in).",
            )
        self._hub_answer(decision, view_of(self))
        raise Finish()

    def _hub_answer(self, decision: Decision, view: RequestView) -> None:
        """Write a refusal page (with its cookies) and finish the request."""
        answer(self, decision, view)

    def _request_summary(self) -> str:
        """Tornado's access-log line, without tokens or OAuth codes from the query string."""
        req = self.request
        return f"{req.method} {redact_uri(req.uri or '')} ({req.remote_ip})"

    @property
    def xsrf_token(self) -> bytes:
        """The XSRF token for forms and scripts (``xsrf_form_html()``, ``X-XSRFToken``): a
        keyed digest bound to this login and the Hub session, so a cookie planted from a
        sibling site cannot forge one. Also set as the readable ``_xsrf`` cookie on pages.
        """
        auth = self.hub_auth
        if not isinstance(auth, HubOAuth):
            return super().xsrf_token
        memo: bytes | None = getattr(self, "_hub_xsrf_memo", None)
        if memo is not None:
            return memo
        view = view_of(self)
        decision = self._hub_decision
        if decision is not None and decision.allowed and decision.source == "cookie":
            token = decision.token
        else:
            found = auth.read_login_cookie(view.cookie_values(auth.cookie_name))
            token = found[0] if found is not None else ""
        session = view.cookie(SESSION_COOKIE)
        value = auth.xsrf_token_for(token, session)
        if view.cookie("_xsrf") != value and view.header("sec-fetch-mode") in ("", "navigate"):
            self.add_header(
                "Set-Cookie", auth.xsrf_cookie(token, session, secure=is_secure(auth, view))
            )
        self._hub_xsrf_memo = value.encode("ascii")
        return self._hub_xsrf_memo

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated requests need no XSRF token. Cookie-authenticated ones are
        checked by the core in ``prepare()`` (a token bound to that login; a refusal says
        why). Anonymous ones need the anonymous token (HubAuth: Tornado's own check).
        """
        auth = self.hub_auth
        if self.request.headers.get("Authorization") or (
            auth.allow_token_in_url and self.get_query_argument("token", None)
        ):
            return  # authenticated by a token: no cookie, nothing to forge
        if not isinstance(auth, HubOAuth):
            super().check_xsrf_cookie()
            return
        view = view_of(self)
        if auth.read_login_cookie(view.cookie_values(auth.cookie_name)) is not None:
            return  # decided in prepare(), against the login the Hub accepts
        if not view.xsrf_token:
            raise HTTPError(403, f"'_xsrf' argument missing from {self.request.method}")
        if not auth.check_xsrf_token(view.xsrf_token, "", view.cookie(SESSION_COOKIE)):
            raise HTTPError(403, f"XSRF token does not match for {self.request.method}")


def answer(
    handler: RequestHandler, decision: Decision, view: RequestView, *, clear: bool = True
) -> None:
    """Answer a decision that does not let the request pass, on any Tornado handler: a
    redirect (to log in, elsewhere) or a short page (HTML for browsers, JSON for APIs), with
    the decision's cookies, never cached. ``clear=False`` keeps headers already set.
    """
    if clear:
        handler.clear()
    for cookie in decision.cookies:
        handler.add_header("Set-Cookie", cookie)
    handler.set_header("Cache-Control", "no-store")
    if decision.location:
        handler.redirect(decision.location, status=decision.status or 302)
        return
    handler.set_status(decision.status)
    if decision.www_authenticate:
        handler.set_header("WWW-Authenticate", 'Bearer realm="JupyterHub"')
    ctype, body = decision.page(view)
    handler.set_header("Content-Type", ctype)
    handler.finish(body)


def _not_allowed(model: dict[str, Any]) -> Decision:
    name = log_safe(str(model.get("name")))
    log.warning("Not allowing Hub %s %s", log_safe(str(model.get("kind", "user")), 20), name)
    return Decision(
        kind="deny",
        status=403,
        message=f"{model.get('kind', 'user')} {model.get('name')} may not use this page.",
    )


_WARNED: set[type] = set()


def _warn_no_prepare(cls: type) -> None:
    if cls not in _WARNED:
        _WARNED.add(cls)
        log.warning(
            "%s.prepare() does not call super().prepare(): the Hub is asked with a blocking "
            "call in get_current_user(). Call (and await) super().prepare() instead.",
            cls.__name__,
        )


class HubOAuthenticated(HubAuthenticated):
    """Mixin: API tokens as :class:`HubAuthenticated`, plus browser login through the Hub."""

    hub_auth_class = HubOAuth


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
