"""How one REST call looks on the wire, with no I/O: its request, what its reply means,
and whether a failed attempt is tried again (and after how long).

Names become single path segments here, once, for both facades: ``/`` ``%`` ``?`` and
non-ASCII are percent-encoded, so both clients send the same bytes. A name made only of
dots (``.``, ``..``) is refused before anything is sent: ``/users/bob/servers/.`` resolves
to bob's *default* server, and no encoding is safe, since configurable-http-proxy (like
every WHATWG URL parser) resolves ``%2E`` and ``%2E%2E`` as dot segments too. JupyterHub
itself refuses such user names and, since 6.0, such server names.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._protocol import HubRequest, HubResponse
from ..errors import (
    BadRequest,
    Conflict,
    HubAPIError,
    HubAuthError,
    HubResponseError,
    HubUnavailable,
    MissingScope,
    NotFound,
    RateLimited,
    ServiceTokenRejected,
)

__all__ = [
    "PAGINATION_MEDIA_TYPE",
    "APIRequest",
    "InvalidArgument",
    "build",
    "read",
    "retry_after",
    "retry_delay",
    "segment",
]

log = logging.getLogger("hubauth")

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
_SCOPES_IN_MESSAGE = re.compile(r"requires any of \[([^\]]*)\]")
_UNKNOWN_TOKEN = "missing or invalid credentials"  # noqa: S105 - the Hub's words


class InvalidArgument(HubAuthError, ValueError):
    """An argument to a :mod:`hubauth.api` call cannot be sent (an empty name, not a string)."""


@dataclass(frozen=True)
class APIRequest(HubRequest):
    """A REST request that knows which endpoint it is, the scopes it needs, and the
    statuses that mean success; errors are worded from these."""

    endpoint: str = ""
    scopes: tuple[str, ...] = ()
    ok: tuple[int, ...] = (200,)


def segment(value: object, what: str = "name", *, empty: bool = False) -> str:
    """``value`` as one percent-encoded path segment; names of only dots are refused.

    ``empty=True`` allows ``""`` (the default server's name).
    """
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        if empty:
            return ""
        raise InvalidArgument(f"{what} must not be empty")
    if value.strip(".") == "":
        raise InvalidArgument(
            f"{what} {value!r} is only dots: a proxy would resolve it (even as %2E) as a dot "
            "segment and the call would reach another resource; JupyterHub refuses such names"
        )
    try:
        return urllib.parse.quote(value, safe="")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} {value!r} is not valid Unicode (a lone surrogate)") from None


def build(
    config_api_url: str,
    token: str,
    method: str,
    endpoint: str,
    path: str,
    *,
    scopes: Sequence[str] = (),
    ok: Sequence[int] = (200,),
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    accept: str = "application/json",
    idempotent: bool | None = None,
) -> APIRequest:
    """The request for ``method path`` (path already encoded) at the Hub API."""
    query = urllib.parse.urlencode(
        {k: _param(v) for k, v in (params or {}).items() if v is not None}, doseq=True
    )
    url = f"{config_api_url}{path}" + (f"?{query}" if query else "")
    headers = {"Authorization": f"token {token}", "Accept": accept, "User-Agent": "hubauth"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return APIRequest(
        method,
        url,
        headers,
        data,
        idempotent=method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent,
        endpoint=f"{method} {endpoint}",
        scopes=tuple(scopes),
        ok=tuple(ok),
    )


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _where(req: HubRequest) -> str:
    return req.url.split("?", 1)[0]


def _hub_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(data, dict):
        return ""
    return " ".join(str(data.get("message") or data.get("error_description") or "").split())[:500]


def _scope_list(scopes: Sequence[str]) -> str:
    return ", ".join(scopes) if scopes else "?"


def read(req: APIRequest, resp: HubResponse) -> Any:
    """The JSON of an answer whose status is in ``req.ok`` (``None`` for an empty body),
    else the :class:`~hubauth.errors.HubAPIError` subclass that says what to do."""
    where = f"{req.endpoint or req.method} ({_where(req)})"
    if resp.status in req.ok:
        if not resp.body.strip():
            return None
        try:
            return json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            raise HubResponseError(
                f"{where} answered {resp.status} with a body that is not JSON; is "
                "JUPYTERHUB_API_URL the Hub's API (ending in /hub/api)?",
                url=req.url,
                status=resp.status,
                setting="api_url",
            ) from None
    raise error(req, resp)


def error(req: APIRequest, resp: HubResponse) -> HubAuthError:
    """The error for an answer outside ``req.ok``."""
    where = f"{req.endpoint or req.method} ({_where(req)})"
    message = _hub_message(resp.body)
    said = f": the Hub says {message!r}" if message else ""
    kw: dict[str, Any] = {"url": req.url, "status": resp.status, "endpoint": req.endpoint}
    status = resp.status
    unknown = message.lower().startswith(_UNKNOWN_TOKEN) or (
        not req.scopes and message.lower() in ("", "forbidden")  # GET /user: no scope needed
    )
    if status == 401 or (status == 403 and unknown):
        return ServiceTokenRejected(
            f"{where}: the Hub does not know this client's token (api_token, by default "
            "JUPYTERHUB_API_TOKEN): it is wrong, expired or revoked. Use the api_token of the "
            "service's entry in c.JupyterHub.services, or a token from the Hub's token page",
            url=req.url,
            status=status,
            setting="api_token",
        )
    if status == 403 and message and not _SCOPES_IN_MESSAGE.search(message):
        return HubAPIError(  # forbidden for another reason than scopes ("Only admins can ...")
            f"{where}: forbidden{said}", scopes=req.scopes, **kw
        )
    if status == 403:
        found = _SCOPES_IN_MESSAGE.search(message)
        scopes = (
            tuple(s.strip() for s in found.group(1).split(",") if s.strip())
            if found
            else req.scopes
        )
        return MissingScope(
            f"{where} needs one of the scopes [{_scope_list(scopes)}], which the token used "
            f"lacks{said}. If it is the service's own token (JUPYTERHUB_API_TOKEN), grant one "
            "to the service's role in c.JupyterHub.load_roles; if it is a visitor's, they may "
            "not do this",
            scopes=scopes,
            **kw,
        )
    if status == 404:
        return NotFound(
            f"{where}: not found{said}. The Hub also answers 404 when the token's scopes are "
            f"filtered (e.g. !user=...) and do not reach it; this call needs one of "
            f"[{_scope_list(req.scopes)}]",
            scopes=req.scopes,
            **kw,
        )
    if status == 409:
        return Conflict(f"{where}: already exists{said}", scopes=req.scopes, **kw)
    if status == 400:
        return BadRequest(f"{where}: the Hub refused the request{said}", scopes=req.scopes, **kw)
    if status == 429:
        wait = retry_after(resp)
        exc = RateLimited(
            f"{where}: the Hub is rate-limiting this client (429"
            + (f", Retry-After {wait:g}s" if wait is not None else "")
            + f"){said}; slow down or raise the Hub's limits",
            scopes=req.scopes,
            **kw,
        )
        exc.retry_after = wait
        return exc
    if 300 <= status < 400:
        return HubAPIError(
            f"{where}: redirected ({status}) to {resp.headers.get('location', '?')[:200]}; "
            "JUPYTERHUB_API_URL should be the Hub's API itself, ending in /hub/api",
            setting="api_url",
            scopes=req.scopes,
            **kw,
        )
    hint = "; check the Hub's log" if status >= 500 else ""
    return HubAPIError(f"{where}: the Hub answered {status}{said}{hint}", scopes=req.scopes, **kw)


def retry_after(resp: HubResponse, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    raw = resp.headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return float(int(raw[:12]))
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(
    req: HubRequest,
    outcome: HubResponse | HubUnavailable,
    attempt: int,
    *,
    retries: int,
    backoff: float,
    max_retry_after: float,
) -> float | None:
    """Seconds to wait before trying ``req`` again (logged), or ``None`` to stop.

    Unreachable or 5xx: only idempotent requests, with exponential backoff. 429: any
    request (the Hub did not act on it), after ``Retry-After`` if it is at most
    ``max_retry_after``. Both facades' send loops ask this; only their way of waiting differs.
    """
    if attempt >= retries:
        return None
    delay: float | None = backoff * 2.0**attempt
    if isinstance(outcome, HubUnavailable):
        if not req.idempotent:
            return None
        cause = str(outcome)
    elif outcome.status == 429 or (outcome.status == 503 and "retry-after" in outcome.headers):
        if outcome.status == 503 and not req.idempotent:
            return None
        asked = retry_after(outcome)
        if asked is not None:
            delay = asked if asked <= max_retry_after else None
        cause = f"{outcome.status}" + (f", Retry-After {asked:g}s" if asked is not None else "")
    elif outcome.status >= 500 and req.idempotent:
        cause = f"{outcome.status}"
    else:
        return None
    if delay is None:
        return None
    log.warning(
        "%s %s failed (%s); retrying in %.1fs",
        req.method,
        _where(req),
        " ".join(cause.split()),
        delay,
    )
    return delay
