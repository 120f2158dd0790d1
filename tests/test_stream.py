"""A spawn's progress stream on the drivers' own transport, on both clients.

Against a Hub scripted byte by byte (tests/streamhub.py): every body framing, events handed
out as they arrive, streams cut off anywhere, idle and overall timeouts, readers that stop
early (the Hub must see the connection close, and no socket may outlive the reader or its
event loop), TLS, ``http+unix://``, errors before the stream starts, and the same request
bytes from both clients. Then the parser's streaming mode, fuzzed, and the proof that
hubauth no longer needs ``requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubauth import HubAPIError, HubResponseError, HubUnavailable
from hubauth._http import BodyTooLarge, ResponseParser
from hubauth._protocol import MAX_BODY_BYTES, HubRequest
from hubauth.api import AsyncHubAPI, HubAPI
from hubauth.api._stream import async_stream, sync_stream
from hubauth.errors import MissingScope, NotFound, RateLimited

from .conftest import TOKEN
from .streamhub import LAST, Script, StreamHub, chunk, head
from .test_tls import pki

__all__ = ["pki"]  # a fixture

KINDS = ("sync", "async")
READY = b'data: {"progress": 100, "ready": true, "message": "ready", "url": "/user/a/"}\n\n'
STEP = b'data: {"progress": 50, "message": "half way"}\n\n'
HALF = b'data: {"progress": 7'  # an event cut off in the middle
KEEPALIVE = b"\n\n"  # what JupyterHub writes every 8 s


def client(kind: str, url: str, **settings: Any) -> Any:
    cls = HubAPI if kind == "sync" else AsyncHubAPI
    return cls(api_url=url, api_token=TOKEN, **settings)


def progress(kind: str, url: str, *, timeout: float | None = None, **settings: Any) -> Any:
    """Every event of ``a``'s default server, read to the end by one client."""
    api = client(kind, url, **settings)
    if kind == "sync":
        try:
            return list(api.progress("a", timeout=timeout))
        finally:
            api.close()

    async def run() -> list[Any]:
        try:
            return [e async for e in api.progress("a", timeout=timeout)]
        finally:
            api.close()

    return asyncio.run(run())


def steps(events: list[dict[str, Any]]) -> list[Any]:
    return [e.get("progress") for e in events]


def client_sockets(port: int) -> int:
    """How many sockets of this process are still open to ``port`` (the clients' ends)."""
    found = 0
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family != socket.AF_UNIX and obj.fileno() >= 0:
            with contextlib.suppress(OSError):
                found += obj.getpeername()[1] == port
    return found


def scripted(*parts: bytes | float | threading.Event, then: str = "wait") -> StreamHub:
    script = Script(parts, then)
    return StreamHub(lambda request: script)


# ------------------------------------------------------------------------ framings


def framed(framing: str, body: bytes) -> list[bytes | float]:
    """``body`` framed as ``framing``, written 7 bytes at a time with short pauses, so it
    arrives in pieces that split chunk lines, events and lines."""
    if framing == "chunked":
        pieces = [body[i : i + 23] for i in range(0, len(body), 23)]
        data = chunk(pieces[0], ";ext=1") + b"".join(chunk(p) for p in pieces[1:])
        data += b"0\r\nX-Trailer: yes\r\n\r\n"
    else:
        data = body
    wire = head(framing=framing, length=len(body)) + data
    out: list[bytes | float] = []
    for i in range(0, len(wire), 7):
        out += [wire[i : i + 7], 0.001]
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_every_body_framing_gives_the_events(kind: str, framing: str) -> None:
    """Tornado answers chunked, a proxy may answer with a length or until close; the
    events are the same, and once the stream has ended the client lets go of it."""
    body = KEEPALIVE + b": a comment\r\n\r\n" + STEP + READY
    then = "close" if framing == "close" else "wait"
    with scripted(*framed(framing, body), then=then) as hub:
        events = progress(kind, hub.api_url)
        assert steps(events) == [50, 100] and events[-1]["ready"] is True
        if then == "wait":
            assert hub.wait_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_events_are_handed_out_as_they_arrive(kind: str) -> None:
    """The Hub holds back the last event until the first has reached the caller: a
    transport that buffered the body would never hand out the first one."""
    gate = threading.Event()
    with scripted(head(), chunk(STEP), gate, chunk(READY), LAST) as hub:
        api = client(kind, hub.api_url, request_timeout=30)
        if kind == "sync":
            events = api.progress("a")
            first = next(events)
            gate.set()
            rest = list(events)
        else:

            async def run() -> tuple[Any, list[Any]]:
                events = api.progress("a")
                first = await events.__anext__()
                gate.set()
                return first, [e async for e in events]

            first, rest = asyncio.run(run())
        api.close()
    assert first["progress"] == 50 and steps(rest) == [100]


