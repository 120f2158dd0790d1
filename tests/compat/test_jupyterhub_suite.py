"""JupyterHub's own tests of service authentication, run on hubauth (issue 10).

The ``jupyterhub`` wheel ships its tests: ``test_services_auth.py`` and ``test_services.py``,
with the Tornado services they start (``mockservice.py``), which import
``jupyterhub.services.auth``. Here they run unchanged, in a pytest of their own, with
``shim/sitecustomize.py`` on ``PYTHONPATH``: every import of that module, in the test
process and in every service the Hub starts, gets hubauth's names instead. That is the
drop-in promise, checked by JupyterHub's own assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..realhub import CHP, REPO_ROOT
from .known_differences import DESELECTED, KNOWN_FAILURES

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim"
MODULES = ["jupyterhub.tests.test_services_auth", "jupyterhub.tests.test_services"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "HUBAUTH_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(CHP.parent), env.get("PATH", "")])
    return env


def test_the_shim_answers_jupyterhub_imports_with_hubauth() -> None:
    """The harness itself: with the shim, ``jupyterhub.services.auth`` *is* hubauth."""
    code = (
        "import hubauth, hubauth.tornado\n"
        "from jupyterhub.services.auth import HubOAuth, HubOAuthenticated, UserNotAllowed\n"
        "assert HubOAuth is hubauth.HubOAuth\n"
        "assert HubOAuthenticated is hubauth.tornado.HubOAuthenticated\n"
        "assert UserNotAllowed is hubauth.UserNotAllowed\n"
        "print('hubauth')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and run.stdout.strip() == "hubauth", run.stderr


@pytest.mark.realhub
@pytest.mark.timeout(1200)
def test_jupyterhubs_service_tests_pass_on_hubauth(tmp_path: Path) -> None:
    """Every test passes but the known differences, which fail exactly as recorded."""
    assert CHP.exists(), "configurable-http-proxy is missing: run ./dev test, which installs it"
    report = tmp_path / "report.xml"
    ini = tmp_path / "pytest.ini"
    ini.write_text((HERE / "jupyterhub-pytest.ini").read_text())
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        "--rootdir",
        str(tmp_path),
        "--pyargs",
        *MODULES,
        "-q",
        f"--junitxml={report}",
        *(f"--deselect=::{name}" for name in DESELECTED),
    ]
    run = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1100
    )
    assert report.exists(), f"JupyterHub's tests did not run:\n{run.stdout[-3000:]}{run.stderr}"
    outcomes: dict[str, str] = {}
    # The report is written by the pytest run just above, not taken from anyone else.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            outcomes[case.get("name", "")] = "skipped"
        elif problem is not None:
            outcomes[case.get("name", "")] = "failed: " + (problem.get("message") or "")
        else:
            outcomes[case.get("name", "")] = "passed"
    assert len(outcomes) >= 54 - len(DESELECTED), sorted(outcomes)
    wrong = []
    for name, outcome in sorted(outcomes.items()):
        if name in KNOWN_FAILURES:
            expected, _why = KNOWN_FAILURES[name]
            if not (outcome.startswith("failed") and expected in outcome):
                wrong.append(f"{name}: expected to fail with {expected!r}, got {outcome}")
        elif outcome != "passed":
            wrong.append(f"{name}: {outcome}")
    assert not (set(KNOWN_FAILURES) - set(outcomes)), "known differences that did not run"
    assert not wrong, "\n".join(wrong) + f"\n\n{run.stdout[-4000:]}"


def test_the_known_differences_are_documented() -> None:
    """Each one is in the migration guide, with its reason."""
    guide = (REPO_ROOT / "docs" / "migration.md").read_text()
    for name in [*KNOWN_FAILURES, *DESELECTED]:
        assert name.split("[")[0] in guide, f"{name} is not in docs/migration.md"
