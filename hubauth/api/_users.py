"""Endpoint flows for users, their activity and their API tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, cast

from ._core import Base, Flow
from ._models import Identity, NewToken, Token, User
from ._wire import InvalidArgument, segment

__all__ = ["Users"]

State = Literal["active", "ready", "inactive"]


def _timestamp(value: datetime | str, what: str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgument(f"{what} must be timezone-aware (UTC), got {value!r}")
        return value.isoformat()
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{what} must be a datetime or an ISO 8601 string")
    return value


class Users(Base):
    def _me(self) -> Flow[Identity]:
        """Whoever owns this client's token, with the token's scopes (``GET /user``)."""
        req = self._req("GET", "/user", "/user")
        return cast(Identity, (yield from self._call(req)))

    def _users(
        self,
        /,
        *,
        state: State | None = None,
        name_filter: str | None = None,
        sort: str | None = None,
        include_stopped_servers: bool = False,
    ) -> Flow[list[User]]:
        """Every user (all pages): ``state`` ``"ready"|"active"|"inactive"`` filters by
        servers, ``name_filter`` by a substring of the name; ``sort`` is ``id``, ``name`` or
        ``last_activity`` (``-`` first for descending)."""
        params = {
            "state": state,
            "name_filter": name_filter or None,
            "sort": sort,
            "include_stopped_servers": include_stopped_servers or None,
        }
        found = yield from self._pages("/users", "/users", scopes=["list:users"], params=params)
        return cast(list[User], found)

    def _user(self, name: str, *, include_stopped_servers: bool = False) -> Flow[User]:
        """One user's model (``GET /users/:name``)."""
        req = self._req(
            "GET",
            "/users/{name}",
            f"/users/{segment(name, 'user name')}",
            scopes=["read:users", "read:users:name", "read:servers"],
            params={"include_stopped_servers": include_stopped_servers or None},
        )
        return cast(User, (yield from self._call(req)))

    def _create_user(self, name: str, *, admin: bool = False) -> Flow[User]:
        """Create one user (``POST /users/:name``); :class:`~hubauth.errors.Conflict` if
        it exists."""
        req = self._req(
            "POST",
            "/users/{name}",
            f"/users/{segment(name, 'user name')}",
            scopes=["admin:users"],
            ok=(201,),
            body={"admin": True} if admin else None,
        )
        return cast(User, (yield from self._call(req)))

    def _create_users(self, names: Sequence[str], *, admin: bool = False) -> Flow[list[User]]:
        """Create several users in one request (``POST /users``); existing ones are skipped,
        :class:`~hubauth.errors.Conflict` when all exist."""
        if isinstance(names, str) or not names:
            raise InvalidArgument("names must be a non-empty list of user names")
        for n in names:
            segment(n, "user name")
        req = self._req(
            "POST",
            "/users",
            "/users",
            scopes=["admin:users"],
            ok=(201,),
            body={"usernames": list(names), "admin": admin},
        )
        return cast(list[User], (yield from self._call(req)))

    def _modify_user(
        self, name: str, *, new_name: str | None = None, admin: bool | None = None
    ) -> Flow[User]:
        """Rename a user or change their admin flag (``PATCH /users/:name``)."""
        body: dict[str, Any] = {}
        if new_name is not None:
            segment(new_name, "new_name")
            body["name"] = new_name
        if admin is not None:
            body["admin"] = bool(admin)
        if not body:
            raise InvalidArgument("modify_user needs new_name= or admin=")
        req = self._req(
            "PATCH",
            "/users/{name}",
            f"/users/{segment(name, 'user name')}",
            scopes=["admin:users"],
            body=body,
            idempotent=new_name is None,
        )
        return cast(User, (yield from self._call(req)))

    def _delete_user(self, name: str) -> Flow[None]:
        """Delete a user, stopping their servers first (``DELETE /users/:name``)."""
        req = self._req(
            "DELETE",
            "/users/{name}",
            f"/users/{segment(name, 'user name')}",
            scopes=["delete:users"],
            ok=(204,),
        )
        yield from self._call(req)

    def _report_activity(
        self,
        name: str,
        *,
        last_activity: datetime | str | None = None,
        servers: Mapping[str, datetime | str] | None = None,
    ) -> Flow[None]:
        """Tell the Hub a user (or some of their servers, by name) was active at a time
        (``POST /users/:name/activity``); the Hub keeps the latest it has heard."""
        body: dict[str, Any] = {}
        if last_activity is not None:
            body["last_activity"] = _timestamp(last_activity, "last_activity")
        if servers:
            body["servers"] = {
                str(k): {"last_activity": _timestamp(v, f"servers[{k!r}]")}
                for k, v in servers.items()
            }
        if not body:
            raise InvalidArgument("report_activity needs last_activity= or servers=")
        req = self._req(
            "POST",
            "/users/{name}/activity",
            f"/users/{segment(name, 'user name')}/activity",
            scopes=["users:activity"],
            body=body,
            idempotent=True,
        )
        yield from self._call(req)

    # -- tokens ---------------------------------------------------------------------------

    def _tokens(self, user: str) -> Flow[list[Token]]:
        """A user's API tokens (models, without the secrets; expired ones left out)."""
        req = self._req(
            "GET",
            "/users/{name}/tokens",
            f"/users/{segment(user, 'user name')}/tokens",
            scopes=["read:tokens"],
        )
        data = yield from self._call(req)
        tokens = data.get("api_tokens", []) if isinstance(data, dict) else data
        return cast(list[Token], list(tokens or []))

    def _token(self, user: str, token_id: str) -> Flow[Token]:
        """One token's model, by id (``a123``)."""
        path = f"/users/{segment(user, 'user name')}/tokens/{segment(token_id, 'token_id')}"
        req = self._req("GET", "/users/{name}/tokens/{token_id}", path, scopes=["read:tokens"])
        return cast(Token, (yield from self._call(req)))

    def _create_token(
        self,
        user: str,
        *,
        note: str = "",
        scopes: Sequence[str] | None = None,
        expires_in: int | None = None,
    ) -> Flow[NewToken]:
        """Issue a token for ``user``; the answer's ``token`` field is the secret (shown once)."""
        body: dict[str, Any] = {"note": note} if note else {}
        if scopes is not None:
            if isinstance(scopes, str):
                raise InvalidArgument("scopes must be a list of scope strings, not a string")
            body["scopes"] = list(scopes)
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        req = self._req(
            "POST",
            "/users/{name}/tokens",
            f"/users/{segment(user, 'user name')}/tokens",
            scopes=["tokens"],
            ok=(200, 201),
            body=body,
        )
        return cast(NewToken, (yield from self._call(req)))

    def _revoke_token(self, user: str, token_id: str) -> Flow[None]:
        """Revoke a token by id (an OAuth token revokes all of that client's tokens)."""
        path = f"/users/{segment(user, 'user name')}/tokens/{segment(token_id, 'token_id')}"
        req = self._req(
            "DELETE", "/users/{name}/tokens/{token_id}", path, scopes=["tokens"], ok=(200, 204)
        )
        yield from self._call(req)
