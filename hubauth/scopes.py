"""Hub scopes: parse ``base`` / ``base!filter=value`` and decide what a set of scopes grants.

The Hub sends a token's scopes already expanded (roles resolved, implied scopes added), so
the only rules left here are the filters: an unfiltered scope grants every filtered form of
its base, a filtered one never grants the unfiltered base, ``server=u/s`` lies within
``user=u``, and ``group=g`` can be resolved for the model's own user from its ``groups``.
"""

from __future__ import annotations

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
    if not isinstance(scope, str):
        raise ScopeError(f"a scope must be a string, got {type(scope).__name__}")
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


def _parse_held(scopes: Iterable[object]) -> set[Scope]:
    """Parse the scopes a token holds, dropping any that do not parse (they grant nothing)."""
    held: set[Scope] = set()
    for s in scopes:
        if isinstance(s, str):
            try:
                held.add(parse_scope(s))
            except ScopeError:
                continue
    return held


def _grants(req: Scope, held: set[Scope], groups: frozenset[str], user: str) -> bool:
    if Scope(req.base) in held or req in held:
        return True
    if not req.filter:
        return False
    owner = ""
    if req.filter == "server":
        owner = req.value.partition("/")[0]
        if Scope(req.base, "user", owner) in held:
            return True
    elif req.filter == "user":
        owner = req.value
    # A group filter can only be resolved for the model's own user, whose groups we know.
    return (
        bool(owner) and owner == user and any(Scope(req.base, "group", g) in held for g in groups)
    )


def check_scopes(
    required: str | Iterable[str],
    scopes: Iterable[str] | Mapping[str, Any],
) -> set[str]:
    """Return the subset of ``required`` that ``scopes`` grant: truthy when access is allowed.

    ``scopes`` is a list of held scopes, or a Hub model (``{"scopes": [...], "groups": [...],
    "name": ..., "kind": ...}``), in which case group filters resolve for that user.
    ``required`` must parse; malformed ones raise :class:`ScopeError`.
    """
    if isinstance(required, str):
        required = [required]
    wanted = [(r, parse_scope(r)) for r in required]
    user = ""
    groups: frozenset[str] = frozenset()
    if isinstance(scopes, Mapping):
        model = scopes
        held_raw = model.get("scopes") or []
        if model.get("kind", "user") == "user" and isinstance(model.get("name"), str):
            user = model["name"]
            groups = frozenset(g for g in (model.get("groups") or []) if isinstance(g, str))
    else:
        held_raw = scopes
    if isinstance(held_raw, str) or not isinstance(held_raw, Iterable):
        return set()
    held = _parse_held(held_raw)
    return {text for text, req in wanted if _grants(req, held, groups, user)}
