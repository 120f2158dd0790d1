"""The proxy's header parsers, fuzzed: identity values, Location rewriting, cookie and query
filtering, hop-by-hop headers. Each property is what keeps an attacker's input in its lane.
"""

from __future__ import annotations

import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httputil import HTTPHeaders

from hubauth.proxy._headers import (
    encode_value,
    hop_by_hop,
    identity_headers,
    is_identity_header,
    make_cookie_filter,
    request_headers,
    response_headers,
    rewrite_location,
)
from hubauth.proxy._http import drop_token_param

FUZZ = settings(max_examples=300, deadline=None)
UPSTREAM = "http://127.0.0.1:8501"
PREFIX = "/services/app/"
is_credential = make_cookie_filter(["service-app"], ["service-app-oauth-state-"])


@FUZZ
@given(st.text())
def test_identity_values_cannot_break_a_header(name: str) -> None:
    """Attack: header injection through a Hub user name. Whatever the name, the value is
    printable ASCII without a comma (one header, one list item) and decodes back to it.
    """
    value = encode_value(name)
    assert all(0x21 <= ord(c) <= 0x7E for c in value)
    assert "," not in value
    assert urllib.parse.unquote(value) == name


@FUZZ
@given(st.text(), st.lists(st.text(), max_size=5))
def test_groups_split_back_into_the_groups(name: str, groups: list[str]) -> None:
    headers = dict(identity_headers({"kind": "user", "name": name, "groups": groups}))
    got = headers["X-Forwarded-Groups"]
    parts = [urllib.parse.unquote(g) for g in got.split(",")] if got else []
    assert parts == groups or (groups == [""] and parts == [])


@FUZZ
@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=200))
def test_a_rewritten_location_never_points_elsewhere(location: str) -> None:
    """A Location the app sends is either left as it was, or becomes a path on the public
    origin: the rewrite never invents a host the app did not name.
    """
    for strip in (False, True):
        out = rewrite_location(location, upstream=UPSTREAM, prefix=PREFIX, strip_prefix=strip)
        if out != location:
            parts = urllib.parse.urlsplit(out)
            assert not parts.scheme and not parts.netloc
            assert out.startswith("/") and not out.startswith("//")


@FUZZ
@given(st.sampled_from(["", "/x", "/services/app/y", "/a?b=c#d"]), st.booleans())
def test_the_apps_own_address_becomes_public(path: str, strip: bool) -> None:
    for host in ("127.0.0.1", "localhost"):
        out = rewrite_location(
            f"http://{host}:8501{path}", upstream=UPSTREAM, prefix=PREFIX, strip_prefix=strip
        )
        assert out.startswith("/") and "8501" not in out


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=30),
            st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
        ),
        max_size=10,
    )
)
def test_credential_cookies_never_reach_the_app(pairs: list[tuple[str, str]]) -> None:
    pairs = [(n, v.replace(";", "")) for n, v in pairs]
    cookie = "; ".join(
        f"{n}={v}" for n, v in [*pairs, ("service-app", "x"), ("jupyterhub-session-id", "y")]
    )
    out = request_headers(
        HTTPHeaders({"Cookie": cookie, "Host": "h"}),
        remote_ip="1.2.3.4",
        scheme="http",
        prefix=PREFIX,
        strip_prefix=False,
        identity=[],
        forward_credentials=False,
        is_credential=is_credential,
    )
    sent = [p.split("=", 1)[0].strip() for p in out.get("Cookie", "").split(";") if p.strip()]
    assert not any(is_credential(n) for n in sent)
    assert "service-app" not in sent and "jupyterhub-session-id" not in sent


SPOOFABLE = [
    "X-Forwarded-User",
    "X_Forwarded_User",
    "x-forwarded-groups",
    "X-FORWARDED-HUB-MODEL",
    "x-forwarded-access-token",
    "X-Forwarded-Service",
    "X-Other",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(SPOOFABLE), st.text(alphabet="abc", max_size=5)))
def test_client_identity_headers_are_always_replaced(spoofed: dict[str, str]) -> None:
    identity = identity_headers({"kind": "user", "name": "ann", "groups": ["g"]})
    out = request_headers(
        HTTPHeaders({**spoofed, "Host": "h"}),
        remote_ip="1.2.3.4",
        scheme="http",
        prefix=PREFIX,
        strip_prefix=False,
        identity=identity,
        forward_credentials=False,
        is_credential=is_credential,
    )
    for name, _ in out.get_all():
        if is_identity_header(name):
            assert (name, out[name]) in identity
    assert out["X-Forwarded-User"] == "ann"


@FUZZ
@given(
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12), max_size=4)
)
def test_hop_by_hop_headers_named_in_connection_stop(names: list[str]) -> None:
    headers = HTTPHeaders({"Connection": ", ".join(names), "Keep-Alive": "1", "X-Keep": "k"})
    for n in names:
        headers[n] = "v"
    drop = hop_by_hop(headers)
    out = dict(response_headers(headers, relocate=lambda v: v, is_credential=is_credential))
    for n in names:
        assert n.lower() in drop
        assert not any(k.lower() == n.lower() for k in out)
    assert "Keep-Alive" not in out
    if "x-keep" not in {n.lower() for n in names}:
        assert out["X-Keep"] == "k"


@FUZZ
@given(st.text(alphabet="abc=&%+", max_size=40), st.text(alphabet="abcdef0123", min_size=1))
def test_only_the_authenticating_token_leaves_the_query(query: str, token: str) -> None:
    with_token = f"{query}&token={urllib.parse.quote_plus(token)}" if query else f"token={token}"
    out = drop_token_param(with_token, token)
    assert token not in urllib.parse.parse_qs(out).get("token", [])
    assert drop_token_param(query, token) == query or "token=" in query
