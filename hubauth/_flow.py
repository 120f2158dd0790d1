"""Who is calling, and may they? Written once as I/O-free generators, run by every adapter.

A flow yields :class:`LookupUser` / :class:`ExchangeCode` steps and receives their results
(or has the :class:`~hubauth.errors.HubAuthError` thrown in); :func:`run_sync` and
:func:`run_async` (:mod:`hubauth._steps`) perform them with the sync or async driver. The
flows return a :class:`~hubauth._view.Decision` (built in :mod:`hubauth._decisions`) that
the Tornado, Flask, WSGI and ASGI adapters and the proxy only apply. This module is what
adapters import.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from typing import Any

from . import _protocol
from ._compat import SESSION_COOKIE
from ._decisions import (
    authorize,
    cross_site_refusal,
    hub_trouble,
    is_secure,
    login_redirect,
    needs_slash,
    redirect_with_slash,
    same_origin,
    to_login,
)
from ._steps import ExchangeCode, Flow, LookupUser, Step, advance, run_async, run_sync
from ._view import Decision, RequestView, is_navigation, log_safe
from .auth import HubAuth
from .cache import MISS
from .errors import HubAuthError, OAuthError
from .oauth import LOOP_WINDOW, MAX_LOGIN_FAILURES, HubOAuth, LoginCookie

__all__ = [
    "ExchangeCode",
    "Flow",
    "LookupUser",
    "Step",
    "advance",
    "authenticate",
    "cached_answer",
    "callback",
    "decide_sync",
    "is_secure",
    "login_redirect",
    "logout",
    "redirect_with_slash",
    "run_async",
    "run_sync",
    "same_origin",
]

log = logging.getLogger("hubauth")


def decide_sync(auth: HubAuth, view: RequestView, scopes: Iterable[str] | None = None) -> Decision:
    """Who sent ``view``, and may they, with blocking calls (Flask, WSGI): the trailing-slash
    redirect, a cached token's answer, or :func:`authenticate` run to its end.
    """
    required = frozenset(auth.access_scopes if scopes is None else scopes)
    header = view.header("authorization")
    return (
        redirect_with_slash(auth, view)
        or (cached_answer(auth, view.path, header, required) if header else None)
        or run_sync(auth, authenticate(auth, view, required))
    )


def _header_answer(
    auth: HubAuth, model: dict[str, object] | None, scopes: frozenset[str], token: str
) -> Decision:
    """What the Hub's answer about an Authorization-header token decides."""
    if model is None:
        return Decision(
            kind="deny",
            status=401,
            message="The Hub does not know this token.",
            www_authenticate=True,
        )
    return authorize(auth, model, scopes, token)


def cached_answer(
    auth: HubAuth, path: str, authorization: str, scopes: frozenset[str]
) -> Decision | None:
    """What :func:`authenticate` decides for a request with this Authorization header when
    the cache already answers for its token, found without a view or a flow (the hot path
    of a token-authenticated API). ``None``: run :func:`authenticate`.
    """
    if needs_slash(auth, path):
        return None
    token = _protocol.token_from_authorization(authorization)
    if token is None:
        return None  # the flow refuses it, with its explanation
    model = auth._cached_clean(token, "")
    if model is MISS:
        return None
    return _header_answer(auth, model, scopes, token)


