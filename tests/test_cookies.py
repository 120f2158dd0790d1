"""Cookies: sealing and opening values, rotation, tampering, expiry, headers, fuzzing."""

from __future__ import annotations

import base64
import http.cookies
import json
import logging
import math
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from hubauth._seal import _derive_key
from hubauth.config import load_config
from hubauth.cookies import (
    CLOCK_SKEW,
    MAX_COOKIE_PAIRS,
    MAX_HEADER_SIZE,
    MAX_VALUE_SIZE,
    CookieCodec,
    cookie_attributes,
    cookie_values,
    format_clear_cookie,
    format_set_cookie,
    parse_cookie_header,
    validate_cookie_options,
)
from hubauth.errors import ConfigError

SECRET_A = "826d02cb335c1d0ade206c83ec0f1d8c19192b55e12e67b123988166778516ff"
SECRET_B = "06dcd3d4e603a4b989ff8e5c24311ad173e40a33f0e4083ec14dcb094fee0d5b"
NAME = "service-whoami"
STATE_NAME = "service-whoami-oauth-state"
PAYLOAD = {"token": "hub-access-token-0123456789abcdef"}
STATE = {"state": "s" * 22, "next": "/services/whoami/page?x=1", "verifier": "v" * 64}
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Clock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(clock: Clock) -> CookieCodec:
    return CookieCodec([SECRET_A], clock=clock)


def _raw(value: str) -> bytes:
    return base64.urlsafe_b64decode(value)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


# --- round trip and rotation ---------------------------------------------------------------


def test_round_trip(codec: CookieCodec) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    assert codec.decode("login", NAME, value, max_age=60) == PAYLOAD
    state = codec.encode("oauth-state", STATE_NAME, STATE)
    assert codec.decode("oauth-state", STATE_NAME, state, max_age=600) == STATE


def test_value_is_opaque_and_small(codec: CookieCodec) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    assert PAYLOAD["token"] not in value
    assert PAYLOAD["token"].encode() not in _raw(value)
    assert value.isascii() and all(c in _B64 + "=" for c in value)
    assert len(value) < 400
    assert len(codec.encode("oauth-state", STATE_NAME, STATE)) < 600


def test_each_encoding_differs(codec: CookieCodec) -> None:
    assert codec.encode("login", NAME, PAYLOAD) != codec.encode("login", NAME, PAYLOAD)


def test_decode_with_time_returns_issue_time(codec: CookieCodec, clock: Clock) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    clock.now += 5
    assert codec.decode_with_time("login", NAME, value, max_age=60) == (PAYLOAD, clock.now - 5)


def test_unicode_and_nested_payload(codec: CookieCodec) -> None:
    payload = {"next": "/services/x/caf\u00e9?q=\u2603", "n": [1, 2.5, None, True, {"a": "b"}]}
    value = codec.encode("oauth-state", STATE_NAME, payload)
    assert codec.decode("oauth-state", STATE_NAME, value, max_age=600) == payload


def test_rotation(clock: Clock) -> None:
    old = CookieCodec([SECRET_A], clock=clock)
    rotated = CookieCodec([SECRET_B, SECRET_A], clock=clock)
    new_only = CookieCodec([SECRET_B], clock=clock)

    old_value = old.encode("login", NAME, PAYLOAD)
    # The old key still decrypts after rotation ...
    assert rotated.decode("login", NAME, old_value, max_age=60) == PAYLOAD
    # ... the new key encrypts ...
    new_value = rotated.encode("login", NAME, PAYLOAD)
    assert new_only.decode("login", NAME, new_value, max_age=60) == PAYLOAD
    assert old.decode("login", NAME, new_value, max_age=60) is None
    # ... and once the old secret is retired, its cookies fail.
    assert new_only.decode("login", NAME, old_value, max_age=60) is None


def test_same_secret_same_key_across_instances(clock: Clock) -> None:
    value = CookieCodec([SECRET_A], clock=clock).encode("login", NAME, PAYLOAD)
    assert CookieCodec([SECRET_A], clock=clock).decode("login", NAME, value, max_age=9) == PAYLOAD


