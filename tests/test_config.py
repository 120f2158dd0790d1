"""Configuration: every JUPYTERHUB_* variable, keyword overrides, failures naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubauth import ConfigError, HubAuth, HubOAuth
from hubauth.config import SETTINGS, load_config

from .conftest import TOKEN

ENV = {"JUPYTERHUB_API_TOKEN": TOKEN}
SECRET_A = "a93209cdf48ef66af3ad277cd26a8e357510d3fe474a7b68c7cd102ac847e0be"
SECRET_B = "1360f8b4bcf2ef2f1c4359703cc1a62a3fe57a5a34a710a2ea5007c87d8c21d5"


def test_defaults_match_jupyterhub() -> None:
    cfg = load_config(ENV)
    assert cfg.api_url == "http://127.0.0.1:8081/hub/api"
    assert cfg.hub_prefix == "/hub/"
    assert cfg.base_url == "/"
    assert cfg.cache_max_age == 300
    assert cfg.access_scopes == frozenset()
    assert cfg.allow_token_in_url is False
    assert cfg.allow_websocket_cookie_auth is True
    assert cfg.oauth_redirect_uri == "/oauth_callback"


def test_every_variable_is_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    for f in (ca, cert, key):
        f.write_text("x")
    env = {
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": "http://hub:8081/prefix/hub/api/",
        "JUPYTERHUB_BASE_URL": "/prefix/",
        "JUPYTERHUB_SERVICE_NAME": "grader",
        "JUPYTERHUB_SERVICE_PREFIX": "/prefix/services/grader",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:10101",
        "JUPYTERHUB_CLIENT_ID": "service-grader",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/prefix/services/grader/oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": '["access:services!service=grader", "read:users"]',
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": '["read:groups"]',
        "JUPYTERHUB_HOST": "https://hub.example.org",
        "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/prefix/services/grader/",
        "JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/prefix/hub/",
        "JUPYTERHUB_SSL_KEYFILE": str(key),
        "JUPYTERHUB_SSL_CERTFILE": str(cert),
        "JUPYTERHUB_SSL_CLIENT_CA": str(ca),
        "JUPYTERHUB_COOKIE_OPTIONS": '{"samesite": "Strict"}',
        "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "1",
        "JUPYTERHUB_ALLOW_TOKEN_IN_URL": "true",
        "JUPYTERHUB_ALLOW_WEBSOCKET_COOKIE_AUTH": "0",
        "HUBAUTH_COOKIE_SECRET": SECRET_A + "," + SECRET_B,
    }
    cfg = load_config(env)
    assert cfg.api_url == "http://hub:8081/prefix/hub/api"
    assert cfg.hub_prefix == "/prefix/hub/"
    assert cfg.base_url == "/prefix/services/grader/"
    assert cfg.service_name == "grader"
    assert cfg.service_url == "http://127.0.0.1:10101"
    assert cfg.oauth_client_id == "service-grader"
    assert cfg.oauth_redirect_uri == "/prefix/services/grader/oauth_callback"
    assert cfg.access_scopes == {"access:services!service=grader", "read:users"}
    assert cfg.oauth_client_allowed_scopes == {"read:groups"}
    assert cfg.hub_host == "https://hub.example.org"
    assert cfg.public_url.startswith("https://")
    assert cfg.public_hub_url == "https://hub.example.org/prefix/hub"
    assert (cfg.keyfile, cfg.certfile, cfg.client_ca) == (str(key), str(cert), str(ca))
    assert cfg.cookie_options == {"samesite": "Strict"}
    assert cfg.cookie_host_prefix_enabled is True
    assert cfg.allow_token_in_url is True
    assert cfg.allow_websocket_cookie_auth is False
    assert cfg.cookie_secret == (SECRET_A, SECRET_B)


def test_documented_settings_cover_the_config() -> None:
    import dataclasses

    from hubauth.config import Config

    documented = {s.name for s in SETTINGS}
    fields = {f.name for f in dataclasses.fields(Config)} - {
        "oauth_redirect_uri_explicit",
        "login_url",
    }
    assert fields == documented


def test_access_scopes_fall_back_in_order() -> None:
    env = dict(ENV, JUPYTERHUB_SERVICE_NAME="svc")
    assert load_config(env).access_scopes == {"access:services!service=svc"}
    env["JUPYTERHUB_OAUTH_SCOPES"] = '["access:services!service=old"]'
    assert load_config(env).access_scopes == {"access:services!service=old"}
    env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"] = '["access:services!service=new"]'
    assert load_config(env).access_scopes == {"access:services!service=new"}


def test_keywords_override_environment_and_aliases_work() -> None:
    env = dict(ENV, JUPYTERHUB_API_URL="http://env:1/hub/api")
    cfg = load_config(env, api_url="http://kw:2/hub/api", cookie_cache_max_age=7)
    assert cfg.api_url == "http://kw:2/hub/api"
    assert cfg.cache_max_age == 7
    assert load_config({}, client_secret=TOKEN).api_token == TOKEN
    auth = HubAuth(environ=env, access_scopes=["read:users"])
    assert auth.access_scopes == {"read:users"}
    assert auth.api_url == "http://env:1/hub/api"


def test_alias_and_name_together_is_refused() -> None:
    with pytest.raises(ConfigError, match="cache_max_age"):
        load_config(ENV, cache_max_age=1, cookie_cache_max_age=2)


def test_unknown_keyword_is_named() -> None:
    with pytest.raises(ConfigError, match="api_ulr"):
        HubAuth(environ=ENV, api_ulr="http://x")


def test_assigned_settings_take_effect_or_fail_at_once() -> None:
    """JupyterHub services assign settings after construction (``hub_auth.api_url = ...``):
    the value is validated like the environment's and used from then on, never ignored.
    """
    auth = HubAuth(environ=ENV)
    auth.api_url = "http://other:8081/hub/api"
    assert auth.api_url == "http://other:8081/hub/api"
    assert auth._sync.config.api_url == "http://other:8081/hub/api"  # the driver follows
    auth.cache_max_age = 5
    assert auth.cache.max_age == 5
    auth.cookie_cache_max_age = 7  # the older JupyterHub spelling
    assert (auth.cache_max_age, auth.cache.max_age) == (7, 7)
    with pytest.raises(ConfigError, match="JUPYTERHUB_API_URL"):
        auth.api_url = "not a url"
    assert auth.api_url == "http://other:8081/hub/api"  # a refused value changes nothing


def test_derived_oauth_urls_refuse_assignment_with_advice() -> None:
    auth = HubOAuth(environ=dict(ENV, JUPYTERHUB_SERVICE_NAME="svc"), base_url="/services/svc/")
    with pytest.raises(AttributeError, match="hub_host"):
        auth.oauth_authorization_url = "https://elsewhere/authorize"
    with pytest.raises(AttributeError, match="api_url"):
        auth.oauth_token_url = "https://elsewhere/token"


def test_repr_hides_secrets() -> None:
    secret = SECRET_B
    auth = HubAuth(environ=dict(ENV, HUBAUTH_COOKIE_SECRET=secret))
    assert TOKEN not in repr(auth)
    assert TOKEN not in repr(auth.config)
    assert secret not in repr(auth.config)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "JUPYTERHUB_API_TOKEN"),
        ({"JUPYTERHUB_API_TOKEN": "short"}, "JUPYTERHUB_API_TOKEN"),
        ({"JUPYTERHUB_API_TOKEN": "has space in it"}, "JUPYTERHUB_API_TOKEN"),
        (dict(ENV, JUPYTERHUB_API_URL="hub:8081/hub/api"), "JUPYTERHUB_API_URL"),
        (dict(ENV, JUPYTERHUB_API_URL="ftp://hub/hub/api"), "JUPYTERHUB_API_URL"),
        (dict(ENV, JUPYTERHUB_API_URL="http://hub:port/hub/api"), "JUPYTERHUB_API_URL"),
        (dict(ENV, JUPYTERHUB_API_URL="http://u:p@hub/hub/api"), "JUPYTERHUB_API_URL"),
        (dict(ENV, JUPYTERHUB_API_URL="http://hub/api?x=1"), "JUPYTERHUB_API_URL"),
        (dict(ENV, JUPYTERHUB_HOST="https://hub.example.org/hub/"), "JUPYTERHUB_HOST"),
        (dict(ENV, JUPYTERHUB_HOST="hub.example.org"), "JUPYTERHUB_HOST"),
        (
            dict(ENV, JUPYTERHUB_OAUTH_ACCESS_SCOPES="access:services"),
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
        ),
        (dict(ENV, JUPYTERHUB_OAUTH_ACCESS_SCOPES='{"a": 1}'), "JUPYTERHUB_OAUTH_ACCESS_SCOPES"),
        (
            dict(ENV, JUPYTERHUB_OAUTH_ACCESS_SCOPES='["x!nope=1"]'),
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
        ),
        (dict(ENV, JUPYTERHUB_OAUTH_SCOPES="[1, 2]"), "JUPYTERHUB_OAUTH_ACCESS_SCOPES"),
        (
            dict(ENV, JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES="["),
            "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES",
        ),
        (dict(ENV, JUPYTERHUB_COOKIE_OPTIONS="[]"), "JUPYTERHUB_COOKIE_OPTIONS"),
        (dict(ENV, JUPYTERHUB_COOKIE_OPTIONS="{bad"), "JUPYTERHUB_COOKIE_OPTIONS"),
        (dict(ENV, JUPYTERHUB_ALLOW_TOKEN_IN_URL="maybe"), "JUPYTERHUB_ALLOW_TOKEN_IN_URL"),
        (
            dict(ENV, JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED="2"),
            "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED",
        ),
        (dict(ENV, JUPYTERHUB_SERVICE_PREFIX="http://x/services/a/"), "JUPYTERHUB_SERVICE_PREFIX"),
        (dict(ENV, JUPYTERHUB_SERVICE_PREFIX="//evil/"), "JUPYTERHUB_SERVICE_PREFIX"),
        (dict(ENV, JUPYTERHUB_SSL_CERTFILE="/nonexistent.pem"), "JUPYTERHUB_SSL_CERTFILE"),
        (dict(ENV, JUPYTERHUB_SSL_CLIENT_CA="/nonexistent-ca.pem"), "JUPYTERHUB_SSL_CLIENT_CA"),
        (dict(ENV, JUPYTERHUB_CLIENT_ID="bad id"), "JUPYTERHUB_CLIENT_ID"),
        (dict(ENV, HUBAUTH_COOKIE_SECRET="short"), "HUBAUTH_COOKIE_SECRET"),
        (dict(ENV, HUBAUTH_COOKIE_SECRET="passwordpassword"), "HUBAUTH_COOKIE_SECRET"),
        (dict(ENV, HUBAUTH_COOKIE_SECRET="0123456789abcdef" * 4), "HUBAUTH_COOKIE_SECRET"),
        (dict(ENV, HUBAUTH_COOKIE_SECRET_FILE="/nonexistent/secret"), "HUBAUTH_COOKIE_SECRET"),
    ],
)
def test_bad_environment_fails_at_construction_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as e:
        HubAuth(environ=env)
    assert variable in str(e.value)
    assert e.value.setting


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("cache_max_age", -1),
        ("cache_max_age", "soon"),
        ("cache_max_age", float("nan")),
        ("cache_maxsize", 0),
        ("cache_maxsize", 1.5),
        ("connect_timeout", True),
        ("api_url", 8081),
        ("access_scopes", "read:users"),
    ],
)
def test_bad_keywords_fail_naming_the_setting(keyword: str, value: object) -> None:
    with pytest.raises(ConfigError, match=keyword):
        HubAuth(environ=ENV, **{keyword: value})


def test_tls_needs_both_cert_and_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="KEYFILE"):
        load_config(dict(ENV, JUPYTERHUB_SSL_CERTFILE=str(cert)))


def test_client_ca_alone_is_accepted(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert load_config(dict(ENV, JUPYTERHUB_SSL_CLIENT_CA=str(ca))).client_ca == str(ca)


def test_secret_file_is_read_and_rotates(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text(SECRET_A + ",\n" + SECRET_B + "\n")
    cfg = load_config(dict(ENV, HUBAUTH_COOKIE_SECRET_FILE=str(f)))
    assert cfg.cookie_secret == (SECRET_A, SECRET_B)


def test_oauth_needs_a_redirect_uri_the_hub_accepts() -> None:
    env = dict(ENV, JUPYTERHUB_SERVICE_NAME="svc")
    with pytest.raises(ConfigError, match="JUPYTERHUB_SERVICE_PREFIX") as e:
        load_config(env, oauth=True)
    assert "Mismatching redirect URI" in str(e.value)
    cfg = load_config(dict(env, JUPYTERHUB_SERVICE_PREFIX="/services/svc/"), oauth=True)
    assert cfg.oauth_redirect_uri == "/services/svc/oauth_callback"
    assert cfg.oauth_client_id == "service-svc"


def test_oauth_needs_a_client_id() -> None:
    with pytest.raises(ConfigError, match="JUPYTERHUB_CLIENT_ID"):
        load_config(dict(ENV, JUPYTERHUB_SERVICE_PREFIX="/services/svc/"), oauth=True)


def test_hub_login_url() -> None:
    auth = HubAuth(environ=dict(ENV, JUPYTERHUB_BASE_URL="/jh/", JUPYTERHUB_HOST="https://h.org"))
    assert auth.login_url == ""  # as JupyterHub: token-only auth logs no browser in
    assert HubAuth(environ=ENV, login_url="/custom").login_url == "/custom"


def test_relative_callback_from_the_hub_is_fine_for_token_only_objects() -> None:
    # The Hub gives a managed service without a URL JUPYTERHUB_OAUTH_CALLBACK_URL=oauth_callback.
    env = dict(ENV, JUPYTERHUB_OAUTH_CALLBACK_URL="oauth_callback", JUPYTERHUB_SERVICE_NAME="c")
    assert HubAuth(environ=env).api_token == TOKEN
    with pytest.raises(ConfigError, match="JUPYTERHUB_OAUTH_CALLBACK_URL"):
        load_config(dict(env, JUPYTERHUB_SERVICE_PREFIX="/services/c/"), oauth=True)


def test_every_setting_is_readable_and_assignable() -> None:
    """Issue 10: an assignment takes effect or fails at once; none is silently kept aside."""
    auth = HubOAuth(
        environ=dict(ENV, JUPYTERHUB_SERVICE_NAME="svc"),
        base_url="/services/svc/",
        cookie_secret=SECRET_A,
    )
    values: dict[str, object] = {
        "request_timeout": 3.0,
        "connect_timeout": 2.0,
        "cache_maxsize": 50,
        "cache_negative_max_age": 1.0,
        "public_url": "https://hub.example.org/services/svc",
        "cookie_secret": SECRET_B,
    }
    for name, value in values.items():
        setattr(auth, name, value)
        expected = (value,) if name == "cookie_secret" else value
        assert getattr(auth, name) == expected, name
    assert auth._sync.config.request_timeout == 3.0  # the drivers are rebuilt
    assert auth.cache.maxsize == 50
    assert auth.cookies.decode("login", auth.cookie_name, "x", max_age=1) is None
    for name, bad in (("request_timeout", -1), ("cache_maxsize", 0), ("cookie_secret", "weak")):
        with pytest.raises(ConfigError):
            setattr(auth, name, bad)
    assert auth.request_timeout == 3.0
    missing = [s.name for s in SETTINGS if not hasattr(type(auth), s.name)]
    assert not missing, f"settings with no attribute: {missing}"
    auth.close()


def test_pkce_enabled_is_a_keyword_as_in_jupyterhub() -> None:
    env = dict(ENV, JUPYTERHUB_SERVICE_NAME="svc")
    assert HubOAuth(environ=env, base_url="/s/", pkce_enabled=False).pkce_enabled is False
    with pytest.raises(ConfigError, match="pkce_enabled"):
        HubOAuth(environ=env, base_url="/s/", pkce_enabled="no")
