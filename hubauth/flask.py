"""Flask extension: ``FlaskHubAuth`` and the ``@hub_authenticated`` decorator.

``FlaskHubAuth(app)`` (or ``init_app``) registers ``<prefix>oauth_callback`` and
``<prefix>logout``; ``@hub_authenticated`` (bare, or ``scopes=[...]``) puts the caller's
model in ``flask.g.hub_user`` and the token that authenticated it in ``g.hub_token``.
Settings come from the environment, then ``app.config`` keys ``HUBAUTH_<SETTING>`` (e.g.
``HUBAUTH_API_URL``), then ``auth=``. Everything is stateless, so any number of workers
serve logins.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from flask import Flask, Response, current_app, g, request
from flask import after_this_request as _after_this_request

from ._flow import callback, decide_sync, logout, run_sync
from ._view import Decision
from .auth import HubAuth
from .config import SETTINGS
from .oauth import HubOAuth
from .wsgi import callback_path, decision_response, logout_path, view_from_environ

__all__ = ["FlaskHubAuth", "hub_authenticated"]

F = TypeVar("F", bound=Callable[..., Any])
_EXTENSION = "hubauth"


class FlaskHubAuth:
    """The Flask extension: one per app, stored in ``app.extensions["hubauth"]``."""

    def __init__(self, app: Flask | None = None, auth: HubAuth | None = None) -> None:
        self._given = auth
        self.auth: HubAuth | None = auth
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the auth object (if not given) and register the callback and logout routes."""
        auth = self._given
        if auth is None:
            overrides = {
                s.name: app.config[f"HUBAUTH_{s.name.upper()}"]
                for s in SETTINGS
                if f"HUBAUTH_{s.name.upper()}" in app.config
            }
            auth = HubOAuth(**overrides)
        self.auth = auth
        app.extensions[_EXTENSION] = self
        if isinstance(auth, HubOAuth):
            app.add_url_rule(callback_path(auth), "hubauth_oauth_callback", self._callback)
            app.add_url_rule(logout_path(auth), "hubauth_logout", self._logout)

    def _callback(self) -> Response:
        auth = self._oauth()
        view = view_from_environ(request.environ)
        return _respond(run_sync(auth, callback(auth, view)))

    def _logout(self) -> Response:
        auth = self._oauth()
        return _respond(logout(auth, view_from_environ(request.environ)))

    def _oauth(self) -> HubOAuth:
        if not isinstance(self.auth, HubOAuth):
            raise TypeError("FlaskHubAuth's login routes need a HubOAuth")
        return self.auth

    def decide(self, scopes: Iterable[str] | None = None) -> Decision:
        """Who is calling this request, and may they (the decision the decorator applies)."""
        if self.auth is None:
            raise RuntimeError("FlaskHubAuth.init_app(app) has not been called")
        return decide_sync(self.auth, view_from_environ(request.environ), scopes)


def _respond(decision: Decision) -> Response:
    status, headers, body = decision_response(decision, view_from_environ(request.environ))
    return Response(body, status=status, headers=headers)


def _extension() -> FlaskHubAuth:
    ext = current_app.extensions.get(_EXTENSION)
    if not isinstance(ext, FlaskHubAuth):
        raise RuntimeError("@hub_authenticated needs FlaskHubAuth(app) (or init_app) first")
    return ext


def _guard(scopes: Iterable[str] | None) -> Response | None:
    """``None`` when the caller may proceed (``g.hub_user`` set), else the refusal."""
    decision = _extension().decide(scopes)
    if not decision.allowed:
        g.hub_user = None
        g.hub_token = ""
        return _respond(decision)
    g.hub_user = decision.user
    g.hub_token = decision.token
    if decision.cookies:

        @_after_this_request
        def _set(resp: Response) -> Response:
            for cookie in decision.cookies:
                resp.headers.add("Set-Cookie", cookie)
            return resp

    return None


@overload
def hub_authenticated(view: F) -> F: ...
@overload
def hub_authenticated(*, scopes: Iterable[str] | None = None) -> Callable[[F], F]: ...
def hub_authenticated(
    view: F | None = None, *, scopes: Iterable[str] | None = None
) -> F | Callable[[F], F]:
    """Require a caller the Hub vouches for: bare, or ``@hub_authenticated(scopes=[...])``.

    Browsers are sent to log in; API requests get 401 JSON; a caller without the scope gets
    403; Hub trouble 502/503. The model is in ``flask.g.hub_user``. Async views work too.
    """
    required = None if scopes is None else frozenset(scopes)

    def wrap(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                refusal = _guard(required)
                if refusal is not None:
                    return refusal
                return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = _guard(required)
            if refusal is not None:
                return refusal
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return wrap(view) if view is not None else wrap
