"""The two things a flow asks of the Hub, and the two runners that perform them.

A flow (:mod:`hubauth._flow`) is a generator: it yields :class:`LookupUser` or
:class:`ExchangeCode` and receives their result (or has the
:class:`~hubauth.errors.HubAuthError` thrown in). :func:`advance` answers lookups from the
cache with no I/O; :func:`run_sync` and :func:`run_async` do the rest with the blocking or
the asynchronous driver. This is the only place that drives flows.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ._view import Decision
from .auth import HubAuth
from .cache import MISS
from .errors import HubAuthError
from .oauth import HubOAuth

__all__ = ["ExchangeCode", "Flow", "LookupUser", "Step", "advance", "run_async", "run_sync"]


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
