"""The README's demo command: a real JupyterHub with every example, checked without a human."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.realhub
def test_demo_check_logs_in_through_every_example() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--check"],
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
        "grader-dashboard",
        "proxy-bokeh",
        "external-service",
        "runtime-service",
    )
    for example in examples:
        assert f"[demo] {example}: ok" in run.stdout, run.stdout
    assert "FAILED" not in run.stdout
