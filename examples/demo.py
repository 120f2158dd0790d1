"""Start a real JupyterHub on 127.0.0.1 with every example service; ``--check`` tests them.

Run through ``./dev demo`` (which installs JupyterHub and its proxy first). Interactive: the
Hub and the services write to a log file (``--verbose``: here too), the banner names each
example's URL; Ctrl-C, SIGTERM or SIGHUP stop every process the demo started and remove its
temporary folder. ``--check``: start the Hub on free ports, exercise every example without a
human, stop, and exit 0 when all passed, 1 otherwise.

The examples are data: each is one ``Example`` appended to ``EXAMPLES`` below (how the Hub
runs it, its banner lines, its check), so adding one is one self-contained block.
"""

from __future__ import annotations

import argparse
import contextlib
import html.parser
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TextIO

import requests

if TYPE_CHECKING:
    from demo_lifecycle import Lifecycle

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------
# What an example is


class Run(NamedTuple):
    """What one run of the demo tells its examples: where its Hub answers."""

    url: str  # the public URL, e.g. http://127.0.0.1:8000
    hub_api: str  # the Hub's own API, e.g. http://127.0.0.1:8081/hub/api


Service = dict[str, object]  # one entry of c.JupyterHub.services
Check = Callable[[str, requests.Session], str]  # (public URL, admin session) -> "" or a problem


class Example(NamedTuple):
    """One example: how the Hub runs it, what the banner says of it, how --check tests it."""

    name: str  # as --check reports it: "[demo] <name>: ok"
    check: Check
    # Its entry in c.JupyterHub.services (None: nothing to declare, e.g. a script).
    service: Callable[[Run], Service] | None = None
    # Banner: one line on what it shows and who may use it, and an optional hint line.
    # {hub} is the public URL, {url} the example's own URL. Empty: not in the banner.
    about: str = ""
    hint: str = ""
    # Set when the demo runs it itself, as an operator would (an external service): its
    # command and extra environment, given its entry in the Hub's configuration.
    process: Callable[[Run, Service], tuple[list[str], dict[str, str]]] | None = None
    roles: tuple[dict[str, object], ...] = ()  # added to c.JupyterHub.load_roles
    groups: dict[str, list[str]] | None = None  # group -> its users


EXAMPLES: list[Example] = []


def local_url() -> str:
    """A URL on a free local port, where a service the Hub runs may listen."""
    return f"http://127.0.0.1:{free_port()}"


def python(script: str) -> list[str]:
    """The command that runs ``examples/<script>`` with this Python."""
    return [sys.executable, str(HERE / script)]


def gunicorn(module: str, folder: str, url: str) -> list[str]:
    """The command that serves a WSGI ``module`` of ``examples/<folder>`` with 4 workers."""
    bind = urllib.parse.urlsplit(url).netloc
    serve = [sys.executable, "-m", "gunicorn", "-w", "4", "-b", bind]
    return [*serve, "--chdir", str(HERE / folder), module]


def cookie_secret() -> dict[str, str]:
    """A fixed cookie secret: logins survive a restart of the service, and span workers."""
    return {"HUBAUTH_COOKIE_SECRET": secrets.token_hex(32)}


# ---------------------------------------------------------------------------------------
# What the checks share: a browser-like client for the Hub's login and consent forms


