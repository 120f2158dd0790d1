"""Who may pass the proxy: the core flows, run on a Tornado request, and their answers.

Nothing here decides on credentials: :func:`Gate.decide` translates the request
(:func:`hubauth.tornado.view_of`), runs the same flows as every adapter
(``redirect_with_slash``, ``cached_answer``, ``authenticate``) and returns their
:class:`~hubauth._view.Decision`. What the proxy adds is which scopes a path needs
(``--scope``, ``--path-scope``), which paths need none (``--public``), and the
``--user``/``--group`` allow-lists, checked against the Hub's own answer about the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tornado.web import RequestHandler

from .._flow import advance, authenticate, cached_answer, redirect_with_slash, run_async
from .._view import Decision, RequestView, log_safe
from ..oauth import HubOAuth
from ..tornado import answer, view_of
from ._options import ProxyOptions

__all__ = ["Gate", "answer", "answer_page"]

log = logging.getLogger("hubauth.proxy")


class Gate:
    """The proxy's access rules, applied through the core flows."""

    def __init__(self, auth: HubOAuth, options: ProxyOptions) -> None:
        self.auth = auth
        self.scopes = frozenset(auth.access_scopes if options.scopes is None else options.scopes)
        # Longest paths first, so the most specific rule wins.
        self.path_scopes = sorted(options.path_scopes, key=lambda r: -len(r[0]))
        self.public_paths = options.public_paths
        self.users = options.users
        self.groups = options.groups

    def required(self, path: str) -> frozenset[str]:
        """The scopes a request to ``path`` needs (any one of them)."""
        for rule, scopes in self.path_scopes:
            if _matches(rule, path):
                return scopes
        return self.scopes

    def is_public(self, path: str) -> bool:
        return any(_matches(p, path) for p in self.public_paths)

    def member(self, model: Mapping[str, Any]) -> bool:
        """With ``--user``/``--group``: whether the caller is one of those users or in one of
        those groups, by the Hub's answer (which always carries the caller's name and groups).
        Services are never members. Without them: everyone the scopes let in.
        """
        if not self.users and not self.groups:
            return True
        if model.get("kind", "user") != "user":
            return False
        if model.get("name") in self.users:
            return True
        groups = model.get("groups") or ()
        return any(isinstance(g, str) and g in self.groups for g in groups)

    async def decide(self, handler: RequestHandler, view: RequestView | None = None) -> Decision:
        """The core's decision for this request (``view``: another view of it, for
        forward-auth), with the allow-lists applied to an allowed caller.
        """
        auth = self.auth
        if view is None:
            path = handler.request.path
            header = handler.request.headers.get("Authorization")
            if header:
                known = cached_answer(auth, path, header, self.required(path))
                if known is not None:
                    return self._members_only(known)
            view = view_of(handler)
        slash = redirect_with_slash(auth, view)
        if slash is not None:
            return slash
        flow = authenticate(auth, view, self.required(view.path))
        outcome = advance(auth, flow)
        if not isinstance(outcome, Decision):
            outcome = await run_async(auth, flow, outcome)
        return self._members_only(outcome)

    def _members_only(self, decision: Decision) -> Decision:
        user = decision.user
        if not decision.allowed or user is None or self.member(user):
            return decision
        log.info("%s is not in --user/--group: refused", log_safe(user.get("name")))
        return Decision(
            kind="deny",
            status=403,
            message=f"You are logged in as {user.get('name')!s}, but this app is only for "
            "some users or groups, and that account is not one of them.",
            cookies=decision.cookies,
        )


def _matches(rule: str, path: str) -> bool:
    """Exact match, or anything below a rule that ends with ``/``."""
    return path == rule or (rule.endswith("/") and path.startswith(rule))


def answer_page(handler: RequestHandler, decision: Decision, view: RequestView) -> None:
    """:func:`hubauth.tornado.answer`, keeping the headers already set."""
    answer(handler, decision, view, clear=False)
