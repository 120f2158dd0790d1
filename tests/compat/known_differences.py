"""The tests of JupyterHub's own suite that hubauth does not pass, and why (issue 10).

Every entry must fail, with the given text in its failure (so a change in either project is
noticed); every test not listed must pass. ``DESELECTED`` tests are not run at all: they test
JupyterHub-private helpers that hubauth has no reason to have.
"""

from __future__ import annotations

DESELECTED = {
    "test_expiring_dict": "tests _ExpiringDict, JupyterHub's in-memory cache for OAuth state: "
    "hubauth keeps the state in the browser (sealed), so it has no such class",
}

# test id -> (text expected in the failure, reason)
KNOWN_FAILURES = {
    "test_pkce[incorrect-True-False]": (
        "assert 400 == 500",
        "when the Hub refuses a code (a wrong PKCE verifier), hubauth's callback answers 400 "
        "with the Hub's reason; JupyterHub's answers 500. hubauth never answers 500 for "
        "something that is not its own bug; pinned by test_flow.py's "
        "test_code_refused_is_400_and_hub_down_is_503",
    ),
    "test_pkce[incorrect-False-False]": (
        "assert 400 == 500",
        "as above, with PKCE not required by the Hub",
    ),
}
