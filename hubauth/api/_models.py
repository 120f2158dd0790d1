"""The Hub's REST models as ``TypedDict``\\ s (JupyterHub 6.1), for type checkers and readers.

Every field is optional (``total=False``): the Hub leaves out what the token's scopes do
not cover (a ``read:users:name`` token sees ``name`` but no ``servers``). Timestamps are
ISO 8601 strings, as the Hub sends them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "Group",
    "HubInfo",
    "Identity",
    "NewShareCode",
    "NewToken",
    "Pagination",
    "ProgressEvent",
    "ProxyRoute",
    "Server",
    "Service",
    "Share",
    "ShareCode",
    "SharedServer",
    "Token",
    "User",
    "Version",
]


class Version(TypedDict, total=False):
    """``GET /``: the Hub's version, readable without a token."""

    version: str


class _ClassInfo(TypedDict, total=False):
    version: str


class HubInfo(TypedDict, total=False):
    """``GET /info`` (scope ``read:hub``); ``spawner`` and ``authenticator`` hold
    ``{"class": ..., "version": ...}``."""

    version: str
    python: str
    sys_executable: str
    spawner: dict[str, str]
    authenticator: dict[str, str]


class Server(TypedDict, total=False):
    """One server of a user (the default one is named ``""``)."""

    name: str
    display_name: str
    full_name: str
    ready: bool
    stopped: bool
    pending: Literal["spawn", "stop", "rename"] | None
    url: str
    progress_url: str
    full_url: str | None
    full_progress_url: str | None
    started: str | None
    last_activity: str | None
    state: dict[str, Any]
    user_options: dict[str, Any]


class User(TypedDict, total=False):
    """A user model; ``user_info`` (JupyterHub 6) holds profile fields such as
    ``display_name`` or ``avatar_url``."""

    kind: Literal["user"]
    name: str
    admin: bool
    roles: list[str]
    groups: list[str]
    server: str | None
    pending: str | None
    created: str
    last_activity: str | None
    servers: dict[str, Server]
    user_info: dict[str, Any]
    auth_state: dict[str, Any] | None


class Identity(TypedDict, total=False):
    """``GET /user``: whoever owns the token, with the token's own scopes."""

    kind: Literal["user", "service"]
    name: str
    admin: bool
    roles: list[str]
    groups: list[str]
    scopes: list[str]
    session_id: str | None
    token_id: str | None
    servers: dict[str, Server]
    user_info: dict[str, Any]


class Group(TypedDict, total=False):
    kind: Literal["group"]
    name: str
    users: list[str]
    roles: list[str]
    properties: dict[str, Any]


class Service(TypedDict, total=False):
    kind: Literal["service"]
    name: str
    admin: bool
    roles: list[str]
    url: str
    prefix: str
    command: list[str] | str
    pid: int
    info: dict[str, Any] | str
    display: bool | str


class Token(TypedDict, total=False):
    """An API token's model; the secret itself is never in it (see :class:`NewToken`)."""

    id: str
    kind: str
    user: str
    service: str
    roles: list[str]
    scopes: list[str]
    note: str
    created: str
    expires_at: str | None
    last_activity: str | None
    session_id: str | None
    oauth_client: str


class NewToken(Token, total=False):
    """What creating a token answers: the model plus ``token``, the secret, shown once."""

    token: str


class _Name(TypedDict):
    name: str


class SharedServer(TypedDict, total=False):
    name: str
    url: str
    full_url: str | None
    ready: bool
    user: _Name


class Share(TypedDict, total=False):
    """Shared access to one server, for exactly one of ``user`` or ``group``."""

    server: SharedServer
    scopes: list[str]
    user: _Name | None
    group: _Name | None
    kind: Literal["user", "group"]
    created_at: str


class ShareCode(TypedDict, total=False):
    server: SharedServer
    scopes: list[str]
    id: str
    created_at: str
    expires_at: str | None
    exchange_count: int
    last_exchanged_at: str | None


class NewShareCode(ShareCode, total=False):
    """A new share code: ``code`` and ``accept_url`` are shown this once."""

    code: str
    accept_url: str
    full_accept_url: str | None


class ProxyRoute(TypedDict, total=False):
    """One entry of the proxy's routing table (configurable-http-proxy's shape)."""

    routespec: str
    target: str
    data: dict[str, Any]


class Pagination(TypedDict, total=False):
    offset: int
    limit: int
    total: int
    next: dict[str, Any] | None


class ProgressEvent(TypedDict, total=False):
    """One event of a spawn's progress stream; the last has ``ready`` or ``failed``."""

    progress: int
    message: str
    html_message: str
    ready: bool
    failed: bool
    url: str