def wait_service(url: str, timeout: float = 30) -> bool:
    """Whether a service answers through the proxy (anything but 503) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code != 503:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


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


def check_browser_login(service: str) -> Check:
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


# ---------------------------------------------------------------------------------------
# The examples, in the order of the banner and of --check. One block each.


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
    if anon.status_code != 403:  # JupyterHub's token-only mixin answers 403, and so does ours
        return f"call without a token answered {anon.status_code}, expected 403"
    bad = requests.get(svc, headers={"Authorization": "token not-a-real-token"}, timeout=10)
    if bad.status_code != 403:
        return f"call with an unknown token answered {bad.status_code}, expected 403"
    return ""


EXAMPLES.append(
    Example(
        name="whoami-api",
        service=lambda run: {
            "name": "whoami-api",
            "url": local_url(),
            "command": python("whoami-api/whoami_api.py"),
        },
        about="your Hub model as JSON, for API tokens only (no browser login); any user",
        hint="a token: {hub}/hub/token, then curl -H 'Authorization: token <it>' {url}",
        check=check_whoami_api,
    )
)


EXAMPLES.append(
    Example(
        name="whoami-tornado",
        service=lambda run: {
            "name": "whoami-tornado",
            "url": local_url(),
            "command": python("whoami-tornado/whoami_tornado.py"),
            "environment": cookie_secret(),
        },
        about="your Hub model after a browser login through the Hub (Tornado); any user",
        check=check_browser_login("whoami-tornado"),
    )
)


def _whoami_flask(run: Run) -> Service:
    url = local_url()
    return {
        "name": "whoami-flask",
        "url": url,
        "command": gunicorn("whoami_flask:app", "whoami-flask", url),
        "environment": cookie_secret(),
    }


EXAMPLES.append(
    Example(
        name="whoami-flask",
        service=_whoami_flask,
        about="the same in Flask, gunicorn with 4 workers (any worker ends a login); any user",
        check=check_browser_login("whoami-flask"),
    )
)


def _whoami_wsgi(run: Run) -> Service:
    url = local_url()
    return {
        "name": "whoami-wsgi",
        "url": url,
        "command": gunicorn("whoami_wsgi:app", "whoami-wsgi", url),
        "environment": cookie_secret(),
    }


EXAMPLES.append(
    Example(
        name="whoami-wsgi",
        service=_whoami_wsgi,
        about="the same with the WSGI middleware, gunicorn with 4 workers; any user",
        check=check_browser_login("whoami-wsgi"),
    )
)


def _whoami_fastapi(run: Run) -> Service:
    url = local_url()
    port = str(urllib.parse.urlsplit(url).port)
    serve = [sys.executable, "-m", "uvicorn", "--workers", "4", "--host", "127.0.0.1"]
    app = ["--port", port, "--app-dir", str(HERE / "whoami-fastapi"), "whoami_fastapi:app"]
    return {
        "name": "whoami-fastapi",
        "url": url,
        "command": [*serve, *app],
        "environment": cookie_secret(),
    }


def check_whoami_fastapi(url: str, admin: requests.Session) -> str:
    """Browser login to a deep link, then a token call, a scope refusal and a websocket."""
    from websockets.sync.client import connect

    problem = check_browser_login("whoami-fastapi")(url, admin)
    if problem:
        return problem
    user = f"demo-{secrets.token_hex(3)}"
    admin.post(f"{url}/hub/api/users/{user}").raise_for_status()
    r = admin.post(f"{url}/hub/api/users/{user}/tokens", json={"note": "demo check"})
    r.raise_for_status()
    token = r.json()["token"]
    svc, auth = f"{url}/services/whoami-fastapi/", {"Authorization": f"token {token}"}
    me = requests.get(f"{svc}api/call", headers=auth, timeout=15)
    if me.status_code != 200 or me.json().get("name") != user:
        return f"token call answered {me.status_code}: {me.text[:200]}"
    denied = requests.get(f"{svc}admin-only", headers=auth, timeout=15)
    if denied.status_code != 403:
        return f"admin-only answered {denied.status_code} to a non-admin, expected 403"
    with connect(f"ws{url.removeprefix('http')}/services/whoami-fastapi/ws?token={token}") as ws:
        hello = json.loads(ws.recv(timeout=15))
    if hello.get("hello") != user:
        return f"the websocket greeted {hello}, not {user}"
    if requests.get(f"{svc}docs", timeout=15).status_code != 200:
        return "the docs page did not answer"
    return ""


EXAMPLES.append(
    Example(
        name="whoami-fastapi",
        service=_whoami_fastapi,
        about="FastAPI with a websocket, uvicorn with 4 workers; API docs at {url}docs; any user",
        check=check_whoami_fastapi,
    )
)


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


EXAMPLES.append(
    Example(
        name="grader-dashboard",
        service=lambda run: {
            "name": "grader-dashboard",
            "url": local_url(),
            "command": python("grader-dashboard/grader_dashboard.py"),
            "environment": cookie_secret(),
            "oauth_client_allowed_scopes": ["read:groups!group=students"],
        },
        about="the group 'students', read with the visitor's own token; log in as 'teacher' "
        "(anyone else is refused)",
        check=check_grader_dashboard,
        roles=(
            {"name": "graders", "scopes": ["read:groups!group=students"], "groups": ["teachers"]},
        ),
        groups={"students": ["ada", "grace"], "teachers": ["teacher"]},
    )
)


def check_proxy_bokeh(url: str, admin: requests.Session) -> str:
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


EXAMPLES.append(
    Example(
        name="proxy-bokeh",
        service=lambda run: {
            "name": "dashboard",
            "url": local_url(),
            # hubauth-proxy starts the app ({port} and {prefix} filled in), the login in front
            "command": [
                *[sys.executable, "-m", "hubauth.proxy", "--", sys.executable, "-m", "bokeh"],
                *["serve", str(HERE / "proxy-bokeh/dashboard.py"), "--port", "{port}"],
                *["--address", "127.0.0.1", "--prefix", "{prefix}"],
                *["--allow-websocket-origin", "*"],
            ],
            "environment": cookie_secret(),
        },
        about="a Bokeh app that knows nothing of the Hub, behind hubauth-proxy; any user",
        hint="open {url}dashboard",
        check=check_proxy_bokeh,
    )
)


EXTERNAL = "external"


def _external_service(run: Run) -> Service:
    return {
        "name": EXTERNAL,
        "url": local_url(),
        "api_token": secrets.token_hex(32),
        "oauth_redirect_uri": f"/services/{EXTERNAL}/oauth_callback",
    }


def _external_process(run: Run, service: Service) -> tuple[list[str], dict[str, str]]:
    """What an operator gives the external service: what the Hub gives managed ones."""
    prefix = f"/services/{EXTERNAL}/"
    env = {
        "JUPYTERHUB_API_TOKEN": str(service["api_token"]),
        "JUPYTERHUB_API_URL": run.hub_api,
        "JUPYTERHUB_SERVICE_NAME": EXTERNAL,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_SERVICE_URL": str(service["url"]),
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        **cookie_secret(),
    }
    return python("external-service/external_service.py"), env


EXAMPLES.append(
    Example(
        name="external-service",
        service=_external_service,
        process=_external_process,
        about="your Hub model, from a service the demo runs itself, not the Hub; any user",
        check=check_browser_login(EXTERNAL),
    )
)


def check_runtime_service(url: str, admin: requests.Session) -> str:
    """register_service.py adds a service to the running Hub, and removes it."""
    name = f"runtime-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": str(admin.headers["Authorization"]).split()[1],
        "JUPYTERHUB_API_URL": f"{url}/hub/api",
    }
    script = [*python("external-service/register_service.py"), name]
    for extra, present in (([], True), (["--remove"], False)):
        run = subprocess.run([*script, *extra], env=env, capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            return f"register_service.py {' '.join(extra)} failed: {run.stderr[-300:]}"
        listed = name in admin.get(f"{url}/hub/api/services", timeout=15).json()
        if listed is not present:
            return f"after register_service.py {' '.join(extra)}, listed={listed}"
    return ""


EXAMPLES.append(Example(name="runtime-service", check=check_runtime_service))


# ---------------------------------------------------------------------------------------
# The Hub


ADMIN = "demo-admin"  # not an example: the demo's own hand on the Hub, for --check


def entries(run: Run) -> dict[str, Service]:
    """Each example's entry for c.JupyterHub.services, by example name."""
    return {e.name: e.service(run) for e in EXAMPLES if e.service is not None}