# ---------------------------------------------------------------- cut off, garbled


CUTS = {
    "chunked, cut inside a chunk": (
        [head(), chunk(STEP), b"40\r\n" + HALF],
        "close",
        "middle of an event",
    ),
    "chunked, cut between chunks": ([head(), chunk(STEP)], "close", "ended before the spawn"),
    "chunked, reset inside a chunk": (
        [head(), chunk(STEP), b"40\r\n" + HALF],
        "reset",
        "middle of an event",
    ),
    "chunked, garbled chunk size": (
        [head(), chunk(STEP), b"zz\r\n" + READY],
        "close",
        "ended before the spawn",
    ),
    "length, fewer bytes than declared": (
        [head(framing="length", length=1000), STEP + HALF],
        "close",
        "middle of an event",
    ),
    "until close, closed inside an event": (
        [head(framing="close"), STEP + HALF],
        "close",
        "middle",
    ),
    "until close, closed before ready": ([head(framing="close"), STEP], "close", "ended before"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CUTS)
def test_a_stream_that_breaks_off_ends_and_the_reader_says_how(kind: str, case: str) -> None:
    """A cut stream must not look like a clean end (tornado's HTTP/1 reader held back the
    bytes of a cut chunk, issue 14): the events reader sees where it stopped."""
    parts, then, needle = CUTS[case]
    with scripted(*parts, then=then) as hub, pytest.raises(HubResponseError, match=needle) as e:
        progress(kind, hub.api_url)
    assert "spawn's outcome is unknown" in str(e.value)


# ------------------------------------------------------------------------- timeouts


@pytest.mark.parametrize("kind", KINDS)
def test_keepalives_keep_a_stream_open_longer_than_request_timeout(kind: str) -> None:
    """request_timeout bounds each wait for bytes, not the stream: a spawn takes longer."""
    parts: list[bytes | float] = [head(), chunk(STEP)]
    for _ in range(5):
        parts += [0.3, chunk(KEEPALIVE)]
    with scripted(*parts, chunk(READY), LAST) as hub:
        assert steps(progress(kind, hub.api_url, request_timeout=1.0)) == [50, 100]


@pytest.mark.parametrize("kind", KINDS)
def test_a_silent_stream_times_out_and_is_closed(kind: str) -> None:
    with scripted(head(), chunk(STEP)) as hub:
        with pytest.raises(HubUnavailable, match=r"nothing arrived .* 0\.5s \(request_timeout"):
            progress(kind, hub.api_url, request_timeout=0.5)
        assert hub.wait_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_a_hub_that_sends_no_head_times_out(kind: str) -> None:
    with scripted() as hub:
        with pytest.raises(HubUnavailable, match=r"no answer within 0\.5s \(request_timeout\)"):
            progress(kind, hub.api_url, request_timeout=0.5)
        assert hub.wait_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_bounds_the_whole_stream_despite_keepalives(kind: str) -> None:
    parts: list[bytes | float] = [head(), chunk(STEP)]
    for _ in range(300):
        parts += [0.1, chunk(KEEPALIVE)]
    with scripted(*parts) as hub:
        with pytest.raises(HubUnavailable, match=r"lasted over 0\.8s \(timeout=\)"):
            progress(kind, hub.api_url, timeout=0.8, request_timeout=5)
        assert hub.wait_closed()


# ------------------------------------------------------------ readers that stop early


def endless() -> StreamHub:
    """A spawn that never ends: one step, then keep-alives until the client lets go."""
    parts: list[bytes | float] = [head(), chunk(STEP)]
    for _ in range(600):
        parts += [0.05, chunk(KEEPALIVE)]
    return scripted(*parts)


@pytest.mark.parametrize("how", ["close", "break"])
def test_a_sync_reader_that_stops_early_closes_the_connection(how: str) -> None:
    with endless() as hub:
        api = HubAPI(api_url=hub.api_url, api_token=TOKEN)
        if how == "close":
            events = api.progress("a")
            assert next(events)["progress"] == 50
            events.close()
        else:
            for event in api.progress("a"):
                assert event["progress"] == 50
                break
        assert client_sockets(hub.port) == 0  # closed at once, not when collected
        assert hub.wait_closed()
        api.close()


@pytest.mark.parametrize("how", ["aclose", "break"])
def test_an_async_reader_that_stops_early_closes_the_connection(how: str) -> None:
    """``aclose()`` closes it at once; a ``break`` leaves the generator to the loop, which
    closes it by the end of ``asyncio.run``: no socket outlives the run."""
    with endless() as hub:
        api = AsyncHubAPI(api_url=hub.api_url, api_token=TOKEN)

        async def run() -> int:
            if how == "aclose":
                events = api.progress("a")
                assert (await events.__anext__())["progress"] == 50
                await events.aclose()
                return client_sockets(hub.port)
            async for event in api.progress("a"):
                assert event["progress"] == 50
                break
            return 0

        assert asyncio.run(run()) == 0
        assert client_sockets(hub.port) == 0
        assert hub.wait_closed()
        api.close()


def test_a_stream_left_on_a_loop_closed_without_shutdown_is_closed_with_the_loop() -> None:
    """A loop closed without ``shutdown_asyncgens()`` never runs the generator's cleanup;
    its socket is closed when the loop is collected, with no ResourceWarning."""
    with endless() as hub:
        api = AsyncHubAPI(api_url=hub.api_url, api_token=TOKEN)
        loop = asyncio.new_event_loop()
        events = api.progress("a")

        async def first(events: Any) -> Any:  # (iterated on the loop: it owns the cleanup)
            return await events.__anext__()

        assert loop.run_until_complete(first(events))["progress"] == 50
        loop.close()
        del events, loop
        gc.collect()
        assert client_sockets(hub.port) == 0
        assert hub.wait_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_leaving_the_stream_context_closes_the_connection(kind: str) -> None:
    """The streaming send itself: the head first, then chunks; leaving the ``with``
    unfinished closes the connection."""
    with endless() as hub:
        config = HubAPI(api_url=hub.api_url, api_token=TOKEN).config
        req = HubRequest("GET", f"{hub.api_url}/users/a/server/progress")
        if kind == "sync":
            with sync_stream(config, req) as (answer, chunks):
                first = next(chunks)
        else:

            async def run() -> tuple[Any, bytes]:
                async with async_stream(config, req) as (answer, chunks):
                    return answer, await chunks.__anext__()

            answer, first = asyncio.run(run())
        assert answer.status == 200 and answer.headers["content-type"] == "text/event-stream"
        assert first == STEP
        assert client_sockets(hub.port) == 0
        assert hub.wait_closed()


# ----------------------------------------------------------------- TLS and http+unix


def _server_tls(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_stream_over_tls_with_a_client_certificate(kind: str, framing: str, pki: Path) -> None:
    parts = framed(framing, STEP + READY)
    script = Script(parts, "close" if framing == "close" else "wait")
    with StreamHub(lambda request: script, tls=_server_tls(pki)) as hub:
        certs = {"client_ca": "ca.pem", "certfile": "client.pem", "keyfile": "client.key"}
        kw = {k: str(pki / v) for k, v in certs.items()}
        assert steps(progress(kind, hub.api_url, **kw)) == [50, 100]


@pytest.mark.parametrize("kind", KINDS)
def test_a_tls_failure_is_worded_as_for_every_other_call(kind: str, pki: Path) -> None:
    with StreamHub(
        lambda request: Script([head(), chunk(READY), LAST]), tls=_server_tls(pki)
    ) as hub:
        kw = {"client_ca": str(pki / "other-ca.pem")}
        with pytest.raises(HubUnavailable, match=r"TLS failed \(.*JUPYTERHUB_SSL_CLIENT_CA"):
            progress(kind, hub.api_url, **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_over_http_unix(kind: str, tmp_path: Path) -> None:
    """issue 12 requires http+unix for hubauth.api: the progress stream too."""
    path = str(tmp_path / "hub.sock")
    script = Script(framed("chunked", STEP + READY))
    with StreamHub(lambda request: script, unix_path=path) as hub:
        assert hub.api_url.startswith("http+unix://%2F")
        assert steps(progress(kind, hub.api_url)) == [50, 100]
        assert hub.heads[0].startswith(b"GET /hub/api/users/a/server/progress HTTP/1.1\r\n")
        assert b"\r\nHost: localhost\r\n" in hub.heads[0]
        assert hub.wait_closed()


# ------------------------------------------------------- before the stream starts


def answer(status: int, body: bytes = b"", **headers: str) -> bytes:
    return head(status, framing="length", length=len(body), **headers) + body


ERRORS = {
    "429 with Retry-After": (answer(429, Retry_After="7"), RateLimited, "Retry-After 7s"),
    "404, chunked JSON": (
        head(404) + chunk(b'{"status": 404, "message": "No such user"}') + LAST,
        NotFound,
        "No such user",
    ),
    "403 naming the scope": (
        answer(403, json.dumps({"message": "requires any of [read:servers]"}).encode()),
        MissingScope,
        "read:servers",
    ),
    "503": (answer(503), HubAPIError, "answered 503"),
    "302": (answer(302, Location="/hub/login"), HubAPIError, "redirected"),
    "an error over the body bound": (
        head(500, framing="length", length=2 * MAX_BODY_BYTES),
        HubResponseError,
        "body over",
    ),
    "an error streamed past the body bound": (
        head(500) + chunk(b"x" * (MAX_BODY_BYTES // 2)) * 3 + LAST,
        HubResponseError,
        "body over",
    ),
    "no answer at all": (b"", HubUnavailable, "closed without an answer"),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", HubResponseError, "not HTTP/1.1"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ERRORS)
def test_errors_before_the_stream_starts(kind: str, case: str) -> None:
    """As any call's answer (the same errors), but never retried: a stream is not resent."""
    data, error, needle = ERRORS[case]
    with scripted(data, then="close") as hub:
        with pytest.raises(error, match=needle) as e:
            progress(kind, hub.api_url, backoff=0)
        assert len(hub.heads) == 1
    if case.startswith("429"):
        assert isinstance(e.value, RateLimited) and e.value.retry_after == 7


@pytest.mark.parametrize("kind", KINDS)
def test_no_hub_listening(kind: str, tmp_path: Path) -> None:
    with scripted() as hub:
        url = hub.api_url
    with pytest.raises(HubUnavailable, match="connection refused"):
        progress(kind, url)
    socket_url = "http+unix://" + str(tmp_path / "none.sock").replace("/", "%2F") + "/hub/api"
    with pytest.raises(HubUnavailable, match="does not exist"):
        progress(kind, socket_url)


def test_both_clients_send_the_same_bytes() -> None:
    async def read(api: AsyncHubAPI) -> None:
        async for _ in api.progress("a b", "x/y"):
            pass

    with scripted(head(), chunk(READY), LAST) as hub:
        with HubAPI(api_url=hub.api_url, api_token=TOKEN) as sync_api:
            list(sync_api.progress("a b", "x/y"))
        asyncio.run(read(AsyncHubAPI(api_url=hub.api_url, api_token=TOKEN)))
    sync, aio = hub.heads
    assert sync == aio
    lines = sync.decode().split("\r\n")
    assert lines[0] == "GET /hub/api/users/a%20b/servers/x%2Fy/progress HTTP/1.1"
    assert f"Authorization: token {TOKEN}" in lines
    assert "Accept: text/event-stream" in lines and "Connection: close" in lines


# ----------------------------------------------------- the parser's streaming mode


def _wire(framing: str, body: bytes, size: int) -> bytes:
    if framing == "chunked":
        data = b"".join(chunk(body[i : i + size]) for i in range(0, len(body), size)) + LAST
        return head() + data
    return head(framing=framing, length=len(body)) + body


@settings(max_examples=300, deadline=None)
@given(
    framing=st.sampled_from(["chunked", "length", "close"]),
    body=st.binary(max_size=400),
    size=st.integers(1, 64),
    cuts=st.lists(st.integers(0, 800), max_size=12),
)
def test_the_parser_hands_out_a_streams_body_as_it_is_parsed(
    framing: str, body: bytes, size: int, cuts: list[int]
) -> None:
    wire = _wire(framing, body, size)
    parser = ResponseParser(max_body=None)
    got = b""
    start = 0
    for end in [*sorted(c for c in cuts if c <= len(wire)), len(wire)]:
        parser.feed(wire[start:end])
        start = end
        got += parser.take()
        assert body.startswith(got)  # only body bytes, in order, as soon as they are parsed
        assert parser.body == b""
        if parser.has_head:
            assert parser.status == 200
    if framing == "close":
        parser.feed_eof()
    assert parser.done and got == body


def test_a_stream_has_no_body_bound_but_an_error_answer_does() -> None:
    big = b"x" * (3 * MAX_BODY_BYTES)
    for framing in ("chunked", "length", "close"):
        parser = ResponseParser(max_body=None)
        parser.feed(_wire(framing, big, 65536))
        if framing == "close":
            parser.feed_eof()
        assert parser.done and len(parser.take()) == len(big)
    declared = ResponseParser(max_body=None)
    declared.feed(head(500, framing="length", length=2 * MAX_BODY_BYTES))
    with pytest.raises(BodyTooLarge):
        declared.limit(MAX_BODY_BYTES)
    sent = ResponseParser(max_body=None)
    sent.feed(head(500) + chunk(b"x" * 10))
    sent.limit(16)
    with pytest.raises(BodyTooLarge):
        sent.feed(chunk(b"x" * 10))


def test_the_head_is_known_only_after_interim_answers() -> None:
    parser = ResponseParser(max_body=None)
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Enc")
    assert not parser.has_head and parser.status == 0
    parser.feed(b"oding: chunked\r\n\r\n5\r\nhel")
    assert parser.has_head and parser.status == 200 and parser.take() == b"hel"


# -------------------------------------------------------------- no more requests


def test_hubauth_imports_without_requests() -> None:
    """``requests`` left the runtime dependencies: every hubauth module imports with it
    (and urllib3) unimportable, and none of them loads it."""
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['requests'] = sys.modules['urllib3'] = None\n"
        "import hubauth\n"
        "names = [m.name for m in pkgutil.walk_packages(hubauth.__path__, 'hubauth.')]\n"
        "for name in names:\n"
        "    if not name.endswith('.__main__'):  # (runs a command)\n"
        "        importlib.import_module(name)\n"
        "assert len(names) > 30, names\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
