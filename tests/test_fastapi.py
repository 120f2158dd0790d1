"""hubauth.fastapi under a real uvicorn: websockets, per-route scopes, the OpenAPI security
schemes, the docs page's login (token route and callback relay), sync and async routes.

The shared adapter, attack and fault suites run a FastAPI app too (tests/services.py,
adapter ``fastapi``); these tests cover what only FastAPI has.
"""

import base64
import hashlib
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
import requests
import websockets.sync.client
from fastapi import FastAPI, Security, WebSocket
from websockets.exceptions import InvalidStatus

from hubauth.fastapi import HubToken, HubUser, hub_docs, hub_router, hub_user
from hubauth.oauth import HubOAuth
from hubauth.testing import FakeHub

from .services import PREFIX, browser, free_port, log_in, make_auth, serve_uvicorn

TIMEOUT = 15


@dataclass
class Api:
    url: str
    auth: HubOAuth
    hub: FakeHub

    def at(self, path: str) -> str:
        return f"{self.url}{PREFIX}{path}"


def make_app(auth: HubOAuth) -> FastAPI:
    app = FastAPI(title="whoami test", **hub_docs(auth))
    app.state.hub_auth = auth
    app.include_router(hub_router(auth, docs=True))

    @app.get(PREFIX + "me")
    def me(user: HubUser, token: HubToken) -> dict[str, Any]:
        return {"name": user["name"], "sync": True, "token": bool(token)}

    @app.get(PREFIX + "me-async")
    async def me_async(user: HubUser) -> dict[str, Any]:
        return {"name": user["name"], "sync": False}

    @app.get(PREFIX + "readers")
    async def readers(
        user: Annotated[dict[str, Any], Security(hub_user, scopes=["read:users"])],
    ) -> dict[str, Any]:
        return {"reader": user["name"]}

    @app.websocket(PREFIX + "ws")
    async def ws(websocket: WebSocket, user: HubUser) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello {user['name']}")
        await websocket.close()

    return app


@pytest.fixture(params=[True, False], ids=["ws-cookie-on", "ws-cookie-off"])
def api(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Api]:
    port = free_port()
    auth = make_auth(
        fake_hub, f"http://127.0.0.1:{port}", allow_websocket_cookie_auth=request.param
    )
    with serve_uvicorn(make_app(auth), port):
        yield Api(f"http://127.0.0.1:{port}", auth, fake_hub)
    auth.close()


def get(url: str, token: str = "", **headers: str) -> requests.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)


# ---------------------------------------------------------------- routes


def test_sync_and_async_routes_and_route_scopes(api: Api) -> None:
    reader = api.hub.add_user("rita", scopes=["access:services", "read:users"])
    plain = api.hub.add_user("paul")
    assert get(api.at("me"), reader).json() == {"name": "rita", "sync": True, "token": True}
    assert get(api.at("me-async"), reader).json() == {"name": "rita", "sync": False}
    assert get(api.at("readers"), reader).json() == {"reader": "rita"}
    r = get(api.at("readers"), plain)
    assert r.status_code == 403 and "read:users" in r.json()["detail"]
    r = get(api.at("me"), Accept="application/json")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "Authentication required" in r.json()["detail"]


def test_a_browser_is_sent_to_log_in_with_every_cookie(api: Api) -> None:
    """The login redirect leaves through FastAPI's HTTPException handler: status, Location
    and every Set-Cookie survive (here: a stale login cookie cleared and a state cookie).
    """
    r = get(
        api.at("me?x=1"),
        Accept="text/html",
        Cookie=f"{api.auth.cookie_name}=tampered",
    )
    assert r.status_code == 302
    assert r.headers["location"].startswith(f"{api.hub.url}/hub/api/oauth2/authorize?")
    cookies = r.raw.headers.getlist("set-cookie")
    names = sorted(c.split("=")[0] for c in cookies)
    assert names[0] == api.auth.cookie_name and names[1].startswith(api.auth.state_cookie_name)
    b = browser()
    assert log_in(api_service(api), b, "alice", "me-async").json()["name"] == "alice"