def test_single_string_is_one_secret(clock: Clock) -> None:
    value = CookieCodec(SECRET_A, clock=clock).encode("login", NAME, PAYLOAD)
    assert CookieCodec([SECRET_A], clock=clock).decode("login", NAME, value, max_age=9) == PAYLOAD


def test_secrets_from_config(clock: Clock) -> None:
    env = {
        "JUPYTERHUB_API_TOKEN": "service-token-0123",
        "HUBAUTH_COOKIE_SECRET": f"{SECRET_B},{SECRET_A}",
    }
    config = load_config(env)
    rotated = CookieCodec(config.cookie_secret, clock=clock)
    old_value = CookieCodec([SECRET_A], clock=clock).encode("login", NAME, PAYLOAD)
    assert rotated.decode("login", NAME, old_value, max_age=9) == PAYLOAD


@pytest.mark.parametrize("secrets", [["short"], [SECRET_A, "x" * 15], [b"b" * 32], [None]])
def test_bad_secrets_are_config_errors(secrets: Any) -> None:
    with pytest.raises(ConfigError) as info:
        CookieCodec(secrets)
    assert info.value.setting == "cookie_secret"
    assert "HUBAUTH_COOKIE_SECRET" in str(info.value)


def test_repr_hides_secrets() -> None:
    assert SECRET_A not in repr(CookieCodec([SECRET_A]))
    assert _derive_key(SECRET_A).decode() not in repr(CookieCodec([SECRET_A]))


def test_derived_key_is_not_the_secret() -> None:
    key = _derive_key(SECRET_A)
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != _derive_key(SECRET_B)
    assert SECRET_A.encode() not in base64.urlsafe_b64decode(key)


# --- no secret: a random per-process key and one warning -----------------------------------


def test_no_secret_warns_once_per_codec(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    with caplog.at_level(logging.WARNING, logger="hubauth"):
        first = CookieCodec(clock=clock)
        warnings = [r for r in caplog.records if r.name == "hubauth"]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "HUBAUTH_COOKIE_SECRET" in message
        assert "restart" in message and "workers" in message
        assert warnings[0].levelno == logging.WARNING

        value = first.encode("login", NAME, PAYLOAD)
        assert first.decode("login", NAME, value, max_age=60) == PAYLOAD
        assert len([r for r in caplog.records if r.name == "hubauth"]) == 1

        caplog.clear()
        second = CookieCodec((), clock=clock)
        assert len([r for r in caplog.records if r.name == "hubauth"]) == 1
    # The random key is one per process: every codec in this process shares it.
    assert second.decode("login", NAME, value, max_age=60) == PAYLOAD
    assert first.random_key and second.random_key
    # It is not derived from anything a configured codec would know.
    assert CookieCodec([SECRET_A], clock=clock).decode("login", NAME, value, max_age=60) is None


def test_configured_secret_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="hubauth"):
        codec = CookieCodec([SECRET_A])
    assert not caplog.records
    assert not codec.random_key


# --- tampering -----------------------------------------------------------------------------


def _replace_char(value: str, i: int) -> str:
    alternative = "A" if value[i] != "A" else "B"
    return value[:i] + alternative + value[i + 1 :]


def test_every_changed_character_fails(codec: CookieCodec) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    for i in range(len(value)):
        assert codec.decode("login", NAME, _replace_char(value, i), max_age=60) is None, i


def test_non_canonical_base64_fails(codec: CookieCodec) -> None:
    # A last base64 character carries unused bits; changing only those keeps the bytes.
    for size in range(3):
        value = codec.encode("login", NAME, {"token": "x" * (16 * size + 1)})
        if len(_raw(value)) % 3:
            break
    data = value.rstrip("=")
    last = _B64.index(data[-1])
    unused = 0b11 if len(_raw(value)) % 3 == 2 else 0b1111
    twin = data[:-1] + _B64[last ^ unused] + value[len(data) :]
    assert twin != value and _raw(twin) == _raw(value)
    assert codec.decode("login", NAME, value, max_age=60) is not None
    assert codec.decode("login", NAME, twin, max_age=60) is None


