"""The ``hubauth-proxy`` command as a process: options, the app as a child, start and stop.

Each test runs ``python -m hubauth.proxy`` with the environment the fake Hub gives a
service, and watches what it does: the starting page, the app's output passed through,
the exit status, and that no app process outlives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from hubauth.proxy import parse_args
from hubauth.proxy._options import ProxyOptions
from hubauth.testing import FakeHub

from .proxy_apps import EchoApp, echo_application, free_port
from .services import serve_tornado

PREFIX = "/services/app/"

# The app: records its argv and environment, waits for the test's go-ahead, then serves
# the current directory with Python's http.server on the port it was given.
APP = """
import json, os, pathlib, runpy, sys, time
out, gate, port = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
pathlib.Path(out).write_text(json.dumps({"argv": sys.argv, "env": sorted(os.environ)}))
print("hello from the app", flush=True)
while not gate.exists():
    time.sleep(0.05)
sys.argv = ["http.server", port, "--bind", "127.0.0.1"]
runpy.run_module("http.server", run_name="__main__")
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


class Proxy:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.port = free_port()
        self.out = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubauth.proxy", "--port", str(self.port), *args],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def health(self, timeout: float = 30) -> requests.Response:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return requests.get(self.url + "healthz", timeout=5)
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.out.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()


@pytest.fixture
def start(fake_hub: FakeHub, tmp_path: Path) -> Iterator[Any]:
    procs: list[Proxy] = []

    def go(*args: str, env: dict[str, str] | None = None) -> Proxy:
        base = fake_hub.service_env("app")
        base["HUBAUTH_COOKIE_SECRET"] = secrets.token_hex(32)
        proxy = Proxy(list(args), {**base, **(env or {})}, tmp_path / f"proxy{len(procs)}.log")
        procs.append(proxy)
        return proxy

    yield go
    for p in procs:
        p.close()


