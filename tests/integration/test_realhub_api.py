"""hubauth.api against a real JupyterHub 6, every endpoint, on both clients.

One Hub serves the module (named servers on; a spawner that reports progress), with a
service ``api-test`` whose role has every scope the endpoints need, and ``limited``, which
may only read user names. Each test makes its own users, groups and services.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hubauth import HubAPIError, ServiceTokenRejected
from hubauth.api import AsyncHubAPI, HubAPI, InvalidArgument
from hubauth.errors import BadRequest, Conflict, MissingScope, NotFound
from tests.realhub import ADMIN_SERVICE, RealHub

API_SERVICE = "api-test"
API_TOKEN = secrets.token_hex(32)
LIMITED_TOKEN = secrets.token_hex(32)
SCOPES = [
    "admin:users",
    "admin:groups",
    "admin:services",
    "admin:servers",
    "access:servers",
    "tokens",
    "shares",
    "read:shares",
    "users:shares",
    "groups:shares",
    "proxy",
    "read:hub",
    "list:services",
    "read:services",
]
SPAWNER = """
import asyncio
from jupyterhub.tests.mocking import MockSpawner


class ProgressSpawner(MockSpawner):
    async def start(self):
        await asyncio.sleep(1.0)
        return await super().start()

    async def progress(self):
        for step in (10, 40, 70):
            yield {"progress": step, "message": f"step {step}"}
            await asyncio.sleep(0.2)


