"""The ``hubauth`` command (also ``python -m hubauth``) for service authors and operators.

``hubauth doctor`` checks a service's configuration against its Hub; ``whoami``,
``users``, ``groups``, ``servers`` and ``services`` make the common REST calls through
:class:`hubauth.api.HubAPI`, printing tables (or ``--json``). The token and the Hub's API
URL come from ``--token``/``--url`` or ``JUPYTERHUB_API_TOKEN``/``JUPYTERHUB_API_URL``.
Exit status: 0 fine, 1 a failure (a ``FAIL`` finding, an error from the Hub), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from ..errors import HubAuthError
from ._commands import COMMANDS, add_rest_commands
from ._doctor import diagnose
from ._hubconfig import entry_environment, load_entry

__all__ = ["main"]


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes too (so they may come before or after it)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help="the Hub's API URL ($JUPYTERHUB_API_URL)"
    )
    common.add_argument(
        "--token", default=argparse.SUPPRESS, help="API token ($JUPYTERHUB_API_TOKEN)"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, not tables"
    )
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(
        prog="hubauth",
        description="Diagnose a JupyterHub service, and make common Hub REST calls.",
        parents=[common],
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = sub.add_parser(
        "doctor",
        parents=[common],
        help="check this service's settings against its Hub",
        description="Check every JUPYTERHUB_* and HUBAUTH_* setting of a service (this "
        "environment, or a Hub config's service entry) against the Hub. One line per "
        "finding; exit 1 if any FAILs.",
    )
    mode = doctor.add_mutually_exclusive_group()
    mode.add_argument("--oauth", action="store_true", default=None, help="check browser login")
    mode.add_argument("--no-oauth", dest="oauth", action="store_false", help="token-only service")
    doctor.add_argument(
        "--needs", action="append", default=[], metavar="SCOPE", help="a scope the token needs"
    )
    doctor.add_argument("--hub-config", metavar="FILE", help="a jupyterhub_config.py to read")
    doctor.add_argument("--service", metavar="NAME", help="the service's name in --hub-config")
    doctor.add_argument(
        "--service-json", metavar="JSON", help="the service's entry itself, as a JSON object"
    )
    sub.add_parser("whoami", parents=[common], help="who owns the token, with its scopes")
    add_rest_commands(sub, common)
    return top


def _run_doctor(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    env = {k: v for k, v in environ.items() if k.startswith(("JUPYTERHUB_", "HUBAUTH_"))}
    entry: dict[str, Any] | None = None
    if args.hub_config or args.service_json:
        if args.hub_config:
            if not args.service:
                raise SystemExit("hubauth doctor: --hub-config needs --service NAME")
            entry, settings = load_entry(args.hub_config, args.service)
        else:
            try:
                entry = json.loads(args.service_json)
            except ValueError as e:
                raise SystemExit(f"hubauth doctor: --service-json is not JSON: {e}") from None
            if not isinstance(entry, dict) or not entry.get("name"):
                raise SystemExit("hubauth doctor: --service-json needs an object with a name")
            settings = {}
        derived = entry_environment(entry, settings)
        env = {k: v for k, v in env.items() if k.startswith("HUBAUTH_")} | derived
    if getattr(args, "url", None):
        env["JUPYTERHUB_API_URL"] = args.url
    if getattr(args, "token", None):
        env["JUPYTERHUB_API_TOKEN"] = args.token
    findings = list(diagnose(env, oauth=args.oauth, needs=args.needs, entry=entry))
    if getattr(args, "json", False):
        out.write(json.dumps([f.__dict__ for f in findings], indent=2) + "\n")
    else:
        for finding in findings:
            out.write(finding.line() + "\n")
    failed = sum(f.level == "FAIL" for f in findings)
    if not getattr(args, "json", False):
        out.write(f"{failed} problem(s) found\n" if failed else "no problems found\n")
    return 1 if failed else 0


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``hubauth`` with ``argv``; the exit status."""
    env = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return _run_doctor(args, env, out)
        return COMMANDS[args.command](args, env, out, err)
    except HubAuthError as e:
        err.write(f"hubauth {args.command}: {' '.join(str(e).split())}\n")
        return 1
    except KeyboardInterrupt:
        return 130
