"""Hub scopes: parse ``base`` / ``base!filter=value`` and decide what a set of scopes grants.

The Hub sends a token's scopes already expanded (roles resolved, implied scopes added), so
the only rules left here are the filters: an unfiltered scope grants every filtered form of
its base, a filtered one never grants the unfiltered base, ``server=u/s`` lies within
``user=u``, and ``group=g`` can be resolved for the model's own user from its ``groups``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .errors import ScopeError

__all__ = ["FILTERS", "Scope", "check_scopes", "parse_scope"]

FILTERS = frozenset({"user", "server", "group", "service"})

_MAX_SCOPE_LENGTH = 1024


class Scope(NamedTuple):
    """A parsed scope: ``base``, and ``filter``/``value`` (both empty when unfiltered)."""

    base: str
    filter: str = ""
    value: str = ""

    def __str__(self) -> str:
        return f"{self.base}!{self.filter}={self.value}" if self.filter else self.base


def _is_base(text: str) -> bool:
    return bool(text) and all(c.isascii() and (c.isalnum() or c in ":_-.") for c in text)


def parse_scope(scope: str) -> Scope:
    """Parse one scope string; raise :class:`ScopeError` saying what is wrong with it."""
    if type(scope) is not str:
        raise ScopeError(f"a scope must be a string, got {type(scope).__name__}")
    return _parse(scope)


@functools.lru_cache(maxsize=4096)
def _parse(scope: str) -> Scope:
    """Memoized (bounded): the same few scopes are parsed on every request, and a ``Scope``
    is immutable. Errors are not cached.
    """
    if not scope or len(scope) > _MAX_SCOPE_LENGTH or scope != scope.strip():
        raise ScopeError(f"malformed scope {scope[:80]!r}: empty, too long or padded with spaces")
    base, bang, rest = scope.partition("!")
    if not _is_base(base):
        raise ScopeError(
            f"malformed scope {scope!r}: the part before '!' may hold only letters, digits and :_-."
        )
    if not bang:
        return Scope(base)
    kind, eq, value = rest.partition("=")
    if kind not in FILTERS:
        raise ScopeError(
            f"malformed scope {scope!r}: unknown filter {kind!r}; "
            f"filters are {', '.join(sorted(FILTERS))} (as in read:users!user=alice)"
        )
    if not eq or not value or any(c.isspace() or c in "!=" for c in value):
        raise ScopeError(f"malformed scope {scope!r}: expected {base}!{kind}=<name>")
    if kind == "server":
        user, slash, server = value.partition("/")
        if not slash or not user or "/" in server:
            raise ScopeError(f"malformed scope {scope!r}: a server filter is server=<user>/<name>")
    return Scope(base, kind, value)


def _parse_held(scopes: Iterable[object]) -> frozenset[Scope]:
    """Parse the scopes a token holds, dropping any that do not parse (they grant nothing).

    Memoized on the tuple of scopes: a cached user's model carries the same list on every
    request. Lists with unhashable junk in them are parsed without the memo.
    """
    as_tuple = tuple(scopes)
    try:
        return _parse_held_tuple(as_tuple)
    except TypeError:
        return _parse_held_tuple.__wrapped__(as_tuple)


@functools.lru_cache(maxsize=1024)
def _parse_held_tuple(scopes: tuple[object, ...]) -> frozenset[Scope]:
    held: set[Scope] = set()
    for s in scopes:
        if type(s) is str:
            try:
                held.add(_parse(s))
            except ScopeError:
                continue
    return frozenset(held)


def _group_grants(req: Scope, held: frozenset[Scope], model: Mapping[str, Any] | None) -> bool:
    """A ``group=`` scope grants a user/server filter only for the model's own user."""
    if model is None or model.get("kind", "user") != "user":
        return False
    name = model.get("name")
    owner = req.value.partition("/")[0] if req.filter == "server" else req.value
    if req.filter not in ("user", "server") or not isinstance(name, str) or owner != name:
        return False
    groups = model.get("groups") or ()
    return any(type(g) is str and Scope(req.base, "group", g) in held for g in groups)


class _Wanted(NamedTuple):
    """A required scope, parsed, with the held scopes beside itself that would grant it."""

    text: str
    scope: Scope
    base: Scope | None  # the unfiltered base (None when the scope is unfiltered)
    owner: Scope | None  # for ``server=u/s``: ``user=u``


def _want(text: str) -> _Wanted:
    scope = parse_scope(text)
    if not scope.filter:
        return _Wanted(text, scope, None, None)
    owner = None
    if scope.filter == "server":
        owner = Scope(scope.base, "user", scope.value.partition("/")[0])
    return _Wanted(text, scope, Scope(scope.base), owner)


@functools.lru_cache(maxsize=256)
def _parse_required(required: frozenset[str]) -> tuple[_Wanted, ...]:
    return tuple(_want(r) for r in required)


def check_scopes(
    required: str | Iterable[str],
    scopes: Iterable[str] | Mapping[str, Any],
) -> set[str]:
    """Return the subset of ``required`` that ``scopes`` grant: truthy when access is allowed.

    ``scopes`` is a list of held scopes, or a Hub model (``{"scopes": [...], "groups": [...],
    "name": ..., "kind": ...}``), in which case group filters resolve for that user.
    ``required`` must parse; malformed ones raise :class:`ScopeError`.
    """
    if type(required) is frozenset:
        wanted = _parse_required(required)  # a service's fixed scopes: parsed once
    else:
        wanted = tuple(_want(r) for r in ((required,) if type(required) is str else required))
    model = scopes if type(scopes) is dict or isinstance(scopes, Mapping) else None
    held_raw = model.get("scopes") if model is not None else scopes
    if type(held_raw) is not list and (
        isinstance(held_raw, (str, bytes)) or not isinstance(held_raw, Iterable)
    ):
        return set()
    held = _parse_held(held_raw)
    granted = set()
    for want in wanted:
        if (
            want.scope in held
            or (want.base is not None and want.base in held)
            or (want.owner is not None and want.owner in held)
            or (want.base is not None and _group_grants(want.scope, held, model))
        ):
            granted.add(want.text)
    return granted
