"""The async driver: sends a :class:`HubRequest` with tornado's ``AsyncHTTPClient``.

The twin of :mod:`hubauth._sync`: bytes in, bytes out, the same caps and error mapping.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ._protocol import MAX_BODY_BYTES, HubRequest, HubResponse
from ._sync import too_large, unreachable
from .config import Config

__all__ = ["AsyncDriver"]


class AsyncDriver:
    """Non-blocking HTTP to the Hub on the running event loop; one client per loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncHTTPClient] = (
            weakref.WeakKeyDictionary()
        )
        self._ssl: ssl.SSLContext | None = None
        if config.client_ca or config.certfile:
            ctx = ssl.create_default_context(cafile=config.client_ca or None)
            if config.certfile:
                ctx.load_cert_chain(config.certfile, config.keyfile)
            self._ssl = ctx

    def _client(self) -> AsyncHTTPClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # A private instance: closing it (close()) must not close the app's shared client.
            client = AsyncHTTPClient(force_instance=True)
            self._clients[loop] = client
        return client

    async def send(self, req: HubRequest) -> HubResponse:
        cfg = self.config
        options: dict[str, Any] = {}
        if self._ssl is not None:
            options["ssl_options"] = self._ssl
        body = bytearray()
        too_big = False

        def count(size: int) -> None:
            nonlocal too_big
            if size > MAX_BODY_BYTES:
                too_big = True
                raise _TooLargeError  # tornado aborts the download and closes the connection

        def on_header(line: str) -> None:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                count(int(value.strip()))

        def on_chunk(chunk: bytes) -> None:
            body.extend(chunk)
            count(len(body))

        request = HTTPRequest(
            req.url,
            method=req.method,
            headers=dict(req.headers),
            body=req.body,
            follow_redirects=False,
            connect_timeout=cfg.connect_timeout,
            request_timeout=cfg.request_timeout,
            allow_nonstandard_methods=True,
            header_callback=on_header,
            streaming_callback=on_chunk,
            **options,
        )
        try:
            r = await self._client().fetch(request, raise_error=False)
        except ssl.SSLError as e:
            raise unreachable(
                req.url,
                f"TLS failed ({e.reason or type(e).__name__}); check "
                "JUPYTERHUB_SSL_CLIENT_CA, _CERTFILE and _KEYFILE",
                cfg,
            ) from None
        except ConnectionRefusedError:
            raise unreachable(req.url, "connection refused", cfg) from None
        except (ConnectionResetError, BrokenPipeError):
            raise unreachable(req.url, "connection reset", cfg) from None
        except Exception as e:
            if too_big:
                raise too_large(req.url) from None
            if isinstance(e, HTTPClientError):
                raise unreachable(req.url, _cause(e.code, e.message, cfg), cfg) from None
            if isinstance(e, OSError):
                raise unreachable(req.url, e.strerror or type(e).__name__, cfg) from None
            raise unreachable(req.url, type(e).__name__, cfg) from None
        if too_big:
            raise too_large(req.url)
        if r.code == 599:
            err = r.error
            if isinstance(err, HTTPClientError):
                raise unreachable(req.url, _cause(err.code, err.message, cfg), cfg)
            raise unreachable(req.url, type(err).__name__ if err else "no answer", cfg)
        headers = {k.lower(): v for k, v in r.headers.get_all()}
        return HubResponse(r.code, headers, bytes(body))

    def close(self) -> None:
        for client in list(self._clients.values()):
            client.close()
        self._clients.clear()


class _TooLargeError(Exception):
    """Raised inside tornado's callbacks to stop reading a body over the limit."""


def _cause(code: int, message: str | None, cfg: Config) -> str:
    text = (message or "").lower()
    if code == 599 and "timeout" in text:
        if "connect" in text:
            return f"no connection within {cfg.connect_timeout}s (connect_timeout)"
        return f"no answer within {cfg.request_timeout}s (request_timeout)"
    if "closed" in text:
        return "connection closed before a full answer"
    return f"{code} {message or ''}".strip()
