"""``hubauth doctor``: check a service's settings against the Hub it belongs to.

Each check yields findings, one line each, saying what is wrong and what to do: the
settings (through :mod:`hubauth.config`, so doctor and the service agree), the Hub's
address (TCP, TLS, ``http+unix``), its API, the service's token (model, kind, scopes), the
OAuth client and redirect URI, the access scopes, the cookie secret, ``Secure`` and public
URLs. A ``FAIL`` makes the command exit 1.
"""

from __future__ import annotations

import difflib
import json
import os
import socket
import ssl
import stat
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._protocol import token_request
from .._sync import SyncDriver
from ..api import HubAPI
from ..config import SETTINGS, Config, load_config
from ..errors import ConfigError, HubAuthError, HubUnavailable, ServiceTokenRejected
from ..scopes import check_scopes

__all__ = ["Finding", "diagnose"]

#: Variables the Hub sets that hubauth does not read (so they are not typos).
HUB_VARIABLES = frozenset(
    {
        "JUPYTERHUB_ACTIVITY_URL",
        "JUPYTERHUB_ADMIN_ACCESS",
        "JUPYTERHUB_DEBUG",
        "JUPYTERHUB_DEFAULT_URL",
        "JUPYTERHUB_DISABLE_USER_CONFIG",
        "JUPYTERHUB_ROOT_DIR",
        "JUPYTERHUB_SERVER_NAME",
        "JUPYTERHUB_SINGLEUSER_APP",
        "JUPYTERHUB_USER",
        "JUPYTERHUB_SINGLEUSER_EXTENSION",
    }
)
KNOWN = frozenset(v for s in SETTINGS for v in s.env) | HUB_VARIABLES
_PLACEHOLDER_TOKEN = "hubauth-doctor-placeholder-token"  # noqa: S105 - never sent
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "info", "warn", "FAIL"
    check: str
    text: str

    def line(self) -> str:
        return f"{self.level:<4} {self.check}: {' '.join(self.text.split())}"


def ok(check: str, text: str) -> Finding:
    return Finding("ok", check, text)


def info(check: str, text: str) -> Finding:
    return Finding("info", check, text)


def warn(check: str, text: str) -> Finding:
    return Finding("warn", check, text)


def fail(check: str, text: str) -> Finding:
    return Finding("FAIL", check, text)


@dataclass
class _State:
    env: Mapping[str, str]
    config: Config | None = None
    token_usable: bool = True
    identity: dict[str, Any] | None = None
    api_reached: bool = False
    weak_secret: bool = False


def diagnose(
    env: Mapping[str, str],
    *,
    oauth: bool | None = None,
    needs: Sequence[str] = (),
    entry: Mapping[str, Any] | None = None,
) -> Iterator[Finding]:
    """Every finding about the service configured by ``env``, in the order checked.

    ``oauth``: whether the service logs browsers in (default: when it has a callback URL);
    ``needs``: scopes its token must have; ``entry``: its ``c.JupyterHub.services`` entry.
    """
    if oauth is None:
        oauth = bool(env.get("JUPYTERHUB_OAUTH_CALLBACK_URL"))
    state = _State(env)
    yield from _settings(state, oauth)
    if state.config is None:
        return
    yield from _reach(state.config)
    yield from _api(state)
    if not state.api_reached:
        return
    yield from _token(state, needs)
    yield from _access_scopes(state.config)
    if oauth:
        yield from _oauth(state, entry)
        yield from _cookie_secret(state)
        yield from _urls(state.config)


# ----------------------------------------------------------------------------- settings


