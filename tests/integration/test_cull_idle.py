"""examples/cull-idle against a real JupyterHub (MockSpawner servers, named servers on).

The culler runs standalone (a subprocess with its own service token and the example's role)
or as a Hub-managed service. Idle servers, default and named, are stopped; servers whose
activity is kept fresh through ``POST /users/:name/activity`` are not; a Hub restart in the
middle only costs a few rounds (logged as warnings).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import runpy
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from traitlets.config import Config

from hubauth.api import HubAPI
from hubauth.errors import NotFound
from tests.realhub import RealHub

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cull-idle"
CULLER = EXAMPLE / "cull_idle_servers.py"
SERVICE = "cull-idle"
CULL_TOKEN = secrets.token_hex(32)
TIMEOUT = 3  # seconds of inactivity before the culler stops a server
CULL_EVERY = 1
WAIT = 90.0  # bound on anything the Hub does: 2 cores, shared with other test runs
NAMED_SERVERS = "c.JupyterHub.allow_named_servers = True"

T = TypeVar("T")


def _example_config() -> Any:
    """What examples/cull-idle/jupyterhub_config.py configures."""
    config = Config()
    runpy.run_path(str(EXAMPLE / "jupyterhub_config.py"), {"get_config": lambda: config})
    return config.JupyterHub


EXAMPLE_CONFIG = _example_config()
(ROLE,) = EXAMPLE_CONFIG.load_roles  # the example's role, as the tests' culler gets it


def _load_culler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cull_idle_servers", CULLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def standalone_hub(**kwargs: Any) -> RealHub:
    """A Hub that knows the culler as an external service with the example's role."""
    return RealHub(
        services=[{"name": SERVICE, "api_token": CULL_TOKEN}],
        roles=[ROLE],
        extra_config=NAMED_SERVERS,
        **kwargs,
    )


# ------------------------------------------------------------------------ Hub helpers


def _server_path(user: str, server: str) -> str:
    return (
        f"/users/{quote(user)}/servers/{quote(server)}"
        if server
        else f"/users/{quote(user)}/server"
    )


def servers(hub: RealHub, user: str) -> dict[str, Any]:
    """The user's active servers (stopped named servers are not listed)."""
    found: dict[str, Any] = hub.api("GET", f"/users/{quote(user)}").json()["servers"]
    return found


def running(hub: RealHub, user: str, server: str = "") -> bool:
    return bool(servers(hub, user).get(server, {}).get("ready"))


def gone(hub: RealHub, user: str, server: str = "") -> bool:
    return server not in servers(hub, user)


def start_server(hub: RealHub, user: str, server: str = "") -> None:
    """Create ``user`` and start their (named) server; wait until it is ready."""
    hub.create_user(user)
    hub.api("POST", _server_path(user, server), json={})
    wait_for(lambda: running(hub, user, server), f"server {user}/{server} to be ready")


