"""Published Tornado services from PyPI, run on hubauth by their import line alone (issue 10).

Three services that mix JupyterHub's ``HubOAuthenticated`` / ``HubAuthenticated`` into their
handlers, installed from PyPI at the versions in pyproject's ``test`` extra, run by a real
JupyterHub as managed services, twice each: once as published (``-jupyterhub``, the control)
and once with ``tests/compat/shim`` on their ``PYTHONPATH`` (``-hubauth``), whose
``sitecustomize`` answers every import of ``jupyterhub.services.auth`` with hubauth's names.
Nothing else of the services changes, so a difference between the two is hubauth's.

- **jupyterhub-announcement**: OAuth login, ``xsrf_cookies=True``; admins post announcements
  through a form (``hub_users = []``, ``allow_admin = True``, then its own admin check).
- **jhsingle-native-proxy**: OAuth login in front of a web app it starts (here
  ``apps/echo_backend.py``), HTTP and websockets; overrides ``hub_users``/``hub_groups``/
  ``allow_all`` and reads ``_hub_auth_user_cache`` to forward who is calling.
- **jupyterhub-mlflow-auth**: token-only (``HubAuthenticated``) proxy for MLflow clients,
  overriding ``get_current_user`` to take ``Bearer`` tokens; here in front of the same echo app
  (an MLflow server would add nothing to what is tested: who gets through, with what).

Users: ``ada`` and ``ida`` (Hub admins; ``ida`` logs in with Chromium), ``mia`` (in group
``members``, which may use every service), ``otto`` (may use none). That each ``-hubauth``
service runs hubauth is asserted from what it does: its login cookie is hubauth's sealed
value (Fernet, ``gAAAAA...``; JupyterHub's is a Tornado signed value, ``2|1:0|...``) and its
refusals are hubauth's pages. At the end, the Hub's log must show no uncaught exception in
a ``-hubauth`` service that its control does not have too.

Where the two differ on purpose (security), the test pins both answers and
``docs/migration.md`` ("Published services, tested") says why.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.realhub import REPO_ROOT, RealHub
from tests.services import free_port

from .conftest import browse
from .test_browser import browser_context, chromium, log_in, screenshot

IMPLS = ("hubauth", "jupyterhub")
SHIM = REPO_ROOT / "tests" / "compat" / "shim"
ECHO = Path(__file__).resolve().parent / "apps" / "echo_backend.py"
TIMEOUT = 30.0

ANNOUNCEMENT, PROXY, MLFLOW = "announcement", "nativeproxy", "mlflow"
ADMIN, MEMBER, OUTSIDER = "ada", "mia", "otto"
BROWSER_ADMIN = "ida"  # another admin: the Hub asks for consent only on a first login

# How each module's login cookie looks: hubauth seals it (Fernet), JupyterHub signs it.
COOKIE_FORMAT = {"hubauth": re.compile(r"gAAAAA[\w-]+=*"), "jupyterhub": re.compile(r'"?2\|1:0\|')}
# How each module refuses a known user who may not pass (the body of its 403).
REFUSAL = {"hubauth": "may not use this service", "jupyterhub": "403: Forbidden"}


# The services' own bug, under either module: jhsingle-native-proxy's ``proxy()`` awaits its
# ``@web.authenticated`` method, which returns None once it has redirected an anonymous
# visitor to the login (the redirect is sent, then Tornado logs the TypeError).
KNOWN_UNCAUGHT = {"TypeError: object NoneType can't be used in 'await' expression"}
_ERROR_LINE = re.compile(r"^\s+(\w+(?:Error|Exception): .*)$")


def uncaught(log: str, where: str) -> set[str]:
    """The exceptions Tornado logged as uncaught in services whose path holds ``where``."""
    lines = log.splitlines()
    found = set()
    for i, line in enumerate(lines):
        if "Uncaught exception" in line and where in line:
            for follow in lines[i + 1 : i + 80]:
                if m := _ERROR_LINE.match(follow):
                    found.add(m.group(1))
                    break
    return found


def service(kind: str, impl: str) -> str:
    return f"{kind}-{impl}"


class Hub(NamedTuple):
    hub: RealHub
    tokens: dict[str, str]  # user -> an API token with all the user's permissions


def _entries(workdir: Path) -> list[dict[str, Any]]:
    """Every service entry: the echo app behind mlflow-auth, then each service twice."""
    ports: set[int] = set()
    while len(ports) < 7:
        ports.add(free_port())
    backend, *free = sorted(ports)
    py = sys.executable
    entries: list[dict[str, Any]] = [
        # A managed process without a URL: jupyterhub-mlflow-auth forwards to it.
        {"name": "mlflow-backend", "command": [py, str(ECHO), "--port", str(backend)]}
    ]
    for impl in IMPLS:
        env = {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}  # read by hubauth only
        if impl == "hubauth":
            env["PYTHONPATH"] = str(SHIM)  # the import line, changed
        cwd = workdir / impl
        cwd.mkdir()  # the announcement service writes its cookie secret file here
        port = free.pop()
        entries.append(
            {
                "name": service(ANNOUNCEMENT, impl),
                "url": f"http://127.0.0.1:{port}",
                "command": [
                    py,
                    "-m",
                    "jupyterhub_announcement",
                    f"--AnnouncementService.port={port}",
                ],
                "cwd": str(cwd),
                "environment": env,
            }
        )
        port = free.pop()
        entries.append(
            {
                "name": service(PROXY, impl),
                "url": f"http://127.0.0.1:{port}",
                "command": [
                    *(py, "-m", "jhsingle_native_proxy.main", "--port", str(port)),
                    *("--ip", "127.0.0.1", "--last-activity-interval", "0"),
                    *("--forward-user-info", "--ready-timeout", "30"),
                    *("--", py, str(ECHO), "--port", "{port}"),
                ],
                "environment": env,
            }
        )
        port = free.pop()
        entries.append(
            {
                "name": service(MLFLOW, impl),
                "url": f"http://127.0.0.1:{port}",
                "command": [py, "-m", "jupyterhub_mlflow_auth"],
                "environment": {
                    **env,
                    "JUPYTERHUB_MLFLOW_AUTH_TARGET": f"127.0.0.1:{backend}",
                    "JUPYTERHUB_MLFLOW_AUTH_PORT": str(port),
                },
            }
        )
    return entries


def _wait_for_backend(entries: list[dict[str, Any]]) -> None:
    port = entries[0]["command"][-1]
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One Hub running all six services (and the echo app), shared by the module's tests."""
    entries = _entries(tmp_path_factory.mktemp("published-services"))
    hub = RealHub(
        services=entries,
        roles=[
            {"name": "user", "scopes": ["self"]},
            {"name": "service-users", "scopes": ["access:services"], "groups": ["members"]},
        ],
        load_groups={"members": {"users": []}},
        extra_config=f"c.Authenticator.admin_users = {{{ADMIN!r}, {BROWSER_ADMIN!r}}}",
        start_timeout=120,
    )
    with hub:
        for entry in entries[1:]:
            hub.wait_for_service(entry["name"], timeout=60)
        _wait_for_backend(entries)
        hub.create_user(ADMIN)
        hub.create_user(MEMBER, groups=["members"])
        hub.create_user(OUTSIDER)
        hub.create_user(BROWSER_ADMIN)
        yield Hub(hub, {name: hub.user_token(name) for name in (ADMIN, MEMBER, OUTSIDER)})
        # After every test: hubauth made none of the services fail in a new way.
        log = hub.log_text()
        ours, control = uncaught(log, "-hubauth/"), uncaught(log, "-jupyterhub/")
        assert ours <= KNOWN_UNCAUGHT, f"uncaught exceptions under hubauth: {ours - KNOWN_UNCAUGHT}"
        assert ours <= control, f"only under hubauth: {ours - control}"