def services(admin_token: str, run: Run | None = None) -> list[Service]:
    """Every example's entry for c.JupyterHub.services, then the demo's own (tests use it)."""
    run = run or Run(url="http://127.0.0.1:8000", hub_api="http://127.0.0.1:8081/hub/api")
    return [*entries(run).values(), {"name": ADMIN, "api_token": admin_token}]


def hub_config(run: Run, services: list[Service], hub_port: int) -> str:
    """The Hub's configuration: every example's service, roles and groups, and the demo's."""
    roles: list[dict[str, object]] = [
        {"name": "user", "scopes": ["self", "access:services"]},
        {
            "name": ADMIN,
            "scopes": ["admin:users", "admin:groups", "admin:services", "tokens"],
            "services": [ADMIN],
        },
    ]
    groups: dict[str, dict[str, list[str]]] = {}
    for example in EXAMPLES:
        roles += example.roles
        for group, users in (example.groups or {}).items():
            members = groups.setdefault(group, {"users": []})["users"]
            members += [u for u in users if u not in members]
    port = urllib.parse.urlsplit(run.url).port
    return "\n".join(
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
            f"c.JupyterHub.services = {json.dumps(services)}",
            f"c.JupyterHub.load_roles = {json.dumps(roles)}",
            f"c.JupyterHub.load_groups = {json.dumps(groups)}",
            "",
        ]
    )


