"""FastAPI: the caller as a dependency, the login routes, and the docs page's Authorize button.

``user: HubUser`` in a route (HTTP or websocket, sync or async) gives the Hub's model of
the caller; ``Security(hub_user, scopes=[...])`` requires scopes instead of the service's
access scopes; ``HubToken`` gives the token that authenticated the caller.
``app.include_router(hub_router())`` adds ``<prefix>oauth_callback``, ``<prefix>logout``
and ``<prefix>oauth_token``; ``FastAPI(**hub_docs())`` serves the interactive docs under
the prefix with an Authorize button that takes an API token or logs in through the Hub
(authorization code with PKCE). Browsers are sent to log in, API calls get 401, callers
without the scope 403 (FastAPI's ``{"detail": ...}``), websockets are closed before they
are accepted.

The ``HubAuth`` used is ``app.state.hub_auth`` if set, else a ``HubOAuth()`` built once
from the environment (:func:`default_auth`); give the same one to ``hub_router(auth)`` and
``hub_docs(auth)``.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import HTTPConnection
from starlette.responses import Response

from ._asgi import close_code, close_reason, start, view_from_scope
from ._flow import callback, logout, run_async
from ._view import Decision, RequestView
from .asgi import TOKEN_KEY, USER_KEY
from .auth import HubAuth
from .errors import HubAuthError, HubUnavailable, OAuthError
from .oauth import HubOAuth
from .wsgi import callback_path, decision_response, logout_path

__all__ = [
    "HubAuthRefused",
    "HubToken",
    "HubUser",
    "default_auth",
    "hub_docs",
    "hub_router",
    "hub_token",
    "hub_user",
]

Model = dict[str, Any]
_MAX_TOKEN_FORM = 16 * 1024  # bytes: a code, a verifier and a few short fields


@functools.lru_cache(maxsize=1)
def default_auth() -> HubOAuth:
    """The ``HubOAuth`` built from the environment, once per process."""
    return HubOAuth()


def auth_for(conn: HTTPConnection) -> HubAuth:
    """The ``HubAuth`` of the app serving ``conn``: ``app.state.hub_auth``, else
    :func:`default_auth`.
    """
    auth = getattr(getattr(conn.scope.get("app"), "state", None), "hub_auth", None)
    return auth if isinstance(auth, HubAuth) else default_auth()


class HubAuthRefused(HTTPException):
    """Raised by :data:`hub_user` for a caller who may not proceed; FastAPI's handler for
    ``HTTPException`` answers it (status, ``{"detail": message}``, and every header the
    decision needs: the login redirect, cookies, ``WWW-Authenticate``).
    """

    def __init__(self, decision: Decision, view: RequestView) -> None:
        self.decision = decision
        _, headers, _ = decision_response(decision, view)
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in headers
            if k not in ("Content-Type", "Content-Length")
        ]
        super().__init__(decision.status, decision.message or None, Headers(raw=raw))


def _refuse(decision: Decision, conn: HTTPConnection) -> Exception:
    view = view_from_scope(conn.scope)
    if view.is_websocket:
        return WebSocketException(close_code(decision), close_reason(decision.message))
    return HubAuthRefused(decision, view)


# ---------------------------------------------------------------- security schemes


def _oauth_model(auth: HubAuth | None) -> OAuth2Model:
    """The docs page's login through the Hub, for ``auth`` (before one is known: the Hub's
    default paths, relative to this origin).
    """
    if auth is None:
        authorize, token, scopes = "/hub/api/oauth2/authorize", "oauth_token", frozenset[str]()
    else:
        authorize = f"{auth.hub_host}{auth.hub_prefix}api/oauth2/authorize"
        token = f"{auth.base_url}oauth_token"
        scopes = auth.access_scopes | auth.config.oauth_client_allowed_scopes
    return OAuth2Model(
        flows=OAuthFlows(
            authorizationCode=OAuthFlowAuthorizationCode(
                authorizationUrl=authorize,
                tokenUrl=token,
                scopes={s: "a JupyterHub scope" for s in sorted(scopes)},
            )
        ),
        description="Log in through JupyterHub (it asks who you are, and whether this "
        "service may act for you); the code is exchanged with PKCE.",
    )


class _HubTokenScheme(SecurityBase):
    """OpenAPI: an API token from the Hub, sent as ``Authorization: Bearer <token>``."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JupyterHub API token",
            description="An API token from the Hub's token page (or its REST API).",
        )
        self.scheme_name = "HubToken"

    async def __call__(self) -> None:
        return None  # documentation only: hub_user reads the credentials itself


