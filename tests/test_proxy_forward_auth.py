"""Forward-auth mode, asked the way nginx and Traefik ask: the check's answers, the replay of
a refused request, and what cannot be asked. (Debian's nginx itself runs the documented
configuration in tests/integration/test_realhub_proxy.py.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests

from hubauth.testing import FakeHub

from .proxy_apps import Running, free_port, proxy_options, running_proxy
from .test_proxy import PREFIX, make_auth

NGINX, TRAEFIK = f"{PREFIX}auth-request", f"{PREFIX}forward-auth"


@pytest.fixture
def fwd(fake_hub: FakeHub) -> Any:
    port = free_port()
    auth = make_auth(fake_hub, port)
    options = replace(proxy_options(PREFIX), forward_auth=True)
    with running_proxy(auth, options, port=port, upstream="") as running:
        yield running
    auth.close()


def ask(fwd: Running, endpoint: str, uri: str, method: str = "GET", **headers: str) -> Any:
    sent = {
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": method,
        "X-Forwarded-Host": "hub.example",
        "X-Forwarded-Proto": "https",
        **headers,
    }
    return requests.get(
        f"{fwd.url}{endpoint}",
        headers={k: v for k, v in sent.items() if v},
        allow_redirects=False,
        timeout=30,
    )


@pytest.mark.parametrize("endpoint", [NGINX, TRAEFIK])
def test_a_token_passes_with_the_identity(fwd: Running, fake_hub: FakeHub, endpoint: str) -> None:
    token = fake_hub.add_user("ann", groups=["staff"])
    r = ask(fwd, endpoint, f"{PREFIX}page?x=1", Authorization=f"token {token}")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["X-Forwarded-User"] == "ann"
    assert r.headers["X-Forwarded-Groups"] == "staff"
    assert "X-Forwarded-Access-Token" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"


def test_a_browser_is_sent_to_log_in_traefik_style(fwd: Running, fake_hub: FakeHub) -> None:
    """Traefik hands a non-2xx answer to the client: the redirect, with its state cookie,
    to come back to the original URL.
    """
    r = ask(fwd, TRAEFIK, f"{PREFIX}deep/page?q=1", Accept="text/html")
    assert r.status_code == 302
    assert r.headers["Location"].startswith(f"{fake_hub.url}/hub/api/oauth2/authorize?")
    assert "oauth-state" in r.headers["Set-Cookie"] and "Secure" in r.headers["Set-Cookie"]


def test_nginx_gets_only_statuses_it_accepts(fwd: Running, fake_hub: FakeHub) -> None:
    """nginx's auth_request takes 2xx, 401 and 403 only: a login is a 401 there (its
    error_page then sends the request back to the proxy, which redirects it).
    """
    assert ask(fwd, NGINX, f"{PREFIX}page", Accept="text/html").status_code == 401
    assert ask(fwd, NGINX, f"{PREFIX}page", Accept="application/json").status_code == 401
    eve = fake_hub.add_user("eve", scopes=["read:users:name"])
    assert ask(fwd, NGINX, f"{PREFIX}page", Authorization=f"token {eve}").status_code == 403


def test_the_replayed_request_is_answered_in_full(fwd: Running, fake_hub: FakeHub) -> None:
    """What nginx's error_page sends back: the original request, to any path under the
    prefix. The browser gets the login redirect; an API client the 401; a caller who may
    pass after all is sent back to the same URL (never a page of the proxy's own).
    """
    page = f"{fwd.url}{PREFIX}deep/page?q=1"
    r = requests.get(page, headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    r = requests.get(page, headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 401 and r.json()["status"] == 401
    token = fake_hub.add_user("ann")
    r = requests.get(
        page, headers={"Authorization": f"token {token}"}, allow_redirects=False, timeout=30
    )
    assert r.status_code == 307 and r.headers["Location"] == f"{PREFIX}deep/page?q=1"


def test_a_cross_site_post_is_judged_as_the_original(fwd: Running, fake_hub: FakeHub) -> None:
    """The CSRF rule applies to the original request the reverse proxy describes: a
    cookie-only POST from another site is refused, a token-authenticated one passes.
    """
    token = fake_hub.add_user("ann")
    r = ask(
        fwd,
        TRAEFIK,
        f"{PREFIX}change",
        "POST",
        **{"Sec-Fetch-Site": "cross-site", "Authorization": f"token {token}"},
    )
    assert r.status_code == 200
    r = ask(
        fwd,
        TRAEFIK,
        f"{PREFIX}change",
        "POST",
        **{"Sec-Fetch-Site": "cross-site", "Cookie": "service-app=forged", "Accept": "text/html"},
    )
    assert r.status_code in (401, 403)


@pytest.mark.parametrize("uri", ["", "relative", "//evil.example/x", "/a\x01b"])
def test_without_a_usable_original_uri_it_says_what_to_configure(fwd: Running, uri: str) -> None:
    r = requests.get(
        f"{fwd.url}{TRAEFIK}",
        headers={"X-Forwarded-Uri": uri} if uri and "\x01" not in uri else {},
        timeout=30,
    )
    assert r.status_code == 400 and "X-Forwarded-Uri" in r.text


def test_nginx_style_original_headers_are_read(fwd: Running, fake_hub: FakeHub) -> None:
    token = fake_hub.add_user("ann")
    r = requests.get(
        f"{fwd.url}{NGINX}",
        headers={"X-Original-URI": f"{PREFIX}x", "Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["X-Forwarded-User"] == "ann"


def test_health_in_forward_auth_mode(fwd: Running) -> None:
    r = requests.get(f"{fwd.url}{PREFIX}healthz", timeout=30)
    assert r.status_code == 200 and r.json()["proxy"] == "up"
