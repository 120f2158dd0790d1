"""``HubAuthMiddleware``: Hub authentication in front of any ASGI 3 app (http and websocket).

Starlette's authentication convention: ``request.user`` is a :class:`HubAuthUser` (the
Hub's model, as a read-only mapping with ``is_authenticated``, ``display_name``,
``identity``) and ``request.auth.scopes`` holds ``"authenticated"`` and the caller's Hub
scopes, so ``starlette.authentication.requires`` works. Other frameworks find the model in
``scope["hubauth.user"]`` and the token that authenticated it in ``scope["hubauth.token"]``.
The OAuth callback and logout routes are answered by the middleware itself;
``public_paths`` pass through unauthenticated; lifespan and other scope types pass through
untouched. The Hub is asked with the async driver, and a cached caller costs no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._asgi import (
    Receive,
    Scope,
    Send,
    ask_watching,
    send_decision,
    start,
    view_from_scope,
    with_cookies,
)
from ._flow import callback, logout, run_async
from ._middleware import MiddlewareSettings
from ._view import Decision
from .auth import HubAuth
from .oauth import HubOAuth
from .wsgi import callback_path, logout_path

__all__ = [
    "ANONYMOUS",
    "TOKEN_KEY",
    "USER_KEY",
    "HubAuthCredentials",
    "HubAuthMiddleware",
    "HubAuthUser",
    "UnauthenticatedHubUser",
]

USER_KEY = "hubauth.user"
TOKEN_KEY = "hubauth.token"  # noqa: S105 - a scope key, not a secret

ASGIApp = Any  # any ASGI 3 callable: ``await app(scope, receive, send)``


class HubAuthUser(Mapping[str, Any]):
    """The caller, as Starlette's ``request.user``: the Hub's model, read-only, plus the
    ``BaseUser`` properties (``is_authenticated``, ``display_name``, ``identity``).
    """

    __slots__ = ("model",)

    def __init__(self, model: dict[str, Any]) -> None:
        self.model = model

    def __getitem__(self, key: str) -> Any:
        return self.model[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.model)

    def __len__(self) -> int:
        return len(self.model)

    def __repr__(self) -> str:
        return f"HubAuthUser(name={self.name!r}, kind={self.kind!r})"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return str(self.model.get("name", ""))

    @property
    def kind(self) -> str:
        return str(self.model.get("kind", "user"))

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def identity(self) -> str:
        return self.name

    @property
    def scopes(self) -> list[str]:
        return list(self.model.get("scopes") or [])


class UnauthenticatedHubUser(HubAuthUser):
    """``request.user`` on a public path: nobody (``is_authenticated`` is False)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__({})

    def __repr__(self) -> str:
        return "UnauthenticatedHubUser()"

    @property
    def is_authenticated(self) -> bool:
        return False


ANONYMOUS = UnauthenticatedHubUser()


class HubAuthCredentials:
    """Starlette's ``request.auth``: ``scopes`` are ``"authenticated"`` and the Hub scopes
    of the caller (what ``starlette.authentication.requires`` compares, string for string).
    """

    __slots__ = ("_model",)

    def __init__(self, model: Mapping[str, Any] | None) -> None:
        self._model = model

    @property
    def scopes(self) -> list[str]:
        if self._model is None:
            return []
        return ["authenticated", *(self._model.get("scopes") or [])]

    def __repr__(self) -> str:
        return f"HubAuthCredentials(scopes={self.scopes!r})"


_NOBODY = HubAuthCredentials(None)


class HubAuthMiddleware(MiddlewareSettings):
    """Wrap an ASGI app so only callers the Hub vouches for (with the scopes) reach it.

    ``auth``: a :class:`~hubauth.HubOAuth` (browser logins) or :class:`~hubauth.HubAuth`
    (tokens only), built from the environment when omitted. ``scopes`` replaces the
    service's access scopes. ``public_paths``: exact paths, or prefixes ending in ``/``.
    """

    def __init__(
        self,
        app: ASGIApp,
        auth: HubAuth | None = None,
        *,
        scopes: Iterable[str] | None = None,
        public_paths: Iterable[str] = (),
    ) -> None:
        super().__init__(app, auth, scopes=scopes, public_paths=public_paths)
        self._required = self.auth.access_scopes if self.scopes is None else self.scopes
        oauth = self.auth if isinstance(self.auth, HubOAuth) else None
        self._oauth = oauth
        self._routes = (callback_path(oauth), logout_path(oauth)) if oauth else ("", "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)  # lifespan and anything newer: not ours
            return
        path = str(scope.get("path", "/"))
        oauth = self._oauth
        if oauth is not None and kind == "http" and path in self._routes:
            login_view = view_from_scope(scope)
            if path == self._routes[0]:
                done = await run_async(oauth, callback(oauth, login_view))
            else:
                done = logout(oauth, login_view)
            await send_decision(done, login_view, send)
            return
        if self.public_paths and self.is_public(path):
            scope = {**scope, USER_KEY: None, TOKEN_KEY: "", "user": ANONYMOUS, "auth": _NOBODY}
            await self.app(scope, receive, send)
            return
        auth = self.auth
        outcome = start(auth, scope, self._required)
        if isinstance(outcome, Decision):
            decision = outcome
        else:
            answer, receive = await ask_watching(auth, outcome.flow, outcome.step, receive)
            if answer is None:
                return  # the client left while the Hub was being asked
            decision = answer
        if decision.allowed:
            user = decision.user
            scope = {
                **scope,
                USER_KEY: user,
                TOKEN_KEY: decision.token,
                "user": HubAuthUser(user) if user is not None else ANONYMOUS,
                "auth": HubAuthCredentials(user),
            }
            await self.app(scope, receive, with_cookies(send, decision.cookies))
            return
        await send_decision(decision, view_from_scope(scope), send)
