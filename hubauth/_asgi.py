"""ASGI to core and back, shared by :mod:`hubauth.asgi` and :mod:`hubauth.fastapi`.

Framework-free: an ASGI scope becomes a :class:`~hubauth._view.RequestView`, a
:class:`~hubauth._view.Decision` becomes ASGI messages (an HTTP answer, or a websocket
close before the handshake is accepted), and a lookup the cache cannot answer is run with the
async driver while the client is watched, so a client that has gone is not answered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

from ._flow import Flow, Step, advance, authenticate, cached_answer, redirect_with_slash, run_async
from ._view import Decision, RequestView, redact_text, redact_uri
from .auth import HubAuth
from .cookies import parse_cookie_header
from .wsgi import decision_response

__all__ = [
    "Message",
    "Pending",
    "Receive",
    "RedactAccessLog",
    "Scope",
    "Send",
    "ask_watching",
    "close_code",
    "close_reason",
    "find_header",
    "quoted_path",
    "send_decision",
    "start",
    "view_from_scope",
    "with_cookies",
]

log = logging.getLogger("hubauth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# What stays unescaped when a decoded ASGI path is turned back into a request path (as WSGI).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
# RFC 6455 close codes (IANA registry): why a websocket handshake was refused.
POLICY_VIOLATION = 1008
BAD_GATEWAY = 1014
TRY_AGAIN_LATER = 1013
_REASON_BYTES = 123  # a close frame's reason is at most 123 bytes of UTF-8


class RedactAccessLog(logging.Filter):
    """Rewrites ASGI servers' access-log records (uvicorn's ``GET /path?query``) so no token,
    OAuth code or state in a URL reaches a log; installed when this module is imported.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and _MAYBE(a) for a in args):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in args)
        elif isinstance(record.msg, str) and not args and _MAYBE(record.msg):
            record.msg = _redact(record.msg)
        return True


_MAYBE = re.compile(r"(?i)token|bearer|code=|state=").search


def _redact(text: str) -> str:
    return redact_text(redact_uri(text) if "?" in text else text)


_REDACT = RedactAccessLog()
for _name in ("uvicorn.access", "uvicorn.error", "hypercorn.access"):
    if not any(isinstance(f, RedactAccessLog) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_REDACT)


def find_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), without building a view."""
    for key, value in scope.get("headers", ()):
        if key == name or key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def quoted_path(path: str) -> str:
    """The decoded ASGI ``path`` as a request path (percent-encoded where it must be)."""
    return urllib.parse.quote(path, safe=_PATH_SAFE)


def view_from_scope(scope: Scope) -> RequestView:
    """The neutral view of an ASGI ``http`` or ``websocket`` connection."""
    headers: dict[str, str] = {}
    for raw_key, raw_value in scope.get("headers", ()):
        key = raw_key.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if key in headers:  # a repeated header: combined as HTTP says (cookies with "; ")
            headers[key] += ("; " if key == "cookie" else ", ") + value
        else:
            headers[key] = value
    websocket = scope.get("type") == "websocket"
    scheme = str(scope.get("scheme") or ("ws" if websocket else "http"))
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = headers.get("host", "")
    if not host and scope.get("server"):
        server_host, server_port = scope["server"][0], scope["server"][1]
        host = f"{server_host}:{server_port}" if server_port else str(server_host)
    query = scope.get("query_string", b"")
    return RequestView(
        method="GET" if websocket else str(scope.get("method", "GET")).upper(),
        path=_request_path(scope),
        query=query.decode("latin-1") if isinstance(query, bytes) else str(query),
        headers=headers,
        cookies=parse_cookie_header(headers.get("cookie", "")),
        scheme=scheme,
        host=host,
        is_websocket=websocket,
        xsrf_token=headers.get("x-xsrftoken") or headers.get("x-csrftoken") or "",
    )


def _request_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded, so ``c%2Bd`` stays ``c%2Bd``):
    the server's ``raw_path`` when it agrees with ``path``, else ``path`` re-encoded.
    """
    path = str(scope.get("path", "/"))
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(b"/"):
        sent = raw.split(b"?", 1)[0].decode("latin-1")
        if urllib.parse.unquote(sent) == path:
            return sent
    return quoted_path(path)