# Fernet token layout: version (1) | timestamp (8) | IV (16) | ciphertext (16n) | HMAC (32)
_REGIONS = {
    "version": range(0, 1),
    "timestamp": range(1, 9),
    "iv": range(9, 25),
    "ciphertext-start": range(25, 41),
    "ciphertext-end": range(-48, -32),
    "hmac": range(-32, 0),
}


@pytest.mark.parametrize("region", sorted(_REGIONS))
def test_flipped_bit_in_each_region_fails(codec: CookieCodec, region: str) -> None:
    raw = bytearray(_raw(codec.encode("login", NAME, PAYLOAD)))
    for i in _REGIONS[region]:
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[i] ^= bit
            assert codec.decode("login", NAME, _b64(bytes(changed)), max_age=60) is None


def _tampered(codec: CookieCodec) -> dict[str, str]:
    value = codec.encode("login", NAME, PAYLOAD)
    raw = _raw(value)
    return {
        "empty": "",
        "truncated-1": value[:-1],
        "truncated-4": value[:-4],
        "truncated-half": value[: len(value) // 2],
        "no-padding": value.rstrip("="),
        "lengthened-char": value + "A",
        "lengthened-block": value + "AAAA",
        "lengthened-padding": value + "=",
        "lengthened-raw": _b64(raw + b"\x00" * 16),
        "zeroed-hmac": _b64(raw[:-32] + b"\x00" * 32),
        "dropped-hmac": _b64(raw[:-32]),
        "doubled": value + value,
        "whitespace": f" {value} ",
        "quoted": f'"{value}"',
        "standard-b64": base64.b64encode(raw).decode(),
        "non-ascii": value[:-3] + "\u00e9==",
        "nul": value[:10] + "\x00" + value[11:],
        "huge": value + "A" * MAX_VALUE_SIZE,
        "another-secret": CookieCodec([SECRET_B], clock=codec._clock).encode(
            "login", NAME, PAYLOAD
        ),
        "other-purpose": codec.encode("oauth-state", NAME, PAYLOAD),
        "other-name": codec.encode("login", "service-other", PAYLOAD),
        "other-name-prefix": codec.encode("login", NAME + "x", PAYLOAD),
        "host-prefixed-name": codec.encode("login", "__Host-" + NAME, PAYLOAD),
    }


def test_tamper_table(codec: CookieCodec) -> None:
    for case, value in _tampered(codec).items():
        assert codec.decode("login", NAME, value, max_age=60) is None, case


def test_state_cookie_never_passes_as_login(codec: CookieCodec) -> None:
    state = codec.encode("oauth-state", NAME, PAYLOAD)
    assert codec.decode("login", NAME, state, max_age=60) is None
    login = codec.encode("login", NAME, PAYLOAD)
    assert codec.decode("oauth-state", NAME, login, max_age=60) is None


@pytest.mark.parametrize("value", [None, 12, b"gAAAAA", ["x"], {"a": 1}])
def test_non_string_values_fail(codec: CookieCodec, value: Any) -> None:
    assert codec.decode("login", NAME, value, max_age=60) is None


def test_decode_first_takes_first_valid(codec: CookieCodec) -> None:
    good = codec.encode("login", NAME, {"token": "good"})
    later = codec.encode("login", NAME, {"token": "later"})
    values = ["garbage", codec.encode("oauth-state", NAME, PAYLOAD), good, later]
    assert codec.decode_first("login", NAME, values, max_age=60) == {"token": "good"}
    assert codec.decode_first("login", NAME, ["x", "y"], max_age=60) is None
    assert codec.decode_first("login", NAME, [], max_age=60) is None


# --- the sealed envelope: types checked after decryption -----------------------------------


def _seal(raw_plaintext: bytes, now: float) -> str:
    return Fernet(_derive_key(SECRET_A)).encrypt_at_time(raw_plaintext, int(now)).decode()


def _envelope(now: float, **changes: Any) -> bytes:
    envelope: dict[str, Any] = {"v": 1, "p": "login", "n": NAME, "t": now, "d": {"token": "t"}}
    for key, value in changes.items():
        if value is _DROP:
            envelope.pop(key)
        else:
            envelope[key] = value
    return json.dumps(envelope).encode()


_DROP = object()


def test_well_formed_envelope_accepted(codec: CookieCodec, clock: Clock) -> None:
    value = _seal(_envelope(clock.now), clock.now)
    assert codec.decode("login", NAME, value, max_age=60) == {"token": "t"}


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2},
        {"v": "1"},
        {"v": _DROP},
        {"p": _DROP},
        {"p": None},
        {"p": ["login"]},
        {"n": _DROP},
        {"n": 7},
        {"t": _DROP},
        {"t": "1700000000"},
        {"t": True},
        {"t": None},
        {"t": [1]},
        {"t": 10**400},
        {"d": _DROP},
        {"d": None},
        {"d": ["token"]},
        {"d": "token"},
    ],
    ids=repr,
)
def test_envelope_type_errors(codec: CookieCodec, clock: Clock, changes: dict[str, Any]) -> None:
    value = _seal(_envelope(clock.now, **changes), clock.now)
    # No age limit: only the type checks stand between these and acceptance.
    assert codec.decode("login", NAME, value, max_age=math.inf) is None


