"""Check a caller's token with the Hub from any code (docs/quickstarts/token-api.md).

tests/test_docs.py runs this file against hubauth's fake Hub, so what the page shows works.
"""

from __future__ import annotations

from typing import Any

import hubauth

auth = hubauth.HubAuth()  # every setting from the JUPYTERHUB_* environment


def identify(authorization: str) -> tuple[int, dict[str, Any] | None]:
    """(HTTP status to answer, the caller's Hub model) for an Authorization header value."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token:
        return 401, None
    try:
        model = auth.user_for_token(token)  # cached; `await ... sync=False` in async code
    except hubauth.HubUnavailable:
        return 503, None  # the Hub is down or unreachable: try again later
    except hubauth.HubResponseError:
        return 502, None  # the Hub answered, but not as it should
    if model is None:
        return 401, None  # the Hub does not know this token
    if auth.access_scopes and not auth.check_scopes(auth.access_scopes, model):
        return 403, model  # known, but not allowed to use this service
    return 200, model
