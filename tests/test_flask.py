"""The Flask extension's own conventions: app.config keys, init_app, the test client."""

from __future__ import annotations

import pytest
from flask import Flask, g

from hubauth import ConfigError, HubOAuth
from hubauth.flask import FlaskHubAuth, hub_authenticated
from hubauth.testing import FakeHub

SECRET = "a93209cdf48ef66af3ad277cd26a8e357510d3fe474a7b68c7cd102ac847e0be"


def make_app() -> Flask:
    app = Flask("svc")

    @app.route("/services/svc/")
    @hub_authenticated
    def home() -> object:
        return {"name": g.hub_user["name"], "token_given": bool(g.hub_token)}

    @app.route("/services/svc/admin")
    @hub_authenticated(scopes=["admin:users"])
    def admin() -> object:
        return {"admin": g.hub_user["name"]}

    return app


def test_app_config_overrides_the_environment(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in fake_hub.service_env("svc").items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")  # wrong on purpose
    app = make_app()
    app.config["HUBAUTH_API_URL"] = fake_hub.api_url
    app.config["HUBAUTH_COOKIE_SECRET"] = SECRET
    app.config["HUBAUTH_CACHE_MAX_AGE"] = 7
    ext = FlaskHubAuth(app)
    assert app.extensions["hubauth"] is ext
    assert isinstance(ext.auth, HubOAuth)
    assert ext.auth.api_url == fake_hub.api_url and ext.auth.cache_max_age == 7
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert {"/services/svc/oauth_callback", "/services/svc/logout"} <= rules
    token = fake_hub.add_user("alice")
    client = app.test_client()
    r = client.get("/services/svc/", headers={"Authorization": f"token {token}"})
    assert r.status_code == 200 and r.get_json() == {"name": "alice", "token_given": True}
    r = client.get("/services/svc/admin", headers={"Authorization": f"token {token}"})
    assert r.status_code == 403


def test_init_app_factory_and_api_refusals(fake_hub: FakeHub, fake_hub_env: dict[str, str]) -> None:
    ext = FlaskHubAuth()
    app = make_app()
    app.config["HUBAUTH_COOKIE_SECRET"] = SECRET
    ext.init_app(app)
    client = app.test_client()
    r = client.get("/services/svc/", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.get_json()["status"] == 401
    assert "Bearer" in r.headers["WWW-Authenticate"]
    r = client.get("/services/svc/")  # a browser navigation: off to the Hub
    assert r.status_code == 302 and "/hub/api/oauth2/authorize?" in r.headers["Location"]


def test_bad_app_config_fails_at_init_app_naming_the_setting(fake_hub_env: dict[str, str]) -> None:
    app = make_app()
    app.config["HUBAUTH_CACHE_MAX_AGE"] = "soon"
    with pytest.raises(ConfigError, match="cache_max_age"):
        FlaskHubAuth(app)


def test_decorator_without_the_extension_says_so() -> None:
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="FlaskHubAuth"):
        app.test_client().get("/services/svc/")