# --------------------------------------------------------------------------------- helpers


class Visit(NamedTuple):
    browser: requests.Session  # its cookies: the Hub's and the service's
    page: requests.Response  # where the navigation ended


def logged_in(hub: RealHub, user: str, kind: str, impl: str, path: str = "") -> Visit:
    """A browser-like session logged in to the Hub as ``user``, sent to a service's page
    through the Hub's login and consent pages.
    """
    session = requests.Session()
    session.headers["Accept"] = "text/html"
    hub.login(session, user)
    return Visit(session, browse(session, hub.service_url(service(kind, impl), path)))


def login_cookie(session: requests.Session, kind: str, impl: str) -> str:
    values = [c.value for c in session.cookies if c.name == f"service-{service(kind, impl)}"]
    assert len(values) == 1, [c.name for c in session.cookies]
    return str(values[0])


def with_token(token: str, scheme: str = "token") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def form_xsrf(page: str) -> str:
    m = re.search(r'name="_xsrf" value="([^"]*)"', page)
    assert m is not None, "no _xsrf field in the page"
    return html.unescape(m.group(1))


def ws_url(hub: RealHub, kind: str, impl: str, path: str) -> str:
    return hub.service_url(service(kind, impl), path).replace("http://", "ws://", 1)


def ws_echo(url: str, headers: dict[str, str], message: str) -> str:
    """Open a websocket, send ``message``, return the answer (closing handshake finished)."""

    async def talk() -> str:
        request = HTTPRequest(
            url, headers=headers, connect_timeout=TIMEOUT, request_timeout=TIMEOUT
        )
        conn = await websocket_connect(request)
        try:
            await conn.write_message(message)
            answer = await asyncio.wait_for(conn.read_message(), TIMEOUT)
            return str(answer)
        finally:
            conn.close()
            while await asyncio.wait_for(conn.read_message(), TIMEOUT) is not None:
                pass

    return asyncio.run(talk())