def touch(hub: RealHub, user: str, server: str = "") -> None:
    """Report activity on a server now, as a single-user server does."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"servers": {server: {"last_activity": now}}}
    hub.api("POST", f"/users/{quote(user)}/activity", json=body)


def wait_for(
    condition: Callable[[], T],
    what: str,
    *,
    timeout: float = WAIT,
    tick: Callable[[], object] = lambda: None,
    culler: CullerProcess | None = None,
) -> T:
    """Poll ``condition`` (calling ``tick`` first each time) until it is true, or fail.

    Fails early when ``culler`` has exited and the condition is still false.
    """
    deadline = time.monotonic() + timeout
    while True:
        tick()
        result = condition()
        if result:
            return result
        if culler is not None and not culler.alive():
            pytest.fail(f"the culler exited while waiting for {what}\n{culler.log()}")
        if time.monotonic() > deadline:
            log = f"\n--- culler log ---\n{culler.log()}" if culler else ""
            pytest.fail(f"waited {timeout:g}s for {what}{log}")
        time.sleep(0.2)


# -------------------------------------------------------------------- the culler process


class CullerProcess:
    """cull_idle_servers.py as a standalone subprocess (``-bb -W error``), log in a file."""

    def __init__(self, hub: RealHub, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        env["JUPYTERHUB_API_TOKEN"] = CULL_TOKEN
        env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-bb",
            "-W",
            "error",
            str(CULLER),
            f"--url={hub.api_url}",
            f"--timeout={TIMEOUT}",
            f"--cull-every={CULL_EVERY}",
            "--log-level=debug",
            *args,
        ]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=log_path.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, pattern: str) -> list[int]:
        """Numbers of the log lines matching ``pattern``."""
        return [i for i, line in enumerate(self.log().splitlines()) if re.search(pattern, line)]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = WAIT) -> int:
        """The exit status, once the culler has exited (within ``timeout``)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the culler did not exit within {timeout:g}s\n{self.log()}")

    def terminate(self) -> int:
        """SIGTERM, as the Hub stops a managed service; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def run_culler(tmp_path: Path) -> Iterator[Callable[..., CullerProcess]]:
    started: list[CullerProcess] = []

    def run(hub: RealHub, *args: str) -> CullerProcess:
        culler = CullerProcess(hub, tmp_path / f"cull-idle-{len(started)}.log", *args)
        started.append(culler)
        return culler

    yield run
    for culler in started:
        culler.kill()


def assert_clean(culler: CullerProcess) -> None:
    log = culler.log()
    assert "Traceback" not in log, log
    assert "Warning:" not in log, log  # a Python warning (-W error would have crashed it)


# --------------------------------------------------------------------------------- tests


def test_the_example_role_is_jupyterhub_idle_cullers() -> None:
    assert ROLE["scopes"] == ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    (service,) = EXAMPLE_CONFIG.services
    assert ROLE["services"] == [service["name"]] == [SERVICE]
    assert service["command"][1] == str(CULLER)


def test_idle_time_counts_from_last_activity_else_from_start() -> None:
    culler = _load_culler()
    now = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert culler.idle_seconds({"last_activity": "2024-01-01T11:00:00.000000Z"}, now) == 3600
    assert (
        culler.idle_seconds({"last_activity": None, "started": "2024-01-01T11:59:00Z"}, now) == 60
    )
    assert culler.idle_seconds({"last_activity": "2024-01-01T11:59:30+00:00"}, now) == 30
    assert culler.idle_seconds({"last_activity": "2024-01-01T11:59:50"}, now) == 10  # naive: UTC
    assert culler.idle_seconds({"last_activity": None, "started": None}, now) is None
    assert culler.idle_seconds({"last_activity": "yesterday"}, now) is None


def test_culls_idle_default_and_named_servers_and_spares_active_ones(
    run_culler: Callable[..., CullerProcess],
) -> None:
    tag = secrets.token_hex(3)
    idle, idle_named, active = f"idle-{tag}", f"named-{tag}", f"active-{tag}"
    with standalone_hub() as hub:
        start_server(hub, idle)
        start_server(hub, idle_named, "lab")
        start_server(hub, active)
        start_server(hub, active, "lab")

        def keep_active() -> None:
            touch(hub, active)
            touch(hub, active, "lab")

        keep_active()
        rounds = 10
        culler = run_culler(hub, f"--max-rounds={rounds}")
        wait_for(
            lambda: gone(hub, idle) and gone(hub, idle_named, "lab"),
            "the idle servers to be culled",
            tick=keep_active,
            culler=culler,
        )
        # The active servers must outlive every remaining round of the culler.
        wait_for(lambda: not culler.alive(), f"{rounds} rounds", tick=keep_active, culler=culler)
        assert culler.wait() == 0
        log = culler.log()
        assert running(hub, active), log
        assert running(hub, active, "lab"), log
        # ... although they are older than the timeout: without activity they would be gone.
        started = datetime.fromisoformat(servers(hub, active)[""]["started"].replace("Z", "+00:00"))
        assert datetime.now(timezone.utc) - started > timedelta(seconds=2 * TIMEOUT), log

        assert len(culler.lines(rf"cull-idle: stopp(ed|ing) {idle}, idle 00:00:\d\d")) == 1, log
        assert len(culler.lines(rf"cull-idle: stopp(ed|ing) {idle_named}/lab, idle 00:")) == 1, log
        assert not culler.lines(rf"(stopped|stopping) {active}"), log
        assert len(culler.lines(r"round \d+: \d+ ready servers")) == rounds, log
        assert not culler.lines("WARNING"), log
        assert culler.lines(f"exiting after {rounds} rounds"), log
        assert_clean(culler)


def test_survives_a_hub_restart(run_culler: Callable[..., CullerProcess]) -> None:
    tag = secrets.token_hex(3)
    before, after = f"before-{tag}", f"after-{tag}"
    with standalone_hub() as hub:
        start_server(hub, before)
        culler = run_culler(hub)
        wait_for(lambda: gone(hub, before), "a server culled before the restart", culler=culler)

        hub.restart(pause=5)  # longer than hubauth's retries (0.5 + 1 + 2 s): rounds fail
        assert hub.api("GET", f"/users/{before}").json()["name"] == before  # same database
        failed = wait_for(
            lambda: culler.lines(r"WARNING cull-idle: round \d+ failed; trying again in 1s: "),
            "a warning about a failed round",
            culler=culler,
        )
        start_server(hub, after, "lab")
        wait_for(
            lambda: gone(hub, after, "lab"), "a server culled after the restart", culler=culler
        )
        assert culler.alive(), culler.log()

        (culled_before,) = culler.lines(f"stopp(ed|ing) {before}, idle")
        (culled_after,) = culler.lines(f"stopp(ed|ing) {after}/lab, idle")
        assert culled_before < failed[0] < culled_after, culler.log()
        # Each failure is one line; the Hub came back, so later rounds succeeded again.
        assert culler.lines(r"round \d+: \d+ ready servers")[-1] > failed[-1], culler.log()
        assert culler.terminate() == 0
        assert culler.lines(r"exiting after \d+ rounds"), culler.log()
        assert_clean(culler)


def test_as_a_hub_managed_service() -> None:
    user = f"managed-{secrets.token_hex(3)}"
    service = {
        "name": SERVICE,
        "command": [sys.executable, str(CULLER), f"--timeout={TIMEOUT}", "--cull-every=1"],
    }
    with RealHub(services=[service], roles=[ROLE]) as hub:
        start_server(hub, user)
        wait_for(lambda: gone(hub, user), "the managed culler to cull an idle server")
        log = hub.log_text()
        assert re.search(rf"cull-idle: stopp(ed|ing) {user}, idle 00:00:\d\d", log), log
        assert f"culling servers idle for more than {TIMEOUT}s, every 1s" in log
        assert f"Service {SERVICE} exited" not in log, log


# ------------------------------------------------- every option, beside jupyterhub-idle-culler
#
# Each scenario is one set of options. Both cullers run one round with it, at the same
# time, on the same Hub, each on its own copy of the scenario's users: a culler's token
# reaches only its group (``list:users!group=...``), so neither sees the other's users.
# Servers meant to look active report activity a few minutes in the future (the Hub takes
# up to 59 minutes ahead), so a slow start of either culler cannot make them look idle.

PARITY_TIMEOUT = 4  # seconds; every idle thing is older than this before the round starts
THEIR_ROUND = """
import asyncio, json, logging, sys
from jupyterhub_idle_culler import cull_idle
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
asyncio.run(cull_idle(logger=logging.getLogger("idle-culler"), **json.loads(sys.argv[1])))
"""
# scenario -> (options, the scenario's users and their servers ("" default, "lab" named):
# "idle", "active" (activity in the future), or no servers; "admin" marks admin users)
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, dict[str, str]]]] = {
    "defaults": (
        {},
        {"idle": {"": "idle"}, "named": {"lab": "idle"}, "active": {"": "active"}, "nosrv": {}},
    ),
    "users": (
        {"cull_users": True},
        {"idle": {"": "idle"}, "active": {"": "active"}, "nosrv": {}, "admin": {}},
    ),
    "noadmin": ({"cull_users": True, "cull_admin_users": False}, {"nosrv": {}, "admin": {}}),
    "remove": (
        {"remove_named_servers": True},
        {"named": {"lab": "idle"}, "both": {"": "idle", "lab": "idle"}},
    ),
    "nodefault": ({"cull_default_servers": False}, {"both": {"": "idle", "lab": "idle"}}),
    "nonamed": ({"cull_named_servers": False}, {"both": {"": "idle", "lab": "idle"}}),
    "maxage": ({"timeout": 600, "max_age": 2}, {"old": {"": "active"}, "nosrv": {}}),
    "paging": (
        {"api_page_size": 1, "concurrency": 1},
        {"idle": {"": "idle"}, "active": {"": "active"}, "a": {}, "b": {}, "c": {}},
    ),
}
# What each scenario must leave: user -> None (deleted) or {server: "running"|"stopped"|"removed"}
EXPECTED: dict[str, dict[str, dict[str, str] | None]] = {
    "defaults": {
        "idle": {"": "stopped"},
        "named": {"lab": "stopped"},
        "active": {"": "running"},
        "nosrv": {},
    },
    "users": {"idle": None, "active": {"": "running"}, "nosrv": None, "admin": None},
    "noadmin": {"nosrv": None, "admin": {}},
    "remove": {"named": {"lab": "removed"}, "both": {"": "stopped", "lab": "removed"}},
    "nodefault": {"both": {"": "running", "lab": "stopped"}},
    "nonamed": {"both": {"": "stopped", "lab": "running"}},
    "maxage": {"old": {"": "stopped"}, "nosrv": {}},
    "paging": {"idle": {"": "stopped"}, "active": {"": "running"}, "a": {}, "b": {}, "c": {}},
}
SIDES = ("ours", "theirs")
GROUP_SCOPES = ("list:users", "read:users", "read:servers", "delete:servers", "delete:users")


def _group(scenario: str, side: str) -> str:
    return f"{scenario}-{side}"


_TOKENS: dict[tuple[str, str], str] = {}


def _token(scenario: str, side: str) -> str:
    return _TOKENS.setdefault((scenario, side), secrets.token_hex(24))


def _cli(options: dict[str, Any]) -> list[str]:
    """jupyterhub-idle-culler's keyword arguments as this example's command line."""
    args = [f"--timeout={options.get('timeout', PARITY_TIMEOUT)}"]
    for key, value in options.items():
        if key != "timeout":
            flag = "--" + key.replace("_", "-")
            args.append(
                f"{flag}={str(value).lower()}" if isinstance(value, bool) else f"{flag}={value}"
            )
    return args


@pytest.fixture(scope="module")
def parity_hub() -> Iterator[RealHub]:
    services, roles = [], []
    for scenario in SCENARIOS:
        for side in SIDES:
            name = f"cull-{_group(scenario, side)}"
            services.append({"name": name, "api_token": _token(scenario, side)})
            scopes = [f"{s}!group={_group(scenario, side)}" for s in GROUP_SCOPES]
            roles.append({"name": name, "scopes": scopes, "services": [name]})
    extra = NAMED_SERVERS + "\nc.Authenticator.admin_users = {'root'}\n"
    extra += "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"  # spawn in parallel
    with RealHub(services=services, roles=roles, extra_config=extra) as hub:
        yield hub


def _future() -> str:
    soon = datetime.now(timezone.utc) + timedelta(minutes=10)
    return soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _build(hub: RealHub, root: str) -> float:
    """Every scenario's users on both sides; the time the last idle thing became idle."""
    last = time.monotonic()
    pending: list[tuple[str, str]] = []
    for scenario, (_, users) in SCENARIOS.items():
        for side in SIDES:
            group = _group(scenario, side)
            for user, servers in users.items():
                name = f"{group}-{user}"
                hub.create_user(name, groups=[group])
                if user == "admin":
                    hub.session.patch(
                        f"{hub.hub_api_url}/users/{name}",
                        json={"admin": True},
                        headers={"Authorization": f"token {root}"},
                        timeout=30,
                    ).raise_for_status()
                for server in servers:
                    hub.api("POST", _server_path(name, server), json={})
                    pending.append((name, server))
    for name, server in pending:
        wait_for(lambda n=name, s=server: running(hub, n, s), f"{name}/{server} to be ready")
    last = time.monotonic()
    for scenario, (_, users) in SCENARIOS.items():
        for side in SIDES:
            for user, servers in users.items():
                name = f"{_group(scenario, side)}-{user}"
                active = {
                    s: {"last_activity": _future()} for s, k in servers.items() if k == "active"
                }
                if active:
                    body = {"last_activity": _future(), "servers": active}
                    hub.api("POST", f"/users/{quote(name)}/activity", json=body)
    return last


