"""Start a real JupyterHub on 127.0.0.1 with every example service; ``--check`` tests them.

Run through ``./dev demo`` (which installs JupyterHub and its proxy first). Interactive: open
the printed URL and log in with any name. ``--check``: start the Hub on free ports, exercise
every example without a human, stop, and exit 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import html.parser
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gunicorn(module: str, folder: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "gunicorn", "-w", "4", "-b", bind, "--chdir", folder, module]


def _behind_proxy(*app: str) -> list[str]:
    """``app`` started by hubauth-proxy ({port}, {prefix} filled in), the Hub login in front."""
    return [sys.executable, "-m", "hubauth.proxy", "--", *app]


EXTERNAL = "external"


def external_env(token: str, port: int, hub_api: str) -> dict[str, str]:
    """What an operator gives the external service: what the Hub gives managed ones."""
    prefix = f"/services/{EXTERNAL}/"
    return {
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_API_URL": hub_api,
        "JUPYTERHUB_SERVICE_NAME": EXTERNAL,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "HUBAUTH_COOKIE_SECRET": secrets.token_hex(32),
    }


def services(admin_token: str, external: tuple[str, int] | None = None) -> list[dict[str, object]]:
    """Every example service, as the Hub should run it (``external``: its token and port)."""
    secret = {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}
    flask_port, wsgi_port = free_port(), free_port()
    return [
        {
            "name": "whoami-api",
            "url": f"http://127.0.0.1:{free_port()}",
            "command": [sys.executable, str(HERE / "whoami-api" / "whoami_api.py")],
        },
        {
            "name": "whoami-tornado",
            "url": f"http://127.0.0.1:{free_port()}",
            "command": [sys.executable, str(HERE / "whoami-tornado" / "whoami_tornado.py")],
            "environment": secret,  # logins survive a restart of the service
        },
        {
            "name": "whoami-flask",
            "url": f"http://127.0.0.1:{flask_port}",
            "command": _gunicorn("whoami_flask:app", str(HERE / "whoami-flask"), flask_port),
            "environment": secret,
        },
        {
            "name": "whoami-wsgi",
            "url": f"http://127.0.0.1:{wsgi_port}",
            "command": _gunicorn("whoami_wsgi:app", str(HERE / "whoami-wsgi"), wsgi_port),
            "environment": secret,
        },
        {
            "name": "grader-dashboard",
            "url": f"http://127.0.0.1:{free_port()}",
            "command": [sys.executable, str(HERE / "grader-dashboard" / "grader_dashboard.py")],
            "environment": secret,
            "oauth_client_allowed_scopes": ["read:groups!group=students"],
        },
        {
            # examples/proxy-bokeh: a Bokeh app (not hubauth-aware) behind hubauth-proxy.
            "name": "dashboard",
            "url": f"http://127.0.0.1:{free_port()}",
            "command": _behind_proxy(
                *[sys.executable, "-m", "bokeh", "serve", str(HERE / "proxy-bokeh/dashboard.py")],
                *["--port", "{port}", "--address", "127.0.0.1", "--prefix", "{prefix}"],
                *["--allow-websocket-origin", "*"],
            ),
            "environment": secret,
        },
        {
            # Not an example: the demo's own hand on the Hub, for --check.
            "name": "demo-admin",
            "api_token": admin_token,
        },
    ] + (
        [
            {
                "name": EXTERNAL,
                "url": f"http://127.0.0.1:{external[1]}",
                "api_token": external[0],
                "oauth_redirect_uri": f"/services/{EXTERNAL}/oauth_callback",
            }
        ]
        if external
        else []
    )


def write_config(
    workdir: Path, port: int, hub_port: int, admin_token: str, external: tuple[str, int]
) -> Path:
    config = workdir / "jupyterhub_config.py"
    roles = [
        {"name": "user", "scopes": ["self", "access:services"]},
        {
            "name": "demo-admin",
            "scopes": ["admin:users", "admin:groups", "admin:services", "tokens"],
            "services": ["demo-admin"],
        },
        {"name": "graders", "scopes": ["read:groups!group=students"], "groups": ["teachers"]},
    ]
    groups = {"students": {"users": ["ada", "grace"]}, "teachers": {"users": ["teacher"]}}
    config.write_text(
        "\n".join(
            [
                "c = get_config()  # noqa",
                "c.JupyterHub.ip = '127.0.0.1'",
                f"c.JupyterHub.port = {port}",
                f"c.JupyterHub.hub_port = {hub_port}",
                f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{free_port()}'",
                f"c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]",
                "c.JupyterHub.authenticator_class = 'dummy'",
                "c.Authenticator.allow_all = True",
                "c.JupyterHub.spawner_class = 'jupyterhub.tests.mocking.MockSpawner'",
                f"c.JupyterHub.services = {json.dumps(services(admin_token, external))}",
                f"c.JupyterHub.load_roles = {json.dumps(roles)}",
                f"c.JupyterHub.load_groups = {json.dumps(groups)}",
                "",
            ]
        )
    )
    return config


def start_hub(
    workdir: Path,
    port: int,
    hub_port: int,
    admin_token: str,
    external: tuple[str, int],
    *,
    quiet: bool,
) -> subprocess.Popen[bytes]:
    if not PROXY.exists():
        sys.exit(f"{PROXY} is missing: run ./dev demo, which installs it")
    config = write_config(workdir, port, hub_port, admin_token, external)
    log = open(workdir / "hub.log", "wb") if quiet else None  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT if quiet else None,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"JupyterHub did not answer at {url} within {timeout:.0f}s")


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # The Hub's proxy and services share its process group; make sure none is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_service(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code != 503:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)


def check_whoami_api(url: str, admin: requests.Session) -> str:
    user = f"demo-{secrets.token_hex(3)}"
    admin.post(f"{url}/hub/api/users/{user}").raise_for_status()
    r = admin.post(f"{url}/hub/api/users/{user}/tokens", json={"note": "demo check"})
    r.raise_for_status()
    token = r.json()["token"]
    svc = f"{url}/services/whoami-api/"
    wait_service(svc)
    me = requests.get(svc, headers={"Authorization": f"token {token}"}, timeout=10)
    if me.status_code != 200 or me.json().get("name") != user:
        return f"token call answered {me.status_code}: {me.text[:200]}"
    anon = requests.get(svc, timeout=10)
    if anon.status_code != 401:
        return f"call without a token answered {anon.status_code}, expected 401"
    bad = requests.get(svc, headers={"Authorization": "token not-a-real-token"}, timeout=10)
    if bad.status_code != 401:
        return f"call with an unknown token answered {bad.status_code}, expected 401"
    return ""


class _Form(html.parser.HTMLParser):
    """The first form of a page: its action and the fields a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []  # in order; a name may repeat (scopes)
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self.done:
            return
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag in ("input", "button") and self.action is not None and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.action is not None:
            self.done = True


