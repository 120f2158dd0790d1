"""hubauth-proxy against a real JupyterHub: as Hub-managed services, as a user's server the
Hub starts, and as nginx's forward-auth.

One Hub (module scope) runs:

- ``dashboard``: the Bokeh app of examples/proxy-bokeh behind ``hubauth-proxy --group
  dashboards`` (Bokeh keeps a websocket to the browser; Chromium drives it);
- ``echo``: the echo app of tests/proxy_apps.py behind hubauth-proxy (identity headers,
  tokens, refusals, SSE, a 100 MB upload while the proxy's memory is watched);
- ``fwd``: ``hubauth-proxy --forward-auth`` for the nginx example (nginx itself and its app
  are started by the test);
- user servers: ``MockSpawner`` running ``hubauth-proxy -- python tests/proxy_apps.py``,
  reporting activity every second.

Users: ``member-*`` in group ``members`` (access to every service); ``ada`` also in
``dashboards``; ``outsider`` with no access to any service.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import browse
from tests.realhub import REPO_ROOT, RealHub, _descendants

EXAMPLES = REPO_ROOT / "examples"
ECHO = REPO_ROOT / "tests" / "proxy_apps.py"
NGINX = "/usr/sbin/nginx"
PROXY = [sys.executable, "-m", "hubauth.proxy"]
SECRET = {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FWD_PORT, NGINX_PORT = _free_port(), _free_port()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """nginx with the example's configuration, and the app behind it: up before the Hub,
    which waits for every managed service's URL (nginx's, for ``fwd``) to answer.
    """
    tmp_path = tmp_path_factory.mktemp("nginx")
    app_port = _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        app = subprocess.Popen(
            [sys.executable, str(ECHO), str(app_port), "/services/fwd/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(app)
        _wait_port(app_port, app, "the echo app")
        conf = _nginx_conf(tmp_path, app_port)
        web = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        procs.append(web)
        _wait_port(NGINX_PORT, web, "nginx")
        yield tmp_path
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


@pytest.fixture(scope="module")
def hub(nginx: Path) -> Iterator[RealHub]:
    bokeh = [
        sys.executable, "-m", "bokeh", "serve", str(EXAMPLES / "proxy-bokeh" / "dashboard.py"),
        "--port", "{port}", "--address", "127.0.0.1", "--prefix", "{prefix}",
        "--allow-websocket-origin", "*",
    ]  # fmt: skip
    services = [
        {
            "name": "dashboard",
            "url": f"http://127.0.0.1:{_free_port()}",
            "command": [*PROXY, "--group", "dashboards", "--", *bokeh],
            "environment": SECRET,
        },
        {
            "name": "echo",
            "url": f"http://127.0.0.1:{_free_port()}",
            "command": [*PROXY, "--", sys.executable, str(ECHO), "{port}", "{prefix}"],
            "environment": SECRET,
        },
        {
            "name": "fwd",
            "url": f"http://127.0.0.1:{NGINX_PORT}",  # nginx: the Hub's proxy routes there
            "command": [*PROXY, "--forward-auth", "--port", str(FWD_PORT)],
            "environment": SECRET,
        },
    ]
    server_cmd = [*PROXY, "--", sys.executable, str(ECHO), "{port}", "{prefix}"]
    extra = "\n".join(
        [
            f"c.MockSpawner.cmd = {server_cmd!r}",
            "c.Spawner.environment = {'JUPYTERHUB_ACTIVITY_INTERVAL': '1', "
            f"'HUBAUTH_COOKIE_SECRET': {SECRET['HUBAUTH_COOKIE_SECRET']!r}}}",
            "c.Spawner.http_timeout = 60",
            "c.Spawner.start_timeout = 60",
        ]
    )
    access = [f"access:services!service={s['name']}" for s in services]
    with RealHub(
        services=services,
        roles=[
            {"name": "user", "scopes": ["self"]},
            {"name": "proxy-users", "scopes": access, "groups": ["members"]},
        ],
        load_groups={"members": {"users": []}, "dashboards": {"users": []}},
        extra_config=extra,
    ) as h:
        h.create_user("outsider")
        for name in ("dashboard", "echo"):
            h.wait_for_service(name, timeout=60)
        yield h


def member(hub: RealHub, *groups: str) -> str:
    name = f"member-{secrets.token_hex(3)}"
    hub.create_user(name, groups=["members", *groups])
    return name


def session_for(hub: RealHub, name: str) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html"
    hub.login(s, name)
    return s


def proxy_pid(hub: RealHub, prefix: str) -> int:
    """The hubauth-proxy process the Hub started for ``prefix``: the parent of the app it
    started with ``{prefix}`` replaced by ``prefix``.
    """
    assert hub.proc is not None
    family = _descendants(hub.proc.pid)
    for pid in family:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if prefix.encode() in cmdline:
            parent = int(stat[stat.rfind(")") + 2 :].split()[1])
            parent_cmd = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
            assert b"hubauth.proxy" in parent_cmd, parent_cmd
            return parent
    raise AssertionError(f"no hubauth-proxy process for {prefix}")


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


# ---------------------------------------------------------------------- a real app, a real browser


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_bokeh_app_in_chromium_through_the_hub_login(hub: RealHub) -> None:
    """Log in through the Hub's pages in Chromium and use the Bokeh app: the page greets the
    user the proxy named, and a click goes over Bokeh's websocket and comes back.
    """
    from tests.integration.test_browser import browser_context, chromium, log_in, screenshot

    name = member(hub, "dashboards")
    deep = hub.service_url("dashboard", "dashboard")
    with chromium() as browser, browser_context(browser) as context:
        page = context.new_page()
        log_in(page, hub, deep, name)
        page.get_by_text(f"Hello {name}").wait_for()
        page.get_by_text("groups: members,dashboards").or_(
            page.get_by_text("groups: dashboards,members")
        ).wait_for()
        for n in (1, 2):
            page.get_by_role("button", name="Click me").click()
            page.get_by_text(f"clicked {n} times").wait_for()  # there and back over the socket
        screenshot(page, "proxy-bokeh.png")
        cookie = [c for c in context.cookies(deep) if c["name"] == "service-dashboard"]
        assert cookie and cookie[0]["httpOnly"] and cookie[0]["path"] == "/services/dashboard/"
        # Logout at <prefix>logout: the proxy's cookie goes, and the Hub session ends too.
        page.goto(hub.service_url("dashboard", "logout"))
        assert not [c for c in context.cookies(deep) if c["name"] == "service-dashboard"]
        page.goto(deep)
        page.wait_for_url(re.compile(re.escape(f"{hub.hub_url}login") + r"(\?.*)?$"))


def test_group_shortcut_refuses_other_members(hub: RealHub) -> None:
    """``--group dashboards``: a member of the Hub with access to the service, but not in
    the group, is refused by the proxy (403, not a login loop).
    """
    name = member(hub)
    r = browse(session_for(hub, name), hub.service_url("dashboard", "dashboard"))
    assert r.status_code == 403 and name in r.text
    token = hub.user_token(name)
    r = requests.get(
        hub.service_url("dashboard", "dashboard"),
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 403


# ---------------------------------------------------------------------- tokens and refusals


def test_api_token_refused_user_and_spoofed_headers(hub: RealHub) -> None:
    name = member(hub)
    token = hub.user_token(name)
    spoof = {"X-Forwarded-User": "admin", "X_Forwarded_User": "admin", "X-Forwarded-Groups": "x"}
    r = requests.get(
        hub.service_url("echo", "page"),
        headers={"Authorization": f"token {token}", **spoof},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    headers = {k.lower(): v for k, v in r.json()["headers"]}
    assert headers["x-forwarded-user"] == name
    assert headers["x-forwarded-groups"] == "members"
    assert "authorization" not in headers and "x_forwarded_user" not in headers
    assert token not in r.text
    outsider = hub.user_token("outsider")
    r = requests.get(
        hub.service_url("echo", "page"), headers={"Authorization": f"token {outsider}"}, timeout=30
    )
    assert r.status_code == 403 and "outsider" in r.json()["message"]
    r = requests.get(
        hub.service_url("echo", "page"), headers={"Accept": "application/json"}, timeout=30
    )
    assert r.status_code == 401
    # A browser: the Hub's login and consent, then the app, told who it is.
    r = browse(session_for(hub, name), hub.service_url("echo", "deep/link?q=1"))
    assert r.status_code == 200 and r.json()["path"] == "/services/echo/deep/link"
    assert {k.lower(): v for k, v in r.json()["headers"]}["x-forwarded-user"] == name
    # The outsider's browser is refused (by the Hub's consent step or the proxy): 403.
    r = browse(session_for(hub, "outsider"), hub.service_url("echo", "page"))
    assert r.status_code == 403


# ---------------------------------------------------------------------- streaming


def test_sse_and_a_100_mb_upload_with_bounded_memory(hub: RealHub) -> None:
    """Server-sent events arrive one by one through the Hub's proxy and hubauth-proxy; a
    100 MB upload streams through without the proxy holding it (its peak RSS grows by far
    less than the upload).
    """
    token = hub.user_token(member(hub))
    auth = {"Authorization": f"token {token}"}
    with requests.get(
        hub.service_url("echo", "trouble/sse?n=3&delay=0.3"), headers=auth, stream=True, timeout=30
    ) as r:
        events = [line for line in r.iter_lines(chunk_size=1) if line]
    assert events == [b"data: event 0", b"data: event 1", b"data: event 2"]

    pid = proxy_pid(hub, "/services/echo/")
    before = memory_kib(pid)
    size = 100 * 1024 * 1024
    block = secrets.token_bytes(1024 * 1024)
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            digest.update(block)
            yield block

    r = requests.post(hub.service_url("echo", "upload"), data=body(), headers=auth, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == size and r.json()["sha256"] == digest.hexdigest()
    after = memory_kib(pid)
    growth_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
    assert growth_mib < 30, (before, after)  # streamed: a few chunks in flight, not 100 MB


# ---------------------------------------------------------------------- a user's server


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.timeout(180)
def test_the_proxy_as_a_users_server_reports_activity(hub: RealHub) -> None:
    name = member(hub)
    hub.api("POST", f"/users/{name}/server", ok=[201, 202])
    deadline = time.monotonic() + 90
    while True:
        model = hub.api("GET", f"/users/{name}").json()
        server = model["servers"].get("", {})
        if server.get("ready"):
            break
        assert time.monotonic() < deadline, hub.log_tail()
        time.sleep(0.2)
    try:
        spawned = _when(server["last_activity"])
        time.sleep(1.5)  # so that traffic now is clearly later than the spawn
        token = hub.user_token(name)
        url = f"{hub.url}/user/{name}/notebooks/x?y=1"
        with requests.Session() as s:
            s.headers["Authorization"] = f"token {token}"
            for _ in range(5):
                r = s.get(url, timeout=30)
                assert r.status_code == 200, r.text
        headers = {k.lower(): v for k, v in r.json()["headers"]}
        assert headers["x-forwarded-user"] == name
        assert r.json()["path"] == f"/user/{name}/notebooks/x"
        # Someone else may not use this server (its access scope is the owner's).
        other = hub.user_token(member(hub))
        assert (
            requests.get(url, headers={"Authorization": f"token {other}"}, timeout=30).status_code
            == 403
        )
        deadline = time.monotonic() + 30
        while True:
            server = hub.api("GET", f"/users/{name}").json()["servers"][""]
            if _when(server["last_activity"]) > spawned:
                break  # the proxy's POST /users/:name/activity reached the Hub
            assert time.monotonic() < deadline, hub.log_tail()
            time.sleep(0.2)
    finally:
        hub.api("DELETE", f"/users/{name}/server", ok=[202, 204])


# ---------------------------------------------------------------------- nginx forward-auth


def _nginx_conf(root: Path, app_port: int) -> Path:
    """examples/proxy-nginx/hubauth-forward-auth.conf on this test's ports, in an nginx.conf
    of its own (its own prefix, logs and temp dirs; no daemon, no workers to switch user).
    """
    example = (EXAMPLES / "proxy-nginx" / "hubauth-forward-auth.conf").read_text()
    site = (
        example.replace("127.0.0.1:8000", f"127.0.0.1:{NGINX_PORT}")
        .replace("127.0.0.1:9100", f"127.0.0.1:{FWD_PORT}")
        .replace("127.0.0.1:8050", f"127.0.0.1:{app_port}")
        .replace("/services/app/", "/services/fwd/")
    )
    (root / "site.conf").write_text(site)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / d).mkdir()
    conf = root / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process off;
error_log {root}/error.log info;
pid {root}/nginx.pid;
events {{ }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
"""
    )
    return conf


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not listen on {port}"
            time.sleep(0.05)