@pytest.mark.parametrize(
    "plaintext",
    [b"", b"not json", b"[1, 2]", b'"login"', b"null", b"\xff\xfe", b"NaN", b'{"v":1,'],
    ids=repr,
)
def test_sealed_garbage_fails(codec: CookieCodec, clock: Clock, plaintext: bytes) -> None:
    assert codec.decode("login", NAME, _seal(plaintext, clock.now), max_age=60) is None


@pytest.mark.parametrize("plaintext", [b"[" * 100_000, b"{" * 100_000, b"1" * 5000], ids=len)
def test_sealed_pathological_json_fails(
    codec: CookieCodec, clock: Clock, monkeypatch: pytest.MonkeyPatch, plaintext: bytes
) -> None:
    # Lift the size cap so the JSON parser itself meets the nesting and the huge number.
    monkeypatch.setattr("hubauth.cookies.MAX_VALUE_SIZE", 10**7)
    assert codec.decode("login", NAME, _seal(plaintext, clock.now), max_age=60) is None


def test_non_finite_issue_time_fails(codec: CookieCodec, clock: Clock) -> None:
    for issued in ("Infinity", "-Infinity", "NaN"):
        text = _envelope(clock.now).replace(str(clock.now).encode(), issued.encode())
        assert issued.encode() in text
        assert codec.decode("login", NAME, _seal(text, clock.now), max_age=60) is None


# --- age -----------------------------------------------------------------------------------


def test_expiry_with_fixed_clock(codec: CookieCodec, clock: Clock) -> None:
    value = codec.encode("oauth-state", STATE_NAME, STATE)
    clock.now += 600
    assert codec.decode("oauth-state", STATE_NAME, value, max_age=600) == STATE
    clock.now += 0.01
    assert codec.decode("oauth-state", STATE_NAME, value, max_age=600) is None
    # A longer max_age at decode time is the caller's decision.
    assert codec.decode("oauth-state", STATE_NAME, value, max_age=3600) == STATE


def test_future_issue_time(clock: Clock) -> None:
    writer = CookieCodec([SECRET_A], clock=clock)
    value = writer.encode("login", NAME, PAYLOAD)
    behind = Clock(clock.now - CLOCK_SKEW)
    assert CookieCodec([SECRET_A], clock=behind).decode("login", NAME, value, max_age=60) == PAYLOAD
    behind.now -= 1
    assert CookieCodec([SECRET_A], clock=behind).decode("login", NAME, value, max_age=60) is None


@pytest.mark.parametrize("max_age", [-1, math.nan, -math.inf, "60", None])
def test_bad_max_age_fails_closed(codec: CookieCodec, max_age: Any) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    assert codec.decode("login", NAME, value, max_age=max_age) is None