def wait_ready(url: str, hub: subprocess.Popen[bytes], token: str, timeout: float = 90) -> None:
    """Return once this run's Hub answers at ``url``: it knows this run's own admin token.

    That token is new for every run, so another Hub (an earlier demo's, still holding the
    port) cannot pass for this one.
    """
    deadline = time.monotonic() + timeout
    seen = "nothing"
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {hub.returncode} before it answered")
        try:
            r = requests.get(
                f"{url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=2
            )
            if r.status_code == 200 and r.json().get("name") == ADMIN:
                return
            seen = f"a server that answered {r.status_code} to this run's token"
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"this demo's JupyterHub did not answer at {url} within {timeout:.0f}s ({seen} did)"
        if seen != "nothing"
        else f"JupyterHub did not answer at {url} within {timeout:.0f}s"
    )


def run_checks(url: str, admin_token: str) -> bool:
    admin = requests.Session()
    admin.headers["Authorization"] = f"token {admin_token}"
    ok = True
    for example in EXAMPLES:
        try:
            problem = example.check(url, admin)
        except Exception as e:  # a check that crashes is a failed check, with its reason
            problem = f"{type(e).__name__}: {e}"
        print(f"[demo] {example.name}: {'ok' if not problem else 'FAILED: ' + problem}", flush=True)
        ok = ok and not problem
    return ok


def banner(url: str, services: dict[str, Service], log: str, waiting: set[str]) -> str:
    """What a newcomer needs, alone: the Hub, each example and who may use it, how to stop."""
    lines = [f"JupyterHub is running at {url}/hub/ : log in with any name.", "", "Examples:"]
    for example in EXAMPLES:
        service = services.get(example.name)
        if not example.about or service is None:
            continue
        own = f"{url}/services/{service['name']}/"
        late = "  (not answering yet: see the log)" if example.name in waiting else ""
        lines.append(f"  {own}{late}")
        lines.append(f"      {example.about.format(hub=url, url=own)}")
        if example.hint:
            lines.append(f"      {example.hint.format(hub=url, url=own)}")
    lines += [
        "",
        f"Logs of the Hub and the services: {log} (--verbose shows them here)",
        f"Stop: Ctrl-C, or kill {os.getpid()}: the Hub, its proxy and every service stop too.",
    ]
    rule = "-" * 78
    return "\n".join(["", rule, *lines, rule])