def browse(session: requests.Session, url: str) -> requests.Response:
    """Follow a browser navigation, submitting the Hub's login and consent forms."""
    r = session.get(url, timeout=15)
    for _ in range(4):
        path = urllib.parse.urlsplit(r.url).path
        if r.status_code != 200 or not (path.endswith("/hub/login") or "oauth2/authorize" in path):
            return r
        form = _Form()
        form.feed(r.text)
        target = urllib.parse.urljoin(r.url, form.action or r.url)
        r = session.post(target, data=form.fields, timeout=15)
    return r


def hub_login(url: str, user: str) -> requests.Session:
    """A browser-like session logged in to the Hub as ``user`` (dummy authenticator)."""
    b = requests.Session()
    b.headers["Accept"] = "text/html"
    r = b.get(f"{url}/hub/login", timeout=15)
    form = _Form()
    form.feed(r.text)
    fields = [(k, v) for k, v in form.fields if k not in ("username", "password")]
    fields += [("username", user), ("password", "x")]
    b.post(urllib.parse.urljoin(r.url, form.action or r.url), data=fields, timeout=15)
    return b


def check_grader_dashboard(url: str, admin: requests.Session) -> str:
    """A teacher sees the students; a student is refused: the service acts as its visitor."""
    svc = f"{url}/services/grader-dashboard/"
    wait_service(svc)
    r = browse(hub_login(url, "teacher"), svc)
    if r.status_code != 200 or "<li>ada</li>" not in r.text or "<li>grace</li>" not in r.text:
        return f"the teacher got {r.status_code}: {r.text[:300]}"
    r = browse(hub_login(url, f"demo-{secrets.token_hex(3)}"), svc)
    if r.status_code != 403 or "may not read the group" not in r.text:
        return f"a student got {r.status_code}, expected 403: {r.text[:300]}"
    return ""


def check_browser_login(service: str) -> Callable[[str, requests.Session], str]:
    """Log in as a fresh user through the Hub and land on a deep link of ``service``."""

    def check(url: str, admin: requests.Session) -> str:
        user = f"demo-{secrets.token_hex(3)}"
        deep = f"{url}/services/{service}/deep/link?q=1"
        wait_service(f"{url}/services/{service}/")
        r = browse(hub_login(url, user), deep)
        if r.status_code != 200:
            return f"login ended with {r.status_code} at {r.url}: {r.text[:200]}"
        if r.url != deep:
            return f"login landed on {r.url}, not {deep}"
        if user not in r.text:
            return f"the page does not name {user}: {r.text[:200]}"
        api = requests.get(deep, headers={"Accept": "application/json"}, timeout=15)
        if api.status_code != 401:
            return f"an API call without credentials answered {api.status_code}, expected 401"
        return ""

    return check


