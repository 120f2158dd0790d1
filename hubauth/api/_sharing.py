"""Endpoint flows for sharing (JupyterHub 5+): shares of a server, share codes, and the
shares a user or group holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from ._core import Base, Flow
from ._models import NewShareCode, Share, ShareCode
from ._wire import InvalidArgument, segment

__all__ = ["Sharing"]


def _owned(kind: str, owner: str, server_name: str | None) -> tuple[str, str]:
    """``(endpoint, path)`` of ``/shares/:owner[/:server_name]`` (``""``: default server)."""
    base = f"/{kind}/{segment(owner, 'owner')}"
    if server_name is None:
        return f"/{kind}/{{owner}}", base
    return (
        f"/{kind}/{{owner}}/{{server_name}}",
        f"{base}/{segment(server_name, 'server_name', empty=True)}",
    )


def _target(user: str | None, group: str | None, scopes: Sequence[str] | None) -> dict[str, Any]:
    if (user is None) == (group is None):
        raise InvalidArgument("give exactly one of user= or group=")
    body: dict[str, Any] = {}
    if user is not None:
        segment(user, "user")
        body["user"] = user
    if group is not None:
        segment(group, "group")
        body["group"] = group
    if scopes is not None:
        if isinstance(scopes, str):
            raise InvalidArgument("scopes must be a list of scope strings, not a string")
        body["scopes"] = list(scopes)
    return body


def _held(kind: str, name: str, owner: str | None, server_name: str | None) -> tuple[str, str]:
    what = "user name" if kind == "users" else "group name"
    base = f"/{kind}/{segment(name, what)}/shared"
    if owner is None:
        return f"/{kind}/{{name}}/shared", base
    return (
        f"/{kind}/{{name}}/shared/{{owner}}/{{server_name}}",
        f"{base}/{segment(owner, 'owner')}/{segment(server_name or '', 'server_name', empty=True)}",
    )


class Sharing(Base):
    def _shares(self, owner: str, server_name: str | None = None) -> Flow[list[Share]]:
        """Shares of all of ``owner``'s servers, or of one (``""``: the default server)."""
        endpoint, path = _owned("shares", owner, server_name)
        return cast(list[Share], (yield from self._pages(endpoint, path, scopes=["read:shares"])))

    def _share(
        self,
        owner: str,
        server_name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Flow[Share]:
        """Grant a user or group access to a server (default scope: access to it)."""
        endpoint, path = _owned("shares", owner, server_name)
        req = self._req(
            "POST",
            endpoint,
            path,
            scopes=["shares"],
            body=_target(user, group, scopes),
            idempotent=True,
        )
        return cast(Share, (yield from self._call(req)))

    def _revoke_share(
        self,
        owner: str,
        server_name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Flow[Share | None]:
        """Revoke some (``scopes``) or all of a user's or group's access; the Share left,
        or ``None`` when nothing is left."""
        endpoint, path = _owned("shares", owner, server_name)
        req = self._req(
            "PATCH",
            endpoint,
            path,
            scopes=["shares"],
            body=_target(user, group, scopes),
            idempotent=True,
        )
        left = yield from self._call(req)
        return cast(Share, left) if left else None

    def _revoke_all_shares(self, owner: str, server_name: str) -> Flow[None]:
        """Revoke every share of one server."""
        endpoint, path = _owned("shares", owner, server_name)
        yield from self._call(self._req("DELETE", endpoint, path, scopes=["shares"], ok=(204,)))

    def _share_codes(self, owner: str, server_name: str | None = None) -> Flow[list[ShareCode]]:
        """Share codes (without the codes) of all of ``owner``'s servers, or of one."""
        endpoint, path = _owned("share-codes", owner, server_name)
        found = yield from self._pages(endpoint, path, scopes=["read:shares"])
        return cast(list[ShareCode], found)

    def _create_share_code(
        self,
        owner: str,
        server_name: str,
        *,
        scopes: Sequence[str] | None = None,
        expires_in: int | None = None,
    ) -> Flow[NewShareCode]:
        """Issue a share code; ``code`` and ``accept_url`` are in the answer this once."""
        body: dict[str, Any] = {}
        if scopes is not None:
            if isinstance(scopes, str):
                raise InvalidArgument("scopes must be a list of scope strings, not a string")
            body["scopes"] = list(scopes)
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        endpoint, path = _owned("share-codes", owner, server_name)
        req = self._req("POST", endpoint, path, scopes=["shares"], body=body)
        return cast(NewShareCode, (yield from self._call(req)))

    def _revoke_share_code(
        self, owner: str, server_name: str, *, code: str | None = None, id: str | None = None
    ) -> Flow[None]:
        """Revoke one share code, by the code itself or by its id (``sc_1``)."""
        if (code is None) == (id is None) or not (code or id):
            raise InvalidArgument("give exactly one of code= or id=")
        endpoint, path = _owned("share-codes", owner, server_name)
        req = self._req(
            "DELETE", endpoint, path, scopes=["shares"], ok=(204,), params={"code": code, "id": id}
        )
        yield from self._call(req)

    def _user_shares(self, name: str) -> Flow[list[Share]]:
        """The shares that give ``name`` access to others' servers."""
        endpoint, path = _held("users", name, None, None)
        return cast(
            list[Share], (yield from self._pages(endpoint, path, scopes=["read:users:shares"]))
        )

    def _user_share(self, name: str, owner: str, server_name: str = "") -> Flow[Share]:
        endpoint, path = _held("users", name, owner, server_name)
        req = self._req("GET", endpoint, path, scopes=["read:users:shares"])
        return cast(Share, (yield from self._call(req)))

    def _leave_user_share(self, name: str, owner: str, server_name: str = "") -> Flow[None]:
        """Give up ``name``'s shared access to ``owner/server_name``."""
        endpoint, path = _held("users", name, owner, server_name)
        yield from self._call(
            self._req("DELETE", endpoint, path, scopes=["users:shares"], ok=(204,))
        )

    def _group_shares(self, name: str) -> Flow[list[Share]]:
        """The shares that give members of group ``name`` access to servers."""
        endpoint, path = _held("groups", name, None, None)
        found = yield from self._pages(endpoint, path, scopes=["read:groups:shares"])
        return cast(list[Share], found)

    def _group_share(self, name: str, owner: str, server_name: str = "") -> Flow[Share]:
        endpoint, path = _held("groups", name, owner, server_name)
        req = self._req("GET", endpoint, path, scopes=["read:groups:shares"])
        return cast(Share, (yield from self._call(req)))

    def _leave_group_share(self, name: str, owner: str, server_name: str = "") -> Flow[None]:
        endpoint, path = _held("groups", name, owner, server_name)
        yield from self._call(
            self._req("DELETE", endpoint, path, scopes=["groups:shares"], ok=(204,))
        )
