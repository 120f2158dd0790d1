"""Shared fixtures: every test starts from an environment with no Hub settings in it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_PREFIXES = ("JUPYTERHUB_", "HUBAUTH_")


@pytest.fixture(autouse=True)
def _clean_hub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear JUPYTERHUB_* and HUBAUTH_* so no test depends on the machine it runs on."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    yield


TOKEN = "service-token-0123456789"
