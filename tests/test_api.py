"""hubauth.api against a scripted Hub on 127.0.0.1 (:class:`tests.rawhub.Routes`): pagination,
errors by status, retries."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hubauth import HubAPIError, HubUnavailable, ServiceTokenRejected
from hubauth.api import PAGINATION_MEDIA_TYPE, HubAPI

from .conftest import TOKEN
from .rawhub import RawHub, Reset, Routes

API = "/hub/api"


@pytest.fixture
def responses() -> Iterator[Routes]:
    """The Hub's scripted answers (registered like the ``responses`` library's)."""
    routes = Routes()
    with RawHub(routes) as hub:
        routes.api_url = hub.api_url
        yield routes


@pytest.fixture
def api(responses: Routes) -> Iterator[HubAPI]:
    client = HubAPI(api_url=responses.api_url, api_token=TOKEN, backoff=0, page_size=2)
    yield client
    client.close()


def page(items: list[dict[str, str]], offset: int, total: int) -> dict[str, object]:
    nxt = {"offset": offset + len(items), "limit": 2} if offset + len(items) < total else None
    return {
        "items": items,
        "_pagination": {"offset": offset, "limit": 2, "total": total, "next": nxt},
    }


def test_users_follows_every_page_with_the_pagination_media_type(
    api: HubAPI, responses: Routes
) -> None:
    users = [{"name": f"u{i}"} for i in range(5)]
    for offset in (0, 2, 4):
        responses.add(
            "GET",
            f"{API}/users",
            json=page(users[offset : offset + 2], offset, 5),
            query={"state": "ready", "offset": str(offset), "limit": "2"},
            headers={"Accept": PAGINATION_MEDIA_TYPE, "Authorization": f"token {TOKEN}"},
        )
    assert [u["name"] for u in api.users(state="ready")] == [f"u{i}" for i in range(5)]


def test_a_hub_without_pagination_answers_a_list(api: HubAPI, responses: Routes) -> None:
    responses.add("GET", f"{API}/groups", json=[{"name": "g"}])
    assert api.groups() == [{"name": "g"}]


def test_names_are_quoted(api: HubAPI, responses: Routes) -> None:
    responses.add("GET", f"{API}/users/a%2Fb%20c", json={"name": "a/b c"})
    assert api.user("a/b c")["name"] == "a/b c"
    with pytest.raises(ValueError):
        api.user("")


def test_servers(api: HubAPI, responses: Routes) -> None:
    responses.add("POST", f"{API}/users/alice/server", status=201)
    responses.add("POST", f"{API}/users/alice/servers/lab", status=202, json={"ready": False})
    responses.add(
        "DELETE",
        f"{API}/users/alice/servers/lab",
        status=204,
        json_body={"remove": True},
    )
    responses.add("DELETE", f"{API}/users/alice/server", status=202)
    assert api.start_server("alice") == 201
    assert api.start_server("alice", "lab", {"profile": "small"}) == 202
    assert json.loads(responses.calls[1].body or b"{}") == {"profile": "small"}
    assert api.stop_server("alice", "lab", remove=True) == 204
    assert api.stop_server("alice") == 202


def test_403_names_the_missing_scope(api: HubAPI, responses: Routes) -> None:
    message = "Action is not authorized with current scopes; requires any of [list:users]"
    responses.add("GET", f"{API}/users", status=403, json={"status": 403, "message": message})
    with pytest.raises(HubAPIError, match=r"lacks a scope.*list:users.*load_roles") as e:
        api.users()
    assert e.value.status == 403


@pytest.mark.parametrize(
    ("status", "needle"), [(404, "not found"), (409, "conflict"), (400, "answered 400")]
)
def test_other_statuses(api: HubAPI, responses: Routes, status: int, needle: str) -> None:
    responses.add("POST", f"{API}/services/x", status=status, json={"message": "why"})
    with pytest.raises(HubAPIError, match=needle) as e:
        api.add_service("x", {"url": "http://127.0.0.1:1"})
    assert e.value.status == status and "why" in str(e.value)


def test_401_is_the_service_token(api: HubAPI, responses: Routes) -> None:
    responses.add("GET", f"{API}/", status=401)
    with pytest.raises(ServiceTokenRejected, match="JUPYTERHUB_API_TOKEN"):
        api.info()


def test_idempotent_calls_retry_on_5xx_and_connection_errors(
    api: HubAPI, responses: Routes
) -> None:
    responses.add("GET", f"{API}/users/alice", status=503)
    responses.add("GET", f"{API}/users/alice", action=Reset())
    responses.add("GET", f"{API}/users/alice", json={"name": "alice"})
    assert api.user("alice") == {"name": "alice"}
    assert len(responses.calls) == 3


def test_retries_are_bounded(api: HubAPI, responses: Routes) -> None:
    rsp = responses.add("GET", f"{API}/users/alice", status=502)
    with pytest.raises(HubAPIError, match="502"):
        api.user("alice")
    assert rsp.call_count == api.retries + 1


def test_posts_are_not_retried(api: HubAPI, responses: Routes) -> None:
    rsp = responses.add("POST", f"{API}/users/alice/server", action=Reset())
    with pytest.raises(HubUnavailable):
        api.start_server("alice")
    assert rsp.call_count == 1


def test_facades_share_the_endpoints() -> None:
    url = "http://hub.test/hub/api"
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
    assert TOKEN not in repr(HubAPI(api_url=url, api_token=TOKEN))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        HubAPI(api_url="http://hub.test/hub/api", api_token=TOKEN, max_concurrency=0)


def test_pagination_goes_on_past_an_empty_filtered_page(api: HubAPI, responses: Routes) -> None:
    # The Hub filters by state after cutting the page: a page may be empty, with more after.
    responses.add(
        "GET",
        f"{API}/users",
        json={
            "items": [],
            "_pagination": {"offset": 0, "limit": 2, "total": 4, "next": {"offset": 2, "limit": 2}},
        },
        query={"state": "ready", "offset": "0", "limit": "2"},
    )
    responses.add(
        "GET",
        f"{API}/users",
        json={
            "items": [{"name": "ready-one"}],
            "_pagination": {"offset": 2, "limit": 2, "total": 4, "next": None},
        },
        query={"state": "ready", "offset": "2", "limit": "2"},
    )
    assert api.users(state="ready") == [{"name": "ready-one"}]


def test_pagination_stops_if_next_does_not_move_forward(api: HubAPI, responses: Routes) -> None:
    responses.add(
        "GET",
        f"{API}/users",
        json={"items": [{"name": "a"}], "_pagination": {"offset": 0, "next": {"offset": 0}}},
    )
    assert api.users() == [{"name": "a"}]
    assert len(responses.calls) == 1


def test_visitor_403_message_does_not_blame_only_the_service(responses: Routes) -> None:
    url = responses.api_url
    api = HubAPI(api_url=url, api_token="visitor-token-123", backoff=0)
    responses.add(
        "GET", f"{API}/groups/students", status=403, json={"message": "requires read:groups"}
    )
    with pytest.raises(HubAPIError, match="if it is a visitor's, they may not"):
        api.group("students")
