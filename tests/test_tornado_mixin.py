"""Tornado-specific parts of the mixins: where ``hub_auth`` comes from, and XSRF."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.web import Application, RequestHandler, authenticated
from tornado.websocket import WebSocketHandler, websocket_connect

from hubauth import HubAuth, UserNotAllowed
from hubauth.testing import FakeHub
from hubauth.tornado import HubAuthenticated, HubOAuthCallbackHandler, HubOAuthenticated

from .conftest import TOKEN
from .services import (
    PREFIX,
    Service,
    browser,
    free_port,
    log_in,
    login_cookie,
    make_auth,
    serve_tornado,
)

APP_AUTH = HubAuth(api_url="http://app.test/hub/api", api_token=TOKEN)
OWN_AUTH = HubAuth(api_url="http://own.test/hub/api", api_token=TOKEN)


class Own(HubAuthenticated, RequestHandler):
    def initialize(self) -> None:
        self.hub_auth = OWN_AUTH  # JupyterHub's usual pattern

    async def prepare(self) -> None:
        pass  # this test is about which auth object, not about authenticating

    def get(self) -> None:
        self.write({"api_url": self.hub_auth.api_url})


class Default(Own):
    def initialize(self) -> None:
        pass


@pytest.fixture
def app_url() -> Iterator[str]:
    port = free_port()
    app = Application([("/own", Own), ("/default", Default)], hub_auth=APP_AUTH)
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield f"http://127.0.0.1:{port}"


def test_hub_auth_set_on_a_handler_stays_on_that_handler(app_url: str) -> None:
    for _ in range(2):
        assert (
            requests.get(f"{app_url}/own", timeout=10).json()["api_url"]
            == "http://own.test/hub/api"
        )
        assert (
            requests.get(f"{app_url}/default", timeout=10).json()["api_url"]
            == "http://app.test/hub/api"
        )


# ---------------------------------------------------------------- xsrf_cookies and websockets


class XsrfPage(HubOAuthenticated, RequestHandler):
    @authenticated
    def get(self) -> None:
        self.write({"xsrf": self.xsrf_token.decode()})

    @authenticated
    def post(self) -> None:
        self.write({"name": self.current_user["name"]})


class Echo(HubOAuthenticated, WebSocketHandler):
    @authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await super().get(*args, **kwargs)

    def open(self) -> None:  # type: ignore[override]
        self.write_message(self.current_user["name"])


@pytest.fixture(params=[True, False], ids=["ws-cookie-allowed", "ws-cookie-refused"])
def xsrf_app(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Service]:
    port = free_port()
    auth = make_auth(
        fake_hub, f"http://127.0.0.1:{port}", allow_websocket_cookie_auth=request.param
    )
    app = Application(
        [
            (PREFIX + "oauth_callback", HubOAuthCallbackHandler),
            (PREFIX + "ws", Echo),
            (PREFIX + "page", XsrfPage),
        ],
        hub_auth=auth,
        xsrf_cookies=True,
    )
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield Service(f"http://127.0.0.1:{port}", auth, fake_hub, "tornado")
    auth.close()


def test_tornado_xsrf_cookies_work_with_hubauth(xsrf_app: Service) -> None:
    b = browser()
    page = log_in(xsrf_app, b)
    assert page.status_code == 200
    xsrf = page.json()["xsrf"]
    # A cookie-authenticated POST without the XSRF token: Tornado refuses it.
    assert b.post(xsrf_app.page(), timeout=10).status_code == 403
    # With it (and no Origin header at all): Tornado's check is the same-origin evidence.
    r = b.post(xsrf_app.page(), data={"_xsrf": xsrf}, timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "alice"
    # A token-authenticated POST needs no XSRF token at all.
    token = xsrf_app.hub.add_user("bob")
    r = requests.post(xsrf_app.page(), headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "bob"


@pytest.mark.parametrize("valid_first", [True, False])
def test_first_valid_of_several_xsrf_cookies_is_accepted(
    xsrf_app: Service, valid_first: bool
) -> None:
    """Cookies on different paths share a name; the valid one may come first or last (Tornado
    alone keeps only the last).
    """
    b = browser()
    xsrf = log_in(xsrf_app, b).json()["xsrf"]
    login = login_cookie(xsrf_app, b)
    bad = "2|00000000|00000000000000000000000000000000|0"
    pair = [xsrf, bad] if valid_first else [bad, xsrf]
    cookie = f"_xsrf={pair[0]}; _xsrf={pair[1]}; {xsrf_app.auth.cookie_name}={login}"
    r = requests.post(xsrf_app.page(), data={"_xsrf": xsrf}, headers={"Cookie": cookie}, timeout=10)
    assert r.status_code == 200


def _ws(url: str, headers: dict[str, str] | None = None) -> str:
    async def talk() -> str:
        request = HTTPRequest(url, headers=headers or {}, connect_timeout=10, request_timeout=10)
        conn = await websocket_connect(request)
        try:
            message = await conn.read_message()
            return str(message)
        finally:
            # Finish the closing handshake before the loop ends: a connection still closing
            # when asyncio.run() returns keeps its socket open until the garbage collector.
            conn.close()
            while await asyncio.wait_for(conn.read_message(), 10) is not None:
                pass

    return asyncio.run(talk())


def _refused_handshake(url: str, headers: dict[str, str] | None = None) -> int:
    """The status of a websocket handshake the service refuses (sent with requests, which
    closes its socket; tornado's client leaves one open on a refused handshake).
    """
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        **(headers or {}),
    }
    r = requests.get(url, headers=upgrade, timeout=10, allow_redirects=False)
    assert r.status_code != 101
    return r.status_code


def test_websocket_handshake_with_token_in_url(xsrf_app: Service) -> None:
    token = xsrf_app.hub.add_user("carol")
    ws = xsrf_app.page("ws").replace("http://", "ws://")
    assert _ws(f"{ws}?token={token}") == "carol"
    assert _refused_handshake(xsrf_app.page("ws?token=not-a-token")) == 401


def test_websocket_cookie_auth_follows_the_setting(xsrf_app: Service) -> None:
    b = browser()
    log_in(xsrf_app, b)
    ws = xsrf_app.page("ws").replace("http://", "ws://")
    headers = {
        "Cookie": f"{xsrf_app.auth.cookie_name}={login_cookie(xsrf_app, b)}",
        "Origin": xsrf_app.url,  # as a browser sends it on every handshake
    }
    if xsrf_app.auth.allow_websocket_cookie_auth:
        assert _ws(ws, headers) == "alice"
    else:
        assert _refused_handshake(xsrf_app.page("ws"), headers) == 401


class CacheSeen(HubOAuthenticated, RequestHandler):
    """Says whether ``_hub_auth_user_cache`` exists before and after get_current_user()."""

    def get(self) -> None:
        before = hasattr(self, "_hub_auth_user_cache")
        user = self.get_current_user()
        self.write({"before": before, "after": self._hub_auth_user_cache, "user": user})


def test_hub_auth_user_cache_exists_once_get_current_user_was_called(fake_hub: FakeHub) -> None:
    """As in JupyterHub, ``_hub_auth_user_cache`` appears when get_current_user() is called,
    not before: services read ``hasattr(self, "_hub_auth_user_cache")`` as "the handler has
    asked who is calling". jhsingle-native-proxy 0.8.3 does so on a websocket handshake
    (where it never calls get_current_user) and then calls ``.get`` on the value: with the
    attribute set to None by prepare(), every anonymous handshake was a 500.
    """
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    app = Application([(PREFIX + "seen", CacheSeen)], hub_auth=auth)
    token = fake_hub.add_user("dora")
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        url = f"http://127.0.0.1:{port}{PREFIX}seen"
        known = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=10)
        anonymous = requests.get(url, headers={"Accept": "application/json"}, timeout=10)
    auth.close()
    assert known.status_code == 200
    assert known.json()["before"] is False
    assert known.json()["after"]["name"] == known.json()["user"]["name"] == "dora"
    assert anonymous.status_code == 200
    assert anonymous.json() == {"before": False, "after": None, "user": None}


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1:1", "null", ""],
    ids=["other-site", "other-port", "null", "no-origin"],
)
def test_a_cookie_websocket_from_another_origin_is_refused(xsrf_app: Service, origin: str) -> None:
    """Cross-site websocket hijacking: a page of another origin (another site, another port
    of the host, a sandboxed frame) opens a websocket to the service, and the browser adds
    the user's login cookie to the handshake, a GET. The core holds handshakes authenticated
    by cookie to the same rule as unsafe requests, so it is refused; a token still works.
    """
    b = browser()
    log_in(xsrf_app, b)
    headers = {"Cookie": f"{xsrf_app.auth.cookie_name}={login_cookie(xsrf_app, b)}"}
    if origin:
        headers["Origin"] = origin
    status = _refused_handshake(xsrf_app.page("ws"), headers)
    assert status in (401, 403)
    token = xsrf_app.hub.add_user("carol")
    ws = xsrf_app.page("ws").replace("http://", "ws://")
    assert _ws(f"{ws}?token={token}", {"Origin": xsrf_app.url}) == "carol"


class Subclassed(HubAuthenticated, RequestHandler):
    """The documented pattern for a handler with a prepare() of its own."""

    async def prepare(self) -> None:
        await super().prepare()
        self.extra = "prepared"

    @authenticated
    def get(self) -> None:
        self.write({"name": self.current_user["name"], "extra": self.extra})


def test_subclass_awaiting_super_prepare_on_hits_and_misses(fake_hub: FakeHub) -> None:
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    app = Application([("/x", Subclassed)], hub_auth=auth)
    token = fake_hub.add_user("dora")
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        fake_hub.reset_counts()
        for _ in range(3):  # a miss (asks the Hub), then cache hits (answered at once)
            r = requests.get(
                f"http://127.0.0.1:{port}/x",
                headers={"Authorization": f"token {token}"},
                timeout=10,
            )
            assert r.json() == {"name": "dora", "extra": "prepared"}
        assert fake_hub.count("/hub/api/user") == 1
        r = requests.get(
            f"http://127.0.0.1:{port}/x", headers={"Authorization": "token nope-nope"}, timeout=10
        )
        assert r.status_code == 401
    auth.close()


class _WhoAmI(HubAuthenticated, RequestHandler):
    hub_scopes: Any = ("read:users:name",)

    @authenticated
    def get(self) -> None:
        self.write({"name": self.current_user["name"], "cached": self._hub_auth_user_cache["name"]})


class UsersListed(_WhoAmI):
    hub_users = ("alice",)  # with hub_scopes set, JupyterHub ignores this


class EmptyLists(_WhoAmI):
    hub_users: Any = ()  # "nobody" reads as "not configured" under JupyterHub: ignored
    hub_groups: Any = frozenset()


class _PreScopes(_WhoAmI):
    hub_scopes = None  # the pre-2.0 allow-lists decide


class UsersOnly(_PreScopes):
    hub_users = ("alice",)


class GroupsOnly(_PreScopes):
    hub_groups = ("staff",)


class ServicesOnly(_PreScopes):
    hub_services = ("cron",)


class AdminsOnly(_PreScopes):
    allow_admin = True


class Everyone(_PreScopes):
    """No scopes and no allow-lists: allow_all, everyone the Hub knows."""


class EmptyPreScopes(_PreScopes):
    hub_users: Any = ()  # no scopes and an empty list: nobody, as in JupyterHub


class ScopesProperty(_WhoAmI):
    """Subclasses override hub_scopes as a property too (JupyterHub's is one)."""

    @property
    def hub_scopes(self) -> Any:
        return {"read:groups"}


class NoMallory(_WhoAmI):
    """An override of the JupyterHub hook, extending the default with its own rule."""

    def check_hub_user(self, model: dict[str, Any]) -> dict[str, Any] | None:
        if model.get("name") == "mallory":
            return None
        return super().check_hub_user(model)


class LetsEveInAnyway(_WhoAmI):
    """An override decides alone, scopes included (JupyterHub calls only the hook)."""

    def check_hub_user(self, model: dict[str, Any]) -> dict[str, Any] | None:
        return model if model.get("name") == "eve" else super().check_hub_user(model)


class DirectCheck(_WhoAmI):
    """Calls the hook on a model of its own: the default checks that model's scopes and
    raises UserNotAllowed (JupyterHub's public exception) when they are missing.
    """

    def get(self) -> None:
        unscoped = {"kind": "user", "name": "eve", "scopes": []}
        scoped = {"kind": "user", "name": "eve", "scopes": ["read:users:name"]}
        try:
            self.check_hub_user(unscoped)
        except UserNotAllowed as e:
            refused = {"name": e.model["name"], "scopes": e.scopes}
        self.write({"unscoped": refused, "scoped": self.check_hub_user(scoped) is not None})


@pytest.fixture
def listed(fake_hub: FakeHub) -> Iterator[tuple[str, FakeHub]]:
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    routes: list[Any] = [
        ("/users", UsersListed),
        ("/empty", EmptyLists),
        ("/usersonly", UsersOnly),
        ("/groupsonly", GroupsOnly),
        ("/servicesonly", ServicesOnly),
        ("/admins", AdminsOnly),
        ("/everyone", Everyone),
        ("/emptyprescopes", EmptyPreScopes),
        ("/scopesproperty", ScopesProperty),
        ("/nomallory", NoMallory),
        ("/eve", LetsEveInAnyway),
        ("/direct", DirectCheck),
    ]
    app = Application(routes, hub_auth=auth)
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield f"http://127.0.0.1:{port}", fake_hub
    auth.close()


@pytest.mark.filterwarnings("ignore:hub_scopes is empty:DeprecationWarning")
@pytest.mark.parametrize(
    ("path", "caller", "status"),
    [
        # hub_scopes set: only scopes decide, the allow-lists are not consulted
        ("users", "alice", 200),
        ("users", "bob", 200),
        ("users", "cron", 200),
        ("users", "noscope", 403),
        ("empty", "bob", 200),
        ("empty", "noscope", 403),
        ("scopesproperty", "alice", 403),  # has read:users:name, not read:groups
        ("scopesproperty", "grouper", 200),
        # no hub_scopes: the pre-2.0 allow-lists
        ("usersonly", "alice", 200),
        ("usersonly", "bob", 403),
        ("usersonly", "cron", 403),  # a service passes only through hub_services
        ("groupsonly", "alice", 200),  # in staff
        ("groupsonly", "bob", 403),
        ("servicesonly", "cron", 200),
        ("servicesonly", "alice", 403),
        ("admins", "root", 200),
        ("admins", "alice", 403),
        ("everyone", "noscope", 200),
        ("everyone", "cron", 200),
        ("emptyprescopes", "alice", 403),
        # overrides of check_hub_user
        ("nomallory", "alice", 200),
        ("nomallory", "mallory", 403),
        ("nomallory", "noscope", 403),  # the default's scope rule still holds
        ("eve", "eve", 200),  # no scope at all, let in by the override
        ("eve", "noscope", 403),
    ],
)
def test_who_may_pass_follows_jupyterhub_exactly(
    listed: tuple[str, FakeHub], path: str, caller: str, status: int
) -> None:
    """Issue 10: JupyterHub's rules, overrides included, on the first request (a Hub
    lookup) and on cached ones alike.
    """
    url, hub = listed
    scope = ["read:users:name"]
    if caller == "cron":
        token = hub.add_service("cron", scopes=scope)
    else:
        token = hub.add_user(
            caller,
            scopes={"noscope": [], "eve": [], "grouper": ["read:groups"]}.get(caller, scope),
            groups=["staff"] * (caller == "alice"),
            admin=caller == "root",
        )
    for _ in range(2):  # a lookup, then the cache
        r = requests.get(f"{url}/{path}", headers={"Authorization": f"token {token}"}, timeout=10)
        assert r.status_code == status, r.text
        if status == 200:
            assert r.json() == {"name": caller, "cached": caller}
        else:
            assert caller in r.json()["message"]


def test_a_refusal_logs_who_and_which_scopes(
    listed: tuple[str, FakeHub], caplog: pytest.LogCaptureFixture
) -> None:
    url, hub = listed
    token = hub.add_user("noscope", scopes=[])
    r = requests.get(f"{url}/users", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 403
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("noscope" in line and "read:users:name" in line for line in lines), lines


def test_check_hub_user_called_by_the_handler_checks_scopes(listed: tuple[str, FakeHub]) -> None:
    url, hub = listed
    token = hub.add_user("alice", scopes=["read:users:name"])
    r = requests.get(f"{url}/direct", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.json() == {"unscoped": {"name": "eve", "scopes": ["read:users:name"]}, "scoped": True}


class NoSuperPrepare(HubAuthenticated, RequestHandler):
    """A service's own prepare() that forgets the mixin's (JupyterHub's mixin works so)."""

    def prepare(self) -> None:
        self.extra = "mine"

    @authenticated
    def get(self) -> None:
        self.write({"name": self.current_user["name"], "extra": self.extra})


def test_a_prepare_without_super_still_authenticates_and_says_how_to_fix_it(
    fake_hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    app = Application([("/x", NoSuperPrepare)], hub_auth=auth)
    token = fake_hub.add_user("dora")
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        for _ in range(2):
            r = requests.get(
                f"http://127.0.0.1:{port}/x",
                headers={"Authorization": f"token {token}"},
                timeout=10,
            )
            assert r.json() == {"name": "dora", "extra": "mine"}
        r = requests.get(f"http://127.0.0.1:{port}/x", timeout=10, allow_redirects=False)
        assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    auth.close()
    warnings = [r.getMessage() for r in caplog.records if "super().prepare()" in r.getMessage()]
    assert len(warnings) == 1  # once per class


def test_a_custom_login_url_is_where_browsers_go_with_the_state(fake_hub: FakeHub) -> None:
    """As JupyterHub's mixin: hub_auth.login_url, with the state and PKCE challenge added."""
    auth = make_auth(fake_hub, "http://s", login_url="https://login.example.org/start?x=1")
    from hubauth._flow import authenticate

    d = next_decision(authenticate(auth, _view()))
    assert d.location.startswith("https://login.example.org/start?x=1&state=")
    assert "code_challenge=" in d.location
    auth.close()


def _view() -> Any:
    from hubauth._view import RequestView

    return RequestView(method="GET", path=PREFIX + "page")


def next_decision(flow: Any) -> Any:
    try:
        flow.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the flow asked the Hub")
