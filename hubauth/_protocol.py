"""The Hub's wire protocol, with no I/O: build requests, read replies, decide what they mean.

The drivers (:mod:`hubauth._sync`, :mod:`hubauth._async`) only move the bytes of a
:class:`HubRequest` and hand back a :class:`HubResponse`; every decision about what a reply
means is made here, once, for both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import HubResponseError, OAuthError, ServiceTokenRejected

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_TOKEN_LENGTH",
    "HubRequest",
    "HubResponse",
    "authorize_url",
    "clean_token",
    "pkce_pair",
    "read_token_reply",
    "read_user_reply",
    "token_from_authorization",
    "token_request",
    "user_request",
]

log = logging.getLogger("hubauth")

# Hub tokens are 32-64 characters; anything far longer is not a token and is never sent.
MAX_TOKEN_LENGTH = 1024
# Hub replies about one token are small; a larger body is refused, not buffered.
MAX_BODY_BYTES = 1024 * 1024
_USER_AGENT = "hubauth"


@dataclass(frozen=True)
class HubRequest:
    """One HTTP request to the Hub. ``repr`` hides headers: they carry tokens."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = field(default=None, repr=False)
    idempotent: bool = True


@dataclass(frozen=True)
class HubResponse:
    """What the Hub answered: status, headers (lower-case names) and the body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


def clean_token(token: object) -> str | None:
    """The token if it could be a Hub token (printable ASCII, no spaces, bounded); else None.

    Anything else could not have been issued by the Hub, so it is refused without asking.
    """
    if not isinstance(token, str):
        return None
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    # Printable ASCII without spaces ("!" to "~"): a cheap test, as it runs on every request.
    if not token.isascii() or not token.isprintable() or " " in token:
        return None
    return token


def token_from_authorization(header: str | None) -> str | None:
    """The token in an ``Authorization: token <t>`` or ``bearer <t>`` header, else None."""
    if not header or len(header) > MAX_TOKEN_LENGTH + 16:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        return None
    return clean_token(rest)


def user_request(api_url: str, token: str) -> HubRequest:
    """``GET {api_url}/user`` authenticated by the token being identified."""
    return HubRequest(
        "GET",
        f"{api_url}/user",
        {
            "Authorization": f"token {token}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        },
    )


def _where(url: str) -> str:
    # URLs we build never carry secrets, but cut any query just in case.
    return url.split("?", 1)[0]


def _redirect_error(req: HubRequest, resp: HubResponse) -> HubResponseError:
    target = _where(resp.headers.get("location", "?"))
    return HubResponseError(
        f"the Hub API at {_where(req.url)} answered with a redirect ({resp.status}) to "
        f"{target}; JUPYTERHUB_API_URL should point at the API itself, e.g. "
        "http://127.0.0.1:8081/hub/api",
        url=req.url,
        status=resp.status,
        setting="api_url",
    )


def _json_object(req: HubRequest, resp: HubResponse) -> dict[str, Any]:
    """The reply's JSON object, or a :class:`HubResponseError` naming the URL."""
    where = _where(req.url)
    ctype = resp.headers.get("content-type", "")
    try:
        data = json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        hint = " (an HTML page: is JUPYTERHUB_API_URL the Hub's API, ending in /hub/api?)"
        raise HubResponseError(
            f"the Hub at {where} answered {resp.status} with a body that is not JSON"
            f"{hint if 'html' in ctype else ''}",
            url=req.url,
            status=resp.status,
            setting="api_url",
        ) from None
    if not isinstance(data, dict):
        raise HubResponseError(
            f"the Hub at {where} answered {resp.status} with JSON that is not an object",
            url=req.url,
            status=resp.status,
        )
    return data


def _status_error(req: HubRequest, resp: HubResponse) -> HubResponseError:
    where = _where(req.url)
    if resp.status >= 500:
        msg = f"the Hub at {where} answered {resp.status}; check the Hub's log"
    else:
        msg = f"the Hub at {where} answered an unexpected {resp.status}"
    return HubResponseError(msg, url=req.url, status=resp.status)


def read_user_reply(req: HubRequest, resp: HubResponse) -> dict[str, Any] | None:
    """Decide what a ``/user`` reply means: a model (200), ``None`` (403/401: unknown token).

    Anything else raises a :class:`HubResponseError`; errors are never cached.
    """
    if resp.status in (401, 403):
        return None
    if 300 <= resp.status < 400:
        raise _redirect_error(req, resp)
    if resp.status != 200:
        raise _status_error(req, resp)
    model = _json_object(req, resp)
    missing = [k for k in ("name", "scopes") if k not in model]
    if missing:
        raise HubResponseError(
            f"the Hub at {_where(req.url)} answered a model without {', '.join(missing)}; "
            "is this a JupyterHub >= 2.0 (scopes) API?",
            url=req.url,
            status=resp.status,
        )
    if not isinstance(model["name"], str) or not isinstance(model["scopes"], list):
        raise HubResponseError(
            f"the Hub at {_where(req.url)} answered a model whose name or scopes have the "
            "wrong type",
            url=req.url,
            status=resp.status,
        )
    model.setdefault("kind", "user")
    return model


# ---------------------------------------------------------------- OAuth


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE ``(code_verifier, code_challenge)`` pair (RFC 7636, S256)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorize_url(
    base: str, *, client_id: str, redirect_uri: str, state: str, code_challenge: str
) -> str:
    """The Hub authorize URL a browser is sent to, with state and the PKCE challenge (none
    when ``code_challenge`` is empty).
    """
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "state": state,
    }
    if code_challenge:
        params.update(code_challenge=code_challenge, code_challenge_method="S256")
    return f"{base}?{urllib.parse.urlencode(params)}"


def token_request(
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> HubRequest:
    """``POST {api_url}/oauth2/token``: exchange an authorization code for a token."""
    form = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    return HubRequest(
        "POST",
        token_url,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        },
        urllib.parse.urlencode(form).encode("ascii"),
        idempotent=False,
    )


def read_token_reply(req: HubRequest, resp: HubResponse) -> str:
    """The access token from a token-endpoint reply, or an :class:`OAuthError` saying why."""
    if 300 <= resp.status < 400:
        raise _redirect_error(req, resp)
    if resp.status >= 500:
        raise _status_error(req, resp)
    data = _json_object(req, resp)
    if resp.status != 200:
        error = str(data.get("error", "error"))[:100]
        desc = str(data.get("error_description", ""))[:300]
        where = _where(req.url)
        if error == "invalid_client":
            raise ServiceTokenRejected(
                f"the Hub at {where} refused this service as an OAuth client ({desc or error}): "
                "JUPYTERHUB_API_TOKEN is also the client secret, and JUPYTERHUB_CLIENT_ID must "
                "match the service's oauth_client_id in the Hub config",
                url=req.url,
                status=resp.status,
                setting="api_token",
            )
        hint = ""
        if "redirect" in desc.lower():
            hint = "; JUPYTERHUB_OAUTH_CALLBACK_URL must equal the redirect URI the Hub has"
        raise OAuthError(
            f"the Hub at {where} refused the login code: {error}: {desc}{hint}",
            url=req.url,
            status=resp.status,
        )
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise HubResponseError(
            f"the Hub at {_where(req.url)} answered 200 without an access_token",
            url=req.url,
            status=resp.status,
        )
    return token