def test_zero_and_infinite_max_age(codec: CookieCodec, clock: Clock) -> None:
    value = codec.encode("login", NAME, PAYLOAD)
    assert codec.decode("login", NAME, value, max_age=0) == PAYLOAD
    clock.now += 10**9
    assert codec.decode("login", NAME, value, max_age=0) is None
    assert codec.decode("login", NAME, value, max_age=math.inf) == PAYLOAD


def test_broken_clock_fails_closed(clock: Clock) -> None:
    value = CookieCodec([SECRET_A], clock=clock).encode("login", NAME, PAYLOAD)
    broken = CookieCodec([SECRET_A], clock=lambda: math.nan)
    assert broken.decode("login", NAME, value, max_age=60) is None
    with pytest.raises(ValueError, match="non-finite"):
        broken.encode("login", NAME, PAYLOAD)


# --- encode refuses what decode could not return ---------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (["token"], TypeError),
        ("token", TypeError),
        (None, TypeError),
        ({1: "x"}, TypeError),
        ({"x": {1, 2}}, TypeError),
        ({"x": b"bytes"}, TypeError),
        ({"x": object()}, TypeError),
        ({"x": math.nan}, ValueError),
        ({"x": math.inf}, ValueError),
        ({"x": "y" * MAX_VALUE_SIZE}, ValueError),
    ],
    ids=repr,
)
def test_encode_payload_errors(codec: CookieCodec, payload: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        codec.encode("login", NAME, payload)


@pytest.mark.parametrize(
    ("purpose", "name"), [("", NAME), ("login", ""), (None, NAME), ("login", 3)]
)
def test_encode_label_errors(codec: CookieCodec, purpose: Any, name: Any) -> None:
    with pytest.raises(TypeError):
        codec.encode(purpose, name, PAYLOAD)


def test_largest_accepted_payload_round_trips(codec: CookieCodec) -> None:
    payload = {"x": "y" * 2800}
    value = codec.encode("login", NAME, payload)
    assert len(value) <= MAX_VALUE_SIZE
    assert codec.decode("login", NAME, value, max_age=60) == payload


# --- cookie options ------------------------------------------------------------------------


def test_validate_cookie_options_normalises() -> None:
    options = {
        "Domain": "example.org",
        "SameSite": "strict",
        "secure": True,
        "http-only": True,
        "expires_days": 1.5,
    }
    result = validate_cookie_options(options)
    assert result == {
        "domain": "example.org",
        "samesite": "Strict",
        "secure": True,
        "httponly": True,
        "max_age": 129600,
    }
    assert validate_cookie_options(result) == result
    assert validate_cookie_options(None) == {}
    assert validate_cookie_options({}) == {}
    assert validate_cookie_options({"expires_days": None}) == {"max_age": None}
    assert validate_cookie_options({"max-age": 30}) == {"max_age": 30}
    # false only restates the default: Secure and HttpOnly are never switched off by options
    assert validate_cookie_options({"secure": False, "httponly": False}) == {}
    assert validate_cookie_options({"samesite": None, "domain": ""}) == {}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"partitioned": True}, "unknown cookie option"),
        ({"path": "/"}, "JUPYTERHUB_SERVICE_PREFIX"),
        ({"expires": 123}, "expires_days or max_age"),
        ({"samesite": "sideways"}, "Lax, Strict or None"),
        ({"samesite": 1}, "Lax, Strict or None"),
        ({"domain": "a;b"}, "host name"),
        ({"domain": "evil.org; Path=/"}, "host name"),
        ({"domain": 5}, "host name"),
        ({"secure": "yes"}, "true or false"),
        ({"httponly": 1}, "true or false"),
        ({"max_age": -1}, ">= 0"),
        ({"expires_days": math.inf}, ">= 0"),
        ({"max_age": "60"}, "number"),
        ({"max_age": True}, "number"),
        ({"max_age": 60, "expires_days": 1}, "not both"),
        (["domain"], "JSON object"),
        ({1: "x"}, "strings"),
    ],
    ids=repr,
)
def test_bad_cookie_options(options: Any, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_cookie_options(options)
    assert info.value.setting == "cookie_options"
    assert "JUPYTERHUB_COOKIE_OPTIONS" in str(info.value)
    assert words in str(info.value)


# --- Set-Cookie ----------------------------------------------------------------------------


def _attributes(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = header.split("; ")
    attrs = {}
    for part in rest:
        key, _, value = part.partition("=")
        assert key not in attrs, f"duplicate attribute {key}"
        attrs[key] = value
    return first, attrs


def test_set_cookie_defaults() -> None:
    header = format_set_cookie("service-x", "abc", path="/services/x/", secure=False, max_age=600)
    assert header == "service-x=abc; Path=/services/x/; Max-Age=600; HttpOnly; SameSite=Lax"
    header = format_set_cookie("service-x", "abc", path="/services/x/", secure=True)
    assert header == "service-x=abc; Path=/services/x/; Secure; HttpOnly; SameSite=Lax"


def test_set_cookie_parses_with_stdlib() -> None:
    header = format_set_cookie(
        "service-x", "abc==", path="/x/", secure=True, max_age=60, options={"domain": "hub.org"}
    )
    morsel = http.cookies.SimpleCookie(header)["service-x"]
    assert morsel.value == "abc=="
    assert morsel["path"] == "/x/"
    assert morsel["max-age"] == "60"
    assert morsel["domain"] == "hub.org"
    assert morsel["secure"] and morsel["httponly"]
    assert morsel["samesite"] == "Lax"


def test_host_prefix_rules() -> None:
    options = {"domain": "example.org"}
    header = format_set_cookie(
        "__Host-service-x", "v", path="/services/x/", secure=False, options=options
    )
    first, attrs = _attributes(header)
    assert first == "__Host-service-x=v"
    assert attrs["Path"] == "/"
    assert "Secure" in attrs and "Domain" not in attrs

    cleared = format_clear_cookie(
        "__Host-service-x", path="/services/x/", secure=False, options=options
    )
    first, attrs = _attributes(cleared)
    assert first == "__Host-service-x="
    assert attrs["Path"] == "/" and "Secure" in attrs and "Domain" not in attrs
    assert attrs["Max-Age"] == "0"


def test_secure_prefix_forces_secure() -> None:
    header = format_set_cookie("__Secure-x", "v", path="/x/", secure=False)
    assert "; Secure" in header and "Path=/x/" in header
    assert "; Secure" in format_clear_cookie("__Secure-x", path="/x/", secure=False)


def test_clear_cookie() -> None:
    header = format_clear_cookie(
        "service-x", path="/services/x/", secure=True, options={"domain": "hub.org", "max_age": 99}
    )
    first, attrs = _attributes(header)
    assert first == "service-x="
    assert attrs == {
        "Path": "/services/x/",
        "Domain": "hub.org",
        "Max-Age": "0",
        "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
        "Secure": "",
        "HttpOnly": "",
        "SameSite": "Lax",
    }


def test_options_apply() -> None:
    options = {"domain": "hub.org", "samesite": "Strict", "secure": True}
    header = format_set_cookie("c", "v", path="/p/", secure=False, max_age=5, options=options)
    _, attrs = _attributes(header)
    assert attrs["Domain"] == "hub.org"
    assert attrs["SameSite"] == "Strict"
    assert "Secure" in attrs and "HttpOnly" in attrs
    assert attrs["Max-Age"] == "5"


def test_samesite_none_implies_secure() -> None:
    header = format_set_cookie("c", "v", path="/", secure=False, options={"samesite": "None"})
    _, attrs = _attributes(header)
    assert attrs["SameSite"] == "None" and "Secure" in attrs


def test_options_cannot_switch_off_secure_or_httponly() -> None:
    options = {"secure": False, "httponly": False}
    _, attrs = _attributes(format_set_cookie("c", "v", path="/", secure=True, options=options))
    assert "Secure" in attrs and "HttpOnly" in attrs


def test_http_only_can_be_off_for_script_readable_cookies() -> None:
    header = format_set_cookie("_xsrf", "v", path="/", secure=False, http_only=False)
    assert "HttpOnly" not in header
    header = format_set_cookie(
        "_xsrf", "v", path="/", secure=False, http_only=False, options={"httponly": True}
    )
    assert "HttpOnly" in header


@pytest.mark.parametrize(
    "options",
    [{"expires_days": 30}, {"max_age": 10**7}, {"expires_days": None}, {"max_age": None}],
    ids=repr,
)
def test_options_never_stretch_the_state_cookie(options: dict[str, Any]) -> None:
    header = format_set_cookie(
        STATE_NAME,
        "v",
        path="/services/x/",
        secure=False,
        max_age=600,
        options=options,
        stretchable=False,
    )
    _, attrs = _attributes(header)
    assert attrs["Max-Age"] == "600"
    assert "Expires" not in attrs


def test_options_set_the_login_cookie_lifetime() -> None:
    def max_age(options: dict[str, Any]) -> str | None:
        header = format_set_cookie(NAME, "v", path="/", secure=False, max_age=600, options=options)
        return _attributes(header)[1].get("Max-Age")

    assert max_age({}) == "600"
    assert max_age({"expires_days": 1}) == "86400"
    assert max_age({"max_age": 30}) == "30"
    assert max_age({"expires_days": None}) is None  # a session cookie


def test_cookie_attributes_object() -> None:
    attrs = cookie_attributes("c", path="/p/", secure=False, max_age=60.7)
    assert attrs.max_age == 60
    assert attrs.http_only and not attrs.secure and attrs.same_site == "Lax"
    assert attrs.domain is None and not attrs.clear
    assert attrs.header("c", "v") == "c=v; Path=/p/; Max-Age=60; HttpOnly; SameSite=Lax"


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("bad name", "v", "/"),
        ("bad;name", "v", "/"),
        ("", "v", "/"),
        ("n\u00e9", "v", "/"),
        ("n", "v;Domain=evil.org", "/"),
        ("n", "v\r\nSet-Cookie: x=y", "/"),
        ("n", "v v", "/"),
        ("n", "\u00e9", "/"),
        ("n", "v", "relative/"),
        ("n", "v", "/x;Domain=evil.org"),
        ("n", "v", "/x\r\n"),
        ("n", "v", ""),
    ],
    ids=repr,
)
def test_set_cookie_refuses_header_injection(name: str, value: str, path: str) -> None:
    with pytest.raises(ValueError):
        format_set_cookie(name, value, path=path, secure=False)


