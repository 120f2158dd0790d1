"""A real JupyterHub restarted mid-run: logged-in browsers stay logged in (issue 7).

Our own Hub runs whoami-flask (gunicorn -w 4) and whoami-tornado as managed services, each
with a HUBAUTH_COOKIE_SECRET in its environment. A browser logs in to both, an API token is
made, and the Hub is restarted (same ports, config and database; the services are stopped
and started again with it). Afterwards the same browser is still logged in to both services,
with no trip through the Hub, and the API token still works: hubauth keeps nothing in
process memory that a login depends on, and the Hub still knows the tokens.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.realhub import RealHub

from .conftest import browse, demo, hub_login

SERVICES = ("whoami-flask", "whoami-tornado")
USER = "restart-ada"
TIMEOUT = 15  # seconds, for every single HTTP request

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def restart_hub() -> Iterator[RealHub]:
    """A Hub of our own (it gets restarted), running the two example services."""
    entries = {s["name"]: dict(s) for s in demo.services("unused-token")}
    services = [entries[name] for name in SERVICES]
    for service in services:
        env = dict(service.get("environment") or {})  # type: ignore[call-overload]
        # whoami-flask has one from demo.services() (its 4 workers share it); whoami-tornado
        # is given one too: without a secret, cookies are sealed with a random per-process
        # key and every restart of the service logs its browsers out.
        env.setdefault("HUBAUTH_COOKIE_SECRET", secrets.token_hex(32))
        service["environment"] = env
    hub = RealHub(
        services=services,
        roles=[
            {"name": "user", "scopes": ["self"]},
            {
                "name": "whoami-users",
                "scopes": [f"access:services!service={name}" for name in SERVICES],
                "users": [USER],
            },
        ],
    )
    with hub:
        for name in SERVICES:
            hub.wait_for_service(name)
        yield hub


def whoami(response: requests.Response) -> dict[str, Any]:
    """The model a whoami example answered: JSON (Flask), or the page's ``<pre id=model>``."""
    if response.headers.get("Content-Type", "").startswith("application/json"):
        data = response.json()
    else:
        m = re.search(r"<pre id=model>(.*?)</pre>", response.text, re.S)
        assert m is not None, response.text[:500]
        data = json.loads(html.unescape(m.group(1)))
    assert isinstance(data, dict), data
    return data


def describe(response: requests.Response) -> str:
    hops = " -> ".join(f"{r.status_code} {r.url}" for r in [*response.history, response])
    return f"{hops}: {response.text[:300]!r}"


def test_browsers_and_tokens_survive_a_hub_restart(restart_hub: RealHub) -> None:
    hub = restart_hub
    browser = hub_login(hub, USER, member=False)  # access comes from the role, not a group
    token = hub.user_token(USER, note="made before the restart")
    with browser:
        for name in SERVICES:
            r = browse(browser, hub.service_url(name, "before"))
            assert r.status_code == 200, describe(r)
            assert whoami(r)["name"] == USER
            assert r.history, "the first visit must have logged in through the Hub"
        cookies_before = {(c.name, c.path, c.value) for c in browser.cookies}

        hub.restart(pause=1)
        for name in SERVICES:
            hub.wait_for_service(name, timeout=60)

        for name in SERVICES:
            url = hub.service_url(name, "after")
            r = browser.get(url, timeout=TIMEOUT)
            # Still logged in: answered at once, as the same user, not sent through the Hub.
            assert r.status_code == 200 and not r.history, describe(r)
            assert r.url == url
            assert whoami(r)["name"] == USER
        # Nothing was re-issued: the browser holds exactly the cookies it had.
        assert {(c.name, c.path, c.value) for c in browser.cookies} == cookies_before

    for name in SERVICES:
        r = requests.get(
            hub.service_url(name, "api"),
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, describe(r)
        assert whoami(r)["name"] == USER
