"""Integration tests against a real JupyterHub + configurable-http-proxy (see tests/realhub.py).

One Hub serves the whole session. It knows:

- the external service ``probe`` (no URL, not managed: its token is all it has), whose role
  lets it read user names and groups;
- ``alice``, in group ``staff``, with a role ``staff-readers`` (``read:users!group=staff``)
  and a role ``probe-users`` (``access:services!service=probe``);
- ``bob``, in no group and with no role beyond the default ``user``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubauth
from tests.realhub import RealHub

PROBE = "probe"
PROBE_TOKEN = secrets.token_hex(24)
PROBE_SCOPES = ["read:users:groups", "read:users:name"]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.realhub)


@pytest.fixture(scope="session")
def real_hub() -> Iterator[RealHub]:
    hub = RealHub(
        services=[{"name": PROBE, "api_token": PROBE_TOKEN}],
        roles=[
            {"name": "probe", "scopes": PROBE_SCOPES, "services": [PROBE]},
            {"name": "staff-readers", "scopes": ["read:users!group=staff"], "users": ["alice"]},
            {
                "name": "probe-users",
                "scopes": [f"access:services!service={PROBE}"],
                "users": ["alice"],
            },
        ],
    )
    with hub:
        hub.create_user("alice", groups=["staff"])
        hub.create_user("bob")
        yield hub


@pytest.fixture
def probe_auth(real_hub: RealHub) -> Iterator[hubauth.HubAuth]:
    """``HubAuth`` configured as the ``probe`` service talking to the Hub through the proxy."""
    auth = hubauth.HubAuth(api_url=real_hub.api_url, api_token=PROBE_TOKEN, service_name=PROBE)
    yield auth
    auth.close()
