"""Who is calling, and may they? Written once as I/O-free generators, run by every adapter.

A flow yields :class:`LookupUser` / :class:`ExchangeCode` steps and receives their results
(or has the :class:`~hubauth.errors.HubAuthError` thrown in); :func:`run_sync` and
:func:`run_async` perform the steps with the sync or async driver. The flows return a
:class:`~hubauth._view.Decision` that the Tornado, Flask and WSGI adapters only apply.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

from . import _protocol
from ._view import Decision, RequestView, is_api_request, is_navigation, safe_next_url
from .auth import HubAuth
from .cache import MISS
from .errors import HubAuthError, HubUnavailable, OAuthError
from .oauth import LOOP_WINDOW, MAX_STATE_COOKIES, HubOAuth

__all__ = [
    "ExchangeCode",
    "LookupUser",
    "advance",
    "authenticate",
    "cached_answer",
    "callback",
    "decide_sync",
    "is_secure",
    "logout",
    "redirect_with_slash",
    "run_async",
    "run_sync",
]

log = logging.getLogger("hubauth")

Model = dict[str, Any]
SESSION_COOKIE = "jupyterhub-session-id"


@dataclass(frozen=True)
class LookupUser:
    """Ask the Hub (through the cache) who holds ``token``."""

    token: str
    session_id: str = ""

    def __repr__(self) -> str:
        return "LookupUser(token=[secure])"


@dataclass(frozen=True)
class ExchangeCode:
    """Exchange an OAuth authorization code (with its PKCE verifier) for a token."""

    code: str
    verifier: str

    def __repr__(self) -> str:
        return "ExchangeCode(code=[secure])"


Step = LookupUser | ExchangeCode
Flow = Generator[Step, Any, Decision]


def _oauth(auth: HubAuth) -> HubOAuth:
    if not isinstance(auth, HubOAuth):
        raise TypeError(f"the OAuth callback needs a HubOAuth, not {type(auth).__name__}")
    return auth


def advance(
    auth: HubAuth, flow: Flow, result: Any = None, error: HubAuthError | None = None
) -> Decision | Step:
    """Feed the flow ``result`` (or ``error``) and go on, answering lookups from the cache,
    until it decides (a :class:`Decision`) or needs the Hub (the :class:`Step` to perform).

    Both runners share this; on a cache hit the whole flow runs here, with no I/O and no
    coroutine.
    """
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as done:
            decision: Decision = done.value
            return decision
        result, error = None, None
        if isinstance(step, LookupUser):
            # (LookupUser tokens were checked with clean_token where they were read.)
            result = auth._cached_clean(step.token, step.session_id)
            if result is not MISS:
                continue
            result = None
        return step


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


def run_sync(auth: HubAuth, flow: Flow) -> Decision:
    """Run a flow with blocking calls (Flask, WSGI, threads)."""
    outcome = advance(auth, flow)
    while not isinstance(outcome, Decision):
        result: Any = None
        error: HubAuthError | None = None
        try:
            if isinstance(outcome, LookupUser):
                result = auth.user_for_token(outcome.token, session_id=outcome.session_id)
            else:
                code, verifier = outcome.code, outcome.verifier or None
                result = _oauth(auth).token_for_code(code, code_verifier=verifier)
        except HubAuthError as e:
            error = e
        outcome = advance(auth, flow, result, error)
    return outcome


async def run_async(auth: HubAuth, flow: Flow, outcome: Decision | Step | None = None) -> Decision:
    """Run a flow on the event loop (Tornado): the twin of :func:`run_sync`. ``outcome``
    resumes a flow that :func:`advance` has already taken as far as the cache allowed.
    """
    if outcome is None:
        outcome = advance(auth, flow)
    while not isinstance(outcome, Decision):
        result: Any = None
        error: HubAuthError | None = None
        try:
            if isinstance(outcome, LookupUser):
                result = await auth.user_for_token(
                    outcome.token, session_id=outcome.session_id, sync=False
                )
            else:
                code, verifier = outcome.code, outcome.verifier or None
                result = await _oauth(auth).token_for_code(code, code_verifier=verifier, sync=False)
        except HubAuthError as e:
            error = e
        outcome = advance(auth, flow, result, error)
    return outcome


# ---------------------------------------------------------------- helpers


def is_secure(auth: HubAuth, view: RequestView) -> bool:
    """Whether cookies get ``Secure``: the public URL first, then the proxy's header, then
    the request's own scheme.
    """
    public = auth.config.public_url or auth.config.public_hub_url
    if public:
        return public.startswith("https:")
    forwarded = view.header("x-forwarded-proto")
    if forwarded:
        return forwarded.split(",")[0].strip().lower() == "https"
    return view.scheme == "https"


def _origin(view: RequestView) -> str:
    forwarded = view.header("x-forwarded-proto").split(",")[0].strip().lower()
    scheme = forwarded or view.scheme
    host = view.header("x-forwarded-host").split(",")[0].strip() or view.host
    return f"{scheme}://{host}".lower()


def same_origin(view: RequestView) -> bool:
    """Evidence that an unsafe request came from our own pages (SPEC §5 CSRF rule)."""
    if view.xsrf_valid:
        return True
    site = view.header("sec-fetch-site").lower()
    if site in ("same-origin", "none"):
        return True
    if site:  # cross-site or same-site (another service on the same host): no
        return False
    origin = view.header("origin").lower()
    return bool(origin) and origin != "null" and origin == _origin(view)


def _hub_trouble(e: HubAuthError, cookies: Iterable[str] = ()) -> Decision:
    log.warning("Could not check credentials with the Hub: %s", e)
    if isinstance(e, HubUnavailable):
        return Decision(
            kind="refuse",
            status=503,
            message="The Hub could not be reached to check your credentials; try again shortly.",
            cookies=tuple(cookies),
        )
    return Decision(
        kind="refuse",
        status=502,
        message="The Hub gave an unexpected answer while checking your credentials.",
        cookies=tuple(cookies),
    )


def _authorize(
    auth: HubAuth,
    model: Model,
    scopes: frozenset[str],
    token: str,
    cookies: Iterable[str] = (),
) -> Decision:
    """Allow a known user if any required scope is granted; a deny is a 403, never a login."""
    if not scopes or auth.check_scopes(scopes, model):
        return Decision(kind="allow", user=model, cookies=tuple(cookies), token=token)
    log.info(
        "%s %s lacks every one of the scopes %s",
        model.get("kind", "user"),
        model.get("name"),
        sorted(scopes),
    )
    return Decision(
        kind="deny",
        status=403,
        message=f"You are logged in as {model.get('name')!s}, but that account may not use this "
        f"service (it needs one of the scopes: {', '.join(sorted(scopes))}).",
        cookies=tuple(cookies),
    )


def _to_login(auth: HubAuth, view: RequestView, secure: bool, cookies: list[str]) -> Decision:
    """Not authenticated: send a browser navigation to the Hub; refuse anything else."""
    if isinstance(auth, HubOAuth) and is_navigation(view):
        state, challenge, state_cookie = auth.new_state(view.uri, secure=secure)
        # Keep a bounded number of logins in flight: clear the oldest state cookies.
        prefix = auth.state_cookie_name + "-"
        inflight = [name for name, _ in view.cookies if name.startswith(prefix)]
        for name in list(dict.fromkeys(inflight))[: max(0, len(inflight) - MAX_STATE_COOKIES + 1)]:
            cookies.append(auth.clear_state_cookie(name, secure=secure))
        cookies.append(state_cookie)
        return Decision(
            kind="login",
            status=302,
            location=auth.authorize_url(state, challenge),
            cookies=tuple(cookies),
        )
    return Decision(
        kind="deny",
        status=401,
        message="Authentication required: send 'Authorization: token <token>'"
        + (", or log in with a browser." if isinstance(auth, HubOAuth) else "."),
        cookies=tuple(cookies),
        www_authenticate=is_api_request(view) or not isinstance(auth, HubOAuth),
    )


def _header_answer(
    auth: HubAuth, model: Model | None, scopes: frozenset[str], token: str
) -> Decision:
    """What the Hub's answer about an Authorization-header token decides."""
    if model is None:
        return Decision(
            kind="deny",
            status=401,
            message="The Hub does not know this token.",
            www_authenticate=True,
        )
    return _authorize(auth, model, scopes, token)


