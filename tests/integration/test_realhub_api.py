"""hubauth.api against a real JupyterHub: both facades, as the admin service and as one
lacking scopes.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from hubauth import HubAPIError
from hubauth.api import AsyncHubAPI, HubAPI
from tests.realhub import RealHub

from .conftest import PROBE_TOKEN


@pytest.fixture
def admin(real_hub: RealHub) -> HubAPI:
    return HubAPI(
        api_url=real_hub.api_url, api_token=real_hub.admin_token, page_size=2, backoff=0.1
    )


def test_users_across_pages_and_one_user(real_hub: RealHub, admin: HubAPI) -> None:
    names = {f"api-{secrets.token_hex(3)}" for _ in range(5)}
    for name in names:
        real_hub.create_user(name)
    listed = {u["name"] for u in admin.users()}
    assert names <= listed
    assert {"alice", "bob"} <= listed
    one = admin.user(sorted(names)[0])
    assert one["name"] == sorted(names)[0] and one["kind"] == "user"
    admin.close()


def test_groups(real_hub: RealHub, admin: HubAPI) -> None:
    assert "staff" in {g["name"] for g in admin.groups()}
    assert "alice" in admin.group("staff")["users"]


def test_missing_user_is_404(admin: HubAPI) -> None:
    with pytest.raises(HubAPIError) as e:
        admin.user("nobody-" + secrets.token_hex(4))
    assert e.value.status == 404


def test_a_service_without_the_scope_is_told_which(real_hub: RealHub) -> None:
    probe = HubAPI(api_url=real_hub.api_url, api_token=PROBE_TOKEN)
    with pytest.raises(HubAPIError, match="lacks a scope") as e:
        probe.start_server("alice")
    assert e.value.status == 403


def test_tokens_round_trip(real_hub: RealHub, admin: HubAPI) -> None:
    created = admin.create_token("bob", note="api test", expires_in=600)
    assert created["token"] and created["note"] == "api test"
    assert created["id"] in {t["id"] for t in admin.tokens("bob")}
    admin.revoke_token("bob", created["id"])
    assert created["id"] not in {t["id"] for t in admin.tokens("bob")}


def test_runtime_services_async(real_hub: RealHub) -> None:
    name = f"runtime-{secrets.token_hex(3)}"

    async def main() -> None:
        api = AsyncHubAPI(api_url=real_hub.api_url, api_token=real_hub.admin_token)
        info = await api.info()
        assert "version" in info
        added = await api.add_service(name, {"oauth_no_confirm": False})
        assert added["name"] == name
        assert name in await api.services()
        with pytest.raises(HubAPIError) as e:
            await api.add_service(name, {})
        assert e.value.status == 409
        await api.remove_service(name)
        assert name not in await api.services()
        users = await asyncio.gather(*(api.user(n) for n in ("alice", "bob")))
        assert [u["name"] for u in users] == ["alice", "bob"]
        api.close()

    asyncio.run(main())


def test_start_and_stop_a_server(real_hub: RealHub, admin: HubAPI) -> None:
    name = f"srv-{secrets.token_hex(3)}"
    real_hub.create_user(name)
    assert admin.start_server(name) in (201, 202)
    for _ in range(100):
        if admin.user(name)["servers"].get("", {}).get("ready"):
            break
        asyncio.run(asyncio.sleep(0.1))
    assert admin.user(name)["servers"][""]["ready"]
    assert name in {u["name"] for u in admin.users(state="ready")}
    assert admin.stop_server(name) in (202, 204)