def _state(hub: RealHub, scenario: str, side: str) -> dict[str, dict[str, str] | None]:
    """What is left of a scenario's users, by name without the scenario and side."""
    left: dict[str, dict[str, str] | None] = {}
    for user, servers in SCENARIOS[scenario][1].items():
        name = f"{_group(scenario, side)}-{user}"
        r = hub.api("GET", f"/users/{quote(name)}?include_stopped_servers=1", ok=[404])
        if r.status_code == 404:
            left[user] = None
            continue
        models = r.json()["servers"]
        left[user] = {
            s: "removed" if s not in models else "running" if models[s]["ready"] else "stopped"
            for s in servers
        }
    return left


def test_every_option_culls_what_jupyterhub_idle_culler_culls(
    parity_hub: RealHub, tmp_path: Path
) -> None:
    """For each scenario, one round of each culler with the same options on the same Hub
    state: the same servers stopped or removed and the same users deleted; and that is
    what jupyterhub-idle-culler's documentation says each option does."""
    hub = parity_hub
    root = hub.user_token("root")
    idle_since = _build(hub, root)
    time.sleep(max(0.0, idle_since + PARITY_TIMEOUT + 1 - time.monotonic()))
    procs: dict[tuple[str, str], tuple[subprocess.Popen[bytes], Path]] = {}
    for scenario, (options, _) in SCENARIOS.items():
        for side in SIDES:
            log_path = tmp_path / f"{scenario}-{side}.log"
            env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
            env["JUPYTERHUB_API_TOKEN"] = _token(scenario, side)
            if side == "ours":
                argv = [sys.executable, "-bb", "-W", "error", str(CULLER), f"--url={hub.api_url}"]
                argv += [*_cli(options), "--max-rounds=1", "--log-level=debug"]
            else:
                kwargs = {"url": hub.api_url, "api_token": _token(scenario, side)}
                kwargs["inactive_limit"] = options.get("timeout", PARITY_TIMEOUT)
                kwargs.update({k: v for k, v in options.items() if k != "timeout"})
                argv = [sys.executable, "-c", THEIR_ROUND, json.dumps(kwargs)]
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            procs[scenario, side] = (proc, log_path)
    for (scenario, side), (proc, log_path) in procs.items():
        assert proc.wait(WAIT) == 0, f"{scenario}/{side}:\n{log_path.read_text()}"
    # Stops answered 202 finish in the background: let them.
    for scenario in SCENARIOS:
        for side in SIDES:
            wait_for(
                lambda sc=scenario, sd=side: "stopping" not in json.dumps(_state(hub, sc, sd)),
                f"{scenario}/{side} to settle",
            )
    for scenario in SCENARIOS:
        ours, theirs = _state(hub, scenario, "ours"), _state(hub, scenario, "theirs")
        logs = "\n".join(procs[scenario, s][1].read_text() for s in SIDES)
        assert ours == theirs, f"{scenario}: ours {ours} != theirs {theirs}\n{logs}"
        assert ours == EXPECTED[scenario], f"{scenario}: {ours}\n{logs}"
        assert "Traceback" not in procs[scenario, "ours"][1].read_text(), logs


