"""``HubOAuth``: the browser login through the Hub, with encrypted, stateless cookies.

Adds to :class:`~hubauth.HubAuth` what a browser needs: the authorize URL with ``state`` and
PKCE, the code-for-token exchange, the login cookie (the user's token, encrypted) and the
OAuth state. Nothing is kept in process memory, so the callback may land on any worker or
replica: the ``state`` parameter is itself sealed (a random id, the next URL, the PKCE
verifier and the state cookie's name, encrypted and authenticated, readable by no one but
this service), and the state cookie holds only the id, binding the login to the browser
that started it. JupyterHub's handler-taking methods (``set_state_cookie``,
``set_cookie``, ...) come from :mod:`hubauth._compat`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, overload

from . import _protocol
from ._compat import OAuthHandlerMethods
from ._view import safe_next_url
from .auth import HubAuth
from .cookies import (
    CookieCodec,
    format_clear_cookie,
    format_set_cookie,
    is_cookie_name,
    validate_cookie_options,
)
from .errors import ConfigError

__all__ = ["HubOAuth", "LoginCookie", "OAuthState"]

LOGIN = "login"
STATE = "oauth-state"
STATE_PARAM = "oauth-state-param"
XSRF = "xsrf"
# How many concurrent logins (tabs) keep their own state cookie before the oldest go.
MAX_STATE_COOKIES = 8
# A next URL longer than this is not carried through the login: the browser lands on the
# service's prefix instead (keeps the state parameter, and every URL it is in, small).
MAX_NEXT_URL = 1024
# A login cookie the Hub rejects within this many seconds of being set counts as a failed
# login; this many failed logins in a row is a loop, stopped with a 403.
LOOP_WINDOW = 30.0
MAX_LOGIN_FAILURES = 3
# Most same-named login cookies (e.g. one planted on a longer path) tried with the Hub.
MAX_LOGIN_CANDIDATES = 4
_SUFFIX_CHARS = string.ascii_letters


class LoginCookie(NamedTuple):
    """One readable login cookie: its token, when it was set, and the failed logins before it."""

    token: str
    issued: float
    failures: int


class OAuthState(NamedTuple):
    """What a sealed ``state`` parameter carries (see :meth:`HubOAuth.open_state`)."""

    id: str
    next_url: str
    verifier: str
    cookie_name: str
    failures: int
    extra: Mapping[str, Any]


class HubOAuth(OAuthHandlerMethods, HubAuth):
    """Token auth plus the browser OAuth flow with the Hub (drop-in for JupyterHub's)."""

    _oauth = True

    pkce_enabled: bool = True
    """Send a PKCE challenge (S256) with every login; JupyterHub's switch, kept for tests."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        timer: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        **settings: object,
    ) -> None:
        self.clock = clock
        pkce = settings.pop("pkce_enabled", True)  # a keyword in JupyterHub too
        if not isinstance(pkce, bool):
            raise ConfigError(f"pkce_enabled must be True or False, got {pkce!r}")
        self.pkce_enabled = pkce
        super().__init__(environ=environ, timer=timer, **settings)

    def _configured(self) -> None:
        """Rebuild what derives from the settings (also after a setting is assigned)."""
        super()._configured()
        self.cookie_options_checked = validate_cookie_options(self.config.cookie_options)
        self.cookies = CookieCodec(self.config.cookie_secret, clock=self.clock)

    # ------------------------------------------------------------ names and URLs

    @property
    def cookie_name(self) -> str:
        """The login cookie's name: the OAuth client id (``__Host-`` prefixed if enabled)."""
        prefix = "__Host-" if self.cookie_host_prefix_enabled else ""
        return f"{prefix}{self.oauth_client_id}"

    @property
    def state_cookie_name(self) -> str:
        """The first login's state cookie; concurrent logins add a suffix to it."""
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

    @oauth_authorization_url.setter
    def oauth_authorization_url(self, value: str) -> None:
        raise AttributeError(
            "HubOAuth.oauth_authorization_url is derived: set hub_host (JUPYTERHUB_HOST) "
            "and hub_prefix (JUPYTERHUB_BASE_URL) instead"
        )

    @property
    def oauth_token_url(self) -> str:
        return f"{self.api_url}/oauth2/token"

    @oauth_token_url.setter
    def oauth_token_url(self, value: str) -> None:
        raise AttributeError(
            "HubOAuth.oauth_token_url is derived: set api_url (JUPYTERHUB_API_URL) instead"
        )

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

    @login_url.setter
    def login_url(self, value: str) -> None:
        self._reconfigure("login_url", value)

    def is_state_cookie_name(self, name: str) -> bool:
        """Whether ``name`` is one of this service's state cookies (and a settable name)."""
        base = self.state_cookie_name
        return (name == base or name.startswith(base + "-")) and is_cookie_name(name)

    def state_cookie_names(self, cookies: Iterable[tuple[str, str]]) -> list[str]:
        """The state cookies a request carries, once each, in the order sent."""
        return list(dict.fromkeys(n for n, _ in cookies if self.is_state_cookie_name(n)))

    # ------------------------------------------------------------ the login cookie

    def login_cookie(self, token: str, *, secure: bool, failures: int = 0) -> str:
        """``Set-Cookie`` value storing ``token`` encrypted in the login cookie."""
        payload: dict[str, Any] = {"t": token}
        if failures:
            payload["f"] = failures
        value = self.cookies.encode(LOGIN, self.cookie_name, payload)
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

    def read_login_cookies(self, values: Sequence[str]) -> list[LoginCookie]:
        """Every readable login cookie among ``values``, newest first, at most
        :data:`MAX_LOGIN_CANDIDATES`: one may have been planted (another path or domain),
        so the flow asks the Hub about each in turn.
        """
        found: dict[str, LoginCookie] = {}
        for value in values[: MAX_LOGIN_CANDIDATES * 4]:
            opened = self.cookies.decode_with_time(
                LOGIN, self.cookie_name, value, max_age=float("inf")
            )
            if opened is None:
                continue
            payload, issued = opened
            token = _protocol.clean_token(payload.get("t"))
            failures = payload.get("f", 0)
            if not token or type(failures) is not int or not 0 <= failures < 100:
                continue
            if token not in found or found[token].issued < issued:
                found[token] = LoginCookie(token, issued, failures)
        newest = sorted(found.values(), key=lambda c: c.issued, reverse=True)
        return newest[:MAX_LOGIN_CANDIDATES]

    def read_login_cookie(self, values: Sequence[str]) -> tuple[str, float] | None:
        """``(token, issued_at)`` of the newest readable login cookie among ``values``."""
        found = self.read_login_cookies(values)
        return (found[0].token, found[0].issued) if found else None

    # ------------------------------------------------------------ XSRF tokens

    def xsrf_token_for(self, token: str, session_id: str = "") -> str:
        """The XSRF token of a browser logged in with ``token`` (``""``: not logged in) in the
        Hub session ``session_id``: a keyed digest of both, so a cookie planted from another
        site cannot forge one and a token from another login does not pass.
        """
        return self.cookies.mac(XSRF, _xsrf_message(token, session_id))

    def xsrf_cookie(self, token: str, session_id: str = "", *, secure: bool) -> str:
        """``Set-Cookie`` of the readable ``_xsrf`` cookie holding this login's XSRF token,
        for scripts that send it back as ``X-XSRFToken`` (set at login, as JupyterHub does).
        """
        return format_set_cookie(
            "_xsrf",
            self.xsrf_token_for(token, session_id),
            path=self.cookie_path,
            secure=secure,
            options=self.cookie_options_checked,
            http_only=False,  # scripts read it
        )

    def check_xsrf_token(self, submitted: str, token: str, session_id: str = "") -> bool:
        """Whether ``submitted`` is the XSRF token of this login (see :meth:`xsrf_token_for`)."""
        return self.cookies.check_mac(XSRF, _xsrf_message(token, session_id), submitted)

    # ------------------------------------------------------------ OAuth state

    def generate_pkce_code_challenge(self, method: str = "S256") -> tuple[str, str, str]:
        """A fresh PKCE ``(code_verifier, code_challenge, code_challenge_method)`` (RFC 7636)."""
        if method != "S256":
            raise ValueError(f"only method='S256' is supported, not {method!r}")
        verifier, challenge = _protocol.pkce_pair()
        return verifier, challenge, method

    def seal_state(
        self,
        next_url: str | None = None,
        *,
        cookie_name: str = "",
        verifier: str = "",
        failures: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A new ``state`` parameter: a random id with the next URL, PKCE verifier and state
        cookie name, sealed so only this service (any of its processes) can read it.
        """
        return self._seal(next_url, cookie_name, verifier, failures, extra)[0]

    def _seal(
        self,
        next_url: str | None,
        cookie_name: str,
        verifier: str,
        failures: int,
        extra: Mapping[str, Any] | None,
    ) -> tuple[str, OAuthState]:
        target = next_url if isinstance(next_url, str) else ""
        if len(target) > MAX_NEXT_URL:
            target = ""  # lands on the prefix rather than bloating every URL of the login
        opened = OAuthState(
            id=secrets.token_urlsafe(16),
            next_url=safe_next_url(target, self.base_url),
            verifier=verifier,
            cookie_name=cookie_name or self.state_cookie_name,
            failures=failures,
            extra=dict(extra or {}),
        )
        payload: dict[str, Any] = {"i": opened.id, "n": opened.next_url, "c": opened.cookie_name}
        if verifier:
            payload["v"] = verifier
        if failures:
            payload["f"] = failures
        if extra:
            payload["x"] = dict(extra)
        return self.cookies.encode(STATE_PARAM, self.state_cookie_name, payload), opened

    def open_state(self, state: object) -> OAuthState | None:
        """What a ``state`` this service sealed carries, or ``None`` (forged, altered,
        expired, another service's, or not a state at all).
        """
        if not isinstance(state, str) or not state or len(state) > 4096:
            return None
        data = self.cookies.decode(
            STATE_PARAM, self.state_cookie_name, state, max_age=self.config.oauth_state_max_age
        )
        if data is None:
            return None
        sid, next_url, cookie_name = data.get("i"), data.get("n"), data.get("c")
        verifier, failures, extra = data.get("v", ""), data.get("f", 0), data.get("x", {})
        if not (isinstance(sid, str) and isinstance(next_url, str) and isinstance(verifier, str)):
            return None
        if not isinstance(cookie_name, str) or not self.is_state_cookie_name(cookie_name):
            return None
        if type(failures) is not int or not isinstance(extra, dict):
            return None
        return OAuthState(
            sid, safe_next_url(next_url, self.base_url), verifier, cookie_name, failures, extra
        )

    def new_state_cookie_name(self, present: Iterable[str]) -> str:
        """The first login's state cookie is the base name; while one is in flight, a new
        login takes a random suffix (so two tabs never clobber each other's state).
        """
        taken = set(present)
        if self.state_cookie_name not in taken:
            return self.state_cookie_name
        while True:
            suffix = "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(8))
            name = f"{self.state_cookie_name}-{suffix}"
            if name not in taken:
                return name

    def state_cookie(self, state: OAuthState | str, *, secure: bool) -> str:
        """``Set-Cookie`` of the state cookie binding ``state`` to this browser (10 minutes,
        never stretched by cookie options).
        """
        opened = self.open_state(state) if isinstance(state, str) else state
        if opened is None:
            raise ValueError("not a state sealed by this service")
        value = self.cookies.encode(STATE, opened.cookie_name, {"s": opened.id})
        return format_set_cookie(
            opened.cookie_name,
            value,
            path=self.state_cookie_path,
            secure=secure,
            max_age=int(self.config.oauth_state_max_age),
            options=self.cookie_options_checked,
            stretchable=False,
        )

    def new_state(
        self,
        next_url: str,
        *,
        secure: bool,
        present: Iterable[str] = (),
        failures: int = 0,
    ) -> tuple[str, str, str]:
        """Start a login: ``(state, PKCE challenge or "", Set-Cookie of its state cookie)``.

        ``present``: the state cookie names the request carries (the new one avoids them).
        """
        verifier = challenge = ""
        if self.pkce_enabled:
            verifier, challenge, _ = self.generate_pkce_code_challenge()
        name = self.new_state_cookie_name(present)
        state, opened = self._seal(next_url, name, verifier, failures, None)
        return state, challenge, self.state_cookie(opened, secure=secure)

    def state_matches(self, state: OAuthState, values: Iterable[str]) -> bool:
        """Whether one of ``values`` (of the state's cookie) was set for this very login."""
        for value in values:
            data = self.cookies.decode(
                STATE, state.cookie_name, value, max_age=self.config.oauth_state_max_age
            )
            sid = data.get("s") if data is not None else None
            if isinstance(sid, str) and secrets.compare_digest(sid.encode(), state.id.encode()):
                return True
        return False

    def clear_state_cookie(self, name: str, *, secure: bool) -> str:
        return format_clear_cookie(
            name, path=self.state_cookie_path, secure=secure, options=self.cookie_options_checked
        )

    def get_next_url(self, state: str | Mapping[str, Any] | OAuthState | None = None) -> str:
        """Where a login goes on to, from its ``state`` (as sealed by this service, in any of
        its processes): always a local path, else the base URL.
        """
        if isinstance(state, OAuthState):
            return state.next_url or self.base_url
        if isinstance(state, Mapping):
            target = state.get("next", state.get("next_url", ""))
            return safe_next_url(target if isinstance(target, str) else "", self.base_url)
        opened = self.open_state(state)
        return opened.next_url if opened is not None and opened.next_url else self.base_url

    def authorize_url(self, state: str, code_challenge: str = "") -> str:
        """Where a browser goes to log in: the Hub's authorize URL with this login's state
        and PKCE challenge; or, when ``login_url`` is set, that URL with them added (as
        JupyterHub's mixin does).
        """
        if self.config.login_url:
            params = {"state": state}
            if code_challenge:
                params.update(code_challenge=code_challenge, code_challenge_method="S256")
            sep = "&" if "?" in self.config.login_url else "?"
            return f"{self.config.login_url}{sep}{urllib.parse.urlencode(params)}"
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


def _xsrf_message(token: str, session_id: str) -> bytes:
    digest = hashlib.sha256(token.encode("utf-8", "replace")).digest() if token else b""
    sid = session_id.encode("utf-8", "replace")[:256]
    return base64.b64encode(digest) + b"\0" + sid