def api_service(api: Api) -> Any:
    from .services import Service

    return Service(api.url, api.auth, api.hub, "fastapi")


# ---------------------------------------------------------------- websockets


def ws_url(api: Api, query: str = "") -> str:
    return f"ws{api.url.removeprefix('http')}{PREFIX}ws{query}"


def greeting(url: str, **kwargs: Any) -> str:
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, **kwargs) as ws:
        return str(ws.recv(timeout=TIMEOUT))


def refused(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        greeting(url, **kwargs)
    return info.value.response.status_code


@pytest.fixture
def quiet_ws_client() -> Iterator[None]:
    """The tests' websocket client logs its own requests (tokens in them) at DEBUG."""
    import logging

    client = logging.getLogger("websockets.client")
    level, client.level = client.level, logging.INFO
    yield
    client.setLevel(level)


def test_websocket_route(api: Api, quiet_ws_client: None) -> None:
    token = api.hub.add_user("alice")
    assert greeting(ws_url(api, f"?token={token}")) == "hello alice"
    assert greeting(ws_url(api), additional_headers={"Authorization": f"token {token}"}) == (
        "hello alice"
    )
    # No credential, or one the Hub does not know: refused before the handshake completes.
    assert refused(ws_url(api)) == 403
    assert refused(ws_url(api, "?token=nope")) == 403
    assert refused(ws_url(api), additional_headers={"Authorization": "Basic eDp5"}) == 403
    cookie = api.auth.login_cookie(api.hub.add_user("carol"), secure=False).split(";")[0]
    ours = {"Cookie": cookie, "Origin": api.url}
    if api.auth.allow_websocket_cookie_auth:
        assert greeting(ws_url(api), additional_headers=ours) == "hello carol"
    else:
        assert refused(ws_url(api), additional_headers=ours) == 403
    foreign = {"Cookie": cookie, "Origin": "http://evil.example"}
    assert refused(ws_url(api), additional_headers=foreign) == 403  # cross-site hijacking


# ---------------------------------------------------------------- OpenAPI and the docs page


def test_openapi_describes_both_ways_to_authorize(api: Api) -> None:
    spec = get(api.at("openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    flow = schemes["JupyterHub"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{api.hub.url}/hub/api/oauth2/authorize"
    assert flow["tokenUrl"] == f"{PREFIX}oauth_token"
    assert "access:services!service=test-service" in flow["scopes"]
    assert schemes["HubToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JupyterHub API token",
        "description": schemes["HubToken"]["description"],
    }
    readers = spec["paths"][f"{PREFIX}readers"]["get"]["security"]
    # Either way of authorizing; the route's scopes listed with both (OpenAPI 3.1: "roles").
    assert readers == [{"JupyterHub": ["read:users"]}, {"HubToken": ["read:users"]}]
    assert f"{PREFIX}oauth_callback" not in spec["paths"]  # the login routes stay out
    page = get(api.at("docs")).text
    assert f'"oauth2RedirectUrl": "{api.auth.oauth_redirect_uri}"' in page
    assert '"usePkceWithAuthorizationCodeGrant": true' in page
    assert f'"clientId": "{api.auth.oauth_client_id}"' in page


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def docs_login(api: Api, b: requests.Session, challenge: str) -> tuple[str, requests.Response]:
    """What the docs page's Authorize popup does: the Hub's authorize URL with its own state
    and PKCE challenge, redirected back to the service's callback. Returns the code and the
    callback's answer.
    """
    state = base64.b64encode(b"Wed Dec 02 2026 16:00:00 GMT+0000").decode()  # Swagger's kind
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": api.auth.oauth_client_id,
            "redirect_uri": api.auth.oauth_redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    at_hub = b.get(f"{api.hub.url}/hub/api/oauth2/authorize?{query}", allow_redirects=False)
    back = at_hub.headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["code"][0]
    return code, b.get(back, allow_redirects=False, timeout=TIMEOUT)


def exchange(api: Api, **form: str) -> requests.Response:
    return requests.post(api.at("oauth_token"), data=form, timeout=TIMEOUT)


def test_the_docs_pages_login_gets_a_token_with_pkce(api: Api) -> None:
    """The callback hands the docs page its code (a page that relays it to the window that
    opened it, and otherwise only says no); the token route exchanges it with the service's
    client secret, and only with the right PKCE verifier. A browser already logged in to
    the service gets the relay too (not the "already logged in" redirect).
    """
    b = browser()
    b.get(f"{api.hub.url}/hub/login", params={"user": "dora"}, allow_redirects=False)
    log_in(api_service(api), b, "dora", "me")  # logged in to the service as well
    verifier, challenge = pkce()
    code, back = docs_login(api, b, challenge)
    assert back.status_code == 403 and "swaggerUIRedirectOauth2" in back.text
    assert "Set-Cookie" not in back.headers
    wrong = exchange(api, grant_type="authorization_code", code=code, code_verifier="x" * 43)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "PKCE" in wrong.json()["error_description"]

    code, _ = docs_login(api, b, challenge)
    r = exchange(
        api,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=api.auth.oauth_redirect_uri,
        client_id=api.auth.oauth_client_id,
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert get(api.at("me"), body["access_token"]).json()["name"] == "dora"
    replay = exchange(api, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert replay.status_code == 400  # a code works once


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"grant_type": "password", "code": "x", "code_verifier": "y"},
        {"grant_type": "authorization_code", "code": "x"},  # no PKCE verifier: refused here
        {"grant_type": "authorization_code", "code_verifier": "y"},
    ],
)
def test_token_route_refuses_incomplete_requests(api: Api, form: dict[str, str]) -> None:
    before = api.hub.count("/hub/api/oauth2/token")
    r = exchange(api, **form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert api.hub.count("/hub/api/oauth2/token") == before  # the Hub was not asked


def test_token_route_bad_input_and_hub_trouble(api: Api) -> None:
    r = requests.post(api.at("oauth_token"), data=b"a=" + b"x" * 100_000, timeout=TIMEOUT)
    assert r.status_code == 400 and "too large" in r.json()["error_description"]
    r = requests.post(api.at("oauth_token"), data=b"\xff\xfe=%%%&&&;;", timeout=TIMEOUT)
    assert r.status_code == 400
    form = {"grant_type": "authorization_code", "code": "c", "code_verifier": "v"}
    api.hub.fault = "down"
    r = exchange(api, **form)
    api.hub.fault = None
    assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"
    api.hub.fault = "garbage"
    r = exchange(api, **form)
    api.hub.fault = None
    assert r.status_code in (400, 502)


def test_a_login_this_service_started_is_not_taken_for_the_docs_pages(api: Api) -> None:
    """With the docs' relay on, the service's own logins (state cookie present) still end
    as logins, and a forged state still gets the refusal (its page carries the relay, which
    does nothing without a docs page that opened it).
    """
    b = browser()
    r = log_in(api_service(api), b, "ed", "me-async?q=1")
    assert r.status_code == 200 and r.url.endswith("me-async?q=1")
    r = b.get(api.at("oauth_callback?code=x&state=forged"), allow_redirects=False)
    assert r.status_code == 403 and "Try logging in again" in r.text
    r = get(api.at("oauth_callback?code=x&state=forged"), Accept="application/json")
    assert r.status_code == 403 and "swaggerUI" not in r.text  # JSON: no script


def test_default_auth_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``app.state.hub_auth`` the dependencies and routes use one ``HubOAuth``
    built from the environment, and a missing setting fails when the router is made.
    """
    from hubauth.errors import ConfigError
    from hubauth.fastapi import default_auth

    default_auth.cache_clear()
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_TOKEN"):
        hub_router()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "service-token-0123456789")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/env/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "env")
    try:
        router = hub_router()
        assert {r.path for r in router.routes} == {  # type: ignore[attr-defined]
            "/services/env/oauth_callback",
            "/services/env/logout",
        }
        assert default_auth() is default_auth()
    finally:
        default_auth().close()
        default_auth.cache_clear()


def test_the_model_is_json(api: Api) -> None:
    token = api.hub.add_user("alice", groups=["staff"])
    assert json.loads(get(api.at("me-async"), token).text)["name"] == "alice"