def check_proxied_app(url: str, admin: requests.Session) -> str:
    """The Bokeh app behind hubauth-proxy: a login lands on it; no login, no app."""
    svc = f"{url}/services/dashboard/"
    wait_service(svc + "healthz", timeout=60)
    r = browse(hub_login(url, f"demo-{secrets.token_hex(3)}"), svc + "dashboard")
    if r.status_code != 200 or "Bokeh" not in r.text:
        return f"login ended with {r.status_code} at {r.url}: {r.text[:200]}"
    api = requests.get(svc + "dashboard", headers={"Accept": "application/json"}, timeout=15)
    if api.status_code != 401:
        return f"an API call without credentials answered {api.status_code}, expected 401"
    return ""


def check_external(url: str, admin: requests.Session) -> str:
    """The externally run service logs browsers in like a managed one."""
    return check_browser_login(EXTERNAL)(url, admin)


def check_runtime_service(url: str, admin: requests.Session) -> str:
    """register_service.py adds a service to the running Hub, and removes it."""
    name = f"runtime-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": str(admin.headers["Authorization"]).split()[1],
        "JUPYTERHUB_API_URL": f"{url}/hub/api",
    }
    script = [sys.executable, str(HERE / "external-service" / "register_service.py"), name]
    for extra, present in (([], True), (["--remove"], False)):
        run = subprocess.run([*script, *extra], env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            return f"register_service.py {' '.join(extra)} failed: {run.stderr[-300:]}"
        listed = name in admin.get(f"{url}/hub/api/services", timeout=15).json()
        if listed is not present:
            return f"after register_service.py {' '.join(extra)}, listed={listed}"
    return ""


CHECKS: dict[str, Callable[[str, requests.Session], str]] = {
    "whoami-api": check_whoami_api,
    "whoami-tornado": check_browser_login("whoami-tornado"),
    "whoami-flask": check_browser_login("whoami-flask"),
    "whoami-wsgi": check_browser_login("whoami-wsgi"),
    "grader-dashboard": check_grader_dashboard,
    "proxy-bokeh": check_proxied_app,
    "external-service": check_external,
    "runtime-service": check_runtime_service,
}


def run_checks(url: str, admin_token: str) -> bool:
    admin = requests.Session()
    admin.headers["Authorization"] = f"token {admin_token}"
    ok = True
    for name, check in CHECKS.items():
        try:
            problem = check(url, admin)
        except Exception as e:  # a check that crashes is a failed check, with its reason
            problem = f"{type(e).__name__}: {e}"
        print(f"[demo] {name}: {'ok' if not problem else 'FAILED: ' + problem}", flush=True)
        ok = ok and not problem
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exercise every example and exit")
    parser.add_argument("--port", type=int, default=8000, help="public port (default 8000)")
    args = parser.parse_args(argv)
    port = free_port() if args.check else args.port
    url = f"http://127.0.0.1:{port}"
    admin_token = secrets.token_hex(32)
    hub_port = free_port()
    external = (secrets.token_hex(32), free_port())
    workdir = Path(tempfile.mkdtemp(prefix="hubauth-demo-"))
    proc = start_hub(workdir, port, hub_port, admin_token, external, quiet=args.check)
    # The external service is not the Hub's to start: the demo runs it, as an operator would.
    ext_env = external_env(*external, f"http://127.0.0.1:{hub_port}/hub/api")
    ext_log = open(workdir / "external.log", "wb")  # noqa: SIM115
    ext = subprocess.Popen(
        [sys.executable, str(HERE / "external-service" / "external_service.py")],
        env={**os.environ, **ext_env},
        stdout=ext_log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_ready(url, proc)
        except RuntimeError as e:
            log = (workdir / "hub.log").read_text(errors="replace")[-4000:] if args.check else ""
            print(f"[demo] {e}\n{log}", file=sys.stderr)
            return 1
        if args.check:
            return 0 if run_checks(url, admin_token) else 1
        print(
            f"\n[demo] JupyterHub is running at {url}/hub/ — log in with any name.\n"
            f"[demo] Examples:\n"
            f"[demo]   whoami-tornado  {url}/services/whoami-tornado/\n"
            f"[demo]   whoami-flask    {url}/services/whoami-flask/  (gunicorn, 4 workers)\n"
            f"[demo]   whoami-wsgi     {url}/services/whoami-wsgi/   (gunicorn, 4 workers)\n"
            f"[demo]   grader-dashboard {url}/services/grader-dashboard/ (log in as "
            "'teacher' to see the students; anyone else may not)\n"
            f"[demo]   external        {url}/services/external/  (run by the demo, not the Hub)\n"
            f"[demo]   proxy-bokeh     {url}/services/dashboard/dashboard  (Bokeh behind "
            "hubauth-proxy)\n"
            f"[demo]   whoami-api      {url}/services/whoami-api/    (token only: get a token at "
            f"{url}/hub/token, then curl -H 'Authorization: token <it>' that URL)\n"
            "[demo] Ctrl-C stops everything.\n",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            proc.wait()
        return 0
    finally:
        ext.terminate()
        ext.wait(10)
        ext_log.close()
        stop_hub(proc)


if __name__ == "__main__":
    sys.exit(main())