c.JupyterHub.spawner_class = ProgressSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}  # POST answers 202 at once
"""


@pytest.fixture(scope="module")
def hub() -> Iterator[RealHub]:
    with RealHub(
        services=[
            {"name": API_SERVICE, "api_token": API_TOKEN},
            {"name": "limited", "api_token": LIMITED_TOKEN},
        ],
        roles=[
            {"name": API_SERVICE, "scopes": SCOPES, "services": [API_SERVICE]},
            {"name": "limited", "scopes": ["read:users:name"], "services": ["limited"]},
        ],
        extra_config=SPAWNER,
    ) as hub:
        yield hub


class Both:
    """A facade whose calls are all made alike, blocking or awaited (one loop per call)."""

    def __init__(self, kind: str, hub: RealHub, token: str = API_TOKEN, **kw: Any) -> None:
        self.kind = kind
        cls = HubAPI if kind == "sync" else AsyncHubAPI
        self.api: Any = cls(api_url=hub.api_url, api_token=token, page_size=2, backoff=0.2, **kw)

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.api, name)
        if self.kind == "sync":
            return fn

        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.api.close()

            return asyncio.run(run())

        return call

    def events(self, user: str, server: str = "") -> list[dict[str, Any]]:
        if self.kind == "sync":
            return list(self.api.progress(user, server, timeout=60))

        async def run() -> list[dict[str, Any]]:
            return [e async for e in self.api.progress(user, server, timeout=60)]

        return asyncio.run(run())

    def wait_ready(self, user: str, server: str = "") -> dict[str, Any]:
        for _ in range(300):
            model: dict[str, Any] = self.server(user, server)
            if model["ready"]:
                return model
            asyncio.run(asyncio.sleep(0.1))
        raise AssertionError(f"{user}/{server} never became ready")

    def wait_stopped(self, user: str, server: str = "") -> None:
        for _ in range(300):
            if self.server(user, server)["stopped"]:
                return
            asyncio.run(asyncio.sleep(0.1))
        raise AssertionError(f"{user}/{server} never stopped")


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, hub: RealHub) -> Iterator[Both]:
    both = Both(request.param, hub)
    yield both
    both.api.close()


def tag(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_info_health_and_identity(api: Both) -> None:
    assert api.info()["version"].startswith("6.")
    info = api.hub_info()
    assert info["spawner"]["class"].endswith("ProgressSpawner") and "python" in info
    assert api.health() is True
    me = api.me()
    assert me["kind"] == "service" and me["name"] == API_SERVICE and "proxy" in me["scopes"]


def test_users_create_list_filter_modify_activity_delete(api: Both) -> None:
    one, many = tag("one"), [tag("bulk") for _ in range(3)]
    created = api.create_user(one)
    assert created["name"] == one and created["admin"] is False
    with pytest.raises(Conflict, match=r"POST /users/\{name\}"):
        api.create_user(one)
    assert sorted(u["name"] for u in api.create_users(many)) == sorted(many)
    listed = [u["name"] for u in api.users()]  # pages of 2
    assert {one, *many} <= set(listed) and len(listed) == len(set(listed))
    prefix = many[0][:4]
    filtered = api.users(name_filter=prefix, sort="-name")
    names = [u["name"] for u in filtered]
    assert set(many) <= set(names) and names == sorted(names, reverse=True)
    assert one in {u["name"] for u in api.users(state="inactive")}

    renamed = tag("renamed")
    assert api.modify_user(one, new_name=renamed)["name"] == renamed
    with pytest.raises(HubAPIError, match="forbidden: the Hub says 'Only admins can grant"):
        api.modify_user(renamed, admin=True)  # a service is not an admin
    with pytest.raises(NotFound):
        api.user(one)

    when = datetime.now(timezone.utc) - timedelta(minutes=5)
    api.report_activity(renamed, last_activity=when)
    seen = datetime.fromisoformat(api.user(renamed)["last_activity"].replace("Z", "+00:00"))
    assert abs((seen - when).total_seconds()) < 1

    for name in (renamed, *many):
        api.delete_user(name)
    with pytest.raises(NotFound):
        api.delete_user(renamed)
    with pytest.raises(BadRequest, match="Invalid username"):
        api.create_users(["a/b"])
    with pytest.raises(BadRequest, match="Invalid username"):
        api.create_users([" padded "])


def test_tokens(api: Both) -> None:
    user = tag("tok")
    api.create_user(user)
    new = api.create_token(user, note="api test", scopes=["read:users:name!user"], expires_in=600)
    assert new["token"] and new["note"] == "api test" and new["expires_at"]
    assert new["id"] in {t["id"] for t in api.tokens(user)}
    assert f"read:users:name!user={user}" in api.token(user, new["id"])["scopes"]
    api.revoke_token(user, new["id"])
    with pytest.raises(NotFound, match="No such token"):
        api.token(user, new["id"])


def test_default_server_with_user_options_progress_and_stop(api: Both) -> None:
    user = tag("srv")
    api.create_user(user)
    assert api.start_server(user, user_options={"profile": "small"}) == 202
    events = api.events(user)  # the real spawn's progress stream, to the end
    assert [e["progress"] for e in events if e["progress"] in (10, 40, 70)] == [10, 40, 70]
    assert [e["message"] for e in events][1:4] == ["step 10", "step 40", "step 70"]
    assert events[-1]["ready"] is True and events[-1]["url"] == f"/user/{user}/"
    model = api.wait_ready(user)
    assert model["user_options"] == {"profile": "small"} and model["name"] == ""
    assert user in {u["name"] for u in api.users(state="ready")}
    # The dot bug (issue 11, item 7): "." must never reach the default server.
    for dots in (".", ".."):
        with pytest.raises(InvalidArgument, match="only dots"):
            api.stop_server(user, dots)
    assert api.server(user)["ready"], "the default server must still run"
    assert api.stop_server(user) in (202, 204)
    api.wait_stopped(user)
    with pytest.raises(NotFound):
        api.events(user)  # a stopped server has no progress to follow
    api.delete_user(user)


def test_named_servers_create_modify_start_remove(api: Both) -> None:
    user = tag("named")
    api.create_user(user)
    made = api.create_server(user, "lab", user_options={"gpu": "1"}, display_name="My Lab")
    assert made["name"] == "lab" and made["display_name"] == "My Lab" and made["stopped"]
    with pytest.raises(Conflict):
        api.create_server(user, "lab")
    changed = api.modify_server(user, "lab", new_name="lab2", display_name="Lab two")
    assert changed["name"] == "lab2" and changed["display_name"] == "Lab two"
    assert api.start_server(user, "lab2") in (201, 202)
    assert api.events(user, "lab2")[-1]["ready"] is True
    assert api.wait_ready(user, "lab2")["user_options"] == {"gpu": "1"}
    with pytest.raises(BadRequest, match="is active"):
        api.modify_server(user, "lab2", display_name="nope")
    assert api.remove_server(user, "lab2") in (202, 204)
    for _ in range(300):
        if "lab2" not in api.user(user, include_stopped_servers=True)["servers"]:
            break
        asyncio.run(asyncio.sleep(0.1))
    with pytest.raises(NotFound):
        api.server(user, "lab2")
    with pytest.raises(BadRequest, match="Invalid server_name"):
        api.create_server(user, "Not/Valid")
    api.delete_user(user)


def test_groups(api: Both) -> None:
    g, g2, g3, member = tag("grp"), tag("grp"), tag("grp"), tag("member")
    api.create_user(member)
    assert api.create_group(g)["users"] == []
    assert {x["name"] for x in api.create_groups([g2, g3], users=[member])} == {g2, g3}
    assert {g, g2, g3} <= {x["name"] for x in api.groups()}
    assert api.add_group_users(g, [member])["users"] == [member]
    assert api.set_group_properties(g, {"course": "ds101"})["properties"] == {"course": "ds101"}
    assert api.group(g)["properties"] == {"course": "ds101"}
    assert api.remove_group_users(g, [member])["users"] == []
    with pytest.raises(BadRequest, match="No such user"):
        api.add_group_users(g, ["nobody-" + secrets.token_hex(3)])
    for name in (g, g2, g3):
        api.delete_group(name)
    with pytest.raises(NotFound):
        api.group(g)
    api.delete_user(member)


def test_runtime_services(api: Both) -> None:
    name = tag("runtime")
    added = api.add_service(name, {"oauth_no_confirm": False, "info": {"a": 1}})
    assert added["name"] == name
    assert name in api.services() and api.service(name)["info"] == {"a": 1}
    with pytest.raises(Conflict):
        api.add_service(name, {})
    api.remove_service(name)
    assert name not in api.services()
    with pytest.raises(NotFound):
        api.remove_service(name)
    with pytest.raises(BadRequest, match="Can not create managed service"):
        api.add_service(tag("managed"), {"command": ["true"]})


def test_sharing_and_share_codes(api: Both) -> None:
    owner, friend, group = tag("owner"), tag("friend"), tag("team")
    api.create_user(owner)
    api.create_user(friend)
    api.create_group(group, users=[friend])
    assert api.start_server(owner) in (201, 202)
    api.wait_ready(owner)
    share = api.share(owner, "", user=friend)
    assert share["user"] == {"name": friend} and share["server"]["name"] == ""
    assert share["scopes"] == [f"access:servers!server={owner}/"]
    api.share(owner, "", group=group)
    assert len(api.shares(owner)) == len(api.shares(owner, "")) == 2
    held = api.user_shares(friend)  # their own share, and the one through their group
    assert sorted(str(s.get("kind")) for s in held) == ["group", "user"]
    assert {s["server"]["user"]["name"] for s in held} == {owner}
    assert api.user_share(friend, owner, "")["kind"] == "user"
    assert api.group_shares(group)[0]["group"] == {"name": group}
    assert api.group_share(group, owner)["kind"] == "group"
    assert api.revoke_share(owner, "", group=group) is None
    api.leave_user_share(friend, owner, "")
    assert api.shares(owner) == []
    api.share(owner, "", group=group)
    api.leave_group_share(group, owner, "")
    api.share(owner, "", user=friend)
    api.revoke_all_shares(owner, "")
    assert api.shares(owner, "") == []

    code = api.create_share_code(owner, "", expires_in=3600)
    assert code["code"] and code["accept_url"].startswith("/hub/accept-share?code=")
    other = api.create_share_code(owner, "")
    assert {c["id"] for c in api.share_codes(owner)} == {code["id"], other["id"]}
    api.revoke_share_code(owner, "", id=code["id"])
    api.revoke_share_code(owner, "", code=other["code"])
    assert api.share_codes(owner, "") == []
    with pytest.raises(NotFound):
        api.revoke_share_code(owner, "", id="sc_999999")
    api.stop_server(owner)
    api.wait_stopped(owner)
    for name in (owner, friend):
        api.delete_user(name)
    api.delete_group(group)


def test_proxy_routes_across_pages_sync_and_notify(api: Both, hub: RealHub) -> None:
    routes = api.proxy_routes()  # page_size 2: the table is read in pages and merged
    assert "/" in routes and f"/services/{API_SERVICE}" not in routes
    assert all(isinstance(r, dict) for r in routes.values())
    api.sync_proxy()
    api.notify_proxy(api_url=hub.proxy_api_url, auth_token=hub.proxy_auth_token)
    assert api.proxy_routes().keys() == routes.keys()


def test_missing_scope_unknown_token_and_filtered_access(hub: RealHub) -> None:
    for kind in ("sync", "async"):
        limited = Both(kind, hub, token=LIMITED_TOKEN)
        with pytest.raises(MissingScope, match=r"DELETE /users/\{name\}/server") as e:
            limited.stop_server("alice")
        assert e.value.scopes == ("delete:servers",)  # as the Hub said
        with pytest.raises(MissingScope, match="admin:groups"):
            limited.create_group(tag("g"))
        stranger = Both(kind, hub, token=secrets.token_hex(32))
        with pytest.raises(ServiceTokenRejected, match="does not know this client's token"):
            stranger.users()
        assert stranger.info()["version"]  # GET / needs no token


def test_shutdown() -> None:
    """On a Hub of its own: ``POST /shutdown`` stops the Hub (and with it the proxy)."""
    role = {"name": "stopper", "scopes": ["shutdown"], "services": [ADMIN_SERVICE]}
    with RealHub(roles=[role]) as spare:
        with HubAPI(api_url=spare.api_url, api_token=spare.admin_token) as api:
            api.shutdown(servers=True)
        assert spare.proc is not None and spare.proc.wait(30) == 0


def test_why_dot_names_are_refused_the_proxy_resolves_percent_2e(hub: RealHub) -> None:
    """The attack the client-side refusal prevents: a caller allowed to stop ``bob/.`` (a
    server by that name) sends ``DELETE /users/bob/servers/%2E`` through the Hub's public
    URL; configurable-http-proxy resolves ``%2E`` as a dot segment, so the Hub receives
    ``/users/bob/servers/`` and stops bob's *default* server. Straight to the Hub's own port
    the same bytes are a 404. So no encoding of an all-dots name is safe to send."""
    user = tag("dots")
    api = Both("sync", hub)
    api.create_user(user)
    assert api.start_server(user) == 202
    api.wait_ready(user)
    direct = _raw_delete(hub.hub_api_url, f"/users/{user}/servers/%2E")
    assert direct.startswith("HTTP/1.1 404")
    assert api.server(user)["ready"]
    proxied = _raw_delete(hub.api_url, f"/users/{user}/servers/%2E")
    assert proxied.split()[1] in ("202", "204"), proxied  # the default server, stopped
    api.wait_stopped(user)
    api.delete_user(user)


def _raw_delete(api_url: str, path: str) -> str:
    """Send the request line exactly as given; the status line and headers of the answer."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            f"DELETE {parts.path}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: token {API_TOKEN}\r\nConnection: close\r\n\r\n".encode()
        )
        return sock.recv(65536).decode("latin-1")
