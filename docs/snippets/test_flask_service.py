"""Testing a Flask service with hubauth's fake Hub (docs/testing.md).

A service's own test file, as its authors would write it. The ``fake_hub`` and
``fake_hub_env`` fixtures come with hubauth: installing it registers them with pytest.
tests/test_docs.py runs these tests too, so the page cannot show a test that fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask, g

from hubauth.flask import FlaskHubAuth, hub_authenticated
from hubauth.testing import FakeHub

PREFIX = "/services/test-service/"  # fake_hub_env sets up a service named test-service


def make_app() -> Flask:
    """The service under test: one page that says who is calling."""
    app = Flask(__name__)
    FlaskHubAuth(app)

    @app.route(PREFIX)
    @hub_authenticated
    def whoami() -> Any:
        return {"name": g.hub_user["name"]}

    return app


@pytest.fixture
def client(fake_hub_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(
        "HUBAUTH_COOKIE_SECRET", "1360f8b4bcf2ef2f1c4359703cc1a62a3fe57a5a34a710a2ea5007c87d8c21d5"
    )
    return make_app().test_client()


def test_token(fake_hub: FakeHub, client: Any) -> None:
    token = fake_hub.add_user("alice", groups=["staff"])
    r = client.get(PREFIX, headers={"Authorization": f"token {token}"})
    assert r.status_code == 200
    assert r.json == {"name": "alice"}


def test_unknown_token_and_missing_scope(fake_hub: FakeHub, client: Any) -> None:
    r = client.get(PREFIX, headers={"Authorization": "token not-a-token"})
    assert r.status_code == 401
    outsider = fake_hub.add_user("mallory", scopes=["read:users"])  # no access:services
    r = client.get(PREFIX, headers={"Authorization": f"token {outsider}"})
    assert r.status_code == 403


def test_browser_login(fake_hub: FakeHub, client: Any) -> None:
    # A browser is sent to the Hub's authorize URL, with a state cookie.
    r = client.get(PREFIX, headers={"Accept": "text/html"})
    assert r.status_code == 302
    # The fake Hub logs in its default user ("testuser") and sends the browser back.
    at_hub = requests.get(fake_hub.url + r.location, allow_redirects=False, timeout=10)
    back = at_hub.headers["Location"]
    assert back.startswith(f"{PREFIX}oauth_callback?")
    # The callback checks the state cookie, gets a token for the code, sets the login cookie.
    r = client.get(back)
    assert r.status_code == 302 and r.location == PREFIX
    assert client.get(PREFIX).json == {"name": "testuser"}


def test_hub_down(fake_hub: FakeHub, client: Any) -> None:
    token = fake_hub.add_user("alice")
    fake_hub.fault = "down"  # connections to the Hub are refused from now on
    r = client.get(PREFIX, headers={"Authorization": f"token {token}"})
    assert r.status_code == 503