@pytest.mark.parametrize(
    ("max_age", "error"),
    [(-1, ValueError), (math.inf, ValueError), ("60", TypeError), (True, TypeError)],
)
def test_set_cookie_bad_max_age(max_age: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        format_set_cookie("n", "v", path="/", secure=False, max_age=max_age)


def test_set_cookie_bad_options_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        format_set_cookie("n", "v", path="/", secure=False, options={"path": "/"})


def test_encoded_value_fits_in_set_cookie(codec: CookieCodec) -> None:
    value = codec.encode("oauth-state", STATE_NAME, STATE)
    header = format_set_cookie(
        STATE_NAME, value, path="/services/whoami/", secure=True, max_age=600
    )
    assert len(header) < 1024
    parsed = parse_cookie_header(f"{STATE_NAME}={value}")
    assert codec.decode("oauth-state", STATE_NAME, parsed[0][1], max_age=600) == STATE


# --- the Cookie header ---------------------------------------------------------------------


def test_parse_keeps_duplicates_in_order() -> None:
    header = "a=1; b=2; a=3;a=4"
    assert parse_cookie_header(header) == [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]
    assert cookie_values(header, "a") == ["1", "3", "4"]
    assert cookie_values(header, "missing") == []


def test_parse_values_and_quotes() -> None:
    header = 'q="quoted"; eq=a=b==; empty=; sp = spaced ; "half=x'
    assert parse_cookie_header(header) == [
        ("q", "quoted"),
        ("eq", "a=b=="),
        ("empty", ""),
        ("sp", "spaced"),
        ('"half', "x"),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        (";;;", []),
        ("junk", []),
        ("=value", []),
        ("  =value; a=1", [("a", "1")]),
        ("a=1;;; junk ;b=2", [("a", "1"), ("b", "2")]),
        ("a=\x00\x01; b=\u2603", [("a", "\x00\x01"), ("b", "\u2603")]),
        ('a="', [("a", '"')]),
        ('a=""', [("a", "")]),
    ],
    ids=repr,
)
def test_parse_garbage(header: str, expected: list[tuple[str, str]]) -> None:
    assert parse_cookie_header(header) == expected


