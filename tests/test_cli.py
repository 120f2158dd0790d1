"""The ``hubauth`` command against a real JupyterHub: ``doctor`` on a correct service and on
each broken configuration (each naming its cause), and the REST subcommands with tables,
JSON and a real spawn's progress bar.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubauth.cli import main
from hubauth.cli._doctor import _reach_unix
from hubauth.cli._output import bar, table
from tests.realhub import RealHub

SVC = "svc"
SVC_TOKEN = secrets.token_hex(32)
CLI_TOKEN = secrets.token_hex(32)
SECRET = secrets.token_hex(32)
SPAWNER = """
import asyncio
from jupyterhub.tests.mocking import MockSpawner


class ProgressSpawner(MockSpawner):
    async def start(self):
        await asyncio.sleep(1.0)
        return await super().start()

    async def progress(self):
        for step in (20, 60):
            yield {"progress": step, "message": f"step {step}"}
            await asyncio.sleep(0.2)


c.JupyterHub.spawner_class = ProgressSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
"""

pytestmark = pytest.mark.realhub


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def listener() -> Iterator[str]:
    """Something answering at the external service's URL (the Hub waits 30 s for it else)."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)  # the Hub's health check takes any status below 500

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def hub(listener: str) -> Iterator[RealHub]:
    services = [
        # An external service with a URL: the Hub registers its OAuth client and redirect URI.
        {"name": SVC, "api_token": SVC_TOKEN, "url": listener},
        {"name": "cli", "api_token": CLI_TOKEN},
    ]
    roles = [
        {"name": SVC, "scopes": [f"read:services!service={SVC}"], "services": [SVC]},
        {
            "name": "cli",
            "scopes": [
                "admin:users",
                "admin:groups",
                "admin:servers",
                "list:services",
                "read:services",
            ],
            "services": ["cli"],
        },
    ]
    with RealHub(services=services, roles=roles, extra_config=SPAWNER) as hub:
        yield hub