class _HubUserScheme(SecurityBase):
    """The dependency giving the caller's model; in OpenAPI, a login through the Hub
    (authorization code with PKCE) whose scopes are the route's required scopes.
    """

    def __init__(self) -> None:
        self.scheme_name = "JupyterHub"
        self.model = _oauth_model(None)

    async def __call__(
        self,
        conn: HTTPConnection,
        security_scopes: SecurityScopes,
        response: Response,
        _token: Annotated[None, Security(_HubTokenScheme())] = None,
    ) -> Model:
        auth = auth_for(conn)
        required = frozenset(security_scopes.scopes) if security_scopes.scopes else None
        if required is None:
            required = auth.access_scopes
        outcome = start(auth, conn.scope, required)
        if isinstance(outcome, Decision):
            decision = outcome
        else:
            decision = await run_async(auth, outcome.flow, outcome.step)
        if not decision.allowed or decision.user is None:
            raise _refuse(decision, conn)
        for cookie in decision.cookies:  # a ?token= login kept as a cookie (allow_token_in_url)
            response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
        conn.scope[USER_KEY] = decision.user
        conn.scope[TOKEN_KEY] = decision.token
        return decision.user


hub_user = _HubUserScheme()
HubUser = Annotated[Model, Security(hub_user)]


async def hub_token(conn: HTTPConnection, user: HubUser) -> str:
    """The token that authenticated the caller (header, ``?token=`` or login cookie), to act
    on the Hub as the visitor (``AsyncHubAPI(api_token=...)``). It depends on
    :data:`HubUser`, so it also requires the service's access scopes.
    """
    return str(conn.scope.get(TOKEN_KEY, ""))


HubToken = Annotated[str, Depends(hub_token)]


# ---------------------------------------------------------------- routes


def _response(decision: Decision, view: RequestView, extra: bytes = b"") -> Response:
    status, headers, body = decision_response(decision, view)
    if extra and body.startswith(b"<!doctype html>"):
        body += extra
        headers = [(k, str(len(body)) if k == "Content-Length" else v) for k, v in headers]
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    response = Response(body, status_code=status)
    response.raw_headers = raw
    return response


# Hands a code that came back to the callback to the docs page (Swagger UI) that opened this
# window for it, if one did; otherwise the page is only the refusal it shows.
_RELAY = b"""<script>(function () {
  var relay = null;
  try { relay = window.opener && window.opener.swaggerUIRedirectOauth2; } catch (e) {}
  if (!relay) { return; }
  var query = new URLSearchParams(window.location.search);
  var auth = relay.auth;
  if (query.get("state") !== relay.state) {
    relay.errCb({authId: auth.name, source: "auth", level: "error",
                 message: "The login answer does not match the login started here."});
  } else if (query.get("code")) {
    delete relay.state;
    auth.code = query.get("code");
    relay.callback({auth: auth, redirectUrl: relay.redirectUrl});
  } else {
    relay.errCb({authId: auth.name, source: "auth", level: "error",
                 message: query.get("error_description") || query.get("error") || "No code."});
  }
  window.close();
})();</script>"""


