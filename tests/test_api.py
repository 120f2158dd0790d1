"""hubauth.api against the fake Hub, over real sockets, on both clients: names as single
path segments on the wire, pagination that loops or lies, errors naming endpoint and scope,
429 and Retry-After, and progress streams that break off.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubauth import HubAPIError, HubResponseError, HubUnavailable, ServiceTokenRejected
from hubauth.api import PAGINATION_MEDIA_TYPE, AsyncHubAPI, HubAPI, InvalidArgument
from hubauth.api._core import Base
from hubauth.api._wire import segment
from hubauth.errors import BadRequest, Conflict, MissingScope, NotFound, RateLimited
from hubauth.testing import Answer, FakeHub

from .conftest import TOKEN

CLIENTS = ("sync", "async")


class Client:
    """One facade, called the same way in tests whichever it is."""

    def __init__(self, kind: str, hub: FakeHub, **kw: Any) -> None:
        self.kind = kind
        cls = HubAPI if kind == "sync" else AsyncHubAPI
        self.api: Any = cls(api_url=hub.api_url, api_token=TOKEN, backoff=0, page_size=2, **kw)

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.api, method)
        if self.kind == "sync":
            return fn(*args, **kwargs)

        async def run() -> Any:
            try:
                return await fn(*args, **kwargs)
            finally:
                self.api.close()

        return asyncio.run(run())

    def progress(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if self.kind == "sync":
            return list(self.api.progress(*args, **kwargs))

        async def run() -> list[dict[str, Any]]:
            try:
                return [e async for e in self.api.progress(*args, **kwargs)]
            finally:
                self.api.close()

        return asyncio.run(run())


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Client]:
    c = Client(request.param, fake_hub)
    yield c
    c.api.close()


API = "/hub/api"


def paths(hub: FakeHub) -> list[str]:
    return [p for _, p in hub.requests]


# ------------------------------------------------------------------ names on the wire

NAMES = {
    "a/b": "a%2Fb",
    "50%": "50%25",
    "a b?c#d": "a%20b%3Fc%23d",
    "jörg": "j%C3%B6rg",
    "名前": "%E5%90%8D%E5%89%8D",
    "john.doe": "john.doe",
    ".hidden": ".hidden",
    "a..": "a..",
    "%2E": "%252E",
}


@pytest.mark.parametrize(("name", "wire"), NAMES.items())
def test_every_name_is_one_encoded_segment_on_the_wire(
    client: Client, fake_hub: FakeHub, name: str, wire: str
) -> None:
    fake_hub.script("DELETE", f"{API}/users/bob/servers/{wire}", Answer(status=204))
    fake_hub.script("GET", f"{API}/users/{wire}", Answer(json={"name": name}))
    assert client("stop_server", "bob", name) == 204
    assert client("user", name) == {"name": name}
    assert paths(fake_hub) == [f"{API}/users/bob/servers/{wire}", f"{API}/users/{wire}"]


@pytest.mark.parametrize("name", [".", "..", "...", "...."])
def test_names_of_only_dots_are_never_sent(client: Client, fake_hub: FakeHub, name: str) -> None:
    """Security review, issue 11 item 7: requests resolved ``.`` and ``..`` away, so
    ``stop_server("bob", ".")`` stopped bob's *default* server, while the async client sent
    the dots as written. Encoding them as ``%2E`` is no cure: configurable-http-proxy
    resolves ``%2E`` as a dot segment too (shown against a real Hub in
    test_realhub_api.py). So neither client sends such a name, anywhere in a path."""
    for call, args in (
        ("stop_server", ("bob", name)),
        ("user", (name,)),
        ("delete_group", (name,)),
        ("remove_service", (name,)),
        ("revoke_token", ("bob", name)),
        ("share", ("bob", name)),
    ):
        with pytest.raises(InvalidArgument, match="only dots"):
            client(call, *args, **({"user": "x"} if call == "share" else {}))
    assert fake_hub.requests == []


def test_both_clients_send_the_same_bytes(fake_hub: FakeHub) -> None:
    for kind in CLIENTS:
        c = Client(kind, fake_hub)
        with pytest.raises(NotFound):
            c("stop_server", "a b", "x/y", remove=True)
        with pytest.raises(NotFound):
            c("share", "a/b", "", user="x y")
        with pytest.raises(NotFound):
            c("user", "ü.%")
        with pytest.raises(NotFound):
            c.progress("a b", "x/y")  # the stream goes through the same drivers
        c.api.close()
    sent = paths(fake_hub)
    assert (
        sent[:4]
        == sent[4:]
        == [
            f"{API}/users/a%20b/servers/x%2Fy",
            f"{API}/shares/a%2Fb/",
            f"{API}/users/%C3%BC.%25",
            f"{API}/users/a%20b/servers/x%2Fy/progress",
        ]
    )


@pytest.mark.parametrize(
    ("call", "args", "kwargs"),
    [
        ("user", ("",), {}),
        ("stop_server", ("",), {}),
        ("delete_group", ("",), {}),
        ("service", ("",), {}),
        ("user", (None,), {}),
        ("tokens", (3,), {}),
        ("user", ("\ud800",), {}),
        ("stop_server", ("bob", ""), {"remove": True}),
        ("create_users", ([],), {}),
        ("create_users", ("alice",), {}),
        ("add_group_users", ("g", "alice"), {}),
        ("share", ("alice", ""), {"user": "a", "group": "b"}),
        ("revoke_share_code", ("alice", ""), {}),
        ("modify_user", ("alice",), {}),
        ("report_activity", ("alice",), {}),
        ("create_server", ("alice", ""), {}),
        ("start_server", ("alice", "", {"a": 1}), {"user_options": {}}),
    ],
)
def test_arguments_that_cannot_be_sent_fail_before_any_request(
    client: Client, fake_hub: FakeHub, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        client(call, *args, **kwargs)
    assert fake_hub.requests == []


@given(st.text(min_size=1, max_size=40))
def test_a_segment_decodes_to_the_name_and_is_never_a_dot_segment(name: str) -> None:
    try:
        quoted = segment(name)
    except InvalidArgument:
        # lone surrogates are not UTF-8; names of only dots would be dot segments
        assert any("\ud800" <= c <= "\udfff" for c in name) or set(name) == {"."}
        return
    assert "/" not in quoted and "?" not in quoted and "#" not in quoted
    assert quoted not in (".", "..") and quoted.isascii()
    assert urllib.parse.unquote(quoted, errors="strict") == name


# ------------------------------------------------------------------------- pagination


def page(items: list[Any], offset: int, total: int, nxt: int | None) -> Answer:
    return Answer(
        json={
            "items": items,
            "_pagination": {
                "offset": offset,
                "limit": 2,
                "total": total,
                "next": None if nxt is None else {"offset": nxt, "limit": 2},
            },
        }
    )


class _Pages:
    """A scripted paginated list (the fake Hub answers by path, not query)."""

    def __init__(self, hub: FakeHub, path: str, *answers: Answer) -> None:
        hub.script("GET", path, *answers)


def test_users_follows_every_page_and_an_empty_filtered_page(
    client: Client, fake_hub: FakeHub
) -> None:
    _Pages(
        fake_hub,
        f"{API}/users",
        page([{"name": "u0"}, {"name": "u1"}], 0, 6, 2),
        page([], 2, 6, 4),  # the Hub filters state=ready after cutting the page
        page([{"name": "u4"}], 4, 6, None),
    )
    assert [u["name"] for u in client("users", state="ready")] == ["u0", "u1", "u4"]
    assert fake_hub.count(f"{API}/users") == 3


def test_a_hub_without_pagination_answers_a_list(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script("GET", f"{API}/groups", Answer(json=[{"name": "g"}]))
    assert client("groups") == [{"name": "g"}]


def test_proxy_routes_pages_are_merged_dicts(client: Client, fake_hub: FakeHub) -> None:
    routes = [{"/a": {"target": "x"}}, {"/b": {"target": "y"}}]
    _Pages(fake_hub, f"{API}/proxy", page(routes[0], 0, 2, 1), page(routes[1], 1, 2, None))  # type: ignore[arg-type]
    assert client("proxy_routes") == {"/a": {"target": "x"}, "/b": {"target": "y"}}


@pytest.mark.parametrize(
    ("answers", "needle"),
    [
        ([page([{"name": "a"}], 0, 9, 0)], "loops"),
        ([page([{"name": "a"}], 0, 9, 2), page([{"name": "b"}], 2, 9, 1)], "loops"),
        ([page([{"name": "a"}], 0, 2, 2)], "total is 2"),
        ([Answer(json={"items": "no", "_pagination": {}})], "list of 'items'"),
        ([Answer(json={"items": [], "_pagination": {"next": {"offset": "4"}}})], "offset"),
    ],
)
def test_pagination_that_loops_or_lies_fails_naming_the_endpoint(
    client: Client, fake_hub: FakeHub, answers: list[Answer], needle: str
) -> None:
    _Pages(fake_hub, f"{API}/users", *answers)
    with pytest.raises(HubResponseError, match=needle) as e:
        client("users")
    assert "GET /users" in str(e.value) and "incomplete" in str(e.value)
    assert fake_hub.count(f"{API}/users") <= 2


def test_pagination_is_bounded_even_when_every_page_moves_forward(fake_hub: FakeHub) -> None:
    """A Hub whose pages go on forever, each ``next`` forward and ``total`` growing along."""

    class Forever(Base):
        page_size = 2
        max_pages = 5

    forever = Forever()
    forever.config = HubAPI(api_url=fake_hub.api_url, api_token=TOKEN).config
    flow = forever._pages("/users", "/users", scopes=["list:users"])
    req = next(flow)
    with pytest.raises(HubResponseError, match="more than 5 pages"):
        for n in range(10):
            body = json.dumps(
                {"items": [], "_pagination": {"total": 10 * n + 10, "next": {"offset": 2 * n + 2}}}
            ).encode()
            from hubauth._protocol import HubResponse

            req = flow.send(HubResponse(200, {}, body))
    assert PAGINATION_MEDIA_TYPE in req.headers["Accept"]


# ----------------------------------------------------------------------------- errors


def test_403_names_the_endpoint_and_the_scopes_the_hub_requires(
    client: Client, fake_hub: FakeHub
) -> None:
    message = "Action is not authorized with current scopes; requires any of [list:users]"
    fake_hub.script("GET", f"{API}/users", Answer(403, json={"status": 403, "message": message}))
    with pytest.raises(MissingScope, match=r"GET /users .*needs one of the scopes \[list:users\]"):
        client("users")


def test_403_without_a_message_names_the_documented_scopes(
    client: Client, fake_hub: FakeHub
) -> None:
    fake_hub.script("DELETE", f"{API}/users/bob/server", Answer(403))
    with pytest.raises(MissingScope) as e:
        client("stop_server", "bob")
    assert e.value.scopes == ("delete:servers", "servers")
    assert e.value.endpoint == "DELETE /users/{name}/server" and e.value.status == 403
    assert "load_roles" in str(e.value)


@pytest.mark.parametrize(
    ("status", "message", "cls", "needle"),
    [
        (403, "Missing or invalid credentials.", ServiceTokenRejected, "does not know"),
        (401, "", ServiceTokenRejected, "JUPYTERHUB_API_TOKEN"),
        (404, "No access to resources or resources not found", NotFound, "filtered"),
        (403, "Only admins can grant admin permissions", HubAPIError, "forbidden: the Hub"),
        (409, "Group g already exists", Conflict, "already exists"),
        (400, "Must specify at least one user", BadRequest, "Must specify"),
        (500, "", HubAPIError, "check the Hub's log"),
        (302, "", HubAPIError, "ending in /hub/api"),
    ],
)
def test_each_error_status_is_its_own_class_naming_the_endpoint(
    client: Client, fake_hub: FakeHub, status: int, message: str, cls: type, needle: str
) -> None:
    body = {"status": status, "message": message} if message else None
    fake_hub.script("POST", f"{API}/groups/g", Answer(status, json=body))
    with pytest.raises(cls, match=needle) as e:
        client("create_group", "g")
    assert e.value.status == status
    assert "POST /groups/{name}" in str(e.value)


def test_a_body_that_is_not_json_is_a_clear_error(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script("GET", f"{API}/info", Answer(body=b"<html>login</html>"))
    with pytest.raises(HubResponseError, match="not JSON"):
        client("hub_info")


# ---------------------------------------------------------------- retries, 429, Retry-After


def test_idempotent_calls_retry_on_5xx(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script(
        "GET", f"{API}/users/alice", Answer(503), Answer(502), Answer(json={"name": "alice"})
    )
    assert client("user", "alice") == {"name": "alice"}
    assert fake_hub.count(f"{API}/users/alice") == 3


def test_retries_are_bounded(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script("GET", f"{API}/users/alice", Answer(502))
    with pytest.raises(HubAPIError, match="502"):
        client("user", "alice")
    assert fake_hub.count(f"{API}/users/alice") == client.api.retries + 1


def test_posts_are_not_retried_after_a_5xx_or_an_outage(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script("POST", f"{API}/users/alice/server", Answer(502))
    with pytest.raises(HubAPIError):
        client("start_server", "alice")
    assert fake_hub.count(f"{API}/users/alice/server") == 1
    fake_hub.fault = "down"
    with pytest.raises(HubUnavailable):
        client("start_server", "alice")


def test_429_is_retried_after_retry_after_even_for_a_post(
    client: Client, fake_hub: FakeHub
) -> None:
    """The Hub did not act on a 429, so even a POST may be sent again, after the wait."""
    fake_hub.script(
        "POST",
        f"{API}/users/alice/server",
        Answer(429, headers={"Retry-After": "0"}),
        Answer(429),
        Answer(201),
    )
    assert client("start_server", "alice") == 201
    assert fake_hub.count(f"{API}/users/alice/server") == 3


def test_a_retry_after_longer_than_the_client_waits_is_rate_limited(fake_hub: FakeHub) -> None:
    for kind in CLIENTS:
        fake_hub.reset_counts()
        c = Client(kind, fake_hub, max_retry_after=5)
        fake_hub.script("GET", f"{API}/groups/g", Answer(429, headers={"Retry-After": "3600"}))
        with pytest.raises(RateLimited, match="Retry-After 3600s") as e:
            c("group", "g")
        assert e.value.retry_after == 3600
        assert fake_hub.count(f"{API}/groups/g") == 1


def test_503_with_retry_after_waits_that_long(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script(
        "GET", f"{API}/", Answer(503, headers={"Retry-After": "0"}), Answer(json={"version": "6"})
    )
    assert client("info") == {"version": "6"}


# ---------------------------------------------------------------------- progress streams

READY = b'data: {"progress": 100, "ready": true, "message": "ready", "url": "/user/a/"}\n\n'
STEP = b'data: {"progress": 50, "message": "half way"}\n\n'


def test_progress_events_until_ready(client: Client, fake_hub: FakeHub) -> None:
    fake_hub.script(
        "GET",
        f"{API}/users/a/server/progress",
        Answer(
            headers={"Content-Type": "text/event-stream"},
            chunks=(b"\n\n", STEP[:10], STEP[10:] + b"\n\n", READY, b"data: {}\n\n"),
        ),
    )
    events = client.progress("a")
    assert [e.get("progress") for e in events] == [50, 100]
    assert events[-1]["ready"] is True


@pytest.mark.parametrize(
    ("chunks", "needle"),
    [
        ((STEP, b'data: {"progr'), "middle of an event"),
        ((STEP, b'data: {"progress": 90}\n'), "middle of an event"),
        ((STEP,), "ended before the spawn"),
        ((b"data: not json\n\n",), "not JSON"),
        ((b"data: [1]\n\n",), "not a JSON object"),
    ],
)
def test_a_progress_stream_that_breaks_off_is_an_error(
    client: Client, fake_hub: FakeHub, chunks: tuple[bytes, ...], needle: str
) -> None:
    fake_hub.script("GET", f"{API}/users/a/servers/lab/progress", Answer(chunks=chunks, cut=True))
    with pytest.raises(HubResponseError, match=needle) as e:
        client.progress("a", "lab")
    assert "spawn's outcome is unknown" in str(e.value)


def test_progress_of_a_missing_server_is_not_found(client: Client, fake_hub: FakeHub) -> None:
    with pytest.raises(NotFound, match=r"GET /users/\{name\}/server/progress"):
        client.progress("nobody")


def test_a_silent_progress_stream_times_out(fake_hub: FakeHub) -> None:
    for kind in CLIENTS:
        c = Client(kind, fake_hub, request_timeout=0.5)
        fake_hub.script(
            "GET", f"{API}/users/a/server/progress", Answer(chunks=(STEP, READY), pause=3)
        )
        with pytest.raises(HubUnavailable, match="request_timeout"):
            c.progress("a")


# --------------------------------------------------------------------- facades and misc


def test_facades_share_the_endpoints() -> None:
    public = [
        n
        for n in dir(HubAPI)
        if not n.startswith("_") and n not in ("run", "close") and callable(getattr(HubAPI, n))
    ]
    assert len(public) > 45
    for name in public:
        sync, aio = getattr(HubAPI, name), getattr(AsyncHubAPI, name)
        assert sync.__name__ == aio.__name__ == name
        assert sync.__doc__ == aio.__doc__, name
    assert TOKEN not in repr(HubAPI(api_url="http://hub.test/hub/api", api_token=TOKEN))


@pytest.mark.parametrize("kw", [{"max_concurrency": 0}, {"retries": -1}, {"page_size": -1}])
def test_bad_arguments(kw: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument):
        HubAPI(api_url="http://hub.test/hub/api", api_token=TOKEN, **kw)


@settings(max_examples=200)
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=20))
def test_event_parser_events_do_not_depend_on_how_bytes_are_split(
    data: bytes, cuts: list[int]
) -> None:
    from hubauth.api._events import EventParser

    whole = EventParser().feed(data)
    parser, pieces, rest = EventParser(), [], data
    for cut in cuts:
        pieces.extend(parser.feed(rest[:cut]))
        rest = rest[cut:]
    pieces.extend(parser.feed(rest))
    assert pieces == whole


@given(st.text(max_size=60))
def test_retry_after_never_raises(value: str) -> None:
    from hubauth._protocol import HubResponse
    from hubauth.api._wire import retry_after

    wait = retry_after(HubResponse(429, {"retry-after": value}, b""))
    assert wait is None or wait >= 0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from hubauth._protocol import HubResponse
    from hubauth.api._wire import retry_after

    def ra(v: str) -> float | None:
        return retry_after(HubResponse(429, {"retry-after": v}, b""), now=784111777.0)

    assert ra("120") == 120
    assert ra("Sun, 06 Nov 1994 08:49:37 GMT") == 0
    assert ra("Sun, 06 Nov 1994 08:51:37 GMT") == 120
    assert ra("soon") is None and ra("-5") is None