def test_nginx_forward_auth_example(hub: RealHub, nginx: Path) -> None:
    """The documented nginx configuration, on Debian's nginx, in front of an app, with
    ``hubauth-proxy --forward-auth`` deciding: browsers log in through the Hub, tokens work,
    the outsider is refused, and the app is told who is calling (never what a client
    claims).
    """
    log_start = (nginx / "error.log").stat().st_size  # before: the Hub's start-up checks
    name = member(hub)
    url = hub.service_url("fwd", "page?x=1")
    token = hub.user_token(name)
    spoof = {"X-Forwarded-User": "admin", "X_Forwarded_User": "admin", "X-Forwarded-Groups": "x"}
    r = requests.get(url, headers={"Authorization": f"token {token}", **spoof}, timeout=30)
    assert r.status_code == 200, r.text
    headers = {k.lower(): v for k, v in r.json()["headers"]}
    assert headers["x-forwarded-user"] == name and headers["x-forwarded-groups"] == "members"
    assert "authorization" not in headers and "x_forwarded_user" not in headers
    outsider = hub.user_token("outsider")
    r = requests.get(url, headers={"Authorization": f"token {outsider}"}, timeout=30)
    assert r.status_code == 403
    r = requests.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 401 and r.json()["status"] == 401
    b = session_for(hub, name)
    r = browse(b, url)
    assert r.status_code == 200 and r.url == url, (r.status_code, r.url, r.text[:300])
    assert {k.lower(): v for k, v in r.json()["headers"]}["x-forwarded-user"] == name
    r = b.get(hub.service_url("fwd", "logout"), allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"].endswith("/hub/logout")
    log = (nginx / "error.log").read_bytes()[log_start:].decode(errors="replace")
    assert "auth request unexpected status" not in log, log  # only 2xx/401/403 for nginx
    assert "[error]" not in log, log
