"""Long-lived streamed GETs (a spawn's progress events), blocking and async.

The request drivers buffer whole, bounded answers; a progress stream lasts as long as a
spawn and arrives in pieces, so it has its own small transports here. Both send the URL
exactly as built (percent-encoded dots included), time out when nothing arrives for
``request_timeout`` seconds (the Hub sends a keep-alive every 8 s), and close their
connection as soon as the caller stops reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import requests

from .._protocol import MAX_BODY_BYTES, HubRequest, HubResponse
from .._sync import _connection_cause, unreachable
from ..config import Config
from ..errors import HubUnavailable

__all__ = ["async_stream", "sync_stream"]

_CHUNK = 64 * 1024


def _idle(req: HubRequest, config: Config) -> HubUnavailable:
    return unreachable(
        req.url, f"nothing arrived within {config.request_timeout}s (request_timeout)", config
    )


def _deadline_passed(req: HubRequest, config: Config, timeout: float) -> HubUnavailable:
    return unreachable(req.url, f"the stream lasted over {timeout:g}s (timeout=)", config)


@contextlib.contextmanager
def sync_stream(
    config: Config, req: HubRequest, timeout: float | None = None
) -> Iterator[tuple[HubResponse, Iterator[bytes]]]:
    """``(head, chunks)``: the answer's status and headers (with the whole, bounded body
    when it is not a 200), and its body's chunks as they arrive."""
    session = requests.Session()
    session.trust_env = False
    session.verify = config.client_ca or True
    if config.certfile:
        session.cert = (config.certfile, config.keyfile)
    try:
        try:
            prepared = session.prepare_request(
                requests.Request(req.method, req.url, headers=dict(req.headers), data=req.body)
            )
            prepared.url = req.url  # requests would decode %2E back into a dot segment
            r = session.send(
                prepared,
                stream=True,
                allow_redirects=False,
                timeout=(config.connect_timeout, config.request_timeout),
            )
        except requests.exceptions.SSLError:
            raise unreachable(
                req.url, "TLS failed; check JUPYTERHUB_SSL_CLIENT_CA", config
            ) from None
        except requests.exceptions.Timeout:
            raise unreachable(
                req.url, f"no answer within {config.request_timeout}s", config
            ) from None
        except requests.exceptions.RequestException as e:
            raise unreachable(req.url, _connection_cause(e), config) from None
        with r:
            headers = {k.lower(): v for k, v in r.headers.items()}
            if r.status_code != 200:
                body = r.raw.read(MAX_BODY_BYTES, decode_content=True) or b""
                yield HubResponse(r.status_code, headers, body), iter(())
                return
            began = time.monotonic()

            def chunks() -> Iterator[bytes]:
                try:
                    for chunk in r.iter_content(None):
                        yield chunk
                        if timeout is not None and time.monotonic() - began > timeout:
                            raise _deadline_passed(req, config, timeout)
                except requests.exceptions.ConnectionError as e:
                    if "timed out" in str(e).lower() or "timeout" in type(e).__name__.lower():
                        raise _idle(req, config) from None
                    return  # the Hub closed the stream: the reader decides what that means
                except requests.exceptions.ChunkedEncodingError:
                    return

            yield HubResponse(200, headers, b""), chunks()
    finally:
        session.close()


def _ssl_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=config.client_ca or None)
    if config.certfile:
        ctx.load_cert_chain(config.certfile, config.keyfile)
    return ctx


async def _body(stream: Any, headers: Any, limit: int | None) -> AsyncIterator[bytes]:
    """The body's bytes as they are read: chunked, by Content-Length, or until close.

    Read here rather than by tornado's HTTP/1 connection, which holds back the last bytes
    of a body cut off mid-chunk: a reader must see where a stream stopped.
    """
    from tornado.iostream import StreamClosedError

    seen = 0
    try:
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            while True:
                line = await stream.read_until(b"\r\n", max_bytes=64)
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    return
                while size > 0:
                    piece = await stream.read_bytes(min(size, _CHUNK), partial=True)
                    size -= len(piece)
                    seen += len(piece)
                    yield piece
                    if limit is not None and seen > limit:
                        return
                await stream.read_bytes(2)
        else:
            left = headers.get("Content-Length", "")
            remaining = int(left) if left.isdigit() else None
            while remaining is None or remaining > 0:
                want = _CHUNK if remaining is None else min(remaining, _CHUNK)
                piece = await stream.read_bytes(want, partial=True)
                if remaining is not None:
                    remaining -= len(piece)
                seen += len(piece)
                yield piece
                if limit is not None and seen > limit:
                    return
    except (StreamClosedError, ValueError):
        return  # closed or garbled: the reader of the events says what that means


@contextlib.asynccontextmanager
async def async_stream(
    config: Config, req: HubRequest, timeout: float | None = None
) -> AsyncIterator[tuple[HubResponse, AsyncIterator[bytes]]]:
    """The async twin of :func:`sync_stream`, on a tornado ``IOStream`` of its own (so the
    socket is ours to close when the reader stops)."""
    from tornado import httputil
    from tornado.iostream import StreamClosedError
    from tornado.tcpclient import TCPClient

    parts = urllib.parse.urlsplit(req.url)
    https = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if https else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    client = TCPClient()
    try:
        stream = await asyncio.wait_for(
            client.connect(host, port, ssl_options=_ssl_context(config) if https else None),
            config.connect_timeout,
        )
    except asyncio.TimeoutError:
        client.close()
        raise unreachable(
            req.url, f"no connection within {config.connect_timeout}s", config
        ) from None
    except ssl.SSLError:
        client.close()
        raise unreachable(req.url, "TLS failed; check JUPYTERHUB_SSL_CLIENT_CA", config) from None
    except OSError as e:
        client.close()
        raise unreachable(req.url, _connection_cause(e), config) from None

    async def within(step: Any) -> Any:
        try:
            return await asyncio.wait_for(step, config.request_timeout)
        except asyncio.TimeoutError:
            raise _idle(req, config) from None

    try:
        head = [f"{req.method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in req.headers.items()]
        try:
            await stream.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            raw = await within(stream.read_until(b"\r\n\r\n", max_bytes=64 * 1024))
        except StreamClosedError:
            raise unreachable(req.url, "connection closed before an answer", config) from None
        first, _, rest = raw.decode("latin-1").partition("\r\n")
        try:
            status = httputil.parse_response_start_line(first).code
            headers = httputil.HTTPHeaders.parse(rest)
        except httputil.HTTPInputError:
            raise unreachable(req.url, "an answer that is not HTTP", config) from None
        lowered = {k.lower(): v for k, v in headers.get_all()}
        body = _body(stream, headers, None if status == 200 else MAX_BODY_BYTES)
        if status != 200:
            data = bytearray()
            while True:
                try:
                    data += await within(body.__anext__())
                except StopAsyncIteration:
                    break
            yield HubResponse(status, lowered, bytes(data[:MAX_BODY_BYTES])), _empty()
            return
        began = time.monotonic()

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                try:
                    piece = await within(body.__anext__())
                except StopAsyncIteration:
                    return
                yield piece
                if timeout is not None and time.monotonic() - began > timeout:
                    raise _deadline_passed(req, config, timeout)

        yield HubResponse(200, lowered, b""), chunks()
    finally:
        stream.close()
        client.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator
