"""``hubauth-proxy``'s command line: what it parses, and the validated :class:`ProxyOptions`.

Settings the Hub gives every service or server (prefix, where to listen, access scopes,
the activity URL) come from the environment mapping handed in (``os.environ`` from
:func:`hubauth.proxy.main`); options on the command line override them. A bad option ends
the program with a message naming it, never with a traceback.
"""

from __future__ import annotations

import argparse
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError, ScopeError
from ..scopes import parse_scope

__all__ = ["ProxyOptions", "parse_args"]

_DESCRIPTION = """\
Put any web app behind JupyterHub login. Either start the app (everything after `--`;
{port} and {prefix} are replaced) or forward to --upstream. Browsers log in through the Hub;
API clients send 'Authorization: token ...'. The app learns who is calling from
X-Forwarded-User / X-Forwarded-Groups, never from the token.
"""

_EPILOG = """\
examples:
  hubauth-proxy -- bokeh serve app.py --port {port} --prefix {prefix} --allow-websocket-origin '*'
  hubauth-proxy --strip-prefix -- python -m http.server {port} --bind 127.0.0.1
  hubauth-proxy --upstream http://127.0.0.1:8050 --group staff
  hubauth-proxy --forward-auth --port 9100    # for nginx auth_request / Traefik ForwardAuth
"""