def authenticate(
    auth: HubAuth,
    view: RequestView,
    scopes: Iterable[str] | None = None,
    *,
    lazy_login: bool = False,
) -> Flow:
    """Decide who sent ``view`` and whether they may: allow, redirect to log in, or refuse.

    Token sources in order: the Authorization header; ``?token=`` when allowed (or on a
    websocket handshake); the login cookie (HubOAuth). ``scopes`` replaces the service's
    access scopes (``()``: identify only). ``lazy_login``: see :func:`to_login`.
    """
    required = frozenset(auth.access_scopes if scopes is None else scopes)
    cookies: list[str] = []

    # 1. Authorization header: never turned into a cookie, never needs XSRF.
    header = view.header("authorization")
    if header:
        token = _protocol.token_from_authorization(header)
        if token is None:
            return Decision(
                kind="refuse",
                status=401,
                message="Malformed Authorization header: expected "
                "'token <token>' or 'bearer <token>'.",
                www_authenticate=True,
            )
        try:
            model = yield LookupUser(token)
        except HubAuthError as e:
            return hub_trouble(e)
        return _header_answer(auth, model, required, token)

    secure = is_secure(auth, view)  # from here on, cookies may be set or cleared

    # 2. ?token= in the URL: only when allowed, or on a websocket handshake.
    url_token = view.query_value("token")
    if url_token and (auth.allow_token_in_url or view.is_websocket):
        token = _protocol.clean_token(url_token)
        if token is not None:
            try:
                model = yield LookupUser(token)
            except HubAuthError as e:
                return hub_trouble(e)
            if model is not None:
                if isinstance(auth, HubOAuth) and auth.allow_token_in_url and is_navigation(view):
                    cookies.append(auth.login_cookie(token, secure=secure))
                return authorize(auth, model, required, token, cookies, source="url")

    # 3. The login cookie (HubOAuth only).
    failures = 0
    if isinstance(auth, HubOAuth) and not (
        view.is_websocket and not auth.allow_websocket_cookie_auth
    ):
        values = view.cookie_values(auth.cookie_name)
        found = auth.read_login_cookies(values) if values else []
        if values and not found:
            cookies.append(auth.clear_login_cookie(secure=secure))  # tampered, or an old key
        if found:
            outcome = yield from _login_cookie(auth, view, found, len(values), required, secure)
            if isinstance(outcome, Decision):
                return outcome
            failures = outcome
            cookies.append(auth.clear_login_cookie(secure=secure))
            if failures >= MAX_LOGIN_FAILURES:
                log.warning(
                    "The Hub rejected the tokens of %d logins in a row, each just after it "
                    "was issued: not looping",
                    failures,
                )
                return Decision(
                    kind="refuse",
                    status=403,
                    message="Login loop stopped: the Hub refused, several times in a row, "
                    "the token it had just issued. Log out of the Hub and in again, or ask "
                    "an administrator to check this service's OAuth configuration.",
                    cookies=tuple(cookies),
                )

    return to_login(auth, view, secure, cookies, failures=failures, lazy=lazy_login)


def _login_cookie(
    auth: HubOAuth,
    view: RequestView,
    found: list[LoginCookie],
    sent: int,
    required: frozenset[str],
    secure: bool,
) -> Generator[Step, Any, Decision | int]:
    """Try each readable login cookie (newest first) until the Hub accepts one.

    Returns the allow/deny/refuse Decision, or the count of failed logins in a row when the
    Hub accepted none (a cookie it rejects within :data:`LOOP_WINDOW` of being set counts).
    """
    session_id = view.cookie(SESSION_COOKIE)
    if view.unsafe or view.is_websocket:
        # A websocket handshake is a GET, but what it opens acts as the user: a page of
        # another origin must not open one with the cookie (cross-site websocket hijacking;
        # browsers always send Origin on a handshake).
        found = [c for c in found if same_origin(auth, view, c.token, session_id)]
        if not found:
            return cross_site_refusal(view)
    failures = 0
    for candidate in found:
        try:
            model = yield LookupUser(candidate.token, session_id)
        except HubAuthError as e:
            return hub_trouble(e)
        if model is not None:
            refresh: list[str] = []
            if candidate.failures and sent == 1:
                # The login worked after all: start counting failed logins afresh.
                refresh.append(auth.login_cookie(candidate.token, secure=secure))
            return authorize(auth, model, required, candidate.token, refresh, source="cookie")
        if auth.clock() - candidate.issued < LOOP_WINDOW:
            failures = max(failures, candidate.failures + 1)
    return failures


