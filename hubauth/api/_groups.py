"""Endpoint flows for groups: list, read, create, delete, members, properties."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ._core import Base, Flow
from ._models import Group
from ._wire import InvalidArgument, segment

__all__ = ["Groups"]


def _names(users: Sequence[str], what: str = "users") -> list[str]:
    if isinstance(users, str):
        raise InvalidArgument(f"{what} must be a list of user names, not a string")
    for name in users:
        segment(name, "user name")
    return list(users)


def _group_path(name: str, tail: str = "") -> str:
    return f"/groups/{segment(name, 'group name')}{tail}"


class Groups(Base):
    def _groups(self) -> Flow[list[Group]]:
        """Every group (all pages)."""
        found = yield from self._pages("/groups", "/groups", scopes=["list:groups"])
        return cast(list[Group], found)

    def _group(self, name: str) -> Flow[Group]:
        """One group's model, with its ``users`` and ``properties``."""
        req = self._req("GET", "/groups/{name}", _group_path(name), scopes=["read:groups"])
        return cast(Group, (yield from self._call(req)))

    def _create_group(self, name: str, users: Sequence[str] = ()) -> Flow[Group]:
        """Create a group, optionally with members; Conflict if it exists."""
        req = self._req(
            "POST",
            "/groups/{name}",
            _group_path(name),
            scopes=["admin:groups"],
            ok=(201,),
            body={"users": _names(users)} if users else None,
        )
        return cast(Group, (yield from self._call(req)))

    def _create_groups(self, names: Sequence[str], users: Sequence[str] = ()) -> Flow[list[Group]]:
        """Create several groups in one request (``POST /groups``), each with ``users``."""
        if isinstance(names, str) or not names:
            raise InvalidArgument("names must be a non-empty list of group names")
        for n in names:
            segment(n, "group name")
        body: dict[str, Any] = {"groups": list(names)}
        if users:
            body["users"] = _names(users)
        req = self._req("POST", "/groups", "/groups", scopes=["admin:groups"], ok=(201,), body=body)
        return cast(list[Group], (yield from self._call(req)))

    def _delete_group(self, name: str) -> Flow[None]:
        req = self._req(
            "DELETE", "/groups/{name}", _group_path(name), scopes=["delete:groups"], ok=(204,)
        )
        yield from self._call(req)

    def _add_group_users(self, name: str, users: Sequence[str]) -> Flow[Group]:
        """Add members (``POST /groups/:name/users``); the updated group."""
        req = self._req(
            "POST",
            "/groups/{name}/users",
            _group_path(name, "/users"),
            scopes=["groups"],
            body={"users": _names(users)},
            idempotent=True,
        )
        return cast(Group, (yield from self._call(req)))

    def _remove_group_users(self, name: str, users: Sequence[str]) -> Flow[Group]:
        """Remove members (``DELETE /groups/:name/users``); the updated group."""
        req = self._req(
            "DELETE",
            "/groups/{name}/users",
            _group_path(name, "/users"),
            scopes=["groups"],
            body={"users": _names(users)},
        )
        return cast(Group, (yield from self._call(req)))

    def _set_group_properties(self, name: str, properties: Mapping[str, Any]) -> Flow[Group]:
        """Replace a group's properties (``PUT /groups/:name/properties``)."""
        if not isinstance(properties, Mapping):
            raise InvalidArgument("properties must be a dict")
        req = self._req(
            "PUT",
            "/groups/{name}/properties",
            _group_path(name, "/properties"),
            scopes=["groups"],
            body=dict(properties),
        )
        return cast(Group, (yield from self._call(req)))