class Pending(NamedTuple):
    """A flow that needs the Hub: the step to perform, and the view it was started on."""

    flow: Flow
    step: Step
    view: RequestView


def start(auth: HubAuth, scope: Scope, required: frozenset[str]) -> Decision | Pending:
    """Take a protected request as far as it goes without I/O: a cached token's answer
    (no view, no flow), the trailing-slash redirect, or :func:`authenticate` advanced
    through the cache; else what is still to be asked of the Hub.
    """
    header = find_header(scope, b"authorization")
    if header:
        path = quoted_path(str(scope.get("path", "/")))
        known = cached_answer(auth, path, header, required)
        if known is not None:
            return known
    view = view_from_scope(scope)
    slash = redirect_with_slash(auth, view)
    if slash is not None:
        return slash
    flow = authenticate(auth, view, required)
    outcome = advance(auth, flow)
    return outcome if isinstance(outcome, Decision) else Pending(flow, outcome, view)


def close_code(decision: Decision) -> int:
    """The close code that refuses a websocket handshake for ``decision``: 1013 when the
    Hub could not be reached (try again later), 1014 when it answered badly, else 1008.
    """
    if decision.status == 503:
        return TRY_AGAIN_LATER
    if decision.status == 502:
        return BAD_GATEWAY
    return POLICY_VIOLATION


def close_reason(message: str) -> str:
    """``message`` cut to what a close frame may carry (123 bytes of UTF-8, whole characters)."""
    data = message.encode()[:_REASON_BYTES]
    return data.decode("utf-8", "ignore")


async def send_decision(decision: Decision, view: RequestView, send: Send) -> None:
    """Answer a decision that is not ``allow``: an HTTP response, or (websocket) a close
    before accepting, which servers turn into a refused handshake (HTTP 403).
    """
    if view.is_websocket:
        code = close_code(decision)
        await send(
            {"type": "websocket.close", "code": code, "reason": close_reason(decision.message)}
        )
        return
    status, headers, body = decision_response(decision, view)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def with_cookies(send: Send, cookies: tuple[str, ...]) -> Send:
    """``send`` adding ``Set-Cookie`` headers to the app's response (or websocket accept)."""
    if not cookies:
        return send
    extra = [(b"set-cookie", c.encode("latin-1")) for c in cookies]

    async def sender(message: Message) -> None:
        if message.get("type") in ("http.response.start", "websocket.accept"):
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return sender


def _keep_listening(message: Message) -> bool:
    """After this message, is the next one only a disconnect (so waiting for it is safe)?"""
    kind = message.get("type")
    if kind == "http.request":
        return not message.get("more_body", False)  # the whole body is in: nothing else comes
    return kind == "websocket.connect"


async def ask_watching(
    auth: HubAuth, flow: Flow, step: Step, receive: Receive
) -> tuple[Decision | None, Receive]:
    """Run ``flow`` from ``step`` with the async driver while watching the client.

    Returns the decision and a ``receive`` that replays what was read meanwhile (the app
    gets every message), or ``(None, receive)`` when the client disconnected first: the Hub
    lookup is then abandoned (other requests waiting on the same token keep theirs).
    A request body bigger than one message stops the watching, so it is never buffered.
    """
    ask = asyncio.ensure_future(run_async(auth, flow, step))
    buffered: list[Message] = []
    listen: asyncio.Future[Message] | None = asyncio.ensure_future(receive())
    try:
        while listen is not None:
            both: set[asyncio.Future[Any]] = {ask, listen}
            done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
            if listen not in done:
                break
            message = listen.result()
            if message.get("type") in ("http.disconnect", "websocket.disconnect"):
                log.info("The client left while the Hub was being asked; not answering it")
                ask.cancel()
                return None, receive
            buffered.append(message)
            # Only a disconnect may follow a whole body (or a websocket's connect); anything
            # else (a server that says more) ends the watching: nothing piles up here.
            again = len(buffered) == 1 and _keep_listening(message)
            listen = asyncio.ensure_future(receive()) if again else None
        decision = await ask
    finally:
        if listen is not None and not listen.done():
            listen.cancel()
        if not ask.done():
            ask.cancel()
    if not buffered:
        return decision, receive

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return decision, replay