@pytest.mark.parametrize("header", [None, b"a=1", 5, ["a=1"]])
def test_parse_non_strings(header: Any) -> None:
    assert parse_cookie_header(header) == []


def test_parse_is_bounded() -> None:
    many = "; ".join(f"c{i}=v" for i in range(MAX_COOKIE_PAIRS * 3))
    assert len(parse_cookie_header(many)) == MAX_COOKIE_PAIRS
    huge = "a=" + "x" * (MAX_HEADER_SIZE * 4) + "; b=2"
    pairs = parse_cookie_header(huge)
    assert [n for n, _ in pairs] == ["a"]
    assert len(pairs[0][1]) < MAX_HEADER_SIZE


def test_first_valid_of_several_same_named_cookies(codec: CookieCodec) -> None:
    stale = CookieCodec([SECRET_B]).encode("login", NAME, {"token": "stale"})
    fresh = codec.encode("login", NAME, {"token": "fresh"})
    header = f"{NAME}={stale}; other=1; {NAME}=garbage; {NAME}={fresh}"
    values = cookie_values(header, NAME)
    assert codec.decode_first("login", NAME, values, max_age=60) == {"token": "fresh"}


# --- fuzzing -------------------------------------------------------------------------------

_FUZZ_CODEC = CookieCodec([SECRET_A])
_FUZZ_VALID = _FUZZ_CODEC.encode("login", NAME, PAYLOAD)


