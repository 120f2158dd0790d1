"""JupyterHub's handler-taking methods of HubAuth and HubOAuth (issue 10, item 4).

Services written for ``jupyterhub.services.auth`` call them from their own Tornado handlers
(``hub_auth.get_user(self)``, ``hub_auth.set_state_cookie(self, next_url)``, ...). Each is
tested as such a service uses it, on a real Tornado server with the fake Hub, and with
tampered input: ``None`` or a clear 4xx, never a 500, never another identity. Every state
is stateless: made by one object, read by another with the same secret (another worker).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from tornado.web import Application, RequestHandler

from hubauth import HubAuth, HubAuthError, HubOAuth
from hubauth.testing import FakeHub
from hubauth.tornado import HubAuthenticated, HubOAuthenticated

from .conftest import TOKEN
from .services import PREFIX, SECRET, free_port, make_auth, serve_tornado

OTHER_SECRET = "1360f8b4bcf2ef2f1c4359703cc1a62a3fe57a5a34a710a2ea5007c87d8c21d5"


class Probe(RequestHandler):
    """A plain handler of a service that calls the auth object's methods itself."""

    async def get(self, action: str) -> None:
        auth: HubOAuth = self.settings["probe_auth"]
        out: dict[str, Any] = {}
        if action == "user":
            model = auth.get_user(self)
            out["user"] = model["name"] if model else None
        elif action == "user-async":
            model = await auth.get_user(self, sync=False)
            out["user"] = model["name"] if model else None
            out["again"] = (await auth.get_user(self, sync=False)) is model  # cached
        elif action == "token":
            token = auth.get_token(self)
            out["token"] = hashlib.sha256(token.encode()).hexdigest()[:16] if token else None
            header_only = auth.get_token(self, in_cookie=False)
            out["header_only"] = bool(header_only)
        elif action == "session":
            out["session"] = auth.get_session_id(self)
        elif action == "start":
            out["state"] = auth.set_state_cookie(
                self, next_url=self.get_argument("next", None), code_verifier="v" * 43
            )
        elif action == "set-cookie":
            auth.set_cookie(self, self.get_argument("token"))
        elif action == "clear-cookie":
            auth.clear_cookie(self)
        elif action == "clear-states":
            auth.clear_oauth_state_cookies(self)
        self.write(out)


class MixinXsrf(HubOAuthenticated):
    def get(self) -> None:
        self.write({"xsrf": self.xsrf_token.decode(), "class": self.hub_auth_class.__name__})


@dataclass
class Svc:
    url: str
    auth: HubOAuth
    hub: FakeHub

    def get(self, action: str, **kw: Any) -> requests.Response:
        return requests.get(f"{self.url}/probe/{action}", timeout=10, **kw)


@pytest.fixture
def svc(fake_hub: FakeHub) -> Iterator[Svc]:
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    app = Application(
        [(r"/probe/(.*)", Probe), (PREFIX + "xsrf", MixinXsrf)], probe_auth=auth, hub_auth=auth
    )
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        yield Svc(f"http://127.0.0.1:{port}", auth, fake_hub)
    auth.close()


def login_value(auth: HubOAuth, token: str) -> str:
    return auth.login_cookie(token, secure=False).split(";", 1)[0].split("=", 1)[1]


# ---------------------------------------------------------------- get_user, get_token


def test_get_user_by_header_cookie_sync_and_async(svc: Svc) -> None:
    token = svc.hub.add_user("alice")
    header = {"Authorization": f"token {token}"}
    assert svc.get("user", headers=header).json() == {"user": "alice"}
    cookie = {svc.auth.cookie_name: login_value(svc.auth, token)}
    assert svc.get("user", cookies=cookie).json() == {"user": "alice"}
    assert svc.get("user-async", cookies=cookie).json() == {"user": "alice", "again": True}
    assert svc.get("user").json() == {"user": None}


@pytest.mark.parametrize(
    "cookies",
    [
        "tampered",
        "another-key",
        "another-service",
        "unknown-token",
        "empty",
    ],
)
def test_get_user_with_bad_cookies_is_none_never_another_identity(svc: Svc, cookies: str) -> None:
    token = svc.hub.add_user("alice")
    good = login_value(svc.auth, token)
    other = make_auth(svc.hub, svc.url, cookie_secret=OTHER_SECRET)
    sibling = HubOAuth(environ=svc.hub.service_env("sibling", url=svc.url), cookie_secret=SECRET)
    value = {
        "tampered": good[:-6] + "AAAAAA",
        "another-key": login_value(other, token),
        "another-service": login_value(sibling, token),
        "unknown-token": login_value(svc.auth, "not-a-token-the-hub-knows"),
        "empty": "",
    }[cookies]
    r = svc.get("user", cookies={svc.auth.cookie_name: value})
    assert r.status_code == 200 and r.json() == {"user": None}
    other.close()
    sibling.close()