def test_the_app_as_a_child(start: Any, fake_hub: FakeHub, tmp_path: Path) -> None:
    record, gate = tmp_path / "app.json", tmp_path / "go"
    proxy = start(
        "--strip-prefix",
        "--",
        sys.executable,
        "-c",
        APP,
        str(record),
        str(gate),
        "{port}",
        "{prefix}",
    )
    first = proxy.health()
    assert first.status_code == 503 and first.json()["app"] == "starting"
    token = fake_hub.add_user("alice")
    page = requests.get(proxy.url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert page.status_code == 503 and "starting" in page.json()["message"]
    gate.touch()
    deadline = time.monotonic() + 30
    while proxy.health().status_code != 200:
        assert time.monotonic() < deadline, proxy.text()
        time.sleep(0.05)
    r = requests.get(proxy.url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200 and "Directory listing" in r.text
    seen = json.loads(record.read_text())
    assert seen["argv"][-1] == PREFIX  # {prefix} substituted
    assert seen["argv"][-2].isdigit() and seen["argv"][-2] != str(proxy.port)
    assert "JUPYTERHUB_SERVICE_PREFIX" in seen["env"]
    for secret in ("JUPYTERHUB_API_TOKEN", "HUBAUTH_COOKIE_SECRET"):
        assert secret not in seen["env"]  # the app never gets the service's credentials
    children = _children(proxy.proc.pid)
    assert children
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.wait() == 0
    assert not any(_alive(c) for c in children)
    text = proxy.text()
    assert "hello from the app" in text  # the app's output, passed through
    assert token not in text


def test_the_proxy_exits_with_the_app(start: Any) -> None:
    code = "import sys; print('app says bye', flush=True); sys.exit(3)"
    proxy = start("--", sys.executable, "-c", code)
    assert proxy.wait() == 3
    assert "app says bye" in proxy.text() and "exited with status 3" in proxy.text()


def test_an_app_that_never_starts(start: Any) -> None:
    proxy = start("--ready-timeout", "1", "--", sys.executable, "-c", "import time; time.sleep(60)")
    children: list[int] = []
    deadline = time.monotonic() + 10
    while not children and time.monotonic() < deadline:
        children = _children(proxy.proc.pid)
        time.sleep(0.05)
    assert proxy.wait() == 1
    assert "did not answer" in proxy.text() and "--ready-timeout" in proxy.text()
    assert children and not any(_alive(c) for c in children)


def test_a_program_that_does_not_exist(start: Any) -> None:
    proxy = start("--", "no-such-program-hubauth-test")
    assert proxy.wait() == 1
    assert "cannot start 'no-such-program-hubauth-test'" in proxy.text()
    assert "Traceback" not in proxy.text()


def test_upstream_mode_waits_then_serves(start: Any, fake_hub: FakeHub) -> None:
    port = free_port()
    proxy = start("--upstream", f"http://127.0.0.1:{port}", "--ready-timeout", "0.5")
    token = fake_hub.add_user("alice")
    deadline = time.monotonic() + 20
    while proxy.health().json()["app"] == "starting":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = requests.get(proxy.url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 502  # an external app that is not there yet: 502, and the proxy stays
    assert proxy.proc.poll() is None
    proxy.proc.send_signal(signal.SIGINT)
    assert proxy.wait() == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--", "x"], {"JUPYTERHUB_SERVICE_PREFIX": ""}, "--prefix"),
        (["--prefix", "services/x", "--", "x"], {}, "--prefix"),
        (["--upstream", "ftp://x", "--prefix", "/a/"], {}, "--upstream"),
        (["--upstream", "http://a", "--", "x"], {}, "exactly one"),
        ([], {}, "exactly one"),
        (["--scope", "read:users!user", "--", "x"], {}, "--scope"),
        (["--public", "/abs", "--", "x"], {}, "--public"),
        (["--path-scope", "admin/", "--", "x"], {}, "--path-scope"),
        (["--response-timeout", "0", "--", "x"], {}, "--response-timeout"),
    ],
)
def test_bad_options_are_named(
    start: Any, args: list[str], env: dict[str, str], message: str
) -> None:
    proxy = start(*args, env=env)
    assert proxy.wait() == 2
    assert message in proxy.text() and "Traceback" not in proxy.text()


def test_listen_address_from_the_hub() -> None:
    """A user's server: JupyterHub says where to listen in JUPYTERHUB_SERVICE_URL."""
    env = {
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:34567/user/alice/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
        "JUPYTERHUB_ACTIVITY_URL": "http://127.0.0.1:8081/hub/api/users/alice/activity",
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_ACTIVITY_INTERVAL": "60",
    }
    options = parse_args(["--", "app", "{port}"], env)
    assert isinstance(options, ProxyOptions)
    assert (options.ip, options.port, options.prefix) == ("127.0.0.1", 34567, "/user/alice/")
    assert options.activity_url.endswith("/users/alice/activity")
    assert options.activity_interval == 60
    assert options.command[1] == options.upstream.rsplit(":", 1)[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_websocket_client_that_reads_slowly_does_not_fill_the_proxy(
    start: Any, fake_hub: FakeHub
) -> None:
    """Back-pressure on a websocket: the app sends 150 MiB as fast as it can, the client
    reads nothing for a while. The proxy stops reading from the app instead of keeping
    what the client has not taken: its RSS grows by far less than what was sent.
    """
    echo = EchoApp(port=free_port())
    app = echo_application(echo, PREFIX)
    with serve_tornado(lambda: app.listen(echo.port, "127.0.0.1")):
        proxy = start("--upstream", f"http://127.0.0.1:{echo.port}")
        while proxy.health().json()["app"] != "up":
            time.sleep(0.05)
        token = fake_hub.add_user("alice")
        base = _rss_kib(proxy.proc.pid)
        peak = base

        async def go() -> int:
            nonlocal peak
            url = proxy.url.replace("http://", "ws://") + "ws"
            conn = await websocket_connect(
                HTTPRequest(url, headers={"Authorization": f"token {token}"}),
                max_message_size=2 * 1024 * 1024,
            )
            await conn.read_message()  # hello
            await conn.write_message("flood:150")
            for _ in range(40):  # not reading: 2 s for the app to push what it can
                peak = max(peak, _rss_kib(proxy.proc.pid))
                await asyncio.sleep(0.05)
            got = 0
            for _ in range(150):
                message = await conn.read_message()
                assert isinstance(message, bytes)
                got += len(message)
                peak = max(peak, _rss_kib(proxy.proc.pid))
            conn.close()
            while await conn.read_message() is not None:
                pass
            return got

        assert asyncio.run(asyncio.wait_for(go(), 120)) == 150 * 1024 * 1024
        assert (peak - base) / 1024 < 40, (base, peak)
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.wait() == 0
