"""Integration tests against a real JupyterHub + configurable-http-proxy (see tests/realhub.py).

One Hub serves the whole session. It knows:

- the external service ``probe`` (no URL, not managed: its token is all it has), whose role
  lets it read user names and groups;
- ``alice``, in group ``staff``, with a role ``staff-readers`` (``read:users!group=staff``)
  and a role ``probe-users`` (``access:services!service=probe``);
- ``bob``, in no group and with no role beyond the default ``user``.
"""

from __future__ import annotations

import importlib.util
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

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


def _load_demo() -> ModuleType:
    """examples/demo.py, which knows how to run every example and to log in like a browser."""
    path = _HERE.parent.parent / "examples" / "demo.py"
    spec = importlib.util.spec_from_file_location("hubauth_demo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
EXAMPLES = ("whoami-api", "whoami-tornado", "whoami-flask", "whoami-wsgi")


@pytest.fixture(scope="session")
def examples_hub() -> Iterator[RealHub]:
    """A real Hub running every example as a managed service (gunicorn -w 4 for Flask/WSGI).

    Every user may access every service; ``outsider`` may access none (role ``user`` is
    replaced, and ``outsider`` only gets ``self``).
    """
    services = [s for s in demo.services("unused-token") if s["name"] in EXAMPLES]
    hub = RealHub(
        services=services,
        roles=[
            {"name": "user", "scopes": ["self"]},
            {"name": "example-users", "scopes": ["access:services"], "groups": ["members"]},
        ],
        load_groups={"members": {"users": []}},
    )
    with hub:
        for name in EXAMPLES:
            hub.wait_for_service(name)
        yield hub


def hub_login(hub: RealHub, name: str, *, member: bool = True) -> requests.Session:
    """A browser-like session logged in to the Hub as ``name`` (created, in ``members``)."""
    hub.create_user(name, groups=["members"] if member else ())
    session = requests.Session()
    session.headers["Accept"] = "text/html"
    hub.login(session, name)
    return session


def browse(session: requests.Session, url: str) -> requests.Response:
    """Navigate like a browser: follow redirects, submit the Hub's consent form."""
    response: requests.Response = demo.browse(session, url)
    return response


def same_origin(hub: RealHub, response: requests.Response) -> bool:
    """Whether every hop of ``response`` stayed on the Hub's public origin."""
    origin = urllib.parse.urlsplit(hub.url)[:2]
    return all(urllib.parse.urlsplit(r.url)[:2] == origin for r in [*response.history, response])