def test_get_user_answers_hub_trouble_with_503_not_500(svc: Svc) -> None:
    token = svc.hub.add_user("alice")
    svc.hub.fault = "down"
    r = svc.get("user", headers={"Authorization": f"token {token}"})
    assert r.status_code == 503


def test_get_user_refuses_a_cross_site_post_by_cookie(svc: Svc) -> None:
    """As JupyterHub's: cookie auth is not accepted on a cross-site unsafe request."""
    token = svc.hub.add_user("alice")
    cookie = {svc.auth.cookie_name: login_value(svc.auth, token)}

    class Post(Probe):
        async def post(self, action: str) -> None:
            await self.get(action)

    port = free_port()
    app = Application([(r"/probe/(.*)", Post)], probe_auth=svc.auth)
    with serve_tornado(lambda: app.listen(port, "127.0.0.1")):
        r = requests.post(
            f"http://127.0.0.1:{port}/probe/user",
            cookies=cookie,
            headers={"Sec-Fetch-Site": "cross-site"},
            timeout=10,
        )
    assert r.json() == {"user": None}


def test_get_token_sources_in_order(svc: Svc) -> None:
    token = svc.hub.add_user("alice")
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    r = svc.get("token", headers={"Authorization": f"bearer {token}"})
    assert r.json() == {"token": digest, "header_only": True}
    r = svc.get("token", cookies={svc.auth.cookie_name: login_value(svc.auth, token)})
    assert r.json() == {"token": digest, "header_only": False}
    # ?token= is not a source unless allowed (JUPYTERHUB_ALLOW_TOKEN_IN_URL), as in JupyterHub
    assert svc.get("token", params={"token": token}).json() == {"token": None, "header_only": False}
    bad = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert svc.get("token", headers=bad).json() == {"token": None, "header_only": False}


def test_get_session_id(svc: Svc) -> None:
    assert svc.get("session", cookies={"jupyterhub-session-id": "abc"}).json() == {"session": "abc"}
    assert svc.get("session").json() == {"session": ""}


# ---------------------------------------------------------------- OAuth state, stateless


def test_state_made_by_one_worker_is_read_by_another(fake_hub: FakeHub) -> None:
    """``generate_state`` in one process, ``get_next_url``/``get_code_verifier``/
    ``get_state_cookie_name`` in another with the same secret: nothing in memory.
    """
    one, two = make_auth(fake_hub, "http://s"), make_auth(fake_hub, "http://s")
    state = one.generate_state("/services/test-service/deep?x=1", code_verifier="v" * 43)
    assert two.get_next_url(state) == "/services/test-service/deep?x=1"
    assert two.get_code_verifier(state) == "v" * 43
    assert two.get_state_cookie_name(state) == two.state_cookie_name
    named = one.generate_state(None, cookie_name=one.state_cookie_name + "-abcd", colour="red")
    assert two.get_state_cookie_name(named) == one.state_cookie_name + "-abcd"
    assert two.get_next_url(named) == two.base_url
    assert two.get_state_extra(named) == {"colour": "red"}
    assert two.clear_oauth_state(state) is None  # nothing to clear
    assert two.get_next_url(state) == "/services/test-service/deep?x=1"
    one.close()
    two.close()


@pytest.mark.parametrize("state", ["", "x", "gAAAAAB" + "A" * 80, "a" * 5000, "%00", "not-base64!"])
def test_bad_states_read_as_nothing(fake_hub: FakeHub, state: str) -> None:
    auth = make_auth(fake_hub, "http://s")
    assert auth.get_next_url(state) == auth.base_url
    assert auth.get_code_verifier(state) is None
    assert auth.get_state_cookie_name(state) == auth.state_cookie_name
    assert auth.get_state_extra(state) == {}
    auth.close()


def test_states_of_another_service_or_key_are_refused(fake_hub: FakeHub) -> None:
    mine = make_auth(fake_hub, "http://s")
    other_key = make_auth(fake_hub, "http://s", cookie_secret=OTHER_SECRET)
    sibling = HubOAuth(
        environ=fake_hub.service_env("sibling", url="http://s"), cookie_secret=SECRET
    )
    for foreign in (other_key, sibling):
        state = foreign.generate_state(foreign.base_url + "x", code_verifier="v" * 43)
        assert mine.get_next_url(state) == mine.base_url
        assert mine.get_code_verifier(state) is None
    for a in (mine, other_key, sibling):
        a.close()


def test_hostile_next_urls_are_not_kept(fake_hub: FakeHub) -> None:
    auth = make_auth(fake_hub, "http://s")
    for target in ("//evil.example", "https://evil.example/", "/\\evil", "x" * 3000):
        assert auth.get_next_url(auth.generate_state(target)) == auth.base_url
    auth.close()


