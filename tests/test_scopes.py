"""Scope rules (SPEC §4), including the past "deny was not a deny" bugs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubauth import HubAuth, ScopeError, check_scopes
from hubauth.scopes import Scope, parse_scope

from .conftest import TOKEN


def test_parse() -> None:
    assert parse_scope("read:users") == Scope("read:users")
    assert parse_scope("read:users!user=alice") == Scope("read:users", "user", "alice")
    assert parse_scope("access:servers!server=alice/lab") == Scope(
        "access:servers", "server", "alice/lab"
    )
    assert str(parse_scope("read:groups!group=staff")) == "read:groups!group=staff"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " read:users",
        "read:users ",
        "read users",
        "read:users!",
        "read:users!user",
        "read:users!user=",
        "read:users!colour=red",
        "!user=alice",
        "read:users!user=a=b",
        "read:users!user=a!b",
        "access:servers!server=alice",
        "access:servers!server=alice/lab/x",
        "access:servers!server=/lab",
        "x" * 2000,
        "réad:users",
    ],
)
def test_malformed_scopes_raise_clear_errors(bad: str) -> None:
    with pytest.raises(ScopeError, match="scope"):
        parse_scope(bad)
    with pytest.raises(ScopeError):
        check_scopes(bad, ["read:users"])


def test_non_string_scope_is_an_error() -> None:
    with pytest.raises(ScopeError):
        parse_scope(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("required", "held", "granted"),
    [
        ("read:users", ["read:users"], True),
        ("read:users!user=alice", ["read:users"], True),
        ("read:users", ["read:users!user=alice"], False),
        ("read:users!user=alice", ["read:users!user=alice"], True),
        ("read:users!user=alice", ["read:users!user=bob"], False),
        ("access:servers!server=alice/lab", ["access:servers!user=alice"], True),
        ("access:servers!server=alice/lab", ["access:servers!user=bob"], False),
        ("access:servers!server=alice/lab", ["access:servers!server=alice/"], False),
        ("access:servers!user=alice", ["access:servers!server=alice/lab"], False),
        ("access:services!service=grader", ["access:services"], True),
        ("access:services!service=grader", ["access:services!service=other"], False),
        ("access:services", ["access:services!service=grader"], False),
        ("read:groups!group=staff", ["read:groups!group=staff"], True),
        ("read:groups!group=staff", ["read:groups"], True),
        ("read:groups!group=staff", ["read:groups!group=other"], False),
        ("read:users", ["admin:users"], False),  # the Hub expands; we do not guess
        ("read:users", [], False),
        ("read:users", ["garbage!!", "read:users"], True),
    ],
)
def test_filter_rules(required: str, held: list[str], granted: bool) -> None:
    assert bool(check_scopes(required, held)) is granted


def test_returns_the_granted_subset() -> None:
    required = {"read:users", "read:groups", "access:services!service=x"}
    assert check_scopes(required, ["read:users", "access:services"]) == {
        "read:users",
        "access:services!service=x",
    }


def test_group_filter_resolves_for_the_models_own_user() -> None:
    alice = {
        "kind": "user",
        "name": "alice",
        "groups": ["staff"],
        "scopes": ["read:users!group=staff"],
    }
    assert check_scopes("read:users!user=alice", alice) == {"read:users!user=alice"}
    assert check_scopes("read:users!server=alice/lab", alice)
    assert not check_scopes("read:users!user=bob", alice)  # bob's groups are unknown: deny
    bob = {"kind": "user", "name": "bob", "groups": [], "scopes": ["read:users!group=staff"]}
    assert not check_scopes("read:users!user=bob", bob)
    svc = {
        "kind": "service",
        "name": "alice",
        "groups": ["staff"],
        "scopes": ["read:users!group=staff"],
    }
    assert not check_scopes("read:users!user=alice", svc)


def test_model_with_bad_scopes_field_grants_nothing() -> None:
    for scopes in (None, "read:users", 5, [5, None]):
        assert check_scopes("read:users", {"name": "a", "scopes": scopes}) == set()


def test_hubauth_check_scopes_uses_the_model() -> None:
    auth = HubAuth(api_token=TOKEN)
    model = {"kind": "user", "name": "a", "groups": [], "scopes": ["access:services"]}
    assert auth.check_scopes("access:services!service=x", model)
    assert not auth.check_scopes("admin:users", model)


@given(st.text(max_size=80))
def test_fuzz_parse_never_raises_anything_but_scope_error(text: str) -> None:
    try:
        parsed = parse_scope(text)
    except ScopeError:
        return
    assert str(parsed) == text


@given(st.lists(st.text(max_size=40), max_size=8), st.sampled_from(["read:users", "x!user=a"]))
def test_fuzz_held_scopes_never_crash(held: list[str], required: str) -> None:
    result = check_scopes(required, held)
    assert result <= {required}


@pytest.mark.parametrize("bad", [["read:users"], {"a": 1}, None, b"read:users"])
def test_non_string_scopes_are_scope_errors_even_unhashable(bad: object) -> None:
    with pytest.raises(ScopeError, match="must be a string"):
        parse_scope(bad)  # type: ignore[arg-type]


def test_held_scopes_with_unhashable_junk_still_check() -> None:
    model = {"name": "a", "scopes": ["read:users", {"not": "a scope"}, ["x"]]}
    assert check_scopes("read:users", model) == {"read:users"}
    assert not check_scopes("admin:users", model)