def _settings(state: _State, oauth: bool) -> Iterator[Finding]:
    env = state.env
    for var in sorted(v for v in env if v.startswith(("JUPYTERHUB_", "HUBAUTH_"))):
        if var not in KNOWN:
            close = difflib.get_close_matches(var, sorted(KNOWN), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; hubauth does not read it"
            yield warn("settings", f"{var} is not a variable the Hub or hubauth knows{hint}")
    trial = dict(env)
    for _ in range(len(SETTINGS) + 2):
        try:
            state.config = load_config(trial, oauth=oauth)
            break
        except ConfigError as e:
            if e.setting == "cookie_secret":  # hubauth.config's own strength check said no
                state.weak_secret = True
                yield fail("cookie-secret", f"{e}: anyone who guesses it can forge logins")
            else:
                yield fail("settings", str(e))
            setting = next((s for s in SETTINGS if s.name == e.setting), None)
            removed = [v for v in (setting.env if setting else ()) if trial.pop(v, None)]
            if e.setting == "api_token":
                state.token_usable = False
                trial["JUPYTERHUB_API_TOKEN"] = _PLACEHOLDER_TOKEN
            elif not removed:
                return
    if state.config is not None:
        used = sorted(v for v in env if v in KNOWN - HUB_VARIABLES)
        yield ok("settings", f"read through hubauth.config: {', '.join(used) or 'defaults only'}")


# ------------------------------------------------------------------------- reaching it


def _reach(config: Config) -> Iterator[Finding]:
    parts = urllib.parse.urlsplit(config.api_url)
    if parts.scheme == "http+unix":
        yield from _reach_unix(urllib.parse.unquote(parts.netloc))
        return
    host, https = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    began = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=config.connect_timeout)
    except OSError as e:
        yield fail(
            "tcp",
            f"cannot connect to {host}:{port} (JUPYTERHUB_API_URL): {e.strerror or e}. Is the "
            "Hub running, and is its hub_ip/hub_port (or hub_connect_url) reachable from here?",
        )
        return
    with sock:
        yield ok("tcp", f"connected to {host}:{port} in {1000 * (time.monotonic() - began):.1f} ms")
        if https:
            yield from _tls(config, sock, host)


