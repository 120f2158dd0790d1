"""Shared fixtures: every test starts from an environment with no Hub settings in it."""

from __future__ import annotations

import gc
import logging
import os
import traceback
from collections.abc import Iterator

import pytest

from hubauth.testing import FakeHub

# The per-adapter service fixture (``svc``) for every suite that runs all three adapters.
pytest_plugins = ["tests.services"]

_PREFIXES = ("JUPYTERHUB_", "HUBAUTH_")


@pytest.fixture(autouse=True)
def _clean_hub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear JUPYTERHUB_* and HUBAUTH_* so no test depends on the machine it runs on."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    yield


TOKEN = "service-token-0123456789"


class _Capture(logging.Handler):
    """Keeps the full text of every log record, at every level, from every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("urllib3"):
            return  # the tests' own HTTP client (the browser's side), logging what it sends
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.texts.append(text)


@pytest.fixture(autouse=True)
def _no_token_in_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Across the whole suite: no token the fake Hub issues ever appears in any log record."""
    issued: list[str] = []
    original = FakeHub._issue

    def issue(self: FakeHub, model: dict[str, object]) -> str:
        token = original(self, model)
        issued.append(token)
        return token

    monkeypatch.setattr(FakeHub, "_issue", issue)
    capture = _Capture()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "hubauth", "tornado")}
    root.addHandler(capture)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(capture)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    leaked = [t for t in issued if any(t in text for text in capture.texts)]
    assert not leaked, f"{len(leaked)} issued token(s) appeared in log records"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported so far lives for the whole run: keep it out of every collection."""
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after every test, so a socket or file a test left open in a reference cycle
    fails that test (as a ResourceWarning in its teardown), not whichever test runs when the
    collector happens to run.
    """
    yield
    gc.collect()
