"""The REST subcommands of ``hubauth``: whoami, users, groups, servers, services."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from ..api import HubAPI
from ..errors import ConfigError, HubAuthError
from ._output import bar, print_json, table

__all__ = ["COMMANDS", "add_rest_commands"]

Command = Callable[[argparse.Namespace, Mapping[str, str], TextIO, TextIO], int]


def add_rest_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", parents=[common], help="list, show, create, delete users")
    u = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = u.add_parser("list", parents=[common], help="every user (all pages)")
    listing.add_argument("--state", choices=["active", "ready", "inactive"])
    listing.add_argument("--filter", dest="name_filter", help="names containing this")
    u.add_parser("show", parents=[common]).add_argument("name")
    create = u.add_parser("create", parents=[common])
    create.add_argument("names", nargs="+")
    create.add_argument("--admin", action="store_true")
    u.add_parser("delete", parents=[common]).add_argument("names", nargs="+")

    groups = sub.add_parser("groups", parents=[common], help="list, show, create, change groups")
    g = groups.add_subparsers(dest="action", required=True, metavar="ACTION")
    g.add_parser("list", parents=[common])
    g.add_parser("show", parents=[common]).add_argument("name")
    g.add_parser("create", parents=[common]).add_argument("names", nargs="+")
    g.add_parser("delete", parents=[common]).add_argument("name")
    for action in ("add", "remove"):
        member = g.add_parser(action, parents=[common], help=f"{action} members")
        member.add_argument("name")
        member.add_argument("users", nargs="+")

    servers = sub.add_parser("servers", parents=[common], help="list, start, stop servers")
    s = servers.add_subparsers(dest="action", required=True, metavar="ACTION")
    s.add_parser("list", parents=[common], help="active servers").add_argument("user", nargs="?")
    start = s.add_parser("start", parents=[common], help="start USER or USER/NAME")
    start.add_argument("target", metavar="USER[/NAME]")
    start.add_argument("--wait", action="store_true", help="follow the spawn's progress")
    start.add_argument("--timeout", type=float, default=600.0, help="most seconds to wait")
    start.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a user option"
    )
    stop = s.add_parser("stop", parents=[common], help="stop USER or USER/NAME")
    stop.add_argument("target", metavar="USER[/NAME]")
    stop.add_argument("--remove", action="store_true", help="also delete a named server")

    services = sub.add_parser("services", parents=[common], help="list or show services")
    v = services.add_subparsers(dest="action", required=True, metavar="ACTION")
    v.add_parser("list", parents=[common])
    v.add_parser("show", parents=[common]).add_argument("name")


def _api(args: argparse.Namespace, env: Mapping[str, str]) -> HubAPI:
    settings: dict[str, object] = {"environ": env}
    if getattr(args, "url", None):
        settings["api_url"] = args.url
    if getattr(args, "token", None):
        settings["api_token"] = args.token
    try:
        return HubAPI(**settings)
    except ConfigError as e:
        raise ConfigError(f"{e} (or pass --token/--url)", setting=e.setting) from None


def _target(text: str) -> tuple[str, str]:
    user, _, server = text.partition("/")
    return user, server


def _show(args: argparse.Namespace, data: Any, out: TextIO, columns: list[str]) -> None:
    if getattr(args, "json", False):
        print_json(data, out)
    elif isinstance(data, list):
        table(data, columns, out)
    else:
        width = max((len(k) for k in data), default=0)
        for key in sorted(data):
            value = data[key]
            text = value if isinstance(value, str) else _compact(value)
            out.write(f"{key.ljust(width)}  {text}\n")


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def whoami(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    with _api(args, env) as api:
        _show(args, dict(api.me()), out, [])
    return 0


def users(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    columns = ["name", "admin", "groups", "servers", "last_activity"]
    with _api(args, env) as api:
        if args.action == "list":
            found: list[dict[str, Any]] = [
                dict(u) for u in api.users(state=args.state, name_filter=args.name_filter)
            ]
            if not getattr(args, "json", False):
                for u in found:
                    u["servers"] = sorted(n or "(default)" for n in dict(u.get("servers") or {}))
            _show(args, found, out, columns)
        elif args.action == "show":
            _show(args, dict(api.user(args.name)), out, columns)
        elif args.action == "create":
            made = [dict(u) for u in api.create_users(args.names, admin=args.admin)]
            _show(args, made, out, ["name", "admin"])
        else:
            for name in args.names:
                api.delete_user(name)
                err.write(f"deleted user {name}\n")
    return 0


def groups(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    columns = ["name", "users", "properties"]
    with _api(args, env) as api:
        if args.action == "list":
            _show(args, [dict(g) for g in api.groups()], out, columns)
        elif args.action == "show":
            _show(args, dict(api.group(args.name)), out, columns)
        elif args.action == "create":
            _show(args, [dict(g) for g in api.create_groups(args.names)], out, columns)
        elif args.action == "delete":
            api.delete_group(args.name)
            err.write(f"deleted group {args.name}\n")
        elif args.action == "add":
            _show(args, dict(api.add_group_users(args.name, args.users)), out, columns)
        else:
            _show(args, dict(api.remove_group_users(args.name, args.users)), out, columns)
    return 0


def servers(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    with _api(args, env) as api:
        if args.action == "list":
            chosen = [api.user(args.user)] if args.user else api.users(state="active")
            rows = [
                {"user": u.get("name"), "server": name or "(default)", **dict(model)}
                for u in chosen
                for name, model in sorted((u.get("servers") or {}).items())
            ]
            columns = ["user", "server", "ready", "pending", "started", "last_activity"]
            _show(args, rows, out, columns)
            return 0
        user, name = _target(args.target)
        if args.action == "stop":
            status = api.stop_server(user, name, remove=args.remove)
            verb = "removed" if args.remove else "stopped"
            err.write(
                f"{verb} {args.target}" + (" (still stopping)" if status == 202 else "") + "\n"
            )
            return 0
        options = dict(_option(o) for o in args.option)
        status = api.start_server(user, name, user_options=options or None)
        if not args.wait:
            err.write(f"{args.target}: {'started' if status == 201 else 'starting'}\n")
            return 0
        return _follow(api, user, name, args, out, err)


def _option(text: str) -> tuple[str, Any]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise HubAuthError(f"--option {text!r}: expected KEY=VALUE")
    import json

    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _follow(
    api: HubAPI, user: str, name: str, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    """Draw the spawn's progress events as a bar (redrawn in place on a terminal)."""
    tty = err.isatty()
    last: dict[str, Any] = {}
    for event in api.progress(user, name, timeout=args.timeout):
        last = dict(event)
        line = bar(float(event.get("progress") or 0), str(event.get("message") or ""))
        err.write(f"\r\x1b[2K{line}" if tty else f"{line}\n")
        err.flush()
    if tty:
        err.write("\n")
    if getattr(args, "json", False):
        print_json(last, out)
    if last.get("failed"):
        out.write(f"{args.target}: {last.get('message') or 'spawn failed'}\n")
        return 1
    out.write(f"{args.target}: ready at {last.get('url', '?')}\n")
    return 0


def services(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    with _api(args, env) as api:
        if args.action == "list":
            rows = [dict(s) for s in api.services().values()]
            _show(args, rows, out, ["name", "url", "prefix", "pid", "admin"])
        else:
            _show(args, dict(api.service(args.name)), out, [])
    return 0


COMMANDS: dict[str, Command] = {
    "whoami": whoami,
    "users": users,
    "groups": groups,
    "servers": servers,
    "services": services,
}