def _tls(config: Config, sock: socket.socket, host: str) -> Iterator[Finding]:
    try:
        ctx = ssl.create_default_context(cafile=config.client_ca or None)
        if config.certfile:
            ctx.load_cert_chain(config.certfile, config.keyfile)
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            cert: dict[str, Any] = dict(tls.getpeercert() or {})
            names = [str(v) for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            yield ok("tls", f"{tls.version()}, certificate of {names[0] if names else host}")
    except (ssl.SSLError, OSError) as e:
        reason = getattr(e, "reason", None) or str(e)
        yield fail(
            "tls",
            f"TLS with {host} failed ({reason}): set JUPYTERHUB_SSL_CLIENT_CA to the CA that "
            "signed the Hub's certificate (and JUPYTERHUB_SSL_CERTFILE/_KEYFILE if the Hub "
            "asks for a client certificate, as with internal_ssl)",
        )


def _reach_unix(path: str) -> Iterator[Finding]:
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        yield fail("unix", f"{path} (JUPYTERHUB_API_URL): {e.strerror}; is the Hub bound there?")
        return
    if not stat.S_ISSOCK(mode):
        yield fail("unix", f"{path} exists but is not a socket; check JUPYTERHUB_API_URL")
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError as e:
            yield fail("unix", f"cannot connect to {path}: {e.strerror}; is the Hub running?")
            return
    yield ok("unix", f"connected to {path}")


def _client(config: Config, api_url: str | None = None) -> HubAPI:
    """A REST client with the service's own connection settings (TLS files, timeouts), not
    this process's environment: the doctor checks the environment it was given.
    """
    return HubAPI(
        environ={},
        api_url=api_url or config.api_url,
        api_token=config.api_token,
        certfile=config.certfile,
        keyfile=config.keyfile,
        client_ca=config.client_ca,
        connect_timeout=config.connect_timeout,
        request_timeout=config.request_timeout,
        retries=0,
    )


def _api(state: _State) -> Iterator[Finding]:
    config = state.config
    if config is None:  # diagnose() checks it first
        return
    with _client(config) as api:
        try:
            version = api.info().get("version", "")
        except HubUnavailable as e:
            yield fail("api", str(e))
            return
        except HubAuthError as e:
            yield fail("api", f"{config.api_url} is not the Hub's API: {e}{_guess(config)}")
            return
    state.api_reached = True
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < 2:
        yield fail("api", f"JupyterHub {version or '?'} has no scopes; hubauth needs >= 2.0")
    else:
        yield ok("api", f"JupyterHub {version} answers at {config.api_url}")


def _guess(config: Config) -> str:
    """Where the API is, if a likely URL answers like it."""
    parts = urllib.parse.urlsplit(config.api_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    hub_prefix = config.hub_prefix if config.hub_prefix.endswith("hub/") else "/hub/"
    candidates = dict.fromkeys([f"{origin}{hub_prefix}api", f"{origin}/hub/api"])
    for url in candidates:
        if url == config.api_url:
            continue
        with _client(config, url) as api:
            try:
                if api.info().get("version"):
                    return f". The API answers at {url}: set JUPYTERHUB_API_URL={url}"
            except HubAuthError:
                continue
    return ". JUPYTERHUB_API_URL must end in <base_url>hub/api, e.g. http://127.0.0.1:8081/hub/api"


# ------------------------------------------------------------------------------- token


def _token(state: _State, needs: Sequence[str]) -> Iterator[Finding]:
    config = state.config
    if config is None:  # diagnose() checks it first
        return
    if not state.token_usable:
        yield info("token", "not checked: JUPYTERHUB_API_TOKEN is unusable (see above)")
        return
    with _client(config) as api:
        try:
            me: dict[str, Any] = dict(api.me())
        except ServiceTokenRejected:
            yield fail(
                "token",
                "the Hub does not know JUPYTERHUB_API_TOKEN (wrong, expired or revoked): use "
                "the api_token of this service's entry in c.JupyterHub.services",
            )
            return
        except HubAuthError as e:
            yield fail("token", str(e))
            return
    state.identity = me
    kind, name = me.get("kind"), me.get("name")
    scopes = [str(s) for s in me.get("scopes") or []]
    yield ok("token", f"belongs to {kind} {name!r}; scopes: {', '.join(scopes) or 'none'}")
    if kind != "service":
        yield warn(
            "token",
            f"a {kind}'s token, not a service's: the Hub gives a service its own "
            "(which is also its OAuth client secret); OAuth logins will fail with it",
        )
    elif config.service_name and name != config.service_name:
        yield fail(
            "token",
            f"belongs to service {name!r} but JUPYTERHUB_SERVICE_NAME is "
            f"{config.service_name!r}: use that service's api_token, or fix the name",
        )
    missing = [s for s in needs if not check_scopes([s], scopes)]
    for scope in missing:
        yield fail(
            "scopes",
            f"the token lacks {scope}: add it to the role of service {name!r} in "
            f'c.JupyterHub.load_roles ({{"scopes": [{scope!r}], "services": [{name!r}]}})',
        )
    if needs and not missing:
        yield ok("scopes", f"the token has {', '.join(needs)}")


def _access_scopes(config: Config) -> Iterator[Finding]:
    scopes = sorted(config.access_scopes)
    if not scopes:
        yield warn(
            "access",
            "no access scopes: set JUPYTERHUB_SERVICE_NAME (access:services!service=<name>) "
            "or JUPYTERHUB_OAUTH_ACCESS_SCOPES, or every caller is refused",
        )
        return
    for scope in scopes:
        base, _, filt = scope.partition("!")
        if base == "access:services" and filt.startswith("service="):
            other = filt.split("=", 1)[1]
            if config.service_name and other != config.service_name:
                yield warn(
                    "access",
                    f"{scope} names service {other!r}, not this one ({config.service_name!r}): "
                    "users the Hub lets in here will be refused",
                )
    yield ok("access", f"callers need one of: {', '.join(scopes)}")


# ------------------------------------------------------------------------------- OAuth


def _oauth(state: _State, entry: Mapping[str, Any] | None) -> Iterator[Finding]:
    config = state.config
    if config is None:  # diagnose() checks it first
        return
    if not state.token_usable:
        return
    client = config.oauth_client_id
    req = token_request(
        f"{config.api_url}/oauth2/token",
        client_id=client,
        client_secret=config.api_token,
        code="hubauth-doctor-probe",
        redirect_uri=config.oauth_redirect_uri,
        code_verifier=None,
    )
    driver = SyncDriver(config)
    try:
        resp = driver.send(req)
    except HubUnavailable as e:
        yield fail("oauth", str(e))
        return
    finally:
        driver.close()
    try:
        error = json.loads(resp.body).get("error", "")
    except (ValueError, AttributeError):
        error = ""
    if error == "invalid_client":
        yield fail(
            "oauth",
            f"the Hub has no OAuth client {client!r} with this service's token as its secret: "
            "JUPYTERHUB_CLIENT_ID must be the entry's oauth_client_id (service-<name>), and the "
            "entry needs a url or oauth_redirect_uri (else the Hub makes no OAuth client)",
        )
        return
    if error != "invalid_grant":
        yield warn(
            "oauth", f"the token endpoint answered {resp.status} {error!r}; expected invalid_grant"
        )
    else:
        yield ok("oauth", f"the Hub knows OAuth client {client!r}, and the token is its secret")
    yield from _redirect(state, entry)


def _redirect(state: _State, entry: Mapping[str, Any] | None) -> Iterator[Finding]:
    config = state.config
    if config is None:  # diagnose() checks it first
        return
    mine = config.oauth_redirect_uri
    name = config.service_name or str((state.identity or {}).get("name", ""))
    source = ""
    registered = ""
    if entry is not None:
        prefix = f"{config.hub_prefix[: -len('hub/')] or '/'}services/{name}/"
        registered = str(entry.get("oauth_redirect_uri") or f"{prefix}oauth_callback")
        source = "its entry in the Hub config"
    elif name:
        with _client(config) as api:
            try:
                prefix = str(api.service(name).get("prefix") or "")
            except HubAuthError:
                prefix = ""
        if prefix:
            registered = f"{prefix}oauth_callback"
            source = "the service's prefix on the Hub (unless its entry sets oauth_redirect_uri)"
    if not registered:
        yield info(
            "redirect",
            f"cannot compare {mine} with what the Hub registered: grant the service "
            f"read:services!service={name or '<name>'}, or run with --hub-config",
        )
        return
    if _path(mine) != _path(registered):
        yield fail(
            "redirect",
            f"JUPYTERHUB_OAUTH_CALLBACK_URL is {mine} but the Hub has {registered} for "
            f"{name!r} (from {source}): logins will end in 'Mismatching redirect URI'; make "
            "them equal",
        )
        return
    yield ok("redirect", f"{mine} is the redirect URI the Hub has for {name!r}")
    if not _path(mine).startswith(config.base_url):
        yield warn(
            "redirect",
            f"{mine} is outside JUPYTERHUB_SERVICE_PREFIX ({config.base_url}): the login "
            "cookie (Path={config.base_url}) will not be sent to the callback",
        )


def _path(uri: str) -> str:
    return urllib.parse.urlsplit(uri).path if "://" in uri else uri


def _cookie_secret(state: _State) -> Iterator[Finding]:
    """Whether logins survive restarts and span workers; the strength of the secret itself
    is hubauth.config's check (a weak one already failed under ``settings``)."""
    config = state.config
    if config is None or state.weak_secret:
        return
    if not config.cookie_secret:
        yield warn(
            "cookie-secret",
            "HUBAUTH_COOKIE_SECRET is not set: each process makes a random one, so logins end "
            "on restart and do not span workers or replicas; make one with: "
            "python -c 'import secrets; print(secrets.token_hex(32))'",
        )
        return
    yield ok("cookie-secret", f"{len(config.cookie_secret)} key(s), strong enough")


def _urls(config: Config) -> Iterator[Finding]:
    public = config.public_url or config.public_hub_url
    if not public:
        yield info(
            "secure",
            "no JUPYTERHUB_PUBLIC_URL: cookies are Secure only for requests that arrive over "
            "https (or X-Forwarded-Proto: https); set it to the URL users see",
        )
        if config.cookie_host_prefix_enabled:
            yield warn("secure", "__Host- cookies need https: set JUPYTERHUB_PUBLIC_URL")
        return
    parts = urllib.parse.urlsplit(public)
    if parts.scheme == "https":
        yield ok("secure", f"public URL {public} is https: cookies are Secure")
    elif parts.hostname in _LOOPBACK:
        yield info("secure", f"public URL {public} is plain http on this machine (fine for tests)")
    else:
        yield warn(
            "secure",
            f"users reach {public} over plain http: cookies are not Secure and tokens cross "
            "the network in clear; serve the Hub over https",
        )
    if config.cookie_host_prefix_enabled and parts.scheme != "https":
        yield fail(
            "secure",
            "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED needs an https public URL: browsers drop "
            "__Host- cookies that are not Secure",
        )
    if config.hub_host:
        hub = urllib.parse.urlsplit(config.hub_host)
        if (
            config.public_hub_url
            and urllib.parse.urlsplit(config.public_hub_url).netloc != hub.netloc
        ):
            yield warn(
                "public-url",
                f"JUPYTERHUB_HOST ({config.hub_host}) and JUPYTERHUB_PUBLIC_HUB_URL "
                f"({config.public_hub_url}) name different hosts; logins go to JUPYTERHUB_HOST",
            )