@dataclass(frozen=True)
class ProxyOptions:
    """Everything the proxy needs to run, validated; built by :func:`parse_args`."""

    prefix: str  # public URL prefix, with both slashes: /services/app/
    ip: str
    port: int
    upstream: str = ""  # the app's origin and base path, e.g. http://127.0.0.1:8501
    command: tuple[str, ...] = ()  # the app to start, {port} and {prefix} substituted
    strip_prefix: bool = False
    scopes: frozenset[str] | None = None  # None: the service's access scopes (env)
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    public_paths: tuple[str, ...] = ()  # absolute paths under the prefix
    path_scopes: tuple[tuple[str, frozenset[str]], ...] = ()
    forward_token: bool = False
    forward_model: bool = False
    forward_auth: bool = False
    ready_timeout: float = 60.0
    connect_timeout: float = 10.0
    response_timeout: float = 300.0
    idle_timeout: float = 60.0
    stop_timeout: float = 10.0
    max_body_size: int = 10 * 1024**3
    activity_url: str = ""
    activity_interval: float = 300.0
    server_name: str = ""
    log_level: str = "INFO"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def app_path(self) -> str:
        """The app's own base path: the prefix, or ``/`` when the prefix is stripped."""
        base = urllib.parse.urlsplit(self.upstream).path.rstrip("/")
        return (base or "") + ("/" if self.strip_prefix else self.prefix)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hubauth-proxy",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_argument_group("where")
    where.add_argument(
        "--prefix",
        help="public URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX, e.g. /services/app/)",
    )
    where.add_argument("--ip", help="address to listen on (default: from $JUPYTERHUB_SERVICE_URL)")
    where.add_argument(
        "--port", type=int, help="port to listen on (default: from $JUPYTERHUB_SERVICE_URL)"
    )
    where.add_argument("--upstream", help="forward to this URL instead of starting an app")
    where.add_argument(
        "--app-port", type=int, help="port for the started app ({port}; default: a free one)"
    )
    where.add_argument(
        "--strip-prefix",
        action="store_true",
        help="send the app paths without the prefix (X-Forwarded-Prefix tells it the prefix)",
    )
    who = p.add_argument_group("who may pass")
    who.add_argument(
        "--scope",
        action="append",
        default=[],
        help="a scope that grants access (repeatable; replaces $JUPYTERHUB_OAUTH_ACCESS_SCOPES)",
    )
    who.add_argument("--user", action="append", default=[], help="only this Hub user (repeatable)")
    who.add_argument(
        "--group", action="append", default=[], help="only members of this Hub group (repeatable)"
    )
    who.add_argument(
        "--public",
        action="append",
        default=[],
        metavar="PATH",
        help="a path under the prefix that needs no login (a trailing / covers what is below)",
    )
    who.add_argument(
        "--path-scope",
        action="append",
        default=[],
        metavar="PATH=SCOPE[,SCOPE]",
        help="requests to PATH (under the prefix) need one of these scopes instead",
    )
    tell = p.add_argument_group("what the app is told")
    tell.add_argument(
        "--forward-model",
        action="store_true",
        help="also send the caller's Hub model as JSON in X-Forwarded-Hub-Model",
    )
    tell.add_argument(
        "--forward-token",
        action="store_true",
        help="pass Authorization and the Hub's cookies on, and the token in "
        "X-Forwarded-Access-Token (off: the app never sees a credential)",
    )
    mode = p.add_argument_group("forward-auth")
    mode.add_argument(
        "--forward-auth",
        action="store_true",
        help="proxy nothing: answer <prefix>auth-request (nginx) and <prefix>forward-auth "
        "(Traefik, Caddy) for a reverse proxy that serves the app",
    )
    limits = p.add_argument_group("limits")
    limits.add_argument("--ready-timeout", type=float, default=60.0, help="seconds (60)")
    limits.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (10)")
    limits.add_argument(
        "--response-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the app's response headers (300)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="seconds a client may take to send its headers or stay idle (60)",
    )
    limits.add_argument("--stop-timeout", type=float, default=10.0, help="seconds (10)")
    limits.add_argument(
        "--max-body-size", type=int, default=10 * 1024**3, help="bytes (10 GiB), streamed"
    )
    p.add_argument(
        "--activity-interval",
        type=float,
        help="seconds between activity reports (default $JUPYTERHUB_ACTIVITY_INTERVAL or 300)",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (INFO)")
    return p


def _fail(option: str, message: str) -> ConfigError:
    return ConfigError(f"{option}: {message}", setting=option)


def _scopes(option: str, values: Sequence[str]) -> frozenset[str]:
    out = set()
    for value in values:
        for scope in (s.strip() for s in value.split(",")):
            if not scope:
                continue
            try:
                parse_scope(scope)
            except ScopeError as e:
                raise _fail(option, str(e)) from None
            out.add(scope)
    return frozenset(out)


def _under(prefix: str, option: str, path: str) -> str:
    if path.startswith("/") or "://" in path or ".." in path.split("/"):
        raise _fail(option, f"{path!r} must be relative to the prefix, like 'static/'")
    return prefix + path


def _listen(opts: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, int]:
    url = env.get("JUPYTERHUB_SERVICE_URL", "")
    parts = urllib.parse.urlsplit(url) if url else None
    ip = opts.ip or (parts.hostname if parts else "") or "127.0.0.1"
    port = opts.port
    if port is None and parts is not None:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    if port is None:
        raise _fail("--port", "not given and JUPYTERHUB_SERVICE_URL is not set: where to listen?")
    if not 0 < port < 65536:
        raise _fail("--port", f"{port} is not a port")
    return ip, port


def _prefix(opts: argparse.Namespace, env: Mapping[str, str]) -> str:
    prefix = opts.prefix or env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if not prefix:
        raise _fail(
            "--prefix",
            "not given and JUPYTERHUB_SERVICE_PREFIX is not set (the Hub sets it for services "
            "and servers it starts); give the public prefix, e.g. --prefix /services/app/",
        )
    if not prefix.startswith("/") or "://" in prefix or any(c in prefix for c in "?#\\ "):
        raise _fail("--prefix", f"{prefix!r} must be a URL path like /services/app/")
    return prefix.rstrip("/") + "/"


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> ProxyOptions:
    """The options for ``argv`` (without the program name) in environment ``environ``.

    Raises :class:`~hubauth.errors.ConfigError` naming the option at fault.
    """
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    parser = _parser()
    opts = parser.parse_args(argv)
    env = dict(environ)
    prefix = _prefix(opts, env)
    ip, port = _listen(opts, env)

    modes = [bool(command), bool(opts.upstream), bool(opts.forward_auth)]
    if sum(modes) != 1:
        raise _fail(
            "--upstream",
            "give exactly one of: a command after '--', --upstream URL, or --forward-auth",
        )
    upstream = ""
    app_port = 0
    if opts.upstream:
        parts = urllib.parse.urlsplit(opts.upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise _fail("--upstream", f"{opts.upstream!r} must be an http(s) URL without query")
        upstream = opts.upstream.rstrip("/")
    elif command:
        app_port = opts.app_port or _free_port()
        upstream = f"http://127.0.0.1:{app_port}"
        if not command[0]:
            raise _fail("--", "the command to start is empty")
    for name in ("ready_timeout", "connect_timeout", "response_timeout", "idle_timeout"):
        if getattr(opts, name) <= 0:
            raise _fail("--" + name.replace("_", "-"), "must be more than 0 seconds")

    path_scopes = []
    for rule in opts.path_scope:
        path, eq, scopes = rule.partition("=")
        if not eq or not scopes.strip():
            raise _fail("--path-scope", f"{rule!r} is not PATH=SCOPE[,SCOPE]")
        path_scopes.append(
            (_under(prefix, "--path-scope", path), _scopes("--path-scope", [scopes]))
        )

    interval_raw = opts.activity_interval
    if interval_raw is None:
        raw = env.get("JUPYTERHUB_ACTIVITY_INTERVAL", "") or "300"
        try:
            interval_raw = float(raw)
        except ValueError:
            raise _fail("JUPYTERHUB_ACTIVITY_INTERVAL", f"{raw!r} is not a number") from None
    if interval_raw <= 0:
        raise _fail("--activity-interval", "must be more than 0 seconds")

    substitutions = {"{port}": str(app_port), "{prefix}": prefix}
    resolved = []
    for arg in command:
        for key, value in substitutions.items():
            arg = arg.replace(key, value)
        resolved.append(arg)

    return ProxyOptions(
        prefix=prefix,
        ip=ip,
        port=port,
        upstream=upstream,
        command=tuple(resolved),
        strip_prefix=opts.strip_prefix,
        scopes=_scopes("--scope", opts.scope) if opts.scope else None,
        users=frozenset(u for u in opts.user if u),
        groups=frozenset(g for g in opts.group if g),
        public_paths=tuple(_under(prefix, "--public", p) for p in opts.public),
        path_scopes=tuple(path_scopes),
        forward_token=opts.forward_token,
        forward_model=opts.forward_model,
        forward_auth=opts.forward_auth,
        ready_timeout=opts.ready_timeout,
        connect_timeout=opts.connect_timeout,
        response_timeout=opts.response_timeout,
        idle_timeout=opts.idle_timeout,
        stop_timeout=opts.stop_timeout,
        max_body_size=opts.max_body_size,
        activity_url=env.get("JUPYTERHUB_ACTIVITY_URL", ""),
        activity_interval=interval_raw,
        server_name=env.get("JUPYTERHUB_SERVER_NAME", ""),
        log_level=opts.log_level.upper(),
        environ=env,
    )
