"""The test service of tests/services.py for the ASGI adapters: a Starlette app behind
``hubauth.asgi.HubAuthMiddleware`` and a FastAPI app on ``hubauth.fastapi``.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations as
objects (``HubUser`` is imported inside the function, out of reach of string annotations).
"""

from typing import Any

from hubauth.auth import HubAuth

from .services import PREFIX, _me


def asgi_app(auth: HubAuth) -> Any:
    """A Starlette app behind ``hubauth.asgi.HubAuthMiddleware``, read the Starlette way."""
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from hubauth.asgi import HubAuthMiddleware

    @requires("authenticated")
    async def me(request: Request) -> JSONResponse:
        return JSONResponse(_me(request.user.model, request.scope["hubauth.token"]))

    async def public(request: Request) -> JSONResponse:
        # Nobody is authenticated on a public path: request.user says so.
        return JSONResponse({"public": not request.user.is_authenticated})

    inner = Starlette(
        routes=[
            Route(PREFIX + "public", public),
            Route("/{path:path}", me, methods=["GET", "POST"]),
        ]
    )
    scoped = HubAuthMiddleware(inner, auth, scopes=["read:users"])
    default = HubAuthMiddleware(inner, auth, public_paths=[PREFIX + "public"])

    async def route(scope: Any, receive: Any, send: Any) -> None:
        app = scoped if scope.get("path") == PREFIX + "scoped" else default
        await app(scope, receive, send)

    return route


def fastapi_app(auth: HubAuth) -> Any:
    """A FastAPI app with ``hubauth.fastapi``'s dependencies, router and docs settings."""
    from typing import Annotated

    from fastapi import FastAPI, Request, Security

    from hubauth.fastapi import HubToken, HubUser, hub_docs, hub_router, hub_user

    app = FastAPI(**hub_docs(auth))  # the docs' own login: tests/test_fastapi.py
    app.state.hub_auth = auth
    app.include_router(hub_router(auth, docs=True))

    @app.get(PREFIX.rstrip("/"))
    @app.get(PREFIX)
    @app.get(PREFIX + "page")
    @app.get(PREFIX + "files/{name:path}")
    def page(user: HubUser, token: HubToken) -> dict[str, Any]:  # a sync route, on purpose
        return _me(user, token)

    @app.get(PREFIX + "scoped")
    async def scoped(
        request: Request, user: Annotated[dict[str, Any], Security(hub_user, scopes=["read:users"])]
    ) -> dict[str, Any]:
        return _me(user, request.scope["hubauth.token"])

    @app.post(PREFIX + "post")
    async def post(user: HubUser, token: HubToken) -> dict[str, Any]:
        return _me(user, token)

    @app.get(PREFIX + "public")
    async def public() -> dict[str, Any]:
        return {"public": True}

    return app