def service_env(hub: RealHub, **changes: str | None) -> dict[str, str]:
    """What the Hub gives service ``svc`` (plus a good cookie secret), with ``changes``."""
    env = {
        "JUPYTERHUB_API_URL": hub.hub_api_url,
        "JUPYTERHUB_API_TOKEN": SVC_TOKEN,
        "JUPYTERHUB_SERVICE_NAME": SVC,
        "JUPYTERHUB_SERVICE_PREFIX": f"/services/{SVC}/",
        "JUPYTERHUB_CLIENT_ID": f"service-{SVC}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/services/{SVC}/oauth_callback",
        "JUPYTERHUB_BASE_URL": "/",
        "HUBAUTH_COOKIE_SECRET": SECRET,
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, environ=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def doctor(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    code, out, _ = run(["doctor", *args], env)
    return code, out.splitlines()


def only(lines: list[str], level: str) -> list[str]:
    return [line for line in lines if line.startswith(level)]


# ------------------------------------------------------------------------------ doctor


def test_doctor_passes_a_correct_service(hub: RealHub) -> None:
    code, lines = doctor(service_env(hub))
    assert code == 0, lines
    checks = [line.split(":")[0].split()[1] for line in lines if line.startswith("ok")]
    for check in ("settings", "tcp", "api", "token", "access", "oauth", "redirect"):
        assert check in checks, lines
    assert any("belongs to service 'svc'" in line for line in lines)
    assert any("JupyterHub 6." in line for line in lines)
    assert lines[-1] == "no problems found" and not only(lines, "FAIL")


@pytest.mark.parametrize(
    ("changes", "args", "check", "cause"),
    [
        (
            {"JUPYTERHUB_API_TOKEN": secrets.token_hex(32)},
            (),
            "token",
            "the Hub does not know JUPYTERHUB_API_TOKEN",
        ),
        ({}, ("--needs", "list:users"), "scopes", "the token lacks list:users"),
        (
            {"JUPYTERHUB_OAUTH_CALLBACK_URL": f"/services/{SVC}/callback"},
            (),
            "redirect",
            "Mismatching redirect URI",
        ),
        (
            {"HUBAUTH_COOKIE_SECRET": "password!" * 8},
            (),
            "cookie-secret",
            "is not hex or base64 random bytes",
        ),
        ({"HUBAUTH_COOKIE_SECRET": "ab" * 32}, (), "cookie-secret", "does not look random"),
        ({"JUPYTERHUB_CLIENT_ID": "service-other"}, (), "oauth", "no OAuth client 'service-other'"),
        ({"JUPYTERHUB_SERVICE_NAME": "other"}, (), "token", "belongs to service 'svc' but"),
    ],
)
def test_doctor_names_the_cause_of_each_broken_configuration(
    hub: RealHub, changes: dict[str, str], args: tuple[str, ...], check: str, cause: str
) -> None:
    code, lines = doctor(service_env(hub, **changes), *args)
    assert code == 1, lines
    failed = only(lines, "FAIL")
    assert any(f" {check}: " in line and cause in line for line in failed), lines
    assert lines[-1].endswith("problem(s) found")


def test_doctor_on_a_wrong_prefix_says_where_the_api_is(hub: RealHub) -> None:
    wrong = hub.hub_api_url.replace("/hub/api", "/api")
    code, lines = doctor(service_env(hub, JUPYTERHUB_API_URL=wrong))
    assert code == 1
    (api,) = [line for line in only(lines, "FAIL") if " api: " in line]
    assert "is not the Hub's API" in api and f"set JUPYTERHUB_API_URL={hub.hub_api_url}" in api


def test_doctor_on_a_hub_that_is_down(hub: RealHub) -> None:
    down = f"http://127.0.0.1:{_free_port()}/hub/api"
    code, lines = doctor(service_env(hub, JUPYTERHUB_API_URL=down))
    assert code == 1
    assert any(line.startswith("FAIL tcp: cannot connect") for line in lines), lines
    assert not any(" token: " in line for line in lines)  # nothing more can be checked


def test_doctor_reports_every_bad_setting_and_typos(hub: RealHub) -> None:
    env = service_env(
        hub,
        JUPYTERHUB_OAUTH_ACCESS_SCOPES="not json",
        JUPYTERHUB_HOST="http://hub.example/path",
        JUPYTERHUB_API_TOKN="typo",
    )
    code, lines = doctor(env)
    assert code == 1
    settings = [line for line in lines if " settings: " in line]
    assert any("did you mean JUPYTERHUB_API_TOKEN" in line for line in settings), lines
    assert any("JUPYTERHUB_OAUTH_ACCESS_SCOPES" in line and "JSON" in line for line in settings)
    assert any("JUPYTERHUB_HOST" in line and "no path" in line for line in settings), lines
    assert any(line.startswith("ok   token") for line in lines)  # the rest is still checked


def test_doctor_without_a_token_still_checks_the_rest(hub: RealHub) -> None:
    code, lines = doctor(service_env(hub, JUPYTERHUB_API_TOKEN=None))
    assert code == 1
    assert any("FAIL settings: JUPYTERHUB_API_TOKEN" in line for line in lines)
    assert any(line.startswith("ok   api") for line in lines)
    assert any("not checked" in line for line in lines)


def test_doctor_from_the_hub_config_entry(hub: RealHub, tmp_path: Path, listener: str) -> None:
    """An operator's config: the service's environment is derived from its entry."""
    config = str(tmp_path / "jupyterhub_config.py")
    entry = {"name": SVC, "api_token": SVC_TOKEN, "url": listener}
    Path(config).write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.hub_port = {hub.hub_port}\n"
        f"c.JupyterHub.services = [{entry!r}]\n"
    )
    code, lines = doctor(
        {"HUBAUTH_COOKIE_SECRET": SECRET}, "--hub-config", config, "--service", SVC, "--oauth"
    )
    assert code == 0, lines
    assert any("its entry in the Hub config" in line or " redirect: " in line for line in lines)
    code, lines = doctor(
        {},
        "--service-json",
        json.dumps({"name": SVC, "api_token": SVC_TOKEN}),
        "--url",
        hub.hub_api_url,
    )
    assert code == 0, lines
    code, _, _ = run(["doctor", "--hub-config", config, "--service", "nope"], {})
    assert code == 1


def test_doctor_json_output(hub: RealHub) -> None:
    code, out, _ = run(["doctor", "--json"], service_env(hub))
    findings = json.loads(out)
    assert code == 0 and {f["level"] for f in findings} <= {"ok", "info", "warn"}
    assert {"level", "check", "text"} == set(findings[0])


def test_unix_socket_checks(tmp_path: Path) -> None:
    path = tmp_path / "hub.sock"
    assert [f.level for f in _reach_unix(str(path))] == ["FAIL"]
    path.write_text("")
    assert "not a socket" in next(iter(_reach_unix(str(path)))).text
    path.unlink()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "cannot connect" in next(iter(_reach_unix(str(path)))).text  # not listening
        server.listen(1)
        assert [f.level for f in _reach_unix(str(path))] == ["ok"]


# ----------------------------------------------------------------------- REST commands


def cli_env(hub: RealHub) -> dict[str, str]:
    return {"JUPYTERHUB_API_URL": hub.api_url, "JUPYTERHUB_API_TOKEN": CLI_TOKEN}


def test_whoami(hub: RealHub) -> None:
    code, out, _ = run(["whoami"], cli_env(hub))
    assert code == 0 and "kind" in out and "cli" in out
    code, out, _ = run(["whoami", "--json", "--token", SVC_TOKEN], cli_env(hub))
    assert code == 0 and json.loads(out)["name"] == SVC
    code, _, err = run(["whoami", "--token", secrets.token_hex(16)], cli_env(hub))
    assert code == 1 and "does not know this client's token" in err


def test_users_and_groups(hub: RealHub) -> None:
    env = cli_env(hub)
    a, b, g = (
        f"cli-{secrets.token_hex(2)}",
        f"cli-{secrets.token_hex(2)}",
        f"g-{secrets.token_hex(2)}",
    )
    assert run(["users", "create", a, b], env)[0] == 0
    code, out, _ = run(["users", "list", "--filter", "cli-"], env)
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["NAME", "ADMIN", "GROUPS", "SERVERS", "LAST_ACTIVITY"]
    assert {r.split()[0] for r in rows} >= {a, b}
    code, out, _ = run(["--json", "users", "show", a], env)
    assert json.loads(out)["name"] == a
    assert run(["groups", "create", g], env)[0] == 0
    code, out, _ = run(["groups", "add", g, a, b], env)
    assert code == 0 and a in out and b in out
    code, out, _ = run(["groups", "list", "--json"], env)
    assert g in {x["name"] for x in json.loads(out)}
    assert run(["groups", "remove", g, b], env)[0] == 0
    assert run(["groups", "delete", g], env)[0] == 0
    code, _, err = run(["groups", "show", g], env)
    assert code == 1 and "not found" in err
    assert run(["users", "delete", a, b], env)[0] == 0


def test_services(hub: RealHub) -> None:
    code, out, _ = run(["services", "list"], cli_env(hub))
    assert code == 0 and SVC in out and "cli" in out
    code, out, _ = run(["services", "show", SVC, "--json"], cli_env(hub))
    assert json.loads(out)["prefix"] == f"/services/{SVC}/"


def test_servers_start_wait_shows_the_progress_bar(hub: RealHub) -> None:
    env = cli_env(hub)
    user = f"spawn-{secrets.token_hex(2)}"
    run(["users", "create", user], env)
    code, out, err = run(["servers", "start", f"{user}/lab", "--wait", "--option", "size=2"], env)
    assert code == 0, err
    lines = err.splitlines()
    assert bar(20, "step 20") in lines and bar(60, "step 60") in lines
    assert lines[-1].startswith(f"[{'#' * 30}] 100% ")
    assert out == f"{user}/lab: ready at /user/{user}/lab/\n"
    code, out, _ = run(["servers", "list", user], env)
    assert code == 0 and "lab" in out and "yes" in out
    code, _, err = run(["servers", "stop", f"{user}/lab", "--remove"], env)
    assert code == 0 and "removed" in err
    run(["users", "delete", user], env)


def test_console_script_and_module_entry_points(hub: RealHub) -> None:
    env = {**os.environ, **cli_env(hub)}
    script = Path(sys.executable).parent / "hubauth"
    for command in ([str(script)], [sys.executable, "-m", "hubauth"]):
        done = subprocess.run(
            [*command, "whoami", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["name"] == "cli"
    usage = subprocess.run([str(script), "nope"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_output_helpers() -> None:
    out = io.StringIO()
    rows: list[dict[str, Any]] = [{"a": "x", "b": None}, {"a": "longer", "b": [1, 2]}]
    table(rows, ["a", "b"], out)
    assert out.getvalue().splitlines() == ["A       B", "x       -", "longer  1,2"]
    assert bar(0, "m") == f"[{'.' * 30}]   0% m" and bar(150, "").startswith(f"[{'#' * 30}] 100%")


def test_the_doctor_page_is_keyed_by_the_findings() -> None:
    """docs/doctor.md's headings quote doctor's own words, and every check that can fail or
    warn has a section there."""
    import re

    import hubauth.cli._doctor as doctor_module

    source = Path(doctor_module.__file__).read_text(encoding="utf-8")
    package = Path(doctor_module.__file__).parent.parent
    everything = "\n".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*.py")))
    joined = re.sub(r"([\"'])\s*\n\s*(?:f|rf|fr|r)?\1", "", everything)
    page = (Path(__file__).parent.parent / "docs" / "doctor.md").read_text(encoding="utf-8")
    quoted = [
        q for h in page.splitlines() if h.startswith("###") for q in re.findall(r"`([^`]+)`", h)
    ]
    assert len(quoted) > 20
    missing = [q for q in quoted if q not in joined and not q.startswith("FAIL")]
    assert not missing, f"headings that quote nothing doctor says: {missing}"
    checks = set(re.findall(r'(?:fail|warn)\(\s*"([\w-]+)"', source))
    assert checks >= {"settings", "tcp", "api", "token", "scopes", "oauth", "redirect"}
    for check in checks:
        assert check in page, f"no section for the {check!r} check"
