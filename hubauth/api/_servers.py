"""Endpoint flows for user servers (JupyterHub 6's server model): get, create, start with
``user_options``, modify, stop, remove; and the request for a spawn's progress stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ._core import Base, Flow
from ._models import Server
from ._wire import APIRequest, InvalidArgument, segment

__all__ = ["Servers"]


def server_path(user: str, server_name: str) -> tuple[str, str]:
    """``(endpoint, path)`` of a user's default (``""``) or named server."""
    base = f"/users/{segment(user, 'user name')}"
    if server_name == "":
        return "/users/{name}/server", f"{base}/server"
    return (
        "/users/{name}/servers/{server_name}",
        f"{base}/servers/{segment(server_name, 'server_name')}",
    )


def _server_body(
    options: Mapping[str, Any] | None,
    user_options: Mapping[str, Any] | None,
    display_name: str | None,
) -> dict[str, Any] | None:
    if options is not None and (user_options is not None or display_name is not None):
        raise InvalidArgument("give options (the whole body) or user_options=/display_name=")
    if options is not None:
        return dict(options)
    body: dict[str, Any] = {}
    if user_options is not None:
        body["user_options"] = dict(user_options)
    if display_name is not None:
        body["display_name"] = display_name
    return body or None


class Servers(Base):
    def _server(self, user: str, server_name: str = "") -> Flow[Server]:
        """One server's model, stopped or not (``GET /users/:name/servers/:server_name``,
        JupyterHub 6)."""
        endpoint, path = server_path(user, server_name)
        req = self._req("GET", endpoint, path, scopes=["read:servers"])
        return cast(Server, (yield from self._call(req)))

    def _start_server(
        self,
        user: str,
        server_name: str = "",
        options: Mapping[str, Any] | None = None,
        *,
        user_options: Mapping[str, Any] | None = None,
        display_name: str | None = None,
    ) -> Flow[int]:
        """Start a user's default (or named) server: 201 started, 202 pending.

        ``user_options`` go to the Spawner; ``options`` is the older form (the whole body,
        which JupyterHub 6 also takes as the user options)."""
        endpoint, path = server_path(user, server_name)
        req = self._req(
            "POST",
            endpoint,
            path,
            scopes=["start:servers", "servers"],
            ok=(201, 202),
            body=_server_body(options, user_options, display_name) or {},
        )
        return (yield from self._status(req))

    def _create_server(
        self,
        user: str,
        server_name: str,
        *,
        user_options: Mapping[str, Any] | None = None,
        display_name: str | None = None,
    ) -> Flow[Server]:
        """Create a named server without starting it (``PUT``, JupyterHub 6); Conflict if
        it exists."""
        if server_name == "":
            raise InvalidArgument("create_server needs a server_name (the default server exists)")
        endpoint, path = server_path(user, server_name)
        req = self._req(
            "PUT",
            endpoint,
            path,
            scopes=["start:servers", "servers"],
            ok=(201,),
            body=_server_body(None, user_options, display_name) or {},
            idempotent=False,
        )
        return cast(Server, (yield from self._call(req)))

    def _modify_server(
        self,
        user: str,
        server_name: str,
        *,
        new_name: str | None = None,
        display_name: str | None = None,
        user_options: Mapping[str, Any] | None = None,
    ) -> Flow[Server]:
        """Rename a stopped server, or set its display name or user options (``PATCH``)."""
        body: dict[str, Any] = {}
        if new_name is not None:
            segment(new_name, "new_name")
            body["name"] = new_name
        if display_name is not None:
            body["display_name"] = display_name
        if user_options is not None:
            body["user_options"] = dict(user_options)
        if not body:
            raise InvalidArgument("modify_server needs new_name=, display_name= or user_options=")
        endpoint, path = server_path(user, server_name)
        req = self._req(
            "PATCH",
            endpoint,
            path,
            scopes=["start:servers", "servers"],
            body=body,
            idempotent=new_name is None,
        )
        return cast(Server, (yield from self._call(req)))

    def _stop_server(self, user: str, server_name: str = "", *, remove: bool = False) -> Flow[int]:
        """Stop a user's default (or named) server: 204 stopped, 202 pending. ``remove``
        also deletes a named server's record."""
        if remove and server_name == "":
            raise InvalidArgument("the default server cannot be removed, only stopped")
        endpoint, path = server_path(user, server_name)
        req = self._req(
            "DELETE",
            endpoint,
            path,
            scopes=["delete:servers", "servers"],
            ok=(202, 204),
            body={"remove": True} if remove else None,
        )
        return (yield from self._status(req))

    def _remove_server(self, user: str, server_name: str) -> Flow[int]:
        """Stop a named server and delete it (``DELETE`` with ``{"remove": true}``)."""
        return (yield from self._stop_server(user, server_name, remove=True))

    def _progress_request(self, user: str, server_name: str = "") -> APIRequest:
        endpoint, path = server_path(user, server_name)
        return self._req(
            "GET",
            f"{endpoint}/progress",
            f"{path}/progress",
            scopes=["read:servers"],
            accept="text/event-stream",
        )
