"""hubauth.api with the Hub played by ``responses``: pagination, errors by status, retries."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from hubauth import HubAPIError, HubUnavailable, ServiceTokenRejected
from hubauth.api import PAGINATION_MEDIA_TYPE, HubAPI

from .conftest import TOKEN

API = "http://hub.test/hub/api"


@pytest.fixture
def api() -> HubAPI:
    return HubAPI(api_url=API, api_token=TOKEN, backoff=0, page_size=2)


def page(items: list[dict[str, str]], offset: int, total: int) -> dict[str, object]:
    nxt = {"offset": offset + len(items), "limit": 2} if offset + len(items) < total else None
    return {
        "items": items,
        "_pagination": {"offset": offset, "limit": 2, "total": total, "next": nxt},
    }


@responses.activate
def test_users_follows_every_page_with_the_pagination_media_type(api: HubAPI) -> None:
    users = [{"name": f"u{i}"} for i in range(5)]
    for offset in (0, 2, 4):
        responses.get(
            f"{API}/users",
            json=page(users[offset : offset + 2], offset, 5),
            match=[
                responses.matchers.query_param_matcher(
                    {"state": "ready", "offset": str(offset), "limit": "2"}
                ),
                responses.matchers.header_matcher(
                    {"Accept": PAGINATION_MEDIA_TYPE, "Authorization": f"token {TOKEN}"}
                ),
            ],
        )
    assert [u["name"] for u in api.users(state="ready")] == [f"u{i}" for i in range(5)]


@responses.activate
def test_a_hub_without_pagination_answers_a_list(api: HubAPI) -> None:
    responses.get(f"{API}/groups", json=[{"name": "g"}])
    assert api.groups() == [{"name": "g"}]


@responses.activate
def test_names_are_quoted(api: HubAPI) -> None:
    responses.get(f"{API}/users/a%2Fb%20c", json={"name": "a/b c"})
    assert api.user("a/b c")["name"] == "a/b c"
    with pytest.raises(ValueError):
        api.user("")


@responses.activate
def test_servers(api: HubAPI) -> None:
    responses.post(f"{API}/users/alice/server", status=201)
    responses.post(f"{API}/users/alice/servers/lab", status=202, json={"ready": False})
    responses.delete(
        f"{API}/users/alice/servers/lab",
        status=204,
        match=[responses.matchers.json_params_matcher({"remove": True})],
    )
    responses.delete(f"{API}/users/alice/server", status=202)
    assert api.start_server("alice") == 201
    assert api.start_server("alice", "lab", {"profile": "small"}) == 202
    assert json.loads(responses.calls[1].request.body or b"{}") == {"profile": "small"}
    assert api.stop_server("alice", "lab", remove=True) == 204
    assert api.stop_server("alice") == 202


@responses.activate
def test_403_names_the_missing_scope(api: HubAPI) -> None:
    message = "Action is not authorized with current scopes; requires any of [list:users]"
    responses.get(f"{API}/users", status=403, json={"status": 403, "message": message})
    with pytest.raises(HubAPIError, match=r"lacks a scope.*list:users.*load_roles") as e:
        api.users()
    assert e.value.status == 403


@responses.activate
@pytest.mark.parametrize(
    ("status", "needle"), [(404, "not found"), (409, "conflict"), (400, "answered 400")]
)
def test_other_statuses(api: HubAPI, status: int, needle: str) -> None:
    responses.post(f"{API}/services/x", status=status, json={"message": "why"})
    with pytest.raises(HubAPIError, match=needle) as e:
        api.add_service("x", {"url": "http://127.0.0.1:1"})
    assert e.value.status == status and "why" in str(e.value)


@responses.activate
def test_401_is_the_service_token(api: HubAPI) -> None:
    responses.get(f"{API}/", status=401)
    with pytest.raises(ServiceTokenRejected, match="JUPYTERHUB_API_TOKEN"):
        api.info()


@responses.activate
def test_idempotent_calls_retry_on_5xx_and_connection_errors(api: HubAPI) -> None:
    responses.get(f"{API}/users/alice", status=503)
    responses.get(f"{API}/users/alice", body=requests.exceptions.ConnectionError("refused"))
    responses.get(f"{API}/users/alice", json={"name": "alice"})
    assert api.user("alice") == {"name": "alice"}
    assert len(responses.calls) == 3


@responses.activate
def test_retries_are_bounded(api: HubAPI) -> None:
    rsp = responses.get(f"{API}/users/alice", status=502)
    with pytest.raises(HubAPIError, match="502"):
        api.user("alice")
    assert rsp.call_count == api.retries + 1


@responses.activate
def test_posts_are_not_retried(api: HubAPI) -> None:
    rsp = responses.post(
        f"{API}/users/alice/server", body=requests.exceptions.ConnectionError("refused")
    )
    with pytest.raises(HubUnavailable):
        api.start_server("alice")
    assert rsp.call_count == 1


def test_facades_share_the_endpoints() -> None:
    from hubauth.api import AsyncHubAPI

    for name in (
        "users",
        "user",
        "groups",
        "start_server",
        "stop_server",
        "add_service",
        "remove_service",
        "tokens",
        "create_token",
    ):
        assert getattr(HubAPI, name).__name__ == name
        assert getattr(AsyncHubAPI, name).__doc__ == getattr(HubAPI, name).__doc__
    assert TOKEN not in repr(HubAPI(api_url=API, api_token=TOKEN))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        HubAPI(api_url=API, api_token=TOKEN, max_concurrency=0)


@responses.activate
def test_pagination_goes_on_past_an_empty_filtered_page(api: HubAPI) -> None:
    # The Hub filters by state after cutting the page: a page may be empty, with more after.
    responses.get(
        f"{API}/users",
        json={
            "items": [],
            "_pagination": {"offset": 0, "limit": 2, "total": 4, "next": {"offset": 2, "limit": 2}},
        },
        match=[
            responses.matchers.query_param_matcher({"state": "ready", "offset": "0", "limit": "2"})
        ],
    )
    responses.get(
        f"{API}/users",
        json={
            "items": [{"name": "ready-one"}],
            "_pagination": {"offset": 2, "limit": 2, "total": 4, "next": None},
        },
        match=[
            responses.matchers.query_param_matcher({"state": "ready", "offset": "2", "limit": "2"})
        ],
    )
    assert api.users(state="ready") == [{"name": "ready-one"}]


@responses.activate
def test_pagination_stops_if_next_does_not_move_forward(api: HubAPI) -> None:
    responses.get(
        f"{API}/users",
        json={"items": [{"name": "a"}], "_pagination": {"offset": 0, "next": {"offset": 0}}},
    )
    assert api.users() == [{"name": "a"}]
    assert len(responses.calls) == 1


@responses.activate
def test_visitor_403_message_does_not_blame_only_the_service() -> None:
    api = HubAPI(api_url=API, api_token="visitor-token-123", backoff=0)
    responses.get(f"{API}/groups/students", status=403, json={"message": "requires read:groups"})
    with pytest.raises(HubAPIError, match="if it is a visitor's, they may not"):
        api.group("students")