def test_options_are_jupyterhub_idle_cullers() -> None:
    """The same option names, defaults and boolean syntax as jupyterhub-idle-culler 2.0."""
    from jupyterhub_idle_culler import IdleCuller

    culler = _load_culler()
    ours = culler.parse_args([])
    theirs = IdleCuller()
    for alias, trait in IdleCuller.aliases.items():
        if alias == "config":
            continue  # a traitlets config file: ours has no config file
        name = trait.split(".")[1]
        assert getattr(ours, name.replace("-", "_")) == getattr(theirs, name) or name in (
            "url",
            "cull_every",
        ), name
    assert ours.cull_every == theirs.timeout // 2 == 300
    parsed = culler.parse_args(["--cull-users", "--cull-admin-users=false", "--ssl-enabled=1"])
    assert parsed.cull_users and not parsed.cull_admin_users and parsed.ssl_enabled
    with pytest.raises(SystemExit):
        culler.parse_args(["--cull-users=maybe"])


class InternalSSLHub(RealHub):
    """A Hub with ``internal_ssl``: its API (and the proxy's) speak TLS with client
    certificates, written by the Hub under ``<its directory>/internal-ssl``."""

    def _config_text(self) -> str:
        plain = f"api_url = 'http://127.0.0.1:{self.proxy_api_port}'"
        text = super()._config_text().replace(plain, plain.replace("http:", "https:"))
        return text + "\nc.JupyterHub.internal_ssl = True\n"

    @property
    def proxy_api_url(self) -> str:
        return f"https://127.0.0.1:{self.proxy_api_port}"


