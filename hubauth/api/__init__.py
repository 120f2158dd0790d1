"""A client for JupyterHub 6's REST API, acting with the service's own token (or a visitor's).

Users, servers (with a spawn's progress stream), tokens, groups, services, sharing, the
proxy's routes, the Hub's info and health. Each endpoint is written once as an I/O-free
flow (modules ``_users``, ``_servers``, ``_groups``, ``_sharing``, ``_hub``); the two
facades in ``_facades`` run the same flows, blocking (:class:`HubAPI`) or awaited
(:class:`AsyncHubAPI`), with retries where safe and a limit on requests in flight. Every
name is sent as one encoded path segment (``_wire``); the models are ``TypedDict``\\ s
(``_models``).
"""

from __future__ import annotations

from ._facades import AsyncHubAPI as AsyncHubAPI
from ._facades import HubAPI as HubAPI
from ._models import (
    Group as Group,
)
from ._models import (
    HubInfo as HubInfo,
)
from ._models import (
    Identity as Identity,
)
from ._models import (
    NewShareCode as NewShareCode,
)
from ._models import (
    NewToken as NewToken,
)
from ._models import (
    ProgressEvent as ProgressEvent,
)
from ._models import (
    ProxyRoute as ProxyRoute,
)
from ._models import (
    Server as Server,
)
from ._models import (
    Service as Service,
)
from ._models import (
    Share as Share,
)
from ._models import (
    ShareCode as ShareCode,
)
from ._models import (
    Token as Token,
)
from ._models import (
    User as User,
)
from ._models import (
    Version as Version,
)
from ._wire import PAGINATION_MEDIA_TYPE as PAGINATION_MEDIA_TYPE
from ._wire import InvalidArgument as InvalidArgument

__all__ = [
    "PAGINATION_MEDIA_TYPE",
    "AsyncHubAPI",
    "Group",
    "HubAPI",
    "HubInfo",
    "Identity",
    "InvalidArgument",
    "NewShareCode",
    "NewToken",
    "ProgressEvent",
    "ProxyRoute",
    "Server",
    "Service",
    "Share",
    "ShareCode",
    "Token",
    "User",
    "Version",
]
