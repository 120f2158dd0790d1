"""``HubOAuth``: the browser login through the Hub, with encrypted, stateless cookies.

Adds to :class:`~hubauth.HubAuth` what a browser needs: the authorize URL with ``state`` and
PKCE, the code-for-token exchange, the login cookie (the user's token, encrypted) and the
OAuth state cookie (state id, next URL, PKCE verifier; encrypted, 10 minutes). Nothing is
kept in process memory, so the callback may land on any worker or replica.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, overload

from . import _protocol
from ._view import safe_next_url
from .auth import HubAuth
from .cookies import CookieCodec, format_clear_cookie, format_set_cookie, validate_cookie_options

__all__ = ["HubOAuth"]

LOGIN = "login"
STATE = "oauth-state"
# How many concurrent logins (tabs) keep their own state cookie before the oldest go.
MAX_STATE_COOKIES = 8
# A login cookie the Hub rejects within this many seconds of being set means a loop.
LOOP_WINDOW = 30.0


class HubOAuth(HubAuth):
    """Token auth plus the browser OAuth flow with the Hub (drop-in for JupyterHub's)."""

    _oauth = True

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        timer: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        **settings: object,
    ) -> None:
        super().__init__(environ=environ, timer=timer, **settings)
        self.clock = clock
        self.cookie_options_checked = validate_cookie_options(self.config.cookie_options)
        self.cookies = CookieCodec(self.config.cookie_secret, clock=clock)

    # ------------------------------------------------------------ names and URLs

    @property
    def oauth_client_id(self) -> str:
        return self.config.oauth_client_id

    @property
    def oauth_redirect_uri(self) -> str:
        return self.config.oauth_redirect_uri

    @property
    def cookie_host_prefix_enabled(self) -> bool:
        return self.config.cookie_host_prefix_enabled

    @property
    def cookie_name(self) -> str:
        """The login cookie's name: the OAuth client id (``__Host-`` prefixed if enabled)."""
        prefix = "__Host-" if self.cookie_host_prefix_enabled else ""
        return f"{prefix}{self.oauth_client_id}"

    @property
    def state_cookie_name(self) -> str:
        """Base name of the state cookies; each login in flight adds a suffix of its own."""
        return f"{self.cookie_name}-oauth-state"

    @property
    def cookie_path(self) -> str:
        return "/" if self.cookie_host_prefix_enabled else self.base_url

    @property
    def state_cookie_path(self) -> str:
        """The state cookie must reach the callback: the base URL, or ``/`` if it lies outside."""
        if self.cookie_host_prefix_enabled:
            return "/"
        callback = urllib.parse.urlsplit(self.oauth_redirect_uri).path
        return self.base_url if callback.startswith(self.base_url) else "/"

    @property
    def oauth_authorization_url(self) -> str:
        return f"{self.hub_host}{self.hub_prefix}api/oauth2/authorize"

    @property
    def oauth_token_url(self) -> str:
        return f"{self.api_url}/oauth2/token"

    @property
    def login_url(self) -> str:
        """The authorize URL without state (as JupyterHub's); real logins add state and PKCE."""
        if self.config.login_url:
            return self.config.login_url
        query = urllib.parse.urlencode(
            {
                "client_id": self.oauth_client_id,
                "redirect_uri": self.oauth_redirect_uri,
                "response_type": "code",
            }
        )
        return f"{self.oauth_authorization_url}?{query}"

    def state_cookie_name_for(self, state: str) -> str:
        """The state cookie of one login: its name is derived from the (opaque) state id."""
        suffix = hashlib.sha256(state.encode("ascii", "replace")).hexdigest()[:12]
        return f"{self.state_cookie_name}-{suffix}"

    # ------------------------------------------------------------ cookies

    def login_cookie(self, token: str, *, secure: bool) -> str:
        """``Set-Cookie`` value storing ``token`` encrypted in the login cookie."""
        value = self.cookies.encode(LOGIN, self.cookie_name, {"t": token})
        return format_set_cookie(
            self.cookie_name,
            value,
            path=self.cookie_path,
            secure=secure,
            options=self.cookie_options_checked,
        )

    def clear_login_cookie(self, *, secure: bool) -> str:
        return format_clear_cookie(
            self.cookie_name,
            path=self.cookie_path,
            secure=secure,
            options=self.cookie_options_checked,
        )

    def read_login_cookie(self, values: list[str]) -> tuple[str, float] | None:
        """``(token, issued_at)`` from the first valid login cookie among ``values``."""
        for value in values:
            found = self.cookies.decode_with_time(
                LOGIN, self.cookie_name, value, max_age=float("inf")
            )
            if found is not None:
                token = _protocol.clean_token(found[0].get("t"))
                if token:
                    return token, found[1]
        return None

    def new_state(self, next_url: str, *, secure: bool) -> tuple[str, str, str]:
        """Start a login: ``(state id, PKCE challenge, Set-Cookie of its state cookie)``."""
        state = secrets.token_urlsafe(24)
        verifier, challenge = _protocol.pkce_pair()
        name = self.state_cookie_name_for(state)
        value = self.cookies.encode(
            STATE,
            name,
            {"s": state, "n": safe_next_url(next_url, self.base_url), "v": verifier},
        )
        header = format_set_cookie(
            name,
            value,
            path=self.state_cookie_path,
            secure=secure,
            max_age=int(self.config.oauth_state_max_age),
            options=self.cookie_options_checked,
            stretchable=False,
        )
        return state, challenge, header

    def read_state(self, state: str, values: list[str]) -> dict[str, str] | None:
        """The state cookie payload for ``state`` (next URL, verifier), if one is valid."""
        if not state or len(state) > 200:
            return None
        name = self.state_cookie_name_for(state)
        for value in values:
            data = self.cookies.decode(STATE, name, value, max_age=self.config.oauth_state_max_age)
            if data is None or not isinstance(data.get("s"), str):
                continue
            if secrets.compare_digest(data["s"].encode(), state.encode("ascii", "replace")):
                return {
                    "next": safe_next_url(str(data.get("n", "")), self.base_url),
                    "verifier": str(data.get("v", "")),
                }
        return None

    def clear_state_cookie(self, name: str, *, secure: bool) -> str:
        return format_clear_cookie(
            name, path=self.state_cookie_path, secure=secure, options=self.cookie_options_checked
        )

    def get_next_url(self, state: str | Mapping[str, Any] | None = None) -> str:
        """The next URL of a login (a decoded state, or ``None``): always a local path."""
        if isinstance(state, Mapping):
            target = state.get("next", "")
            return safe_next_url(target if isinstance(target, str) else "", self.base_url)
        return self.base_url

    def authorize_url(self, state: str, code_challenge: str) -> str:
        return _protocol.authorize_url(
            self.oauth_authorization_url,
            client_id=self.oauth_client_id,
            redirect_uri=self.oauth_redirect_uri,
            state=state,
            code_challenge=code_challenge,
        )

    # ------------------------------------------------------------ code for token

    def _token_request(self, code: str, code_verifier: str | None) -> _protocol.HubRequest:
        return _protocol.token_request(
            self.oauth_token_url,
            client_id=self.oauth_client_id,
            client_secret=self.api_token,
            code=code,
            redirect_uri=self.oauth_redirect_uri,
            code_verifier=code_verifier,
        )

    @overload
    def token_for_code(
        self, code: str, *, code_verifier: str | None = ..., sync: Literal[True] = ...
    ) -> str: ...
    @overload
    def token_for_code(
        self, code: str, *, code_verifier: str | None = ..., sync: Literal[False]
    ) -> Awaitable[str]: ...
    def token_for_code(
        self, code: str, *, code_verifier: str | None = None, sync: bool = True
    ) -> str | Awaitable[str]:
        """Exchange an authorization code for the user's access token (``POST /oauth2/token``).

        Raises :class:`~hubauth.errors.OAuthError` when the Hub refuses the code.
        """
        req = self._token_request(code, code_verifier)
        if sync:
            return _protocol.read_token_reply(req, self._sync.send(req))
        return self._token_for_code_async(req)

    async def _token_for_code_async(self, req: _protocol.HubRequest) -> str:
        return _protocol.read_token_reply(req, await self._async.send(req))
