"""The sync driver: sends a :class:`HubRequest` with a pooled ``requests.Session``.

It only moves bytes: no redirects followed, bodies capped, every transport failure turned
into :class:`~hubauth.errors.HubUnavailable` naming the URL. No event loop, no thread.
"""

from __future__ import annotations

import threading

import requests

from ._protocol import MAX_BODY_BYTES, HubRequest, HubResponse
from .config import Config
from .errors import HubResponseError, HubUnavailable

__all__ = ["SyncDriver"]


def unreachable(url: str, cause: str, config: Config) -> HubUnavailable:
    """The error for a Hub that could not be reached, with the likely fix."""
    where = url.split("?", 1)[0]
    return HubUnavailable(
        f"could not reach the Hub at {where}: {cause}. Is the Hub running, and is "
        f"JUPYTERHUB_API_URL ({config.api_url}) reachable from this service?",
        url=url,
        setting="api_url",
    )


def too_large(url: str) -> HubResponseError:
    return HubResponseError(
        f"the Hub at {url.split('?', 1)[0]} answered with a body over {MAX_BODY_BYTES} bytes; "
        "is JUPYTERHUB_API_URL the Hub's API?",
        url=url,
        setting="api_url",
    )


class SyncDriver:
    """Blocking HTTP to the Hub; one connection pool per driver, safe across threads."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # One Session per thread: requests does not promise a Session is thread-safe.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # never send Hub tokens through an env-configured proxy
            session.verify = self.config.client_ca or True
            if self.config.certfile:
                session.cert = (self.config.certfile, self.config.keyfile)
            self._local.session = session
        return session

    def send(self, req: HubRequest) -> HubResponse:
        cfg = self.config
        try:
            session = self._session()
            prepared = session.prepare_request(
                requests.Request(req.method, req.url, headers=dict(req.headers), data=req.body)
            )
            # Sent as built: requests would decode %2E into a dot segment that resolves away.
            prepared.url = req.url
            with session.send(
                prepared,
                allow_redirects=False,
                stream=True,
                timeout=(cfg.connect_timeout, cfg.request_timeout),
            ) as r:
                declared = r.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                    raise too_large(req.url)
                body = bytearray()
                for chunk in r.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise too_large(req.url)
                headers = {k.lower(): v for k, v in r.headers.items()}
                return HubResponse(r.status_code, headers, bytes(body))
        except requests.exceptions.SSLError as e:
            raise unreachable(
                req.url,
                f"TLS failed ({type(e).__name__}); check "
                "JUPYTERHUB_SSL_CLIENT_CA, _CERTFILE and _KEYFILE",
                cfg,
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise unreachable(
                req.url, f"no connection within {cfg.connect_timeout}s (connect_timeout)", cfg
            ) from None
        except requests.exceptions.Timeout:
            raise unreachable(
                req.url, f"no answer within {cfg.request_timeout}s (request_timeout)", cfg
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise unreachable(req.url, _connection_cause(e), cfg) from None
        except requests.exceptions.RequestException as e:
            raise unreachable(req.url, type(e).__name__, cfg) from None

    def close(self) -> None:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


def _connection_cause(e: Exception) -> str:
    text = str(e).lower()
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text:
        return "connection reset"
    if "name or service" in text or "resolve" in text or "nodename" in text:
        return "host name not found"
    return "connection failed"
