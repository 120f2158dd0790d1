"""The fake Hub's HTTP side: the Tornado handlers of its API, login and OAuth pages."""

from __future__ import annotations

import base64
import hmac
import html
import json
import socket
import struct
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

    import tornado.httpserver
    import tornado.web


from ._fakehub import (
    _CHUNK,
    _OAUTH_TOKEN_EXPIRES_IN,
    COOKIE_NAME,
    Answer,
    FakeHub,
    _safe_next,
    _with_query,
    log,
)

__all__ = ["make_app"]


def make_app(hub: FakeHub) -> tornado.web.Application:
    """The Tornado application answering for ``hub`` (built lazily: tornado.web is heavy)."""
    import asyncio

    import tornado.web
    from tornado.iostream import StreamClosedError

    prefix = hub.hub_prefix

    class Base(tornado.web.RequestHandler):
        """Records each request, applies faults, keeps tokens and queries out of logs."""

        _gone = False
        _wake: asyncio.Event | None = None

        async def prepare(self) -> None:
            path = self.request.path
            hub._record(self.request.method or "", path)
            await self._play(hub._scripted(self.request.method or "", path))
            fault = hub.fault
            if fault is None or fault == "down" or path not in hub.fault_paths:
                return
            if fault == "slow":
                await self._pause(float(hub.delay))
            elif fault == "reset":
                self._reset()
            elif fault == "status":
                status = int(hub.fault_status)
                self._json({"status": status, "message": "fake hub fault"}, status)
            elif fault == "garbage":
                self.set_header("Content-Type", "application/json")
                self.finish(b"\x00\x9f<<garbage, not JSON {")
            elif fault == "html":
                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.finish(_HTML_PAGE)
            elif fault == "redirect":
                self.redirect(_with_query(f"{prefix}login", {"next": path}))
            elif fault == "wrong_shape":
                self._json(hub.wrong_shape_body)
            elif fault == "huge":
                await self._huge()

        def on_connection_close(self) -> None:
            self._gone = True
            if self._wake is not None:
                self._wake.set()

        def log_exception(
            self,
            typ: type[BaseException] | None,
            value: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            # Tornado's own version logs the request with its headers (tokens); not here.
            if isinstance(value, tornado.web.HTTPError):
                return
            log.error(
                "fake hub: error in %s %s",
                self.request.method,
                self.request.path,
                exc_info=(typ, value, tb) if typ and value else None,
            )

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            if self.request.path.startswith(f"{prefix}api"):
                self._json({"status": status_code, "message": self._reason}, status_code)
            else:
                self._page(status_code, self._reason, self._reason)

        def _json(self, body: Any, status: int = 200) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

        def _page(self, status: int, title: str, message: str) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(
                f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
                f"<body><h1>{status} {html.escape(title)}</h1><p>{html.escape(message)}</p>"
                "</body></html>"
            )

        async def _pause(self, seconds: float) -> None:
            """Wait without blocking the loop; give up if the client or the hub goes away."""
            self._wake = wake = asyncio.Event()
            hub._waiters.add(wake)
            try:
                await asyncio.wait_for(wake.wait(), timeout=max(seconds, 0.0))
            except asyncio.TimeoutError:
                pass
            finally:
                hub._waiters.discard(wake)
                self._wake = None
            if self._gone or hub._closing:
                raise tornado.web.Finish()

        async def _play(self, answer: Answer | None) -> None:
            """Serve a scripted answer and end the request, if there is one."""
            if answer is None:
                return
            self.set_status(answer.status)
            for name, value in answer.headers.items():
                self.set_header(name, value)
            if answer.json is not None:
                self.set_header("Content-Type", "application/json")
                self.write(json.dumps(answer.json))
            elif answer.body:
                self.write(answer.body)
            try:
                for chunk in answer.chunks:
                    self.write(chunk)
                    await self.flush()
                    await self._pause(answer.pause)
                if answer.cut:
                    await self.flush()
                    self.request.connection.close()  # type: ignore[union-attr]
                    raise tornado.web.Finish()
            except StreamClosedError:
                raise tornado.web.Finish() from None
            self.finish()
            raise tornado.web.Finish()

        def _reset(self) -> None:
            """Drop the connection with a TCP reset, answering nothing."""
            stream = self.detach()
            if stream.socket is not None:
                stream.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            stream.close()
            log.debug("fake hub: reset %s %s", self.request.method, self.request.path)

        async def _huge(self) -> None:
            """A 200 JSON body of ``hub.huge_size`` bytes, streamed in chunks."""
            head, tail = b'{"kind": "user", "name": "', b'", "scopes": []}'
            pad = max(int(hub.huge_size) - len(head) - len(tail), 0)
            self.set_header("Content-Type", "application/json")
            if not hub.huge_chunked:
                self.set_header("Content-Length", str(len(head) + pad + len(tail)))
            try:
                self.write(head)
                while pad > 0:
                    n = min(pad, len(_CHUNK))
                    self.write(_CHUNK if n == len(_CHUNK) else _CHUNK[:n])
                    pad -= n
                    await self.flush()
                    await asyncio.sleep(0)  # a flush that fits the socket buffer never yields
                self.write(tail)
                await self.finish()
            except StreamClosedError:
                raise tornado.web.Finish() from None

    class ApiRoot(Base):
        def get(self) -> None:
            self._json({"version": "fake"})

    class User(Base):
        """``GET /hub/api/user``: the model of the token in the Authorization header."""

        def get(self) -> None:
            scheme, _, value = self.request.headers.get("Authorization", "").strip().partition(" ")
            token = value.strip() if scheme.lower() in ("token", "bearer") else ""
            body = hub._model_json(token) if token else None
            if body is None:
                self._json({"status": 403, "message": "Forbidden"}, 403)
            else:
                self.set_header("Content-Type", "application/json")
                self.finish(body)

    class Authorize(Base):
        """``GET /hub/api/oauth2/authorize``: auto-approve, redirect with a code."""

        def get(self) -> None:
            arg = self.get_query_argument
            client = hub._client(arg("client_id", ""))
            if client is None:
                self._page(400, "Bad Request", "unknown OAuth client_id")
                return
            redirect_uri = arg("redirect_uri", "") or client.redirect_uri
            if redirect_uri != client.redirect_uri:
                self._page(400, "Bad Request", "Mismatching redirect URI")
                return
            user = _login_name(self) or hub.default_login
            if not user:
                self.redirect(_with_query(f"{prefix}login", {"next": self.request.uri}))
                return
            state = arg("state", None)
            challenge = arg("code_challenge", "")
            method = arg("code_challenge_method", "") or ("plain" if challenge else "")
            error = None
            if hub.authorize_error:
                error = (hub.authorize_error, "the fake hub was told to refuse")
            elif arg("response_type", "") != "code":
                error = ("unsupported_response_type", "response_type must be 'code'")
            elif challenge and method not in ("S256", "plain"):
                error = ("invalid_request", "unsupported code_challenge_method")
            if error:
                params = {"error": error[0], "error_description": error[1], "state": state}
                self.redirect(_with_query(redirect_uri, params))
                return
            hub._ensure_user(user)
            code = hub._grant(client.client_id, redirect_uri, user, challenge, method)
            self.redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    class Token(Base):
        """``POST /hub/api/oauth2/token``: exchange a code (with PKCE) for a token."""

        def post(self) -> None:
            arg = self.get_body_argument
            client_id, secret = arg("client_id", ""), arg("client_secret", "")
            basic = self.request.headers.get("Authorization", "")
            if basic[:6].lower() == "basic ":
                try:
                    raw = base64.b64decode(basic[6:].strip(), validate=True).decode()
                except ValueError:
                    raw = ""
                user, _, password = raw.partition(":")
                client_id = urllib.parse.unquote_plus(user)
                secret = urllib.parse.unquote_plus(password)
            client = hub._client(client_id or "")
            if client is None or not hmac.compare_digest(
                (secret or "").encode(), client.secret.encode()
            ):
                self._oauth_error("invalid_client", "unknown client or wrong client_secret")
                return
            if arg("grant_type", "") != "authorization_code":
                self._oauth_error("unsupported_grant_type", "only authorization_code")
                return
            result = hub._exchange(
                client_id or "",
                arg("code", "") or "",
                arg("redirect_uri", "") or "",
                arg("code_verifier", "") or "",
            )
            if isinstance(result, str):
                self._oauth_error("invalid_grant", result)
                return
            token, model = result
            self._json(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": _OAUTH_TOKEN_EXPIRES_IN,
                    "scope": " ".join(model["scopes"]),
                }
            )

        def _oauth_error(self, error: str, description: str) -> None:
            self._json({"error": error, "error_description": description}, 400)

    class Login(Base):
        """``GET /hub/login?user=NAME&next=PATH``: set the login cookie, go to ``next``."""

        def get(self) -> None:
            name = self.get_query_argument("user", "").strip()
            next_url = _safe_next(self.get_query_argument("next", ""))
            if not name:
                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.finish(_LOGIN_FORM.format(next=html.escape(next_url, quote=True)))
                return
            hub._ensure_user(name)
            self.set_cookie(COOKIE_NAME, urllib.parse.quote(name, safe=""), path=prefix)
            self.redirect(next_url)

    class Logout(Base):
        def get(self) -> None:
            self.clear_cookie(COOKIE_NAME, path=prefix)
            self._page(200, "Logged out", "You are logged out of the fake hub.")

    class NotFound(Base):
        async def prepare(self) -> None:
            hub._record(self.request.method or "", self.request.path)
            await self._play(hub._scripted(self.request.method or "", self.request.path))
            raise tornado.web.HTTPError(404)

    def _login_name(handler: tornado.web.RequestHandler) -> str:
        raw = handler.get_cookie(COOKIE_NAME)
        return urllib.parse.unquote(raw) if raw else ""

    def log_request(handler: tornado.web.RequestHandler) -> None:
        request = handler.request
        log.debug(
            "%d %s %s %.1fms",
            handler.get_status(),
            request.method,
            request.path,  # never the query or headers: they may carry tokens
            1000.0 * request.request_time(),
        )

    return tornado.web.Application(
        [
            (rf"{prefix}api/?", ApiRoot),
            (rf"{prefix}api/user", User),
            (rf"{prefix}api/oauth2/authorize", Authorize),
            (rf"{prefix}api/oauth2/token", Token),
            (rf"{prefix}login", Login),
            (rf"{prefix}logout", Logout),
        ],
        default_handler_class=NotFound,
        log_function=log_request,
    )


_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>JupyterHub</title></head>"
    "<body><form action='/hub/login'><input name='username'></form></body></html>"
)
_LOGIN_FORM = (
    "<!DOCTYPE html><html><head><title>Fake hub login</title></head><body>"
    "<form method='get' action='/hub/login'><input name='user' placeholder='user name'>"
    "<input type='hidden' name='next' value='{next}'><button type='submit'>Sign in</button>"
    "</form></body></html>"
)