@given(st.text(max_size=600))
def test_fuzz_text_never_decodes(value: str) -> None:
    assert _FUZZ_CODEC.decode("login", NAME, value, max_age=math.inf) is None


@given(st.binary(max_size=600))
def test_fuzz_bytes_never_decode(raw: bytes) -> None:
    for value in (raw.decode("latin-1"), _b64(raw), "gAAAAA" + _b64(raw)):
        assert _FUZZ_CODEC.decode("login", NAME, value, max_age=math.inf) is None


@given(st.text(alphabet=_B64 + "=", min_size=90, max_size=500))
def test_fuzz_token_alphabet_never_decodes(value: str) -> None:
    assert _FUZZ_CODEC.decode("login", NAME, "gAAAAA" + value, max_age=math.inf) is None


@given(
    st.integers(0, len(_FUZZ_VALID) - 1),
    st.text(alphabet=_B64 + "=\u00e9 ;", min_size=0, max_size=3),
)
def test_fuzz_mutated_token_never_decodes(position: int, replacement: str) -> None:
    mutated = _FUZZ_VALID[:position] + replacement + _FUZZ_VALID[position + 1 :]
    result = _FUZZ_CODEC.decode("login", NAME, mutated, max_age=math.inf)
    if mutated == _FUZZ_VALID:
        assert result == PAYLOAD
    else:
        assert result is None


@given(st.text(max_size=2000))
def test_fuzz_parse_cookie_header(header: str) -> None:
    pairs = parse_cookie_header(header)
    assert len(pairs) <= MAX_COOKIE_PAIRS
    for name, value in pairs:
        assert name and name == name.strip()
        assert ";" not in name and ";" not in value and "=" not in name


@given(st.binary(max_size=2000))
def test_fuzz_parse_cookie_header_bytes_as_latin1(raw: bytes) -> None:
    # WSGI hands over headers as latin-1 decoded str.
    parse_cookie_header(raw.decode("latin-1"))
