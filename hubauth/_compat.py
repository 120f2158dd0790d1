"""JupyterHub's handler-taking methods of ``HubAuth`` and ``HubOAuth``, on hubauth's flows.

Services written for ``jupyterhub.services.auth`` call these with a Tornado handler
(``hub_auth.get_user(self)``, ``hub_auth.set_state_cookie(self, next_url)``, ...). Each is a
thin translation: the handler becomes a :class:`~hubauth._view.RequestView`, the core flows
decide, and the cookies they set are added to the handler's response. Everything is
stateless: a state made by ``generate_state`` in one worker is read by ``get_next_url`` in
another. Tornado is imported only when a handler is actually given.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

from . import _protocol
from .errors import HubAuthError

if TYPE_CHECKING:
    from tornado.web import RequestHandler

    from ._view import Decision, RequestView
    from .auth import HubAuth
    from .oauth import HubOAuth

__all__ = ["SESSION_COOKIE", "HandlerMethods", "OAuthHandlerMethods"]

log = logging.getLogger("hubauth")

SESSION_COOKIE = "jupyterhub-session-id"
_CACHED = "_cached_hub_user"
_UNSET: Any = object()
A = TypeVar("A", bound="HandlerMethods")


def _view(handler: RequestHandler) -> RequestView:
    from .tornado import view_of

    return view_of(handler)


def _add_cookies(handler: RequestHandler, cookies: tuple[str, ...] | list[str]) -> None:
    for cookie in cookies:
        handler.add_header("Set-Cookie", cookie)


def _secure(auth: HubAuth, handler: RequestHandler) -> bool:
    from ._flow import is_secure

    return is_secure(auth, _view(handler))


class HandlerMethods:
    """``HubAuth``'s JupyterHub methods that take a Tornado handler (mixed into HubAuth)."""

    _instances: ClassVar[dict[type, Any]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def instance(cls: type[A], **settings: object) -> A:
        """The one shared instance of this class (built on first use from the environment
        and ``settings``), as JupyterHub's ``SingletonConfigurable.instance()``.
        """
        with HandlerMethods._instances_lock:
            found = HandlerMethods._instances.get(cls)
            if found is None:
                found = HandlerMethods._instances[cls] = cls(**settings)
            elif settings:
                raise HubAuthError(
                    f"{cls.__name__}.instance() already exists; settings can only be given "
                    "the first time (or assign them: instance().api_url = ...)"
                )
        return found

    def get_session_id(self, handler: RequestHandler) -> str:
        """The Hub's session id (the ``jupyterhub-session-id`` cookie), or ``""``."""
        return _view(handler).cookie(SESSION_COOKIE)

    def get_token(self, handler: RequestHandler, in_cookie: bool = True) -> str | None:
        """The token a request carries: ``?token=`` (when allowed, or on a websocket), the
        Authorization header, then (``in_cookie``) the login cookie. ``None`` if none.
        """
        auth: HubAuth = self  # type: ignore[assignment]
        view = _view(handler)
        if auth.allow_token_in_url or view.is_websocket:
            token = _protocol.clean_token(view.query_value("token"))
            if token:
                return token
        header = view.header("authorization")
        if header:
            token = _protocol.token_from_authorization(header)
            if token:
                return token
        if in_cookie:
            from .oauth import HubOAuth

            if isinstance(auth, HubOAuth):
                if view.is_websocket and not auth.allow_websocket_cookie_auth:
                    return None
                found = auth.read_login_cookie(view.cookie_values(auth.cookie_name))
                if found is not None:
                    return found[0]
        return None

    def user_for_cookie(
        self, encrypted_cookie: str, use_cache: bool = True, session_id: str = ""
    ) -> None:
        """Removed in JupyterHub 2.0, as there: browsers log in with OAuth (use HubOAuth)."""
        raise RuntimeError(
            "Identifying users by the Hub's shared cookie was removed in JupyterHub 2.0: "
            "use HubOAuth (browser login through the Hub) or user_for_token()"
        )

    @overload
    def get_user(
        self, handler: RequestHandler, *, sync: Literal[True] = ...
    ) -> dict[str, Any] | None: ...
    @overload
    def get_user(
        self, handler: RequestHandler, *, sync: Literal[False]
    ) -> Awaitable[dict[str, Any] | None]: ...
    def get_user(
        self, handler: RequestHandler, *, sync: bool = True
    ) -> dict[str, Any] | Awaitable[dict[str, Any] | None] | None:
        """The Hub's model of whoever sent ``handler``'s request, or ``None``: a token (URL
        where allowed, or header), else the login cookie, with the cross-site rule. No scope
        check (that is ``check_hub_user``'s job). Cached on the handler.

        ``sync=True`` blocks (as in JupyterHub); in a coroutine use ``sync=False``.
        """
        from ._flow import authenticate, run_sync

        auth: HubAuth = self  # type: ignore[assignment]
        cached = getattr(handler, _CACHED, _UNSET)
        if not sync:
            return self._get_user_async(handler, cached)
        if cached is not _UNSET:
            return cached  # type: ignore[no-any-return]
        decision = run_sync(auth, authenticate(auth, _view(handler), ()))
        return _settle(handler, decision)

    async def _get_user_async(self, handler: RequestHandler, cached: Any) -> dict[str, Any] | None:
        from ._flow import authenticate, run_async

        if cached is not _UNSET:
            return cached  # type: ignore[no-any-return]
        auth: HubAuth = self  # type: ignore[assignment]
        decision = await run_async(auth, authenticate(auth, _view(handler), ()))
        return _settle(handler, decision)


def _settle(handler: RequestHandler, decision: Decision) -> dict[str, Any] | None:
    """Apply a decision to a handler for ``get_user``: its cookies; Hub trouble raised as the
    HTTP error it is (502/503); the model, or ``None``.
    """
    from tornado.web import HTTPError

    _add_cookies(handler, decision.cookies)
    if decision.kind == "refuse" and decision.status >= 500:
        raise HTTPError(decision.status, reason=decision.message[:100])
    model = decision.user if decision.allowed else None
    setattr(handler, _CACHED, model)
    if decision.allowed:
        handler._token_authenticated = decision.source != "cookie"  # type: ignore[attr-defined]
    return model


class OAuthHandlerMethods:
    """``HubOAuth``'s JupyterHub methods about state and cookies (mixed into HubOAuth)."""

    def generate_state(self, next_url: str | None = None, **extra_state: Any) -> str:
        """A sealed OAuth state for a login that goes on to ``next_url`` (a local path).

        ``code_verifier`` and ``cookie_name`` in ``extra_state`` are kept as such; anything
        else JSON-serialisable travels along and is read back with :meth:`get_state_extra`.
        """
        auth: HubOAuth = self  # type: ignore[assignment]
        verifier = extra_state.pop("code_verifier", None) or ""
        cookie_name = extra_state.pop("cookie_name", None) or ""
        if cookie_name and not auth.is_state_cookie_name(cookie_name):
            raise ValueError(f"cookie_name must start with {auth.state_cookie_name!r}")
        return auth.seal_state(
            next_url,
            cookie_name=cookie_name,
            verifier=str(verifier),
            extra=extra_state or None,
        )

    def get_code_verifier(self, state: str = "", /) -> str | None:
        """The PKCE verifier sealed in ``state``, or ``None``."""
        opened = self.open_state(state)  # type: ignore[attr-defined]
        return (opened.verifier or None) if opened is not None else None

    def get_state_cookie_name(self, state: str = "", /) -> str:
        """The state cookie of the login ``state`` belongs to (the base name if unknown)."""
        auth: HubOAuth = self  # type: ignore[assignment]
        opened = auth.open_state(state)
        return opened.cookie_name if opened is not None else auth.state_cookie_name

    def get_state_extra(self, state: str = "", /) -> Mapping[str, Any]:
        """The extra values given to :meth:`generate_state` (empty if ``state`` is not ours)."""
        opened = self.open_state(state)  # type: ignore[attr-defined]
        return opened.extra if opened is not None else {}

    def clear_oauth_state(self, state: str = "", /) -> None:
        """Nothing to clear: hubauth keeps no state in memory (it lives in the browser)."""

    def set_state_cookie(
        self,
        handler: RequestHandler,
        next_url: str | None = None,
        *,
        code_verifier: str | None = None,
    ) -> str:
        """Start a login from ``handler``: set its state cookie, return the ``state`` to send
        to the Hub. ``code_verifier``: the PKCE verifier the authorize URL's challenge is from.
        """
        auth: HubOAuth = self  # type: ignore[assignment]
        view = _view(handler)
        name = auth.new_state_cookie_name(auth.state_cookie_names(view.cookies))
        state = auth.seal_state(next_url, cookie_name=name, verifier=code_verifier or "")
        _add_cookies(handler, [auth.state_cookie(state, secure=_secure(auth, handler))])
        return state

    def clear_oauth_state_cookies(self, handler: RequestHandler) -> None:
        """Clear every state cookie the request carries (as a finished login does)."""
        auth: HubOAuth = self  # type: ignore[assignment]
        secure = _secure(auth, handler)
        names = auth.state_cookie_names(_view(handler).cookies)
        _add_cookies(handler, [auth.clear_state_cookie(n, secure=secure) for n in names])

    def set_cookie(self, handler: RequestHandler, access_token: str) -> None:
        """Store ``access_token`` in the (encrypted) login cookie of ``handler``'s response."""
        auth: HubOAuth = self  # type: ignore[assignment]
        token = _protocol.clean_token(access_token)
        if token is None:
            raise ValueError("not a token the Hub could have issued")
        _add_cookies(handler, [auth.login_cookie(token, secure=_secure(auth, handler))])

    def clear_cookie(self, handler: RequestHandler) -> None:
        """Clear the login cookie (and forget its token in the cache)."""
        auth: HubOAuth = self  # type: ignore[assignment]
        view = _view(handler)
        for found in auth.read_login_cookies(view.cookie_values(auth.cookie_name)):
            auth.evict_token(found.token)
        _add_cookies(handler, [auth.clear_login_cookie(secure=_secure(auth, handler))])
