"""The fake JupyterHub of :mod:`hubauth.testing`, seen from a client: statuses, bodies, faults."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

import hubauth
from hubauth.testing import COOKIE_NAME, FAULTS, FakeHub

TIMEOUT = 10
CALLBACK = "http://127.0.0.1:9/services/svc/oauth_callback"
_NOISY = ("tornado", "asyncio", "hubauth.testing")


@pytest.fixture(autouse=True)
def _quiet_hub(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test: the fake hub, Tornado and asyncio log nothing at WARNING or above."""
    caplog.set_level(logging.DEBUG)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    bad = [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.WARNING and r.name.startswith(_NOISY)
    ]
    assert bad == []


@dataclass
class Client:
    """A registered OAuth client of the fake hub."""

    client_id: str
    secret: str
    redirect_uri: str


@pytest.fixture
def client(fake_hub: FakeHub) -> Client:
    secret = fake_hub.add_service("svc")
    fake_hub.register_client("service-svc", CALLBACK, secret)
    return Client("service-svc", secret, CALLBACK)


def user_get(
    hub: FakeHub, token: str, scheme: str = "token", timeout: float = TIMEOUT, **kw: Any
) -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    return requests.get(f"{hub.api_url}/user", headers=headers, timeout=timeout, **kw)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(
    hub: FakeHub,
    client: Client,
    *,
    session: requests.Session | None = None,
    challenge: str | None = None,
    **extra: str,
) -> requests.Response:
    params = {
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "response_type": "code",
        "state": "state-1",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    get = session.get if session is not None else requests.get
    return get(
        f"{hub.api_url}/oauth2/authorize", params=params, allow_redirects=False, timeout=TIMEOUT
    )


def redirect_query(resp: requests.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def get_code(hub: FakeHub, client: Client, **kw: Any) -> str:
    resp = authorize(hub, client, **kw)
    assert resp.headers["Location"].startswith(client.redirect_uri + "?")
    query = redirect_query(resp)
    assert query["state"] == "state-1"
    return query["code"]


def exchange(
    hub: FakeHub, client: Client, code: str, verifier: str | None = None, **over: str
) -> requests.Response:
    form = {
        "client_id": client.client_id,
        "client_secret": client.secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(over)
    return requests.post(f"{hub.api_url}/oauth2/token", data=form, timeout=TIMEOUT)


def assert_invalid_grant(resp: requests.Response, words: str) -> None:
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_grant"
    assert words in body["error_description"]


def refused(url: str) -> bool:
    try:
        requests.get(url, timeout=TIMEOUT)
    except requests.ConnectionError as e:
        return "refused" in str(e).lower()
    return False


# ---------------------------------------------------------------------- lifecycle


def test_context_manager_serves_and_stop_closes_the_port() -> None:
    hub = FakeHub()
    with pytest.raises(RuntimeError, match="before start"):
        _ = hub.url
    with hub:
        assert hub.url == f"http://127.0.0.1:{hub.port}"
        assert hub.hub_prefix == "/hub/"
        assert hub.api_url == hub.url + "/hub/api"
        resp = requests.get(hub.api_url + "/", timeout=TIMEOUT)
        assert (resp.status_code, resp.json()) == (200, {"version": "fake"})
        assert requests.get(hub.api_url, timeout=TIMEOUT).json() == {"version": "fake"}
        with pytest.raises(RuntimeError, match="already started"):
            hub.start()
    assert refused(hub.api_url + "/")
    hub.stop()  # idempotent


def test_start_stop_methods_and_daemon_thread() -> None:
    hub = FakeHub().start()
    try:
        threads = [t for t in threading.enumerate() if t.name == f"FakeHub:{hub.port}"]
        assert len(threads) == 1 and threads[0].daemon
        assert requests.get(hub.api_url, timeout=TIMEOUT).ok
    finally:
        hub.stop()
    assert not any(t.name == f"FakeHub:{hub.port}" for t in threading.enumerate())


def test_fixture_gives_a_running_hub(fake_hub: FakeHub) -> None:
    assert requests.get(fake_hub.api_url + "/", timeout=TIMEOUT).json() == {"version": "fake"}


# ---------------------------------------------------------------------- GET /hub/api/user


def test_user_token_answers_the_model(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice", scopes=["read:users", "custom"], groups=["g1"], admin=True)
    resp = user_get(fake_hub, token)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    model = resp.json()
    assert model["kind"] == "user"
    assert model["name"] == "alice"
    assert model["admin"] is True
    assert model["groups"] == ["g1"]
    assert model["scopes"] == ["read:users", "custom"]
    assert model["session_id"] is None
    assert model["token_id"].startswith("a")
    assert {"created", "last_activity", "roles", "server"} <= model.keys()


def test_user_defaults_and_new_tokens(fake_hub: FakeHub) -> None:
    first = fake_hub.add_user("bob")
    second = fake_hub.add_user("bob")
    assert first != second and len(first) >= 32
    one, two = user_get(fake_hub, first).json(), user_get(fake_hub, second).json()
    assert one["scopes"] == ["access:services"]
    assert one["admin"] is False and one["groups"] == []
    assert one["token_id"] != two["token_id"]


@pytest.mark.parametrize("scheme", ["token", "bearer", "Bearer", "TOKEN"])
def test_user_accepts_token_and_bearer_schemes(fake_hub: FakeHub, scheme: str) -> None:
    token = fake_hub.add_user("carol")
    assert user_get(fake_hub, token, scheme).json()["name"] == "carol"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "token nope"},
        {"Authorization": "basic abc"},
        {"Authorization": "token"},
    ],
)
def test_user_unknown_or_missing_token_is_403_json(
    fake_hub: FakeHub, headers: dict[str, str]
) -> None:
    resp = requests.get(f"{fake_hub.api_url}/user", headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 403
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert body["status"] == 403 and body["message"]


def test_revoke_service_and_arbitrary_models(fake_hub: FakeHub) -> None:
    user_token = fake_hub.add_user("dave")
    service_token = fake_hub.add_service("culler", scopes=["admin:users"])
    fake_hub.add_token("my-own-token", {"kind": "user", "name": "eve", "scopes": [], "x": 1})

    service = user_get(fake_hub, service_token).json()
    assert (service["kind"], service["name"], service["scopes"]) == (
        "service",
        "culler",
        ["admin:users"],
    )
    assert user_get(fake_hub, "my-own-token").json() == {
        "kind": "user",
        "name": "eve",
        "scopes": [],
        "x": 1,
    }
    fake_hub.revoke(user_token)
    fake_hub.revoke("never-issued")
    assert user_get(fake_hub, user_token).status_code == 403
    assert user_get(fake_hub, service_token).status_code == 200


def test_state_arguments_are_checked(fake_hub: FakeHub) -> None:
    with pytest.raises(TypeError):
        fake_hub.add_user("x", scopes="access:services")
    with pytest.raises(ValueError):
        fake_hub.add_user("")
    with pytest.raises(ValueError):
        fake_hub.add_token("", {})
    with pytest.raises(TypeError):
        fake_hub.add_token("t", {"not json": object()})
    with pytest.raises(ValueError, match="unknown FakeHub fault"):
        fake_hub.fault = "explode"
    assert fake_hub.fault is None


def test_unknown_paths_are_404(fake_hub: FakeHub) -> None:
    api = requests.get(f"{fake_hub.api_url}/users/alice", timeout=TIMEOUT)
    assert api.status_code == 404
    assert api.json() == {"status": 404, "message": "Not Found"}
    page = requests.get(f"{fake_hub.url}/elsewhere", timeout=TIMEOUT)
    assert page.status_code == 404 and "text/html" in page.headers["Content-Type"]
    assert fake_hub.count("/elsewhere") == 1


# ---------------------------------------------------------------------- OAuth


def test_oauth_flow_with_pkce(fake_hub: FakeHub, client: Client) -> None:
    verifier, challenge = pkce()
    code = get_code(fake_hub, client, challenge=challenge)
    resp = exchange(fake_hub, client, code, verifier)
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    model = user_get(fake_hub, body["access_token"]).json()
    assert model["name"] == fake_hub.default_login == "testuser"
    assert model["kind"] == "user"
    assert model["scopes"] == ["access:services"]
    assert isinstance(model["session_id"], str) and model["session_id"]


def test_codes_are_single_use(fake_hub: FakeHub, client: Client) -> None:
    verifier, challenge = pkce()
    code = get_code(fake_hub, client, challenge=challenge)
    assert exchange(fake_hub, client, code, verifier).status_code == 200
    assert_invalid_grant(exchange(fake_hub, client, code, verifier), "already used")


def test_codes_without_pkce_and_each_code_differs(fake_hub: FakeHub, client: Client) -> None:
    first, second = get_code(fake_hub, client), get_code(fake_hub, client)
    assert first != second
    assert exchange(fake_hub, client, second).status_code == 200
    assert exchange(fake_hub, client, first).status_code == 200


def test_pkce_failures_are_invalid_grant(fake_hub: FakeHub, client: Client) -> None:
    verifier, challenge = pkce()
    code = get_code(fake_hub, client, challenge=challenge)
    assert_invalid_grant(exchange(fake_hub, client, code), "code_verifier required")
    assert_invalid_grant(exchange(fake_hub, client, code, pkce()[0]), "does not match")
    # A failed attempt does not use the code up.
    assert exchange(fake_hub, client, code, verifier).status_code == 200


def test_pkce_plain_method(fake_hub: FakeHub, client: Client) -> None:
    resp = authorize(
        fake_hub, client, code_challenge="plain-verifier-" + "v" * 40, code_challenge_method="plain"
    )
    code = redirect_query(resp)["code"]
    assert_invalid_grant(exchange(fake_hub, client, code, "other"), "does not match")
    assert exchange(fake_hub, client, code, "plain-verifier-" + "v" * 40).status_code == 200


def test_unknown_and_expired_codes(fake_hub: FakeHub, client: Client) -> None:
    assert_invalid_grant(exchange(fake_hub, client, "made-up"), "unknown")
    fake_hub.code_ttl = 0.05
    code = get_code(fake_hub, client)
    time.sleep(0.15)
    assert_invalid_grant(exchange(fake_hub, client, code), "expired")


def test_code_bound_to_client_and_redirect_uri(fake_hub: FakeHub, client: Client) -> None:
    other_secret = fake_hub.add_service("other")
    other = Client("service-other", other_secret, "http://127.0.0.1:9/other/cb")
    fake_hub.register_client(other.client_id, other.redirect_uri, other.secret)
    code = get_code(fake_hub, client)
    assert_invalid_grant(exchange(fake_hub, other, code), "another client")
    wrong_uri = exchange(fake_hub, client, code, redirect_uri="http://127.0.0.1:9/x")
    assert_invalid_grant(wrong_uri, "Mismatching redirect URI")
    assert exchange(fake_hub, client, code).status_code == 200


@pytest.mark.parametrize(
    "over",
    [{"client_secret": "wrong"}, {"client_id": "service-nobody"}, {"client_secret": ""}],
)
def test_token_bad_client_is_invalid_client(
    fake_hub: FakeHub, client: Client, over: dict[str, str]
) -> None:
    code = get_code(fake_hub, client)
    resp = exchange(fake_hub, client, code, **over)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client"
    # The code survives a request from the wrong client.
    assert exchange(fake_hub, client, code).status_code == 200


def test_token_client_secret_basic_and_bad_grant_type(fake_hub: FakeHub, client: Client) -> None:
    code = get_code(fake_hub, client)
    bad = exchange(fake_hub, client, code, grant_type="refresh_token")
    assert (bad.status_code, bad.json()["error"]) == (400, "unsupported_grant_type")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    resp = requests.post(
        f"{fake_hub.api_url}/oauth2/token",
        data=form,
        auth=(client.client_id, client.secret),
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200 and resp.json()["access_token"]


def test_authorize_unknown_client_or_redirect_is_400_page(
    fake_hub: FakeHub, client: Client
) -> None:
    unknown = authorize(fake_hub, Client("service-nobody", "", CALLBACK))
    assert unknown.status_code == 400
    assert "text/html" in unknown.headers["Content-Type"]
    assert "client" in unknown.text
    mismatch = authorize(fake_hub, Client(client.client_id, "", "http://evil.example/cb"))
    assert mismatch.status_code == 400 and "Mismatching redirect URI" in mismatch.text


def test_authorize_error_redirects(fake_hub: FakeHub, client: Client) -> None:
    assert redirect_query(authorize(fake_hub, client, response_type="token"))["error"] == (
        "unsupported_response_type"
    )
    weird = authorize(fake_hub, client, code_challenge="c", code_challenge_method="S512")
    assert redirect_query(weird)["error"] == "invalid_request"
    fake_hub.authorize_error = "access_denied"
    query = redirect_query(authorize(fake_hub, client))
    assert query["error"] == "access_denied" and query["state"] == "state-1"
    assert "code" not in query


def test_authorize_without_login_goes_to_login_then_back(fake_hub: FakeHub, client: Client) -> None:
    fake_hub.default_login = None
    with requests.Session() as browser:
        first = authorize(fake_hub, client, session=browser)
        assert first.status_code == 302
        login = urllib.parse.urlsplit(first.headers["Location"])
        assert login.path == "/hub/login"
        next_url = urllib.parse.parse_qs(login.query)["next"][0]
        assert next_url.startswith("/hub/api/oauth2/authorize?")

        form = browser.get(f"{fake_hub.url}/hub/login", params={"next": next_url}, timeout=TIMEOUT)
        assert form.status_code == 200 and "<form" in form.text

        back = browser.get(
            f"{fake_hub.url}/hub/login",
            params={"user": "new user@x", "next": next_url},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert back.status_code == 302 and back.headers["Location"] == next_url
        assert COOKIE_NAME in browser.cookies

        code = redirect_query(authorize(fake_hub, client, session=browser))["code"]
        model = user_get(fake_hub, exchange(fake_hub, client, code).json()["access_token"]).json()
        assert model["name"] == "new user@x"  # created on login, with default scopes
        assert model["scopes"] == ["access:services"]

        browser.get(f"{fake_hub.url}/hub/logout", timeout=TIMEOUT)
        assert COOKIE_NAME not in browser.cookies
        assert (
            urllib.parse.urlsplit(
                authorize(fake_hub, client, session=browser).headers["Location"]
            ).path
            == "/hub/login"
        )


def test_login_cookie_beats_default_login_and_next_is_checked(
    fake_hub: FakeHub, client: Client
) -> None:
    with requests.Session() as browser:
        for unsafe in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            resp = browser.get(
                f"{fake_hub.url}/hub/login",
                params={"user": "frank", "next": unsafe},
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            assert resp.headers["Location"] == "/hub/"
        code = redirect_query(authorize(fake_hub, client, session=browser))["code"]
    token = exchange(fake_hub, client, code).json()["access_token"]
    assert user_get(fake_hub, token).json()["name"] == "frank"


def test_unknown_user_is_created_by_authorize(fake_hub: FakeHub, client: Client) -> None:
    fake_hub.default_login = "ghost"
    code = get_code(fake_hub, client)
    token = exchange(fake_hub, client, code).json()["access_token"]
    assert user_get(fake_hub, token).json()["name"] == "ghost"


def test_service_env_and_path_callback(fake_hub: FakeHub) -> None:
    env = fake_hub.service_env("mysvc")
    assert env["JUPYTERHUB_API_URL"] == fake_hub.api_url
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/services/mysvc/oauth_callback"
    assert env["JUPYTERHUB_CLIENT_ID"] == "service-mysvc"
    direct = fake_hub.service_env("direct", url="http://127.0.0.1:5555/")
    assert direct["JUPYTERHUB_OAUTH_CALLBACK_URL"] == (
        "http://127.0.0.1:5555/services/direct/oauth_callback"
    )
    assert direct["JUPYTERHUB_SERVICE_URL"] == "http://127.0.0.1:5555/"
    svc = Client(
        env["JUPYTERHUB_CLIENT_ID"],
        env["JUPYTERHUB_API_TOKEN"],
        env["JUPYTERHUB_OAUTH_CALLBACK_URL"],
    )
    resp = authorize(fake_hub, svc)
    assert resp.headers["Location"].startswith("/services/mysvc/oauth_callback?code=")
    assert user_get(fake_hub, svc.secret).json()["kind"] == "service"


def test_fake_hub_env_fixture(fake_hub: FakeHub, fake_hub_env: dict[str, str]) -> None:
    for name in (
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_SERVICE_NAME",
        "JUPYTERHUB_SERVICE_PREFIX",
        "JUPYTERHUB_CLIENT_ID",
        "JUPYTERHUB_OAUTH_CALLBACK_URL",
    ):
        assert os.environ[name] == fake_hub_env[name]
    assert fake_hub_env["JUPYTERHUB_SERVICE_NAME"] == "test-service"
    assert fake_hub_env["JUPYTERHUB_SERVICE_PREFIX"] == "/services/test-service/"
    model = user_get(fake_hub, fake_hub_env["JUPYTERHUB_API_TOKEN"]).json()
    assert (model["kind"], model["name"]) == ("service", "test-service")


def test_docstring_example_with_hubauth(fake_hub: FakeHub, fake_hub_env: dict[str, str]) -> None:
    token = fake_hub.add_user("alice", groups=["staff"])
    auth = hubauth.HubAuth()
    try:
        model = auth.user_for_token(token)
        assert model is not None and model["groups"] == ["staff"]
        assert auth.user_for_token("not-a-token") is None
        fake_hub.fault = "down"
        with pytest.raises(hubauth.HubUnavailable):
            auth.user_for_token(token, use_cache=False)
        assert fake_hub.count("/hub/api/user") == 2
    finally:
        auth.close()


# ---------------------------------------------------------------------- faults


def _hit(hub: FakeHub, path: str, client: Client) -> requests.Response:
    if path == "/hub/api/user":
        return user_get(hub, client.secret, allow_redirects=False)
    return requests.post(
        hub.url + path,
        data={"client_id": client.client_id, "client_secret": client.secret},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("path", ["/hub/api/user", "/hub/api/oauth2/token"])
def test_answer_faults_on_both_endpoints(fake_hub: FakeHub, client: Client, path: str) -> None:
    fake_hub.fault = "status"
    fake_hub.fault_status = 502
    resp = _hit(fake_hub, path, client)
    assert resp.status_code == 502 and resp.json()["status"] == 502

    fake_hub.fault = "garbage"
    resp = _hit(fake_hub, path, client)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()

    fake_hub.fault = "html"
    resp = _hit(fake_hub, path, client)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert resp.text.startswith("<!DOCTYPE html>")

    fake_hub.fault = "redirect"
    resp = _hit(fake_hub, path, client)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/hub/login?next=")

    fake_hub.fault = "wrong_shape"
    assert _hit(fake_hub, path, client).json() == ["not", "a", "model"]
    fake_hub.wrong_shape_body = {"kind": "user"}
    assert _hit(fake_hub, path, client).json() == {"kind": "user"}

    fake_hub.fault = None
    assert _hit(fake_hub, path, client).status_code in (200, 400)
    assert fake_hub.count(path) == 7


def test_faults_spare_other_paths_and_follow_fault_paths(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "status"
    assert requests.get(fake_hub.api_url + "/", timeout=TIMEOUT).status_code == 200
    assert user_get(fake_hub, token).status_code == 503
    fake_hub.fault_paths = {"/hub/api/"}
    assert user_get(fake_hub, token).status_code == 200
    assert requests.get(fake_hub.api_url + "/", timeout=TIMEOUT).status_code == 503


def test_down_refuses_connections_and_comes_back_on_the_same_port(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    url, port = fake_hub.url, fake_hub.port
    with requests.Session() as session:
        assert session.get(f"{fake_hub.api_url}/", timeout=TIMEOUT).ok  # a kept-alive connection
        fake_hub.fault = "down"
        with pytest.raises(requests.ConnectionError):
            session.get(f"{fake_hub.api_url}/", timeout=TIMEOUT)
        with socket.socket() as raw, pytest.raises(ConnectionRefusedError):
            raw.connect(("127.0.0.1", port))
        assert refused(f"{fake_hub.api_url}/user")
        fake_hub.fault = "down"  # setting it again changes nothing
        fake_hub.fault = None
        assert fake_hub.url == url
        assert (
            session.get(
                f"{fake_hub.api_url}/user",
                headers={"Authorization": f"token {token}"},
                timeout=TIMEOUT,
            ).json()["name"]
            == "alice"
        )
    assert fake_hub.count("/hub/api/user") == 1  # refused requests were never received


def test_down_before_start_and_while_stopping() -> None:
    hub = FakeHub()
    hub.fault = "down"
    with hub:
        assert refused(hub.api_url + "/")
        hub.fault = "slow"
        hub.delay = 0.0
        assert requests.get(hub.api_url + "/", timeout=TIMEOUT).ok
        hub.fault = "down"
    assert refused(hub.api_url + "/")


def test_reset_closes_without_an_answer(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "reset"
    with pytest.raises(requests.ConnectionError) as info:
        user_get(fake_hub, token)
    assert "refused" not in str(info.value).lower()
    assert fake_hub.count() == 1
    fake_hub.fault = None
    assert user_get(fake_hub, token).status_code == 200


def test_slow_delays_without_blocking_other_requests(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "slow"
    fake_hub.delay = 0.8
    result: dict[str, Any] = {}

    def slow_call() -> None:
        start = time.monotonic()
        result["status"] = user_get(fake_hub, token).status_code
        result["elapsed"] = time.monotonic() - start

    worker = threading.Thread(target=slow_call)
    worker.start()
    deadline = time.monotonic() + TIMEOUT
    while fake_hub.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    assert requests.get(fake_hub.api_url + "/", timeout=TIMEOUT).ok
    assert time.monotonic() - start < 0.5
    worker.join(TIMEOUT)
    assert result["status"] == 200 and result["elapsed"] >= 0.8


def test_slow_times_out_a_client(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "slow"
    fake_hub.delay = 30
    with pytest.raises(requests.Timeout):
        user_get(fake_hub, token, timeout=0.2)
    fake_hub.fault = None
    assert user_get(fake_hub, token).status_code == 200


def _pending_slow_call(hub: FakeHub, token: str, errors: list[BaseException]) -> threading.Thread:
    """Start a /user call in a thread; return once the hub has received it."""

    def call() -> None:
        try:
            user_get(hub, token)
        except requests.ConnectionError as e:
            errors.append(e)

    hub.reset_counts()
    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + TIMEOUT
    while hub.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return worker


@pytest.mark.parametrize("how", ["down", "stop"])
def test_down_and_stop_end_pending_slow_requests(fake_hub: FakeHub, how: str) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "slow"
    fake_hub.delay = 30
    errors: list[BaseException] = []
    worker = _pending_slow_call(fake_hub, token, errors)
    start = time.monotonic()
    if how == "down":
        fake_hub.fault = "down"
    else:
        fake_hub.stop()
    worker.join(TIMEOUT)
    assert not worker.is_alive() and time.monotonic() - start < 5
    assert len(errors) == 1


@pytest.mark.parametrize("chunked", [True, False])
def test_huge_body(fake_hub: FakeHub, chunked: bool) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "huge"
    fake_hub.huge_chunked = chunked
    resp = user_get(fake_hub, token)
    assert resp.status_code == 200
    assert len(resp.content) == 20 * 1024 * 1024
    assert ("Content-Length" in resp.headers) is not chunked
    fake_hub.huge_size = 1000
    assert len(user_get(fake_hub, token).content) == 1000


def test_huge_body_abandoned_by_the_client(fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "huge"
    with user_get(fake_hub, token, stream=True) as resp:
        assert len(resp.raw.read(1024 * 1024)) == 1024 * 1024
    fake_hub.fault = None
    assert user_get(fake_hub, token).json()["name"] == "alice"


def test_fault_names_are_known() -> None:
    assert frozenset(FAULTS) == {
        "down",
        "slow",
        "status",
        "garbage",
        "html",
        "redirect",
        "wrong_shape",
        "huge",
        "reset",
    }


# ---------------------------------------------------------------------- counting, logs, async


def test_requests_are_counted(fake_hub: FakeHub, client: Client) -> None:
    token = fake_hub.add_user("alice")
    user_get(fake_hub, token)
    user_get(fake_hub, "bad")
    exchange(fake_hub, client, "x")
    requests.get(fake_hub.api_url + "/?token=secret", timeout=TIMEOUT)
    assert fake_hub.requests == [
        ("GET", "/hub/api/user"),
        ("GET", "/hub/api/user"),
        ("POST", "/hub/api/oauth2/token"),
        ("GET", "/hub/api/"),
    ]
    assert fake_hub.count() == 2
    assert fake_hub.count("/hub/api/oauth2/token", method="POST") == 1
    assert fake_hub.count("/hub/api/oauth2/token", method="GET") == 0
    fake_hub.reset_counts()
    assert fake_hub.requests == [] and fake_hub.count() == 0


def test_tokens_never_logged(
    fake_hub: FakeHub, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier, challenge = pkce()
    code = get_code(fake_hub, client, challenge=challenge)
    access = exchange(fake_hub, client, code, verifier).json()["access_token"]
    user_get(fake_hub, access)
    requests.get(f"{fake_hub.api_url}/?token={access}", timeout=TIMEOUT)
    for fault in ("status", "reset", "redirect"):
        fake_hub.fault = fault
        with contextlib.suppress(requests.ConnectionError):
            user_get(fake_hub, access, allow_redirects=False)
    hub_logs = [
        r.getMessage() for r in caplog.records if r.name.startswith(("hubauth.testing", "tornado"))
    ]
    assert any("/hub/api/user" in line for line in hub_logs)
    for secret in (access, client.secret, code, verifier):
        assert not any(secret in line for line in hub_logs)


def test_thread_safe_state_changes(fake_hub: FakeHub) -> None:
    tokens: dict[str, str] = {}

    def worker(n: int) -> None:
        for i in range(20):
            name = f"u{n}-{i}"
            tokens[name] = fake_hub.add_user(name)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    with requests.Session() as session:
        for _ in range(20):
            session.get(fake_hub.api_url + "/", timeout=TIMEOUT)
    for t in threads:
        t.join()
    with requests.Session() as session:
        for name, token in tokens.items():
            resp = session.get(
                f"{fake_hub.api_url}/user",
                headers={"Authorization": f"token {token}"},
                timeout=TIMEOUT,
            )
            assert resp.json()["name"] == name
    assert len(set(tokens.values())) == 80


def test_async_client_from_another_loop(fake_hub: FakeHub) -> None:
    from tornado.httpclient import AsyncHTTPClient

    token = fake_hub.add_user("alice")

    async def main() -> tuple[int, dict[str, Any], int, int, float]:
        http = AsyncHTTPClient(force_instance=True)
        try:
            url = f"{fake_hub.api_url}/user"
            ok = await http.fetch(url, headers={"Authorization": f"bearer {token}"})
            fake_hub.fault = "slow"
            fake_hub.delay = 0.3
            start = time.monotonic()
            slow = await http.fetch(url, headers={"Authorization": f"token {token}"})
            elapsed = time.monotonic() - start
            fake_hub.fault = None
            bad = await http.fetch(url, raise_error=False)
            return ok.code, json.loads(ok.body), slow.code, bad.code, elapsed
        finally:
            http.close()

    code, model, slow_code, bad_code, elapsed = asyncio.run(main())
    assert (code, model["name"], slow_code, bad_code) == (200, "alice", 200, 403)
    assert elapsed >= 0.3