def tail(path: Path, lines: int = 60) -> str:
    """The end of a log, to show when something failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve(life: Lifecycle, args: argparse.Namespace, run: Run, hub_port: int) -> int:
    """Start the Hub and the examples; --check them, or show the banner and wait."""
    token = secrets.token_hex(32)  # this run's own: also how the demo knows its Hub
    by_example = entries(run)
    config = life.workdir / "jupyterhub_config.py"
    admin = {"name": ADMIN, "api_token": token}
    config.write_text(hub_config(run, [*by_example.values(), admin], hub_port))
    hub = life.start([sys.executable, "-m", "jupyterhub", "-f", str(config)])
    for example in EXAMPLES:
        if example.process is not None:
            command, env = example.process(run, by_example[example.name])
            life.start(command, env=env)
    life.follow_log()
    if not args.verbose:
        print(f"[demo] starting JupyterHub on {run.url} (logs: {life.log_path}) ...", flush=True)
    try:
        wait_ready(run.url, hub, token)
    except RuntimeError as e:
        print(f"[demo] {e}. The end of its log:\n{tail(life.log_path)}", file=sys.stderr)
        return 1
    if args.check:
        if run_checks(run.url, token):
            return 0
        print(f"[demo] the end of the log:\n{tail(life.log_path)}", file=sys.stderr)
        return 1
    waiting = set()
    for name, service in by_example.items():
        if not wait_service(f"{run.url}/services/{service['name']}/"):
            waiting.add(name)
    print(banner(run.url, by_example, str(life.log_path), waiting), flush=True)
    hub.wait()
    print(f"[demo] JupyterHub exited by itself ({hub.returncode}): see {life.log_path}")
    return 1


def main(argv: list[str] | None = None) -> int:
    from demo_lifecycle import Lifecycle, Stopped, port_holder, port_in_use

    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n\nThe examples")[0])
    parser.add_argument("--check", action="store_true", help="exercise every example and exit")
    parser.add_argument("--port", type=int, help="public port (default 8000; --check: a free one)")
    parser.add_argument("--verbose", action="store_true", help="show the logs here as they come")
    parser.add_argument("--log", type=Path, help="log file (default .demo/demo-<port>.log)")
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else free_port() if args.check else 8000
    if not 0 < port < 65536:
        parser.error(f"--port {port}: a port is between 1 and 65535")
    if port_in_use(port):
        holder = port_holder(port)
        earlier = " (an earlier demo's proxy?)" if "configurable-http-proxy" in holder else ""
        print(
            f"[demo] port {port} on 127.0.0.1 is in use, by {holder}{earlier}.\n"
            f"[demo] Stop that, or start the demo on another port: ./dev demo --port {port + 1}",
            file=sys.stderr,
        )
        return 1
    if not PROXY.exists():
        print(f"[demo] {PROXY} is missing: run ./dev demo, which installs it", file=sys.stderr)
        return 1
    hub_port = free_port()
    run = Run(url=f"http://127.0.0.1:{port}", hub_api=f"http://127.0.0.1:{hub_port}/hub/api")
    log = args.log or (None if args.check else ROOT / ".demo" / f"demo-{port}.log")
    with Lifecycle(log, verbose=args.verbose) as life:
        try:
            code = serve(life, args, run, hub_port)
        except Stopped as stop:
            say(f"\n[demo] {stop}: stopping the Hub, its proxy and every service ...")
            code = 128 + stop.signum
    if life.left:
        say(f"[demo] still running after SIGKILL: {', '.join(life.left)}", sys.stderr)
        return 1
    if not args.check:
        free = "free again" if not port_in_use(port) else f"held by {port_holder(port)}"
        say(f"[demo] stopped; port {port} is {free}. Logs: {life.log_path}")
    return code


def say(text: str, stream: TextIO = sys.stdout) -> None:
    """Print, unless the terminal is gone (SIGHUP: it closed): stopping goes on regardless."""
    with contextlib.suppress(OSError):
        print(text, file=stream, flush=True)


if __name__ == "__main__":
    sys.exit(main())