def handshake_status(url: str, headers: dict[str, str]) -> int:
    """The status a websocket handshake to ``url`` (http://) gets (101 when accepted),
    without talking on the socket.
    """
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    with requests.get(url, headers=upgrade, timeout=TIMEOUT, stream=True) as r:
        return r.status_code


# ------------------------------------------------------------------ jupyterhub-announcement


@pytest.mark.parametrize("impl", IMPLS)
def test_announcement_admin_posts_through_its_form(published: Hub, impl: str) -> None:
    """The admin logs in, posts an announcement with the form's XSRF token (the service
    has ``xsrf_cookies=True``; its update handler has ``hub_users = []``, which JupyterHub
    ignores when scopes are set), and everyone sees it, also through an API token.
    """
    hub, tokens = published
    session, page = logged_in(hub, ADMIN, ANNOUNCEMENT, impl)
    assert page.status_code == 200, page.text[:500]
    assert page.url == hub.service_url(service(ANNOUNCEMENT, impl))
    assert f'action="/services/{service(ANNOUNCEMENT, impl)}/update"' in page.text
    assert COOKIE_FORMAT[impl].match(login_cookie(session, ANNOUNCEMENT, impl))

    update = hub.service_url(service(ANNOUNCEMENT, impl), "update")
    text = f"Maintenance tonight {secrets.token_hex(4)}"
    refused = session.post(update, data={"announcement": "no token"}, allow_redirects=False)
    assert refused.status_code == 403
    posted = session.post(
        update,
        data={"announcement": text, "_xsrf": form_xsrf(page.text)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert posted.status_code == 302, posted.text[:500]
    assert posted.headers["Location"] == f"/services/{service(ANNOUNCEMENT, impl)}/"
    again = session.get(hub.service_url(service(ANNOUNCEMENT, impl)), timeout=TIMEOUT)
    assert text in again.text
    assert "no token" not in again.text

    latest = requests.get(
        hub.service_url(service(ANNOUNCEMENT, impl), "latest"),
        headers=with_token(tokens[MEMBER]),
        timeout=TIMEOUT,
    )
    assert latest.status_code == 200
    assert latest.json()["announcement"] == text
    assert latest.json()["user"] == ADMIN


@pytest.mark.parametrize("impl", IMPLS)
def test_announcement_refuses_who_may_not(published: Hub, impl: str) -> None:
    """``otto`` may not use the service: the Hub refuses his login to it (403 on its
    authorize page) and the service refuses his token (403, the module's own page). ``mia``
    may read announcements but gets no admin form.
    """
    hub, tokens = published
    otto = logged_in(hub, OUTSIDER, ANNOUNCEMENT, impl).page
    assert otto.status_code == 403
    assert "/hub/api/oauth2/authorize" in otto.url
    by_token = requests.get(
        hub.service_url(service(ANNOUNCEMENT, impl)),
        headers=with_token(tokens[OUTSIDER]),
        timeout=TIMEOUT,
    )
    assert by_token.status_code == 403
    assert REFUSAL[impl] in by_token.text

    mia = logged_in(hub, MEMBER, ANNOUNCEMENT, impl).page
    assert mia.status_code == 200
    assert "Latest Announcement" in mia.text
    assert "/update" not in mia.text


@pytest.mark.parametrize("impl", IMPLS)
def test_announcement_post_with_an_api_token(published: Hub, impl: str) -> None:
    """A token-authenticated POST needs no XSRF token under hubauth (the browser cannot
    attach an ``Authorization`` header cross-site), so the service's own admin check decides:
    ``ada`` posts, ``mia`` is refused by the service itself. JupyterHub 6.1 refuses both
    before that: Tornado checks ``xsrf_cookies`` before the mixin has looked at the token
    (its ``_token_authenticated`` flag is not set yet): "'_xsrf' argument missing".
    """
    hub, tokens = published
    update = hub.service_url(service(ANNOUNCEMENT, impl), "update")
    text = f"Posted by token {secrets.token_hex(4)}"
    by_admin = requests.post(
        update,
        data={"announcement": text},
        headers=with_token(tokens[ADMIN]),
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    by_member = requests.post(
        update,
        data={"announcement": "by a member"},
        headers=with_token(tokens[MEMBER]),
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert by_member.status_code == 403
    prefix = f"POST /services/{service(ANNOUNCEMENT, impl)}/update"
    log = hub.log_text()
    if impl == "hubauth":
        assert by_admin.status_code == 302, by_admin.text[:500]
        listed = requests.get(
            hub.service_url(service(ANNOUNCEMENT, impl), "list"),
            headers=with_token(tokens[MEMBER]),
            timeout=TIMEOUT,
        ).json()
        assert text in [a["announcement"] for a in listed]
        assert f"{prefix} (127.0.0.1): {MEMBER} is not authorized to update announcement" in log
    else:
        assert by_admin.status_code == 403
        assert f"{prefix} (127.0.0.1): '_xsrf' argument missing from POST" in log


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_announcement_in_chromium(published: Hub) -> None:
    """A person's way: Chromium logs ``ida`` in through the Hub's pages, she types an
    announcement into the service's form and submits it, and the page shows it.
    """
    hub, _ = published
    name = service(ANNOUNCEMENT, "hubauth")
    home = hub.service_url(name)
    text = f"Chromium says hello {secrets.token_hex(4)}"
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        log_in(page, hub, home, BROWSER_ADMIN)
        cookies = {c["name"]: c["value"] for c in context.cookies(home)}
        assert COOKIE_FORMAT["hubauth"].match(cookies[f"service-{name}"])
        page.fill("textarea#announcement", text)
        with page.expect_response(lambda r: r.url.endswith("/update")) as posted:
            page.click("form[action$='/update'] button[type=submit]")
        assert posted.value.status == 302
        page.wait_for_url(home)
        assert text in page.locator("body").inner_text()
        screenshot(page, "published-announcement-hubauth.png")


# --------------------------------------------------------------------- jhsingle-native-proxy


@pytest.mark.parametrize("impl", IMPLS)
def test_native_proxy_login_token_and_refusal(published: Hub, impl: str) -> None:
    """A login lands on the deep link, proxied to the app with who is calling (which the
    service reads from ``_hub_auth_user_cache``); a token works the same way; ``otto`` is
    refused by the Hub (login) and by the service (token), which ``hub_users = {''}`` does
    not change: with scopes set, only scopes decide.
    """
    hub, tokens = published
    session, page = logged_in(hub, MEMBER, PROXY, impl, "deep/link?x=1")
    assert page.status_code == 200, page.text[:500]
    assert page.url == hub.service_url(service(PROXY, impl), "deep/link?x=1")
    seen = page.json()
    assert (seen["backend"], seen["path"], seen["query"]) == ("echo", "/deep/link", "x=1")
    forwarded = json.loads(seen["headers"]["X-Cdsdashboards-Jh-User"])
    assert forwarded == {"kind": "user", "name": MEMBER, "admin": False, "groups": ["members"]}
    assert COOKIE_FORMAT[impl].match(login_cookie(session, PROXY, impl))

    by_token = requests.get(
        hub.service_url(service(PROXY, impl), "api/x"),
        headers=with_token(tokens[MEMBER]),
        timeout=TIMEOUT,
    )
    assert by_token.status_code == 200
    assert json.loads(by_token.json()["headers"]["X-Cdsdashboards-Jh-User"])["name"] == MEMBER

    otto = logged_in(hub, OUTSIDER, PROXY, impl).page
    assert otto.status_code == 403
    assert "/hub/api/oauth2/authorize" in otto.url
    refused = requests.get(
        hub.service_url(service(PROXY, impl), "api/x"),
        headers=with_token(tokens[OUTSIDER]),
        timeout=TIMEOUT,
    )
    assert refused.status_code == 403
    assert REFUSAL[impl] in refused.text
    assert '"backend"' not in refused.text


def test_native_proxy_websocket_carries_data(published: Hub) -> None:
    """A websocket through the service reaches the app and carries data both ways: with a
    token, and with the login cookie plus same-origin evidence (``Sec-Fetch-Site``).

    The service's own handshake rules hold under both modules: it never asks who is calling
    on a websocket (anyone gets through: its gap, not the module's), and its copy of
    Tornado's handshake calls ``check_origin`` on every ``Origin``, which Tornado 6.6 answers
    False unless the origin is in ``trusted_origins`` (so a browser's websocket, which always
    carries ``Origin``, is refused by the service with either module). One difference, on
    purpose: a handshake with only the login cookie (no ``Origin``, no ``Sec-Fetch-Site``)
    is refused by hubauth, as any cookie-authenticated request without same-origin evidence
    (cross-site websocket hijacking); JupyterHub lets it through.

    Under hubauth the anonymous handshake was a 500 until ``_hub_auth_user_cache`` stopped
    existing before ``get_current_user()`` (pinned in tests/test_tornado_mixin.py).
    """
    hub, tokens = published
    outcomes: dict[str, dict[str, int]] = {}
    for impl in IMPLS:
        session, page = logged_in(hub, MEMBER, PROXY, impl)
        assert page.status_code == 200
        login = login_cookie(session, PROXY, impl)
        cookie = {"Cookie": f"service-{service(PROXY, impl)}={login}"}
        url = ws_url(hub, PROXY, impl, "ws")
        word = secrets.token_hex(4)
        assert ws_echo(url, with_token(tokens[MEMBER]), word) == f"echo:{word}"
        same_site = {**cookie, "Sec-Fetch-Site": "same-origin"}
        assert ws_echo(url, same_site, word + "!") == f"echo:{word}!"
        http = hub.service_url(service(PROXY, impl), "ws")
        outcomes[impl] = {
            "anonymous": handshake_status(http, {}),
            "outsider's token": handshake_status(http, with_token(tokens[OUTSIDER])),
            "cookie, same Origin (a browser)": handshake_status(
                http, {**cookie, "Origin": hub.url}
            ),
            "cookie, foreign Origin": handshake_status(
                http, {**cookie, "Origin": "http://evil.test"}
            ),
            "cookie alone": handshake_status(http, cookie),
        }
    assert outcomes["hubauth"].pop("cookie alone") == 403  # no same-origin evidence
    assert outcomes["jupyterhub"].pop("cookie alone") == 101
    assert outcomes["hubauth"] == outcomes["jupyterhub"]
    assert outcomes["hubauth"]["anonymous"] == 101  # the service's gap, under both


def test_native_proxy_form_post_needs_same_origin_evidence_with_hubauth(published: Hub) -> None:
    """The service turns Tornado's XSRF check off ("defer to proxied apps"), so under
    JupyterHub a cookie-authenticated POST from anywhere reaches the app. hubauth still
    wants same-origin evidence for one (``Origin`` or ``Sec-Fetch-Site``, as every browser
    sends): a page on another origin of the same site (SameSite=Lax lets its cookie through)
    cannot post as the user. Same-origin posts work under both.
    """
    hub, _ = published
    answers: dict[str, dict[str, int]] = {}
    for impl in IMPLS:
        session, page = logged_in(hub, MEMBER, PROXY, impl)
        assert page.status_code == 200
        url = hub.service_url(service(PROXY, impl), "form")
        cases = {
            "Origin: same": {"Origin": hub.url},
            "Sec-Fetch-Site: same-origin": {"Sec-Fetch-Site": "same-origin"},
            "Origin: another port": {"Origin": "http://127.0.0.1:1"},
            "no evidence": {},
        }
        answers[impl] = {}
        for case, headers in cases.items():
            r = session.post(url, data={"a": "1"}, headers=headers, timeout=TIMEOUT)
            answers[impl][case] = r.status_code
            if r.status_code == 200:
                assert r.json()["body"] == "a=1"
    assert answers["jupyterhub"] == dict.fromkeys(answers["jupyterhub"], 200)
    assert answers["hubauth"] == {
        "Origin: same": 200,
        "Sec-Fetch-Site: same-origin": 200,
        "Origin: another port": 403,
        "no evidence": 403,
    }


# ------------------------------------------------------------------- jupyterhub-mlflow-auth


@pytest.mark.parametrize("impl", IMPLS)
def test_mlflow_auth_takes_bearer_tokens_and_refuses_others(published: Hub, impl: str) -> None:
    """MLflow clients send ``Bearer`` tokens; the service rewrites them in its own
    ``get_current_user`` and forwards the call. Everyone else gets 403: ``otto``, no token, a
    token the Hub does not know, and a logged-in browser (a token-only service never sends
    one to a login it cannot finish).
    """
    hub, tokens = published
    api = hub.service_url(service(MLFLOW, impl), "api/2.0/mlflow/experiments/search")
    listed = requests.get(api, headers=with_token(tokens[MEMBER], "Bearer"), timeout=TIMEOUT)
    assert listed.status_code == 200, listed.text[:500]
    assert (
        listed.json()["path"]
        == f"/services/{service(MLFLOW, impl)}/api/2.0/mlflow/experiments/search"
    )
    assert listed.json()["headers"]["Authorization"] == f"token {tokens[MEMBER]}"
    created = requests.post(
        hub.service_url(service(MLFLOW, impl), "api/2.0/mlflow/runs/create"),
        json={"experiment_id": "0"},
        headers=with_token(tokens[MEMBER]),
        timeout=TIMEOUT,
    )
    assert created.status_code == 200
    assert json.loads(created.json()["body"]) == {"experiment_id": "0"}

    otto = requests.get(api, headers=with_token(tokens[OUTSIDER], "Bearer"), timeout=TIMEOUT)
    assert otto.status_code == 403
    assert REFUSAL[impl] in otto.text
    for headers in ({}, with_token(secrets.token_hex(16), "Bearer")):
        r = requests.get(api, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 403
        assert '"backend"' not in r.text
    browser = logged_in(hub, MEMBER, MLFLOW, impl).page
    assert browser.status_code == 403
    assert browser.url == hub.service_url(service(MLFLOW, impl))
