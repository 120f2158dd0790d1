"""A real, in-process fake JupyterHub for tests, and the pytest plugin that serves it.

:class:`FakeHub` is a Tornado HTTP server on ``127.0.0.1`` (ephemeral port) running its own
event loop in a daemon thread, so sync code (``requests``) and async code (any other loop)
talk to it over real sockets. It answers the Hub's auth protocol (``GET /hub/api/user``,
``/hub/api/oauth2/authorize``, ``POST /hub/api/oauth2/token``) from state the test sets,
and misbehaves on demand (``hub.fault = "down" | "slow" | "status" | ...``) while running.

The plugin (entry point ``pytest11: hubauth``) provides two fixtures:

- ``fake_hub``: a started :class:`FakeHub`, stopped after the test.
- ``fake_hub_env``: ``fake_hub`` plus the ``JUPYTERHUB_*`` environment a Hub gives a
  service named ``test-service`` (its token is registered as that service's OAuth client
  secret); other ``JUPYTERHUB_*`` variables are removed. Returns the variables as a dict.

Testing one's own service::

    import hubauth

    def test_service_identifies_alice(fake_hub, fake_hub_env):
        token = fake_hub.add_user("alice", groups=["staff"])
        auth = hubauth.HubAuth()  # configured from fake_hub_env
        assert auth.user_for_token(token)["groups"] == ["staff"]
        assert auth.user_for_token("not-a-token") is None
        fake_hub.fault = "down"  # the Hub goes away: connections are refused
        with pytest.raises(hubauth.HubUnavailable):
            auth.user_for_token(token, use_cache=False)
        assert fake_hub.count("/hub/api/user") == 2

Browser logins auto-approve as the user in the ``fakehub-user`` cookie (set by
``GET /hub/login?user=NAME&next=PATH``), else :attr:`FakeHub.default_login`.
Tokens never appear in what the fake hub logs (logger ``hubauth.testing``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ._fakehub import COOKIE_NAME as COOKIE_NAME
from ._fakehub import DEFAULT_FAULT_PATHS as DEFAULT_FAULT_PATHS
from ._fakehub import DEFAULT_USER_SCOPES as DEFAULT_USER_SCOPES
from ._fakehub import FAULTS as FAULTS
from ._fakehub import Answer as Answer
from ._fakehub import FakeHub as FakeHub

try:
    import pytest
except ModuleNotFoundError:  # FakeHub itself works without pytest; only the fixtures need it
    _HAVE_PYTEST = False
else:
    _HAVE_PYTEST = True

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_FAULT_PATHS",
    "DEFAULT_USER_SCOPES",
    "FAULTS",
    "Answer",
    "FakeHub",
    "fake_hub",
    "fake_hub_env",
]


# ---------------------------------------------------------------------- pytest plugin

if _HAVE_PYTEST:

    @pytest.fixture
    def fake_hub() -> Iterator[FakeHub]:
        """A started :class:`FakeHub`, stopped when the test ends."""
        with FakeHub() as hub:
            yield hub

    @pytest.fixture
    def fake_hub_env(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
        """``fake_hub`` plus the environment a Hub gives service ``test-service``."""
        env = fake_hub.service_env("test-service")
        for name in list(os.environ):
            if name.startswith("JUPYTERHUB_") and name not in env:
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env
