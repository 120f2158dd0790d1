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
            # A private instance: its body limit must not leak into the app's shared client.
            client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_BODY_BYTES)
            self._clients[loop] = client
        return client

    async def send(self, req: HubRequest) -> HubResponse:
        cfg = self.config
        options: dict[str, Any] = {}
        if self._ssl is not None:
            options["ssl_options"] = self._ssl
        request = HTTPRequest(
            req.url,
            method=req.method,
            headers=dict(req.headers),
            body=req.body,
            follow_redirects=False,
            connect_timeout=cfg.connect_timeout,
            request_timeout=cfg.request_timeout,
            allow_nonstandard_methods=True,
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
        except HTTPClientError as e:
            raise unreachable(req.url, _cause(e.code, e.message, cfg), cfg) from None
        except OSError as e:
            raise unreachable(req.url, e.strerror or type(e).__name__, cfg) from None
        except Exception as e:
            # tornado reports a body over max_body_size, or a stream closed early, this way.
            if "body" in str(e).lower() and "large" in str(e).lower():
                raise too_large(req.url) from None
            raise unreachable(req.url, type(e).__name__, cfg) from None
        if r.code == 599:
            err = r.error
            if isinstance(err, HTTPClientError):
                raise unreachable(req.url, _cause(err.code, err.message, cfg), cfg)
            raise unreachable(req.url, type(err).__name__ if err else "no answer", cfg)
        body = r.body or b""
        if len(body) > MAX_BODY_BYTES:
            raise too_large(req.url)
        headers = {k.lower(): v for k, v in r.headers.get_all()}
        return HubResponse(r.code, headers, body)

    def close(self) -> None:
        for client in list(self._clients.values()):
            client.close()
        self._clients.clear()


def _cause(code: int, message: str | None, cfg: Config) -> str:
    text = (message or "").lower()
    if code == 599 and "timeout" in text:
        if "connect" in text:
            return f"no connection within {cfg.connect_timeout}s (connect_timeout)"
        return f"no answer within {cfg.request_timeout}s (request_timeout)"
    if "closed" in text:
        return "connection closed before a full answer"
    return f"{code} {message or ''}".strip()