def hub_router(auth: HubAuth | None = None, *, docs: bool = False) -> APIRouter:
    """The login routes: ``<prefix>oauth_callback`` and ``<prefix>logout`` (HubOAuth only).

    ``docs=True`` (with ``FastAPI(**hub_docs())``) adds ``<prefix>oauth_token``, where the
    docs page's Authorize button exchanges its code (the service adds its client secret,
    the Hub checks PKCE), and the callback's refusal of a state this service did not issue
    (the docs page's) hands the code back to the docs page that opened it.
    """
    auth = auth if auth is not None else default_auth()
    hub_user.model = _oauth_model(auth)
    router = APIRouter(include_in_schema=False)
    if not isinstance(auth, HubOAuth):
        return router
    oauth = auth

    async def oauth_callback(request: Request) -> Response:
        view = view_from_scope(request.scope)
        state = view.query_value("state")
        # A state this service did not seal is the docs page's (Swagger UI's own): the core
        # refuses it as for any browser, and the page carries the code back to the docs.
        relay = docs and bool(state) and oauth.open_state(state) is None
        decision = await run_async(oauth, callback(oauth, view))
        return _response(decision, view, _RELAY if relay else b"")

    async def oauth_logout(request: Request) -> Response:
        view = view_from_scope(request.scope)
        return _response(logout(oauth, view), view)

    async def oauth_token(request: Request) -> Response:
        return await _exchange(oauth, request)

    router.add_api_route(callback_path(oauth), oauth_callback, methods=["GET"])
    router.add_api_route(logout_path(oauth), oauth_logout, methods=["GET"])
    if docs:
        router.add_api_route(f"{oauth.base_url}oauth_token", oauth_token, methods=["POST"])
    return router


def _token_error(status: int, error: str, description: str) -> Response:
    body = json.dumps({"error": error, "error_description": description}).encode()
    headers = {"Cache-Control": "no-store", "Content-Type": "application/json"}
    return Response(body, status_code=status, headers=headers)


async def _exchange(auth: HubOAuth, request: Request) -> Response:
    """The docs page's token request: its code and PKCE verifier, sent on to the Hub with
    the service's client secret. Answers like an OAuth token endpoint (RFC 6749 §5).
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_TOKEN_FORM:
            return _token_error(400, "invalid_request", "The token request is too large.")
    form = urllib.parse.parse_qs(body.decode("latin-1"), max_num_fields=20)
    grant, code, verifier = (form.get(k, [""])[0] for k in ("grant_type", "code", "code_verifier"))
    if grant != "authorization_code" or not code or not verifier:
        return _token_error(
            400,
            "invalid_request",
            "Send grant_type=authorization_code with the code and its PKCE code_verifier.",
        )
    try:
        token = await auth.token_for_code(code[:2048], code_verifier=verifier[:256], sync=False)
    except OAuthError as e:
        return _token_error(400, "invalid_grant", f"The Hub refused this code: {e}")
    except HubUnavailable:
        return _token_error(503, "temporarily_unavailable", "The Hub could not be reached.")
    except HubAuthError:
        return _token_error(502, "server_error", "The Hub gave an unexpected answer.")
    body = json.dumps({"access_token": token, "token_type": "bearer"}).encode()
    headers = {"Cache-Control": "no-store", "Content-Type": "application/json"}
    return Response(body, headers=headers)


def hub_docs(auth: HubAuth | None = None) -> dict[str, Any]:
    """Keyword arguments for ``FastAPI(...)``: the docs under the service prefix
    (``<prefix>docs``, ``<prefix>redoc``, ``<prefix>openapi.json``), and the Authorize
    button's login through the Hub (this service's client id, PKCE, the callback as the
    redirect URI, so nothing more needs registering with the Hub).
    """
    auth = auth if auth is not None else default_auth()
    hub_user.model = _oauth_model(auth)
    base = auth.base_url
    settings: dict[str, Any] = {
        "docs_url": f"{base}docs",
        "redoc_url": f"{base}redoc",
        "openapi_url": f"{base}openapi.json",
        "swagger_ui_oauth2_redirect_url": None,
    }
    if isinstance(auth, HubOAuth):
        settings["swagger_ui_init_oauth"] = {
            "clientId": auth.oauth_client_id,
            "usePkceWithAuthorizationCodeGrant": True,
        }
        settings["swagger_ui_parameters"] = {"oauth2RedirectUrl": auth.oauth_redirect_uri}
    return settings
