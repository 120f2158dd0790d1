"""A real JupyterHub (with configurable-http-proxy) for hubauth's integration tests.

``RealHub`` writes a ``jupyterhub_config.py`` into a private temporary directory and runs
``python -m jupyterhub`` there, on 127.0.0.1 and free ports, with the dummy authenticator.
It always declares an admin service (``hubauth-test-admin``) whose token the helpers use to
create users, groups and tokens through the Hub's REST API. ``stop()`` leaves no process
behind: not the Hub, not the proxy (which the Hub starts in a session of its own), not a
managed service or a user server.

    with RealHub(services=[...], roles=[...]) as hub:
        hub.create_user("alice", groups=["staff"])
        token = hub.user_token("alice", scopes=["read:users:name"])
"""

from __future__ import annotations

import atexit
import contextlib
import html
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

__all__ = ["ADMIN_SERVICE", "CHP", "REPO_ROOT", "RealHub", "RealHubError"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHP = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
ADMIN_SERVICE = "hubauth-test-admin"
ADMIN_SCOPES = (
    "admin:users",
    "admin:groups",
    "admin:services",
    "admin:servers",
    "tokens",
    "read:roles",
)
MOCK_SPAWNER = "jupyterhub.tests.mocking.MockSpawner"

_LOG_TAIL_LINES = 60
_START_ATTEMPTS = 3
_POLL = 0.05


class RealHubError(RuntimeError):
    """The Hub did not start, or answered an admin request with an error."""


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (held together, so never equal)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _normalize_base_url(base_url: str) -> str:
    base = "/" + base_url.strip("/") + "/"
    return "/" if base == "//" else base


# ---------------------------------------------------------------- process bookkeeping (Linux)


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, start time)`` of a live process from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has exited already; its parent reaps it
        return None
    return int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live process below ``root`` (whatever session it is in): pid -> start time."""
    children: dict[int, list[tuple[int, int]]] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        stat = _proc_stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append((pid, stat[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def _kill_if_same(pid: int, start: int | None) -> None:
    """SIGKILL ``pid`` unless it is gone or the pid now names another process."""
    stat = _proc_stat(pid)
    if stat is None or (start is not None and stat[1] != start):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------- the Hub


class RealHub:
    """One real JupyterHub + configurable-http-proxy, on 127.0.0.1, in a temporary directory.

    ``services``: entries for ``c.JupyterHub.services`` (managed ones with ``command``,
    ``url``, ``environment``, ``oauth_client_allowed_scopes``, ...). ``roles``: entries for
    ``c.JupyterHub.load_roles``. ``load_groups``: ``c.JupyterHub.load_groups``.
    ``extra_config``: Python appended to the config file (``c`` is the config object).
    ``base_url``: the Hub's base URL. ``start_timeout``: seconds to wait for the Hub's API to
    answer through the proxy. ``spawner_class``: for user servers (a tiny mock by default).
    """

    def __init__(
        self,
        *,
        services: Sequence[Mapping[str, Any]] = (),
        roles: Sequence[Mapping[str, Any]] = (),
        extra_config: str = "",
        base_url: str = "/",
        load_groups: Mapping[str, Any] | None = None,
        start_timeout: float = 60.0,
        spawner_class: str = MOCK_SPAWNER,
    ) -> None:
        if not CHP.exists():
            raise RealHubError(f"configurable-http-proxy not found at {CHP}: run `npm ci`")
        self.services = [dict(s) for s in services]
        self.roles = [dict(r) for r in roles]
        self.extra_config = extra_config
        self.base_url = _normalize_base_url(base_url)
        self.load_groups = dict(load_groups) if load_groups else None
        self.start_timeout = start_timeout
        self.spawner_class = spawner_class
        self.admin_token = secrets.token_hex(32)
        self.proxy_auth_token = secrets.token_hex(32)
        self.dir: Path | None = None
        self.log_path: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = self.proxy_api_port = self.hub_port = 0
        self.startup_seconds: float | None = None
        self._session: requests.Session | None = None
        self._descendants: dict[int, int] = {}
        self._restarts = 0

    # ------------------------------------------------------------------ URLs

    @property
    def url(self) -> str:
        """The public proxy URL, without base URL: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub_url(self) -> str:
        """The Hub's pages through the proxy: ``{url}{base_url}hub/``."""
        return f"{self.url}{self.base_url}hub/"

    @property
    def api_url(self) -> str:
        """The Hub API through the proxy: ``{url}{base_url}hub/api`` (no trailing slash)."""
        return f"{self.url}{self.base_url}hub/api"

    @property
    def hub_api_url(self) -> str:
        """The Hub API directly on the Hub's own port (what managed services are given)."""
        return f"http://127.0.0.1:{self.hub_port}{self.base_url}hub/api"

    @property
    def proxy_api_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_api_port}"

    def service_url(self, name: str, path: str = "") -> str:
        """A service's public URL through the proxy: ``{url}{base_url}services/NAME/PATH``."""
        return f"{self.url}{self.base_url}services/{quote(name)}/{path.lstrip('/')}"

    # ------------------------------------------------------------- life cycle

    def __enter__(self) -> RealHub:
        if self.proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> RealHub:
        """Start the Hub and wait until its API answers through the proxy."""
        if self.proc is not None:
            raise RealHubError("this RealHub is already running")
        self.dir = Path(tempfile.mkdtemp(prefix="hubauth-realhub-"))
        atexit.register(self.stop)
        t0 = time.monotonic()
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port, self.proxy_api_port, self.hub_port = _free_ports(3)
            self._launch(attempt)
            try:
                self._wait_ready()
            except RealHubError:
                port_clash = "address already in use" in self.log_tail().lower()
                self._terminate()
                if port_clash and attempt < _START_ATTEMPTS:
                    continue  # another process took one of our ports in between: retry
                self.stop()
                raise
            break
        self.startup_seconds = time.monotonic() - t0
        return self

    def restart(self, *, pause: float = 0.0) -> RealHub:
        """Stop the Hub and start it again on the same ports, config directory and database.

        Users, groups, tokens, roles and server records persist; running user servers and
        managed services are stopped with the Hub (``cleanup_servers``) and services start
        again. ``pause``: seconds to stay down in between. The log goes to a new file
        (``log_path``, ``jupyterhub-restart<N>-<attempt>.log``).
        """
        if self.proc is None or self.dir is None:
            raise RealHubError("this RealHub is not running")
        if self._session is not None:  # its kept-alive connections are to the old Hub
            self._session.close()
            self._session = None
        self._terminate()
        if pause > 0:
            time.sleep(pause)
        self._restarts += 1
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._launch(f"restart{self._restarts}-{attempt}")
            try:
                self._wait_ready()
            except RealHubError:
                port_clash = "address already in use" in self.log_tail().lower()
                self._terminate()
                if port_clash and attempt < _START_ATTEMPTS:
                    time.sleep(1.0)  # the same ports are needed: wait for them to be free
                    continue
                self.stop()
                raise
            break
        return self

    def _config_text(self) -> str:
        admin_service = {"name": ADMIN_SERVICE, "api_token": self.admin_token}
        admin_role = {
            "name": ADMIN_SERVICE,
            "description": "hubauth tests: manage users, groups, tokens and services",
            "scopes": list(ADMIN_SCOPES),
            "services": [ADMIN_SERVICE],
        }
        lines = [
            "# Written by tests/realhub.py",
            "c = get_config()  # noqa",
            "c.JupyterHub.ip = '127.0.0.1'",
            f"c.JupyterHub.port = {self.port}",
            f"c.JupyterHub.base_url = {self.base_url!r}",
            "c.JupyterHub.hub_ip = '127.0.0.1'",
            f"c.JupyterHub.hub_port = {self.hub_port}",
            f"c.ConfigurableHTTPProxy.api_url = {self.proxy_api_url!r}",
            f"c.ConfigurableHTTPProxy.auth_token = {self.proxy_auth_token!r}",
            f"c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]",
            "c.ConfigurableHTTPProxy.pid_file = 'jupyterhub-proxy.pid'",
            "c.JupyterHub.db_url = 'sqlite:///jupyterhub.sqlite'",
            "c.JupyterHub.cookie_secret_file = 'jupyterhub_cookie_secret'",
            "c.JupyterHub.authenticator_class = 'dummy'",
            "c.Authenticator.allow_all = True",
            f"c.JupyterHub.spawner_class = {self.spawner_class!r}",
            "c.JupyterHub.cleanup_servers = True",
            "c.JupyterHub.cleanup_proxy = True",
            "c.JupyterHub.log_level = 'INFO'",
            f"c.JupyterHub.services = {[admin_service, *self.services]!r}",
            f"c.JupyterHub.load_roles = {[admin_role, *self.roles]!r}",
        ]
        if self.load_groups is not None:
            lines.append(f"c.JupyterHub.load_groups = {self.load_groups!r}")
        return "\n".join(lines) + "\n\n" + self.extra_config + "\n"

    def _launch(self, attempt: int | str) -> None:
        assert self.dir is not None
        config = self.dir / "jupyterhub_config.py"
        config.write_text(self._config_text())
        self.log_path = self.dir / f"jupyterhub-{attempt}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills the group
            )
        self._descendants = {}

    def _wait_ready(self) -> None:
        assert self.proc is not None
        probe = f"{self.api_url}/"
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        with requests.Session() as s:
            while True:
                code = self.proc.poll()
                if code is not None:
                    self._fail(f"JupyterHub exited with status {code} during start-up")
                try:
                    r = s.get(probe, timeout=2)
                    if r.status_code == 200:
                        return
                    last = f"{r.status_code} {r.text[:200]!r}"
                except requests.RequestException as e:
                    last = type(e).__name__
                if time.monotonic() > deadline:
                    self._fail(
                        f"JupyterHub did not answer GET {probe} with 200 within "
                        f"{self.start_timeout:g}s (last: {last})"
                    )
                time.sleep(_POLL)

    def _fail(self, message: str) -> None:
        raise RealHubError(
            f"{message}\n--- last {_LOG_TAIL_LINES} lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def log_text(self) -> str:
        """The Hub's log so far (stdout and stderr of the Hub, proxy and managed services)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the Hub and everything it started; remove the temporary directory."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self._session is not None:
            self._session.close()
            self._session = None
        self._terminate()
        self._remove_dir()

    def _terminate(self, grace: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # Remember everything the Hub started, whatever session it is in (the proxy and
        # managed services get their own), before the Hub's exit reparents them.
        family = _descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # lets the Hub stop the proxy and its services
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the Hub's own group
        # A proxy orphaned earlier (the Hub died before we looked) is still in the pid file.
        family.update(self._proxy_from_pid_file())
        for pid, start in family.items():
            _kill_if_same(pid, start)
        self._wait_for_exit(family)
        if self.dir is not None:
            # A stale pid file would make the next Hub started here kill whatever has that pid.
            (self.dir / "jupyterhub-proxy.pid").unlink(missing_ok=True)

    def _proxy_from_pid_file(self) -> dict[int, int]:
        """``{pid: start time}`` of the live proxy this Hub started, per its pid file."""
        if self.dir is None:
            return {}
        try:
            pid = int((self.dir / "jupyterhub-proxy.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return {}
        stat = _proc_stat(pid)
        args = cmdline.split(b"\0")
        ours = any(a.endswith(b"configurable-http-proxy") for a in args) and (
            str(self.proxy_api_port).encode() in args
        )
        return {pid: stat[1]} if ours and stat is not None else {}

    @staticmethod
    def _wait_for_exit(family: Mapping[int, int], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [p for p, s in family.items() if (st := _proc_stat(p)) and st[1] == s]
            if not alive:
                return
            time.sleep(_POLL)

    def _remove_dir(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ------------------------------------------------------------ REST helpers

    @property
    def session(self) -> requests.Session:
        """A ``requests.Session`` authenticated as the admin service (closed by ``stop``)."""
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["Authorization"] = f"token {self.admin_token}"
        return self._session

    def api(
        self, method: str, path: str, *, ok: Iterable[int] = (), **kw: Any
    ) -> requests.Response:
        """A request to the Hub's REST API (directly on the Hub's port) as the admin service.

        ``path`` is relative to ``/hub/api``, e.g. ``"/users/alice"``. Raises
        :class:`RealHubError` (with the Hub's reply) on a 4xx/5xx not listed in ``ok``.
        """
        if self.proc is None:
            raise RealHubError("the Hub is not running")
        kw.setdefault("timeout", 30)
        url = f"{self.hub_api_url}/{path.lstrip('/')}"
        r = self.session.request(method, url, **kw)
        if r.status_code >= 400 and r.status_code not in set(ok):
            raise RealHubError(f"{method} {url} -> {r.status_code}: {r.text[:1000]}")
        return r

    def create_user(self, name: str, groups: Iterable[str] = ()) -> dict[str, Any]:
        """Create user ``name`` (fine if it exists) and add it to ``groups`` (created as needed)."""
        self.api("POST", f"/users/{quote(name)}", ok=[409])
        for group in groups:
            self.api("POST", f"/groups/{quote(group)}", ok=[409])
            self.api("POST", f"/groups/{quote(group)}/users", json={"users": [name]})
        model: dict[str, Any] = self.api("GET", f"/users/{quote(name)}").json()
        return model

    def user_token(
        self,
        name: str,
        scopes: Sequence[str] | None = None,
        *,
        note: str = "hubauth test",
        expires_in: int | None = None,
    ) -> str:
        """A new API token for user ``name``; ``scopes=None`` gets all the user's permissions."""
        body: dict[str, Any] = {"note": note}
        if scopes is not None:
            body["scopes"] = list(scopes)
        if expires_in is not None:
            body["expires_in"] = expires_in
        token: str = self.api("POST", f"/users/{quote(name)}/tokens", json=body).json()["token"]
        return token

    def login(self, session: requests.Session, name: str, password: str = "") -> None:
        """Log ``session`` in as ``name`` through the Hub's login form (dummy authenticator).

        Afterwards the session holds the Hub's login and session-id cookies.
        """
        login_url = f"{self.hub_url}login"
        page = session.get(login_url, timeout=30)
        if page.status_code != 200:
            raise RealHubError(f"GET {login_url} -> {page.status_code}: {page.text[:500]}")
        m = re.search(r'name="_xsrf"\s+value="([^"]*)"', page.text) or re.search(
            r'value="([^"]*)"\s+name="_xsrf"', page.text
        )
        if m is None:
            raise RealHubError(f"no _xsrf field in the login form at {login_url}")
        r = session.post(
            login_url,
            data={"username": name, "password": password, "_xsrf": html.unescape(m.group(1))},
            allow_redirects=False,
            timeout=30,
        )
        if r.status_code != 302:
            raise RealHubError(f"POST {login_url} as {name!r} -> {r.status_code}: {r.text[:500]}")

    def wait_for_service(
        self, name: str, path: str = "", *, timeout: float = 30.0
    ) -> requests.Response:
        """Poll until service ``name`` answers through the proxy; return that answer.

        Waits for the proxy to have the service's route, then for a reply that is not a
        proxy error (502/503/504). No credentials are sent.
        """
        url = self.service_url(name, path)
        route = f"{self.base_url}services/{name}".rstrip("/")
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with requests.Session() as s:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    self._fail(f"the Hub is not running while waiting for service {name!r}")
                try:
                    routes = s.get(
                        f"{self.proxy_api_url}/api/routes",
                        headers={"Authorization": f"token {self.proxy_auth_token}"},
                        timeout=2,
                    ).json()
                    if route in routes:
                        r = s.get(url, allow_redirects=False, timeout=5)
                        if r.status_code not in (502, 503, 504):
                            return r
                        last = f"{r.status_code} {r.text[:200]!r}"
                    else:
                        last = f"no proxy route {route!r} yet"
                except (requests.RequestException, ValueError) as e:
                    last = type(e).__name__
                if time.monotonic() > deadline:
                    self._fail(
                        f"service {name!r} did not answer at {url} within {timeout:g}s "
                        f"(last: {last})"
                    )
                time.sleep(_POLL)
