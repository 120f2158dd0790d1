"""The decisions the flows reach, each built in one place: allow, deny, refuse, log in.

Also the two questions every decision depends on: is the request HTTPS (:func:`is_secure`,
for ``Secure`` cookies) and did an unsafe cookie-authenticated request come from our own
pages (:func:`same_origin`, the CSRF rule of SPEC §5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ._view import Decision, RequestView, is_api_request, is_navigation, log_safe, safe_next_url
from .auth import HubAuth
from .errors import HubAuthError, HubUnavailable
from .oauth import MAX_STATE_COOKIES, HubOAuth

__all__ = [
    "authorize",
    "cross_site_refusal",
    "deny_scopes",
    "hub_trouble",
    "is_secure",
    "login_redirect",
    "needs_slash",
    "redirect_with_slash",
    "same_origin",
    "site_is_foreign",
    "to_login",
]

log = logging.getLogger("hubauth")

Model = dict[str, Any]
_OWN_SITES = ("same-origin", "none")


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


_WEB_SCHEMES = {"ws": "http", "wss": "https"}  # proxies forward websockets as ws / wss


def _origin(view: RequestView) -> str:
    forwarded = view.header("x-forwarded-proto").split(",")[0].strip().lower()
    scheme = forwarded or view.scheme
    scheme = _WEB_SCHEMES.get(scheme, scheme)  # an Origin is always http(s)
    host = view.header("x-forwarded-host").split(",")[0].strip() or view.host
    return f"{scheme}://{host}".lower()


def site_is_foreign(view: RequestView) -> bool:
    """The browser says the request comes from another site (``Sec-Fetch-Site`` is
    ``cross-site``, or ``same-site``: a sibling subdomain, such as another user's server).
    No XSRF token outweighs that.
    """
    site = view.header("sec-fetch-site").lower()
    return bool(site) and site not in _OWN_SITES


def same_origin(auth: HubAuth, view: RequestView, token: str = "", session_id: str = "") -> bool:
    """Evidence that an unsafe request authenticated by the login cookie holding ``token``
    came from this service's own pages (SPEC §5): never when the browser says another site
    sent it; else an XSRF token bound to this very login, or (unless the app requires XSRF
    tokens) ``Sec-Fetch-Site: same-origin``/``none`` or an ``Origin`` equal to ours.
    """
    if site_is_foreign(view):
        return False
    submitted = view.xsrf_token
    bound = (
        bool(submitted)
        and isinstance(auth, HubOAuth)
        and auth.check_xsrf_token(submitted, token, session_id)
    )
    if bound or view.xsrf_required:
        return bound
    if view.header("sec-fetch-site"):
        return True  # same-origin, or none (typed into the address bar, a bookmark)
    origin = view.header("origin").lower()
    return bool(origin) and origin != "null" and origin == _origin(view)


def cross_site_refusal(view: RequestView) -> Decision:
    """403 for an unsafe request that came with only the login cookie, saying so (and a
    warning in the log), instead of silently treating the user as anonymous.
    """
    why = "from another site" if site_is_foreign(view) else "with no sign of coming from here"
    what = "websocket handshake" if view.is_websocket else view.method[:10]
    log.warning(
        "Refused a cross-site %s to %s authenticated only by cookie (%s: no same-origin "
        "Origin or Sec-Fetch-Site, or an XSRF token bound to the login)",
        log_safe(what, 20),
        log_safe(view.path),
        why,
    )
    return Decision(
        kind="refuse",
        status=403,
        message=f"Cross-site request refused: this {what} came with only the login cookie "
        "and no sign that it was sent from this service's own pages (a same-origin Origin "
        "or Sec-Fetch-Site header, or an XSRF token of this login). Send it from the "
        "service's pages, or with a token (Authorization header, or ?token= on a websocket).",
    )


def hub_trouble(e: HubAuthError, cookies: Iterable[str] = ()) -> Decision:
    """502 (the Hub answered nonsense) or 503 (it could not be reached), never a 500."""
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


def deny_scopes(model: Model, scopes: Iterable[str], cookies: Iterable[str] = ()) -> Decision:
    """403 for a known caller without any of ``scopes``: a deny, never a login (that loops)."""
    needed = sorted(scopes)
    log.warning(
        "Not allowing Hub %s %s: it has none of the required scopes %s",
        log_safe(str(model.get("kind", "user")), 20),
        log_safe(str(model.get("name"))),
        needed,
    )
    return Decision(
        kind="deny",
        status=403,
        message=f"You are logged in as {model.get('name')!s}, but that account may not use this "
        f"service (it needs one of the scopes: {', '.join(needed)}).",
        cookies=tuple(cookies),
    )


def authorize(
    auth: HubAuth,
    model: Model,
    scopes: frozenset[str],
    token: str,
    cookies: Iterable[str] = (),
    source: str = "header",
) -> Decision:
    """Allow a known caller if any required scope is granted (none required: anyone)."""
    if not scopes or auth.check_scopes(scopes, model):
        return Decision(
            kind="allow", user=model, cookies=tuple(cookies), token=token, source=source
        )
    return deny_scopes(model, scopes, cookies)


def login_redirect(
    auth: HubOAuth,
    view: RequestView,
    *,
    secure: bool | None = None,
    cookies: Iterable[str] = (),
    failures: int = 0,
) -> Decision:
    """Send a browser to the Hub to log in: a new state (sealed next URL and PKCE verifier)
    and its state cookie, clearing the oldest state cookies beyond the bound.
    """
    secure = is_secure(auth, view) if secure is None else secure
    out = list(cookies)
    inflight = auth.state_cookie_names(view.cookies)
    for name in inflight[: max(0, len(inflight) - MAX_STATE_COOKIES + 1)]:
        out.append(auth.clear_state_cookie(name, secure=secure))
    state, challenge, state_cookie = auth.new_state(
        view.uri, secure=secure, present=inflight, failures=failures
    )
    out.append(state_cookie)
    return Decision(
        kind="login",
        status=302,
        location=auth.authorize_url(state, challenge),
        cookies=tuple(out),
        failures=failures,
    )


def to_login(
    auth: HubAuth,
    view: RequestView,
    secure: bool,
    cookies: list[str],
    *,
    failures: int = 0,
    lazy: bool = False,
) -> Decision:
    """Not authenticated: send a browser navigation to the Hub; refuse anything else.

    ``lazy``: say that a login is due (``kind="login"``, no location) and let the adapter
    call :func:`login_redirect` when it redirects (Tornado's ``get_login_url``), so no state
    cookie is made for a request that is not redirected after all.
    """
    if isinstance(auth, HubOAuth) and is_navigation(view):
        if lazy:
            return Decision(kind="login", status=302, cookies=tuple(cookies), failures=failures)
        return login_redirect(auth, view, secure=secure, cookies=cookies, failures=failures)
    return Decision(
        kind="deny",
        status=401,
        message="Authentication required: send 'Authorization: token <token>'"
        + (", or log in with a browser." if isinstance(auth, HubOAuth) else "."),
        cookies=tuple(cookies),
        www_authenticate=is_api_request(view) or not isinstance(auth, HubOAuth),
    )


def redirect_with_slash(auth: HubAuth, view: RequestView) -> Decision | None:
    """``/services/x`` → ``/services/x/``: the cookies live on the slashed path."""
    if needs_slash(auth, view.path):
        target = safe_next_url(
            auth.base_url + (f"?{view.query}" if view.query else ""), auth.base_url
        )
        return Decision(kind="redirect", status=302, location=target)
    return None


def needs_slash(auth: HubAuth, path: str) -> bool:
    base = auth.base_url
    return base != "/" and path + "/" == base
