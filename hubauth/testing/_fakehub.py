"""The fake Hub itself: its state (users, tokens, OAuth clients and grants), its server
thread, and the faults it plays on demand. Its HTTP handlers are in :mod:`._app`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    import tornado.httpserver
    import tornado.web


__all__ = [
    "COOKIE_NAME",
    "DEFAULT_FAULT_PATHS",
    "DEFAULT_USER_SCOPES",
    "FAULTS",
    "Answer",
    "FakeHub",
]

log = logging.getLogger("hubauth.testing")

#: The faults :attr:`FakeHub.fault` accepts (``None`` clears the fault).
FAULTS = frozenset(
    {"down", "slow", "status", "garbage", "html", "redirect", "wrong_shape", "huge", "reset"}
)
#: Paths the per-request faults apply to ("down" applies to the whole server).
DEFAULT_FAULT_PATHS = frozenset({"/hub/api/user", "/hub/api/oauth2/token"})
#: Scopes a user gets when the test does not say.
DEFAULT_USER_SCOPES = ("access:services",)
#: Cookie naming the logged-in user of the fake hub's "browser session".
COOKIE_NAME = "fakehub-user"

_HUB_PREFIX = "/hub/"
_THREAD_TIMEOUT = 10.0
_OAUTH_TOKEN_EXPIRES_IN = 14 * 24 * 3600
# Codes used or expired this long ago are forgotten (until then they are reported precisely).
_CODE_MEMORY = 600.0
_CHUNK = b"x" * 65536


def _now() -> str:
    """An ISO-8601 UTC timestamp like the Hub's ``created``/``last_activity`` fields."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _bind(port: int) -> socket.socket:
    """A non-blocking TCP socket bound to ``127.0.0.1:port``, not yet listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: Mapping[str, str | None]) -> str:
    """``url`` with ``params`` (``None`` values left out) appended to its query."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _safe_next(url: str) -> str:
    """A same-origin path to send the browser to after login; anything else becomes /hub/."""
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return _HUB_PREFIX


@dataclass(frozen=True)
class _User:
    """A user the fake hub knows: what its tokens' models are built from."""

    name: str
    admin: bool
    groups: tuple[str, ...]
    scopes: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class _Client:
    """A registered OAuth client (a service): id, its one redirect URI, its secret."""

    client_id: str
    redirect_uri: str
    secret: str