# ---------------------------------------------------------------- the flows


def cached_answer(
    auth: HubAuth, path: str, authorization: str, scopes: frozenset[str]
) -> Decision | None:
    """What :func:`authenticate` decides for a request with this Authorization header when
    the cache already answers for its token, found without a view or a flow (the hot path
    of a token-authenticated API). ``None``: run :func:`authenticate`.
    """
    if _needs_slash(auth, path):
        return None
    token = _protocol.token_from_authorization(authorization)
    if token is None:
        return None  # the flow refuses it, with its explanation
    model = auth._cached_clean(token, "")
    if model is MISS:
        return None
    return _header_answer(auth, model, scopes, token)


def authenticate(auth: HubAuth, view: RequestView, scopes: Iterable[str] | None = None) -> Flow:
    """Decide who sent ``view`` and whether they may: allow, redirect to log in, or refuse.

    Token sources in order: the Authorization header; ``?token=`` when allowed (or on a
    websocket handshake); the login cookie (HubOAuth). ``scopes`` replaces the service's
    access scopes.
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
            return _hub_trouble(e)
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
                return _hub_trouble(e)
            if model is not None:
                if isinstance(auth, HubOAuth) and auth.allow_token_in_url and is_navigation(view):
                    cookies.append(auth.login_cookie(token, secure=secure))
                return _authorize(auth, model, required, token, cookies)

    # 3. The login cookie (HubOAuth only).
    if isinstance(auth, HubOAuth) and not (
        view.is_websocket and not auth.allow_websocket_cookie_auth
    ):
        values = view.cookie_values(auth.cookie_name)
        found = auth.read_login_cookie(values) if values else None
        if values and found is None:
            cookies.append(auth.clear_login_cookie(secure=secure))  # tampered, or an old key
        if found is not None:
            token, issued = found
            if view.unsafe and not same_origin(view):
                log.warning(
                    "Refused a cross-site %s to %s authenticated only by cookie "
                    "(no same-origin Origin, Sec-Fetch-Site or XSRF token)",
                    view.method,
                    view.path,
                )
                return Decision(
                    kind="refuse",
                    status=403,
                    message=f"Cross-site request refused: this {view.method} came with only "
                    "the login cookie and no sign that it was sent from this service's own "
                    "pages (a same-origin Origin or Sec-Fetch-Site header, or an XSRF "
                    "token). Send it from the service's pages, or with an Authorization "
                    "header.",
                )
            try:
                model = yield LookupUser(token, view.cookie(SESSION_COOKIE))
            except HubAuthError as e:
                return _hub_trouble(e)
            if model is not None:
                return _authorize(auth, model, required, token)
            cookies.append(auth.clear_login_cookie(secure=secure))
            if auth.clock() - issued < LOOP_WINDOW:
                log.warning(
                    "The Hub rejected a login token issued %.0fs ago: not looping",
                    auth.clock() - issued,
                )
                return Decision(
                    kind="refuse",
                    status=403,
                    message="Login loop stopped: the Hub refused the token it issued moments "
                    "ago. Log out of the Hub and in again, or ask an administrator to check "
                    "this service's OAuth configuration.",
                    cookies=tuple(cookies),
                )

    return _to_login(auth, view, secure, cookies)


def callback(auth: HubOAuth, view: RequestView) -> Flow:
    """The OAuth callback: check state against its cookie, exchange the code, set the login
    cookie, and send the browser on to where it was going.
    """
    secure = is_secure(auth, view)
    error = view.query_value("error")
    if error:
        desc = view.query_value("error_description")[:300] or error[:100]
        log.warning("The Hub answered the login with an error: %s", desc)
        return Decision(kind="refuse", status=400, message=f"The Hub did not log you in: {desc}")
    code, state = view.query_value("code"), view.query_value("state")
    if not code or not state:
        return Decision(
            kind="refuse",
            status=400,
            message="This login link is incomplete (no code or state); "
            "start again from the service.",
        )
    state_name = auth.state_cookie_name_for(state)
    found = auth.read_state(state, view.cookie_values(state_name))
    logged_in = auth.read_login_cookie(view.cookie_values(auth.cookie_name))
    if found is None:
        if logged_in is not None:
            # A replayed or doubled callback from a browser that is already logged in.
            return Decision(kind="redirect", status=302, location=auth.base_url)
        log.warning("OAuth callback with a state that matches no state cookie: refused")
        return Decision(
            kind="refuse",
            status=403,
            message="This login does not match one started in this browser (or it took "
            f"longer than {int(auth.config.oauth_state_max_age)}s). Try logging in again: "
            f"{auth.base_url}",
            location="",
        )
    cookies = [auth.clear_state_cookie(state_name, secure=secure)]
    if logged_in is not None:
        return Decision(kind="redirect", status=302, location=found["next"], cookies=tuple(cookies))
    try:
        token = yield ExchangeCode(code[:2048], found["verifier"])
    except OAuthError as e:
        log.warning("The Hub refused the login code: %s", e)
        return Decision(
            kind="refuse",
            status=400,
            message=f"The Hub refused this login: {e}",
            cookies=tuple(cookies),
        )
    except HubAuthError as e:
        return _hub_trouble(e, cookies)
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
        model = yield LookupUser(token, view.cookie(SESSION_COOKIE))
    except HubAuthError as e:
        return _hub_trouble(e, cookies)
    if model is None:
        log.warning("The Hub does not know the token it just issued")
        return Decision(
            kind="refuse",
            status=502,
            message="The Hub issued a token it does not recognise.",
            cookies=tuple(cookies),
        )
    log.info("%s logged in through the Hub", model.get("name"))
    cookies.append(auth.login_cookie(token, secure=secure))
    return Decision(kind="redirect", status=302, location=found["next"], cookies=tuple(cookies))


def logout(auth: HubOAuth, view: RequestView) -> Decision:
    """Clear the login cookie and end the Hub session too (else the next visit logs back in)."""
    secure = is_secure(auth, view)
    cookies = [auth.clear_login_cookie(secure=secure)]
    prefix = auth.state_cookie_name + "-"
    for name in dict.fromkeys(n for n, _ in view.cookies if n.startswith(prefix)):
        cookies.append(auth.clear_state_cookie(name, secure=secure))
    hub_logout = f"{auth.hub_host}{auth.hub_prefix}logout"
    return Decision(kind="redirect", status=302, location=hub_logout, cookies=tuple(cookies))


def redirect_with_slash(auth: HubAuth, view: RequestView) -> Decision | None:
    """``/services/x`` → ``/services/x/``: the cookies live on the slashed path."""
    if _needs_slash(auth, view.path):
        target = safe_next_url(
            auth.base_url + (f"?{view.query}" if view.query else ""), auth.base_url
        )
        return Decision(kind="redirect", status=302, location=target)
    return None


def _needs_slash(auth: HubAuth, path: str) -> bool:
    base = auth.base_url
    return base != "/" and path + "/" == base
