"""The README's demo command: a real JupyterHub with every example, checked without a human."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.realhub
def test_demo_check_logs_in_through_every_example(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--check"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    examples = (
        "whoami-api",
        "whoami-tornado",
        "whoami-flask",
        "whoami-wsgi",
        "whoami-fastapi",
        "grader-dashboard",
        "proxy-bokeh",
        "external-service",
        "runtime-service",
    )
    for example in examples:
        assert f"[demo] {example}: ok" in run.stdout, run.stdout
    assert "FAILED" not in run.stdout
    assert not list(tmp_path.glob("hubauth-demo-*")), "the demo left its temporary folder"


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("70000", "--port 70000: a port is between 1 and 65535"),
        ("0", "--port 0: a port is"),
        ("http", "argument --port: invalid int value: 'http'"),
    ],
)
def test_a_bad_port_is_refused_before_anything_starts(
    tmp_path: Path, port: str, message: str
) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--port", port],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert not list(tmp_path.iterdir())  # no folder, no Hub