def test_ssl_enabled_uses_the_hubs_internal_certificates(
    run_culler: Callable[..., CullerProcess],
) -> None:
    user = f"tls-{secrets.token_hex(3)}"
    role = {**ROLE, "scopes": [*ROLE["scopes"], "admin:users"]}
    with InternalSSLHub(services=[{"name": SERVICE, "api_token": CULL_TOKEN}], roles=[role]) as hub:
        assert hub.dir is not None
        admin = HubAPI(api_url=hub.api_url, api_token=hub.admin_token)  # through the proxy
        admin.create_user(user)
        https = hub.hub_api_url.replace("http:", "https:")
        time.sleep(TIMEOUT)  # the user is idle since its creation
        certs = f"--internal-certs-location={hub.dir / 'internal-ssl'}"
        plain = run_culler(hub, "--max-rounds=1", "--cull-users", f"--url={https}")
        assert plain.wait() == 0
        assert plain.lines(r"WARNING cull-idle: round 1 failed.*TLS"), plain.log()
        assert admin.user(user)["name"] == user
        tls = run_culler(
            hub, "--max-rounds=1", "--cull-users", "--ssl-enabled", certs, f"--url={https}"
        )
        assert tls.wait() == 0
        assert tls.lines(f"deleted user {user}, idle 00:00:"), tls.log()
        with pytest.raises(NotFound):
            admin.user(user)
        admin.close()
        assert_clean(tls)
