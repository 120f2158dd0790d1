"""HubAuth against a real JupyterHub: API tokens in, the Hub's models and scopes out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import hubauth
from tests.realhub import RealHub, RealHubError

from .conftest import PROBE, PROBE_SCOPES, PROBE_TOKEN

ACCESS_PROBE = f"access:services!service={PROBE}"


def resolve(auth: hubauth.HubAuth, token: str, mode: str, **kw: Any) -> dict[str, Any] | None:
    """``auth.user_for_token(token)`` the blocking way or awaited on a fresh event loop."""
    if mode == "sync":
        model: dict[str, Any] | None = auth.user_for_token(token, **kw)
        return model

    async def main() -> dict[str, Any] | None:
        try:
            return await auth.user_for_token(token, **kw, sync=False)
        finally:
            auth.close()  # the async client belongs to this loop: close it before the loop

    return asyncio.run(main())


both_modes = pytest.mark.parametrize("mode", ["sync", "async"])


# ------------------------------------------------------------------------------ identify


@both_modes
def test_user_token_identifies_the_user(
    real_hub: RealHub, probe_auth: hubauth.HubAuth, mode: str
) -> None:
    token = real_hub.user_token("alice")
    model = resolve(probe_auth, token, mode)
    assert model is not None
    assert model["kind"] == "user"
    assert model["name"] == "alice"
    assert model["groups"] == ["staff"]
    assert model["admin"] is False
    assert model["token_id"]  # the Hub says which token this was (JupyterHub >= 5)
    # A token made without scopes carries everything alice may do, roles included.
    assert ACCESS_PROBE in model["scopes"]
    assert "read:users!group=staff" in model["scopes"]


@both_modes
def test_another_users_token_identifies_that_user(
    real_hub: RealHub, probe_auth: hubauth.HubAuth, mode: str
) -> None:
    model = resolve(probe_auth, real_hub.user_token("bob"), mode)
    assert model is not None
    assert (model["kind"], model["name"], model["groups"]) == ("user", "bob", [])
    assert ACCESS_PROBE not in model["scopes"]


@both_modes
def test_unknown_token_is_none(probe_auth: hubauth.HubAuth, mode: str) -> None:
    assert resolve(probe_auth, "not-a-token-the-hub-issued-0123456789", mode) is None


@both_modes
def test_revoked_token_is_none(real_hub: RealHub, probe_auth: hubauth.HubAuth, mode: str) -> None:
    token = real_hub.user_token("bob")
    model = resolve(probe_auth, token, mode, use_cache=False)
    assert model is not None
    real_hub.api("DELETE", f"/users/bob/tokens/{model['token_id']}")
    assert resolve(probe_auth, token, mode, use_cache=False) is None


@both_modes
def test_service_token_identifies_the_service(probe_auth: hubauth.HubAuth, mode: str) -> None:
    model = resolve(probe_auth, PROBE_TOKEN, mode)
    assert model is not None
    assert model["kind"] == "service"
    assert model["name"] == PROBE
    assert sorted(model["scopes"]) == PROBE_SCOPES


def test_concurrent_async_lookups_each_get_their_own_user(
    real_hub: RealHub, probe_auth: hubauth.HubAuth
) -> None:
    tokens = {"alice": real_hub.user_token("alice"), "bob": real_hub.user_token("bob")}

    async def main() -> list[dict[str, Any] | None]:
        try:
            calls = [
                probe_auth.user_for_token(tokens[name], sync=False)
                for name in ["alice", "bob", "alice", "bob", "alice"]
            ]
            return await asyncio.gather(*calls)
        finally:
            probe_auth.close()

    models = asyncio.run(main())
    assert [m["name"] if m else None for m in models] == ["alice", "bob", "alice", "bob", "alice"]


# -------------------------------------------------------------------------------- scopes


def test_access_scopes_default_to_this_service(probe_auth: hubauth.HubAuth) -> None:
    assert set(probe_auth.access_scopes) == {ACCESS_PROBE}


def test_limited_token_is_granted_only_its_scopes(
    real_hub: RealHub, probe_auth: hubauth.HubAuth
) -> None:
    token = real_hub.user_token("alice", scopes=["read:users:name!user=alice"])
    model = probe_auth.user_for_token(token)
    assert model is not None and model["name"] == "alice"
    # The Hub adds the "identify" scopes (own name and groups) to every token.
    assert sorted(model["scopes"]) == ["read:users:groups!user=alice", "read:users:name!user=alice"]
    wanted = [
        "read:users:name!user=alice",
        "read:users:name",
        "read:users!user=alice",
        "read:users:name!user=bob",
        "servers!user=alice",
        ACCESS_PROBE,
    ]
    assert hubauth.check_scopes(wanted, model) == {"read:users:name!user=alice"}
    assert probe_auth.check_scopes(wanted, model) == {"read:users:name!user=alice"}
    # alice may use the probe service, but this token was not given that right.
    assert not probe_auth.check_scopes(probe_auth.access_scopes, model)


def test_service_access_follows_the_token(real_hub: RealHub, probe_auth: hubauth.HubAuth) -> None:
    full = probe_auth.user_for_token(real_hub.user_token("alice"))
    only_access = probe_auth.user_for_token(real_hub.user_token("alice", scopes=[ACCESS_PROBE]))
    bobs = probe_auth.user_for_token(real_hub.user_token("bob"))
    assert full is not None and only_access is not None and bobs is not None
    assert probe_auth.check_scopes(probe_auth.access_scopes, full) == {ACCESS_PROBE}
    assert probe_auth.check_scopes(probe_auth.access_scopes, only_access) == {ACCESS_PROBE}
    assert probe_auth.check_scopes(probe_auth.access_scopes, bobs) == set()
    # Access to probe is no access to another service.
    assert not probe_auth.check_scopes("access:services!service=other", full)


def test_bob_cannot_get_a_token_with_rights_he_lacks(real_hub: RealHub) -> None:
    with pytest.raises(RealHubError, match="400"):
        real_hub.user_token("bob", scopes=[ACCESS_PROBE])


def test_group_filtered_role_checks_on_the_real_model(
    real_hub: RealHub, probe_auth: hubauth.HubAuth
) -> None:
    alice = probe_auth.user_for_token(real_hub.user_token("alice"))
    bob = probe_auth.user_for_token(real_hub.user_token("bob"))
    assert alice is not None and bob is not None
    # The Hub expands read:users!group=staff into its sub-scopes, still group-filtered.
    assert {"read:users!group=staff", "read:users:name!group=staff"} <= set(alice["scopes"])
    wanted = [
        "read:users!group=staff",
        "read:users:name!group=staff",
        "read:users!user=alice",
        "read:users!group=other",
        "read:users",
        "read:users!user=bob",
    ]
    assert hubauth.check_scopes(wanted, alice) == {
        "read:users!group=staff",
        "read:users:name!group=staff",
        "read:users!user=alice",
    }
    assert hubauth.check_scopes(wanted, bob) == {"read:users!user=bob"}


def test_group_filter_resolves_through_the_models_groups(
    real_hub: RealHub, probe_auth: hubauth.HubAuth
) -> None:
    # A token carrying only the group-filtered scope alice holds through staff-readers.
    token = real_hub.user_token("alice", scopes=["read:users:activity!group=staff"])
    model = probe_auth.user_for_token(token)
    assert model is not None
    assert model["groups"] == ["staff"]
    assert "read:users:activity!group=staff" in model["scopes"]
    group_only = {**model, "scopes": [s for s in model["scopes"] if "!group=" in s]}
    # alice is in staff, so a staff-wide scope covers alice herself ...
    assert hubauth.check_scopes("read:users:activity!user=alice", group_only)
    # ... and only because of her groups.
    assert not hubauth.check_scopes("read:users:activity!user=alice", {**group_only, "groups": []})


# --------------------------------------------------------------------------------- cache


def test_cached_answer_is_served_without_asking_the_hub(
    real_hub: RealHub, probe_auth: hubauth.HubAuth
) -> None:
    token = real_hub.user_token("bob")
    first = probe_auth.user_for_token(token)
    assert first is not None and first["name"] == "bob"
    assert len(probe_auth.cache) == 1

    # Revoke the token at the Hub: only a cached answer can still name bob.
    real_hub.api("DELETE", f"/users/bob/tokens/{first['token_id']}")
    assert probe_auth.user_for_token(token) == first
    assert probe_auth.user_for_token(token, use_cache=False) is None

    probe_auth.evict_token(token)
    assert probe_auth.user_for_token(token) is None


def test_cache_serves_the_async_path_too(real_hub: RealHub, probe_auth: hubauth.HubAuth) -> None:
    token = real_hub.user_token("alice")
    first = resolve(probe_auth, token, "async")
    assert first is not None and first["name"] == "alice"
    real_hub.api("DELETE", f"/users/alice/tokens/{first['token_id']}")
    assert resolve(probe_auth, token, "async") == first
    assert probe_auth.evict_token(token) == 1
    assert resolve(probe_auth, token, "async") is None


def test_cache_keeps_tokens_apart(real_hub: RealHub, probe_auth: hubauth.HubAuth) -> None:
    alice, bob = real_hub.user_token("alice"), real_hub.user_token("bob")
    for _ in range(2):
        assert (probe_auth.user_for_token(alice) or {}).get("name") == "alice"
        assert (probe_auth.user_for_token(bob) or {}).get("name") == "bob"
    assert len(probe_auth.cache) == 2