def callback(auth: HubOAuth, view: RequestView) -> Flow:
    """The OAuth callback: check ``state`` against its cookie, exchange the code, set the
    login cookie, and send the browser on to where it was going. A callback whose state
    cookie is gone (another tab finished first, a double click) only redirects, and only
    when the browser is logged in with a token the Hub accepts.
    """
    secure = is_secure(auth, view)
    error = view.query_value("error")
    if error:
        desc = view.query_value("error_description")[:300] or error[:100]
        log.warning("The Hub answered the login with an error: %s", log_safe(desc, 300))
        return Decision(kind="refuse", status=400, message=f"The Hub did not log you in: {desc}")
    code, raw_state = view.query_value("code"), view.query_value("state")
    if not code or not raw_state:
        return Decision(
            kind="refuse",
            status=400,
            message="This login link is incomplete (no code or state); "
            "start again from the service.",
        )
    state = auth.open_state(raw_state)
    mismatch = Decision(
        kind="refuse",
        status=403,
        message="This login does not match one started in this browser (or it took "
        f"longer than {int(auth.config.oauth_state_max_age)}s). Try logging in again: "
        f"{auth.base_url}",
    )
    if state is None:
        log.warning("OAuth callback with a state this service did not issue (or expired)")
        return mismatch
    # A finished login clears every state cookie (other tabs land through the branch below).
    cookies = [
        auth.clear_state_cookie(name, secure=secure)
        for name in auth.state_cookie_names(view.cookies)
    ]
    session_id = view.cookie(SESSION_COOKIE)
    if not auth.state_matches(state, view.cookie_values(state.cookie_name)):
        for candidate in auth.read_login_cookies(view.cookie_values(auth.cookie_name)):
            try:
                model = yield LookupUser(candidate.token, session_id)
            except HubAuthError as e:
                return hub_trouble(e)
            if model is not None:
                # Already logged in: go where this login was going; no new token.
                return Decision(
                    kind="redirect", status=302, location=state.next_url, cookies=tuple(cookies)
                )
        log.warning("OAuth callback with a state that matches no state cookie: refused")
        return mismatch
    try:
        token = yield ExchangeCode(code[:2048], state.verifier)
    except OAuthError as e:
        log.warning("The Hub refused the login code: %s", e)
        return Decision(
            kind="refuse",
            status=400,
            message=f"The Hub refused this login: {e}",
            cookies=tuple(cookies),
        )
    except HubAuthError as e:
        return hub_trouble(e, cookies)
    token = _protocol.clean_token(token)
    if token is None:
        log.warning("The Hub issued an access token that cannot be a token")
        return Decision(
            kind="refuse",
            status=502,
            message="The Hub issued an unusable token.",
            cookies=tuple(cookies),
        )
    try:
        model = yield LookupUser(token, session_id)
    except HubAuthError as e:
        return hub_trouble(e, cookies)
    if model is None:
        log.warning("The Hub does not know the token it just issued")
        return Decision(
            kind="refuse",
            status=502,
            message="The Hub issued a token it does not recognise.",
            cookies=tuple(cookies),
        )
    log.info("%s logged in through the Hub", log_safe(str(model.get("name"))))
    cookies.append(auth.login_cookie(token, secure=secure, failures=state.failures))
    cookies.append(auth.xsrf_cookie(token, session_id, secure=secure))  # this login's token
    return Decision(kind="redirect", status=302, location=state.next_url, cookies=tuple(cookies))


def logout(auth: HubOAuth, view: RequestView) -> Decision:
    """Clear the login and state cookies, forget the login's tokens in the cache (a copy of
    the cookie must not keep working), and end the Hub session too (else the next visit
    logs straight back in).
    """
    secure = is_secure(auth, view)
    for candidate in auth.read_login_cookies(view.cookie_values(auth.cookie_name)):
        auth.evict_token(candidate.token)
    cookies = [auth.clear_login_cookie(secure=secure)]
    for name in auth.state_cookie_names(view.cookies):
        cookies.append(auth.clear_state_cookie(name, secure=secure))
    hub_logout = f"{auth.hub_host}{auth.hub_prefix}logout"
    return Decision(kind="redirect", status=302, location=hub_logout, cookies=tuple(cookies))