@dataclass
class _Grant:
    """An authorization code handed out by the authorize endpoint."""

    client_id: str
    redirect_uri: str
    user: str
    challenge: str
    method: str
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True)
class Answer:
    """One scripted answer (see :meth:`FakeHub.script`): ``json`` (or raw ``body``) with
    ``status`` and ``headers``; or ``chunks`` written one by one, flushed, ``pause`` seconds
    apart; ``cut`` then drops the connection instead of ending the answer."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    chunks: tuple[bytes, ...] = ()
    pause: float = 0.0
    cut: bool = False


class FakeHub:
    """A JupyterHub stand-in on 127.0.0.1 serving the Hub's auth API from a daemon thread.

    Set state with :meth:`add_user`, :meth:`add_service`, :meth:`register_client`; break it
    with :attr:`fault`; inspect it with :attr:`requests` and :meth:`count`.
    """

    hub_prefix = _HUB_PREFIX

    def __init__(
        self,
        *,
        default_login: str | None = "testuser",
        fault_paths: Iterable[str] = DEFAULT_FAULT_PATHS,
    ) -> None:
        #: Who the authorize endpoint logs in when no ``fakehub-user`` cookie is sent;
        #: ``None`` sends the browser to ``/hub/login`` instead.
        self.default_login = default_login
        #: Request paths the per-request faults apply to.
        self.fault_paths: set[str] = set(fault_paths)
        #: Status of the ``"status"`` fault.
        self.fault_status = 503
        #: Seconds the ``"slow"`` fault waits before answering normally.
        self.delay = 10.0
        #: Body size in bytes of the ``"huge"`` fault, and whether it is sent chunked
        #: (no Content-Length) or with a Content-Length header.
        self.huge_size = 20 * 1024 * 1024
        self.huge_chunked = True
        #: JSON body of the ``"wrong_shape"`` fault (a 200 that is not a model).
        self.wrong_shape_body: Any = ["not", "a", "model"]
        #: Lifetime of authorization codes, in seconds.
        self.code_ttl = 60.0
        #: When set, the authorize endpoint redirects with ``?error=<this>`` (e.g.
        #: ``"access_denied"``) instead of a code.
        self.authorize_error: str | None = None

        self._lock = threading.Lock()  # guards the state below
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Grant] = {}
        self._requests: list[tuple[str, str]] = []
        self._token_ids = itertools.count(1)
        self._scripts: dict[tuple[str, str], list[Answer]] = {}

        self._control = threading.Lock()  # serialises start/stop/fault transitions
        self._fault: str | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._startup_error: BaseException | None = None
        # Owned by the hub's thread once started:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._app: tornado.web.Application | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._held: socket.socket | None = None  # bound, not listening, while "down"
        self._waiters: set[asyncio.Event] = set()
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<FakeHub {where} fault={self._fault!r}>"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the hub's origin (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("FakeHub has no URL before start()")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port the hub listens on (kept across ``"down"`` faults)."""
        if self._port is None:
            raise RuntimeError("FakeHub has no port before start()")
        return self._port

    @property
    def api_url(self) -> str:
        """The Hub API base a service is given as ``JUPYTERHUB_API_URL``."""
        return f"{self.url}{self.hub_prefix}api"

    def start(self) -> FakeHub:
        """Bind a port and serve from a daemon thread; returns self. A FakeHub starts once."""
        with self._control:
            if self._thread is not None:
                raise RuntimeError("FakeHub.start(): already started (a FakeHub runs once)")
            sock = _bind(0)
            self._port = sock.getsockname()[1]
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(sock, ready), name=f"FakeHub:{self._port}", daemon=True
            )
            self._thread = thread
            thread.start()
            if not ready.wait(_THREAD_TIMEOUT):
                raise RuntimeError("FakeHub did not start within 10 s")
            if self._startup_error is not None:
                raise RuntimeError("FakeHub failed to start") from self._startup_error
        log.debug("fake hub serving at %s", self.url)
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, end the thread. Idempotent."""
        with self._control:
            thread, loop, event = self._thread, self._loop, self._stop_event
            if thread is None or self._stopped:
                return
            self._stopped = True
            if loop is not None and event is not None:
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    loop.call_soon_threadsafe(event.set)
            thread.join(_THREAD_TIMEOUT)
            if thread.is_alive():
                log.warning("fake hub thread did not end within 10 s")
        log.debug("fake hub at port %s stopped", self._port)

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        """The hub's thread: an asyncio loop serving until :meth:`stop`."""
        import asyncio

        try:
            asyncio.run(self._serve(sock, ready))
        except BaseException as e:
            if not ready.is_set():
                self._startup_error = e
                sock.close()
                ready.set()
            else:
                log.exception("fake hub loop failed")

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._stop_event = stop_event = asyncio.Event()
        from ._app import make_app

        self._app = make_app(self)
        if self._fault == "down":
            self._held = sock
        else:
            self._listen(sock)
        ready.set()
        await stop_event.wait()

        self._closing = True
        await self._close_server()
        for waiter in list(self._waiters):
            waiter.set()
        if self._held is not None:
            self._held.close()
            self._held = None
        for _ in range(5):  # let woken handlers finish before asyncio.run cancels leftovers
            await asyncio.sleep(0)

    def _listen(self, sock: socket.socket) -> None:
        """Start accepting on ``sock`` (bound, not yet listening) with a fresh HTTPServer."""
        from tornado.httpserver import HTTPServer

        if self._app is None:
            raise RuntimeError("FakeHub._listen() before the app exists")
        sock.listen(128)
        server = HTTPServer(self._app)
        server.add_socket(sock)
        self._server = server

    async def _close_server(self) -> None:
        """Stop listening and close every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            await server.close_all_connections()

    async def _go_down(self) -> None:
        await self._close_server()
        # Hold the port with a bound, non-listening socket: connections are refused, and
        # nothing else can take the port before the fault is cleared.
        self._held = _bind(self.port)
        log.debug("fake hub down: refusing connections")

    async def _go_up(self) -> None:
        sock, self._held = self._held, None
        self._listen(sock if sock is not None else _bind(self.port))
        log.debug("fake hub up: listening again")

    # ------------------------------------------------------------------ faults

    @property
    def fault(self) -> str | None:
        """The current fault (one of :data:`FAULTS`) or ``None``; settable while running.

        ``"down"`` takes effect before the setter returns: open connections are closed and
        new ones refused; clearing it listens again on the same port.
        """
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(
                f"unknown FakeHub fault {value!r}; expected None or one of {sorted(FAULTS)}"
            )
        with self._control:
            old, self._fault = self._fault, value
            if (old == "down") == (value == "down"):
                return
            if self._loop is None or self._stopped:
                return  # applied when started
            if threading.current_thread() is self._thread:
                raise RuntimeError("set FakeHub.fault = 'down' from outside the hub's own thread")
            import asyncio

            change = self._go_down() if value == "down" else self._go_up()
            asyncio.run_coroutine_threadsafe(change, self._loop).result(_THREAD_TIMEOUT)

    # ------------------------------------------------------------------ state

    def add_user(
        self,
        name: str,
        *,
        scopes: Iterable[str] | None = None,
        groups: Iterable[str] = (),
        admin: bool = False,
    ) -> str:
        """Create (or update) user ``name`` and return a new API token for it.

        A token's model is a snapshot: later calls change only the tokens they return.
        """
        with self._lock:
            user = self._put_user(name, scopes=scopes, groups=groups, admin=admin)
            return self._issue(self._user_model(user))

    def add_service(self, name: str, *, scopes: Iterable[str] = ()) -> str:
        """Return a new API token for service ``name`` (model ``kind: "service"``)."""
        model: dict[str, Any] = {
            "kind": "service",
            "name": name,
            "admin": False,
            "roles": [],
            "scopes": _scope_list(scopes),
            "session_id": None,
        }
        with self._lock:
            return self._issue(model)

    def add_token(self, token: str, model: Mapping[str, Any]) -> None:
        """Make ``GET /hub/api/user`` answer ``model`` (any JSON object) for ``token``."""
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        copy = json.loads(json.dumps(dict(model)))
        with self._lock:
            self._tokens[token] = copy

    def revoke(self, token: str) -> None:
        """Forget ``token``: the hub answers 403 for it from now on."""
        with self._lock:
            self._tokens.pop(token, None)

    def register_client(self, client_id: str, redirect_uri: str, secret: str) -> None:
        """Register (or replace) an OAuth client; ``secret`` is the service's API token."""
        with self._lock:
            self._clients[client_id] = _Client(client_id, redirect_uri, secret)

    def service_env(
        self, name: str = "test-service", *, url: str | None = None, scopes: Iterable[str] = ()
    ) -> dict[str, str]:
        """Register service ``name`` (token and OAuth client); return the env the Hub gives it.

        Without ``url`` the callback is a path, as a real Hub sets it (behind the proxy); give
        the service's own origin (``http://127.0.0.1:PORT``) when browsers reach it directly.
        """
        token = self.add_service(name, scopes=scopes)
        prefix = f"/services/{name}/"
        client_id = f"service-{name}"
        callback = f"{url.rstrip('/') if url else ''}{prefix}oauth_callback"
        self.register_client(client_id, callback, token)
        env = {
            "JUPYTERHUB_API_URL": self.api_url,
            "JUPYTERHUB_API_TOKEN": token,
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_SERVICE_NAME": name,
            "JUPYTERHUB_SERVICE_PREFIX": prefix,
            "JUPYTERHUB_CLIENT_ID": client_id,
            "JUPYTERHUB_OAUTH_CALLBACK_URL": callback,
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([f"access:services!service={name}"]),
        }
        if url:
            env["JUPYTERHUB_SERVICE_URL"] = url
        return env

    # ------------------------------------------------------------------ counting

    @property
    def requests(self) -> list[tuple[str, str]]:
        """A copy of every ``(method, path)`` received so far (no query strings)."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str = "/hub/api/user", method: str | None = None) -> int:
        """How many requests for ``path`` (and ``method``, if given) were received."""
        with self._lock:
            return sum(
                1 for m, p in self._requests if p == path and (method is None or m == method)
            )

    def reset_counts(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def script(self, method: str, path: str, *answers: Answer) -> None:
        """Answer ``method path`` (the path as sent, e.g. ``/hub/api/users/a%2Fb``) with
        ``answers`` in turn, the last one from then on: any REST endpoint a test needs,
        broken in any way (statuses, ``Retry-After``, lying pages, a cut-off stream)."""
        if not answers:
            raise ValueError("script() needs at least one Answer")
        with self._lock:
            self._scripts[(method.upper(), path)] = list(answers)

    def _scripted(self, method: str, path: str) -> Answer | None:
        with self._lock:
            answers = self._scripts.get((method, path))
            if not answers:
                return None
            return answers.pop(0) if len(answers) > 1 else answers[0]

    # ------------------------------------------------------------------ internals (locked)

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _put_user(
        self,
        name: str,
        *,
        scopes: Iterable[str] | None = None,
        groups: Iterable[str] = (),
        admin: bool = False,
    ) -> _User:
        if not isinstance(name, str) or not name:
            raise ValueError("a user name must be a non-empty string")
        if isinstance(groups, str):
            raise TypeError("groups must be an iterable of names, not a string")
        old = self._users.get(name)
        user = _User(
            name=name,
            admin=bool(admin),
            groups=tuple(groups),
            scopes=tuple(_scope_list(DEFAULT_USER_SCOPES if scopes is None else scopes)),
            created=old.created if old else _now(),
        )
        self._users[name] = user
        return user

    def _ensure_user(self, name: str) -> None:
        with self._lock:
            if name not in self._users:
                self._put_user(name)

    @staticmethod
    def _user_model(user: _User, session_id: str | None = None) -> dict[str, Any]:
        return {
            "kind": "user",
            "name": user.name,
            "admin": user.admin,
            "roles": ["admin", "user"] if user.admin else ["user"],
            "groups": list(user.groups),
            "server": None,
            "pending": None,
            "created": user.created,
            "last_activity": _now(),
            "scopes": list(user.scopes),
            "session_id": session_id,
        }

    def _issue(self, model: dict[str, Any]) -> str:
        token = secrets.token_hex(16)
        model["token_id"] = f"a{next(self._token_ids)}"
        self._tokens[token] = model
        return token

    def _model_json(self, token: str) -> str | None:
        with self._lock:
            model = self._tokens.get(token)
            return None if model is None else json.dumps(model)

    def _client(self, client_id: str) -> _Client | None:
        with self._lock:
            return self._clients.get(client_id)

    def _grant(
        self, client_id: str, redirect_uri: str, user: str, challenge: str, method: str
    ) -> str:
        code = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for old, grant in list(self._codes.items()):
                if now - max(grant.expires_at, grant.used_at or 0.0) > _CODE_MEMORY:
                    del self._codes[old]
            self._codes[code] = _Grant(
                client_id, redirect_uri, user, challenge, method, now + self.code_ttl
            )
        return code

    def _exchange(
        self, client_id: str, code: str, redirect_uri: str, verifier: str
    ) -> tuple[str, dict[str, Any]] | str:
        """A code for ``(access_token, model)``, or why not (an error description)."""
        now = time.monotonic()
        with self._lock:
            grant = self._codes.get(code)
            if grant is None:
                return "unknown authorization code"
            if grant.used_at is not None:
                return "authorization code already used"
            if now > grant.expires_at:
                return "authorization code expired"
            if grant.client_id != client_id:
                return "authorization code was issued to another client"
            if redirect_uri != grant.redirect_uri:
                return "Mismatching redirect URI"
            if grant.challenge:
                if not verifier:
                    return "code_verifier required (PKCE)"
                computed = _s256(verifier) if grant.method == "S256" else verifier
                if not hmac.compare_digest(computed.encode(), grant.challenge.encode()):
                    return "code_verifier does not match the code_challenge (PKCE)"
            grant.used_at = now
            user = self._users.get(grant.user)
            if user is None:
                user = self._put_user(grant.user)
            model = self._user_model(user, session_id=secrets.token_hex(16))
            token = self._issue(model)
            return token, dict(model)


def _scope_list(scopes: Iterable[str]) -> list[str]:
    if isinstance(scopes, str):
        raise TypeError("scopes must be an iterable of scope strings, not a string")
    return [str(s) for s in scopes]
