"""The demo stops clean: a signal to it stops every process it started, directly or not.

Four demos run at once (the Hub's start-up is most of the time), each under
``tests/subreaper.py``: whatever of a demo's tree outlives it is handed by the kernel to
that process and reported, whatever session or parent it moved to. Each test sends one
signal to the process the banner says to kill, and checks that nothing is left, that the
demo's temporary folder is gone and that the port is free.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.realhub, pytest.mark.timeout(600)]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hubauth_{name}", ROOT / "examples" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load("demo.py")
lifecycle = _load("demo_lifecycle.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    """One demo started for a test: where it listens, where it writes, how it ended."""

    port: int
    folder: Path  # its TMPDIR, its log and its output
    runner: subprocess.Popen[bytes]  # tests/subreaper.py, the demo's parent
    pid: int = 0  # the demo's python process, as its banner names it

    @property
    def output(self) -> str:
        return (self.folder / "out.txt").read_text(errors="replace")

    def report(self) -> dict[str, object]:
        self.runner.wait(120)
        result: dict[str, object] = json.loads((self.folder / "report.json").read_text())
        return result


def start(tmp: Path, via_dev: bool) -> Demo:
    port = free_port()
    tmp.mkdir()
    (tmp / "tmp").mkdir()
    command = ["./dev", "demo"] if via_dev else [sys.executable, "examples/demo.py"]
    with open(tmp / "out.txt", "wb") as out:
        runner = subprocess.Popen(
            [
                sys.executable,
                "tests/subreaper.py",
                str(tmp / "report.json"),
                "--",
                *command,
                "--port",
                str(port),
                "--log",
                str(tmp / "demo.log"),
            ],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(tmp / "tmp")},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Demo(port, tmp, runner)


def wait_banner(d: Demo, timeout: float = 240) -> None:
    """Until the banner is out (then: the demo's pid from its "Stop:" line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and d.runner.poll() is None:
        for line in d.output.splitlines():
            if line.startswith("Stop: Ctrl-C, or kill "):
                d.pid = int(line.split()[4].rstrip(":"))
                return
        time.sleep(0.5)
    raise AssertionError(f"no banner from the demo on port {d.port}:\n{d.output}")


SCENARIOS = {
    "SIGINT": (signal.SIGINT, False),
    "SIGTERM": (signal.SIGTERM, False),
    "SIGHUP": (signal.SIGHUP, False),
    "SIGTERM-via-dev": (signal.SIGTERM, True),
}


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Demo]]:
    """The four demos, started together, banners out."""
    base = tmp_path_factory.mktemp("demos")
    running = {name: start(base / name, via_dev) for name, (_, via_dev) in SCENARIOS.items()}
    try:
        for d in running.values():
            wait_banner(d)
        yield running
    finally:
        for d in running.values():  # a test that failed or was not run: stop its demo
            d.pid = d.pid or _child(d.runner.pid)
            if d.runner.poll() is None and d.pid:
                os.kill(d.pid, signal.SIGTERM)
        for d in running.values():
            try:
                d.runner.wait(60)
            except subprocess.TimeoutExpired:  # then the runner kills what the demo left
                if d.pid:
                    os.kill(d.pid, signal.SIGKILL)
                d.runner.wait(60)


def _child(pid: int) -> int:
    """The demo a runner started, before its banner named it (0: none left)."""
    alive = lifecycle.processes().items()
    return next((p for p, (parent, state) in alive if parent == pid and state != "Z"), 0)


def test_a_second_demo_on_the_same_port_fails_at_once_naming_the_holder(
    demos: dict[str, Demo], tmp_path: Path
) -> None:
    """The port is still held (the issue: an old Hub kept it): say so, start nothing."""
    d = demos["SIGINT"]
    run = subprocess.run(
        [sys.executable, "examples/demo.py", "--port", str(d.port), "--log", str(tmp_path / "l")],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"port {d.port} on 127.0.0.1 is in use, by pid " in run.stderr
    assert "configurable-http-proxy" in run.stderr  # the first demo's proxy, named
    assert f"--port {d.port + 1}" in run.stderr
    assert "starting JupyterHub" not in run.stdout
    assert not list(tmp_path.glob("hubauth-demo-*"))  # nothing was started


def test_another_hub_on_the_url_is_not_taken_for_the_demos_own(demos: dict[str, Demo]) -> None:
    """A Hub answering on the port that does not know this run's token is not "running".

    The running demo's Hub plays the old Hub left on the port; the readiness check of a
    new run (another token) must refuse it and say what answered.
    """
    d = demos["SIGINT"]
    with pytest.raises(RuntimeError, match="answered 403 to this run's token"):
        demo.wait_ready(f"http://127.0.0.1:{d.port}", d.runner, "a-token-of-another-run", 3)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_signal_stops_everything(demos: dict[str, Demo], scenario: str) -> None:
    signum = SCENARIOS[scenario][0]
    d = demos[scenario]
    # The pid the banner names is the runner's own child: with ./dev, bash exec'd python.
    stat = Path(f"/proc/{d.pid}/stat").read_text()
    assert int(stat[stat.rfind(")") + 2 :].split()[1]) == d.runner.pid
    assert b"examples/demo.py" in Path(f"/proc/{d.pid}/cmdline").read_bytes()
    tree = [lifecycle.describe(pid) for pid in lifecycle.descendants(d.pid)]
    # What there is to stop: the Hub's proxy, two gunicorns with 4 workers each (their
    # grandchildren), and the external service the demo runs itself.
    assert sum("configurable-http-proxy" in p for p in tree) == 1, tree
    assert sum("gunicorn" in p for p in tree) == 10, tree
    assert sum("external_service.py" in p for p in tree) == 1, tree

    os.kill(d.pid, signum)
    report = d.report()

    assert report["left"] == [], f"still running after the demo: {report['left']}"
    assert report["code"] == 128 + signum, d.output
    assert f"stopped; port {d.port} is free again" in d.output
    assert not lifecycle.port_in_use(d.port)
    assert not list((d.folder / "tmp").glob("hubauth-demo-*")), "the temporary folder is left"
    assert (d.folder / "demo.log").stat().st_size > 0  # the log is kept, where it said