def test_generate_state_refuses_a_foreign_cookie_name(fake_hub: FakeHub) -> None:
    auth = make_auth(fake_hub, "http://s")
    with pytest.raises(ValueError, match="oauth-state"):
        auth.generate_state("/x", cookie_name="session")
    auth.close()


def test_set_state_cookie_names_first_and_concurrent_logins_like_jupyterhub(svc: Svc) -> None:
    base = svc.auth.state_cookie_name
    r = svc.get("start", params={"next": PREFIX + "a"})
    first = r.headers["Set-Cookie"].split("=", 1)[0]
    assert first == base
    r2 = svc.get("start", params={"next": PREFIX + "b"}, cookies={base: "in-flight"})
    second = r2.headers["Set-Cookie"].split("=", 1)[0]
    assert second.startswith(base + "-") and second != base
    assert svc.auth.get_state_cookie_name(r2.json()["state"]) == second
    assert svc.auth.get_next_url(r2.json()["state"]) == PREFIX + "b"
    assert svc.auth.get_code_verifier(r.json()["state"]) == "v" * 43
    assert "Max-Age=600" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_clear_oauth_state_cookies_clears_only_state_cookies(svc: Svc) -> None:
    base = svc.auth.state_cookie_name
    cookies = {base: "1", base + "-abc": "2", svc.auth.cookie_name: "3", f"{base}-x:y": "4"}
    r = svc.get("clear-states", cookies=cookies)
    cleared = sorted(h.split("=", 1)[0] for h in r.raw.headers.getlist("Set-Cookie"))
    assert cleared == sorted([base, base + "-abc"])


def test_set_and_clear_cookie(svc: Svc) -> None:
    token = svc.hub.add_user("alice")
    r = svc.get("set-cookie", params={"token": token})
    value = r.cookies[svc.auth.cookie_name]
    assert token not in value  # encrypted, never the token itself
    assert svc.get("user", cookies={svc.auth.cookie_name: value}).json() == {"user": "alice"}
    r = svc.get("clear-cookie", cookies={svc.auth.cookie_name: value})
    assert "Max-Age=0" in r.headers["Set-Cookie"]


def test_set_cookie_refuses_what_cannot_be_a_token(fake_hub: FakeHub) -> None:
    auth = make_auth(fake_hub, "http://s")
    with pytest.raises(ValueError, match="token"):
        auth.set_cookie(object(), "has a space")  # type: ignore[arg-type]
    auth.close()


# ---------------------------------------------------------------- PKCE, instance, the rest


def test_pkce_can_be_turned_off_as_in_jupyterhub(fake_hub: FakeHub) -> None:
    from hubauth._flow import authenticate
    from hubauth._view import RequestView

    auth = make_auth(fake_hub, "http://s")
    verifier, challenge, method = auth.generate_pkce_code_challenge()
    assert method == "S256" and len(verifier) >= 43 and challenge != verifier
    with pytest.raises(ValueError, match="S256"):
        auth.generate_pkce_code_challenge("plain")
    auth.pkce_enabled = False
    flow = authenticate(auth, RequestView(method="GET", path=PREFIX + "x"))
    try:
        flow.send(None)
    except StopIteration as done:
        location = done.value.location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert "code_challenge" not in query
    assert auth.get_code_verifier(query["state"][0]) is None
    auth.close()


def test_instance_is_one_per_class(fake_hub_env: dict[str, str]) -> None:
    from hubauth._compat import HandlerMethods

    HandlerMethods._instances.clear()
    try:
        a = HubAuth.instance()
        assert HubAuth.instance() is a
        assert HubOAuth.instance() is not a and isinstance(HubOAuth.instance(), HubOAuth)
        with pytest.raises(HubAuthError, match="only be given the first time"):
            HubAuth.instance(cache_max_age=5)
    finally:
        for made in HandlerMethods._instances.values():
            made.close()
        HandlerMethods._instances.clear()


def test_user_for_cookie_is_gone_as_in_jupyterhub() -> None:
    auth = HubAuth(api_token=TOKEN)
    with pytest.raises(RuntimeError, match=r"removed in JupyterHub 2\.0"):
        auth.user_for_cookie("anything")


def test_mixin_xsrf_token_and_hub_auth_class(svc: Svc) -> None:
    token = svc.hub.add_user("alice")
    cookie = {svc.auth.cookie_name: login_value(svc.auth, token)}
    r = requests.get(f"{svc.url}{PREFIX}xsrf", cookies=cookie, timeout=10)
    body = r.json()
    assert body["class"] == "HubOAuth"
    assert svc.auth.check_xsrf_token(body["xsrf"], token)
    assert not svc.auth.check_xsrf_token(body["xsrf"], "another-token")
    assert r.cookies["_xsrf"] == body["xsrf"]  # readable by scripts for X-XSRFToken
    assert HubAuthenticated.hub_auth_class is HubAuth
    assert svc.auth.cookie_path == PREFIX
