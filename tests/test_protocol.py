"""The I/O-free wire protocol: what each Hub reply means, and what never gets sent."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubauth import HubAuthError, HubResponseError, OAuthError, ServiceTokenRejected
from hubauth import _protocol as p

API = "http://127.0.0.1:8081/hub/api"
REQ = p.user_request(API, "tok-123456")


def reply(status: int, body: object = b"", **headers: str) -> p.HubResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return p.HubResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, data)


def test_user_request_carries_the_token_only_in_the_header() -> None:
    assert REQ.method == "GET"
    assert REQ.url == f"{API}/user"
    assert REQ.headers["Authorization"] == "token tok-123456"
    assert "tok-123456" not in repr(REQ)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("abc123", "abc123"),
        ("  abc123 \n", "abc123"),
        ("", None),
        ("   ", None),
        ("tök", None),
        ("a b", None),
        ("a\r\nX-Injected: 1", None),
        ("x" * (p.MAX_TOKEN_LENGTH + 1), None),
        (None, None),
        (b"abc", None),
    ],
)
def test_clean_token(raw: object, clean: str | None) -> None:
    assert p.clean_token(raw) == clean


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("token abc", "abc"),
        ("Token abc", "abc"),
        ("BEARER abc", "abc"),
        ("bearer  abc ", "abc"),
        ("token", None),
        ("token ", None),
        ("Basic YWxhZGRpbjpvcGVu", None),
        ("", None),
        (None, None),
        ("token " + "x" * 10_000, None),
        ("token a b", None),
    ],
)
def test_authorization_header(header: str | None, token: str | None) -> None:
    assert p.token_from_authorization(header) == token


def test_200_is_a_model() -> None:
    model = {"kind": "user", "name": "alice", "scopes": ["read:users"], "admin": False}
    assert p.read_user_reply(REQ, reply(200, model)) == model


def test_kind_defaults_to_user() -> None:
    assert p.read_user_reply(REQ, reply(200, {"name": "a", "scopes": []}))["kind"] == "user"


@pytest.mark.parametrize("status", [401, 403])
def test_unknown_token_is_none(status: int) -> None:
    assert p.read_user_reply(REQ, reply(status, {"status": status})) is None


@pytest.mark.parametrize(
    ("resp", "needle"),
    [
        (reply(500, b"oops"), "500"),
        (reply(502, b""), "502"),
        (reply(503, b"", content_type="text/html"), "503"),
        (reply(404, {"message": "nope"}), "404"),
        (reply(302, b"", location="http://127.0.0.1:8081/hub/login?next=x"), "redirect"),
        (reply(200, b"<html>login</html>", content_type="text/html"), "HTML"),
        (reply(200, b"\xff\xfe"), "not JSON"),
        (reply(200, b"not json"), "not JSON"),
        (reply(200, [1, 2]), "not an object"),
        (reply(200, {"scopes": []}), "without name"),
        (reply(200, {"name": "a"}), "without scopes"),
        (reply(200, {"name": 5, "scopes": []}), "wrong type"),
        (reply(200, {"name": "a", "scopes": "read:users"}), "wrong type"),
    ],
)
def test_bad_replies_are_named_errors(resp: p.HubResponse, needle: str) -> None:
    with pytest.raises(HubResponseError, match=needle) as e:
        p.read_user_reply(REQ, resp)
    assert API in str(e.value)
    assert e.value.url == REQ.url
    assert e.value.status == resp.status


def test_redirect_error_does_not_echo_query() -> None:
    with pytest.raises(HubResponseError) as e:
        p.read_user_reply(REQ, reply(302, b"", location="http://x/login?token=secret"))
    assert "secret" not in str(e.value)


@given(st.integers(100, 599), st.binary(max_size=200))
def test_fuzz_replies_give_model_none_or_named_error(status: int, body: bytes) -> None:
    try:
        out = p.read_user_reply(REQ, reply(status, body))
    except HubAuthError:
        return
    assert out is None or (isinstance(out["name"], str) and isinstance(out["scopes"], list))


@given(
    st.dictionaries(
        st.sampled_from(["name", "scopes", "kind", "x"]),
        st.one_of(st.none(), st.text(), st.lists(st.text()), st.integers()),
    )
)
def test_fuzz_json_models(model: dict[str, object]) -> None:
    try:
        out = p.read_user_reply(REQ, reply(200, model))
    except HubResponseError:
        return
    assert out is not None and isinstance(out["name"], str)


# ---------------------------------------------------------------- OAuth pieces


def test_pkce_pair_is_s256() -> None:
    verifier, challenge = p.pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert p.pkce_pair()[0] != verifier


def test_authorize_url() -> None:
    url = p.authorize_url(
        "/hub/api/oauth2/authorize",
        client_id="service-x",
        redirect_uri="/services/x/oauth_callback",
        state="st",
        code_challenge="ch",
    )
    path, _, query = url.partition("?")
    assert path == "/hub/api/oauth2/authorize"
    assert urllib.parse.parse_qs(query) == {
        "client_id": ["service-x"],
        "redirect_uri": ["/services/x/oauth_callback"],
        "response_type": ["code"],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }


def _token_req() -> p.HubRequest:
    return p.token_request(
        f"{API}/oauth2/token",
        client_id="service-x",
        client_secret="secret-123456",
        code="the-code",
        redirect_uri="/services/x/oauth_callback",
        code_verifier="verifier",
    )


def test_token_request_form() -> None:
    req = _token_req()
    assert req.method == "POST" and not req.idempotent
    form = urllib.parse.parse_qs((req.body or b"").decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["client_secret"] == ["secret-123456"]
    assert form["code_verifier"] == ["verifier"]
    assert "secret-123456" not in repr(req)


def test_token_reply() -> None:
    assert (
        p.read_token_reply(_token_req(), reply(200, {"access_token": "at", "token_type": "Bearer"}))
        == "at"
    )
    with pytest.raises(HubResponseError, match="access_token"):
        p.read_token_reply(_token_req(), reply(200, {"token_type": "Bearer"}))


def test_invalid_client_names_the_client_secret() -> None:
    with pytest.raises(
        ServiceTokenRejected, match="JUPYTERHUB_API_TOKEN is also the client secret"
    ):
        p.read_token_reply(_token_req(), reply(400, {"error": "invalid_client"}))


def test_redirect_mismatch_names_the_callback_variable() -> None:
    resp = reply(400, {"error": "invalid_request", "error_description": "Mismatching redirect URI"})
    with pytest.raises(OAuthError, match="JUPYTERHUB_OAUTH_CALLBACK_URL"):
        p.read_token_reply(_token_req(), resp)


def test_token_endpoint_5xx() -> None:
    with pytest.raises(HubResponseError, match="503"):
        p.read_token_reply(_token_req(), reply(503, b"down"))


@given(st.text(max_size=60))
def test_fuzz_clean_token_accepts_exactly_printable_ascii(text: str) -> None:
    stripped = text.strip()
    expected = bool(stripped) and all("!" <= c <= "~" for c in stripped)
    assert (p.clean_token(text) is not None) is expected
