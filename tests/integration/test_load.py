"""Issue 7, "Load": every example service under concurrent token-authenticated clients.

whoami-api (token-only Tornado), whoami-tornado (OAuth Tornado), whoami-flask and
whoami-wsgi (each under ``gunicorn -w 4``) are loaded AT THE SAME TIME, through the Hub's
proxy on 127.0.0.1, for ``DURATION`` seconds: ``THREADS`` client threads per service, each
with its own user, its own API token and a keep-alive ``requests.Session``. Every thread
first sends a few warm-up requests (so the services have the token cached), then all start
together and stop by themselves at the deadline or after ``MAX_PER_THREAD`` requests.

Asserted: zero errors (every answer a 200 whose JSON names the thread's own user) and a
non-trivial number of requests served by each service. The per-service counts and req/s are
printed for information only (``pytest -s``): nothing here asserts a timing.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.realhub import RealHub

from .conftest import EXAMPLES

THREADS = 4  # client threads per service, each with its own user and token
DURATION = 30.0  # seconds of load, all four services at once
MAX_PER_THREAD = 20_000  # hard cap on requests per thread, whatever the deadline
WARMUP = 4  # requests per thread before the clock starts (the services cache the token)
MIN_SERVED = 100  # requests each service must have answered, at least
TIMEOUT = 15  # seconds, for every single HTTP request
START_TIMEOUT = 120  # seconds for every thread to finish its warm-up
KEPT_ERRORS = 5  # error descriptions kept per thread (all are counted)


@dataclass
class Client:
    """One client thread: its service, user and token, and what it saw."""

    service: str
    user: str
    token: str
    url: str
    ok: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # gunicorn workers that answered (Flask/WSGI)
    elapsed: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < KEPT_ERRORS:
            self.samples.append(what)

    def request(self, session: requests.Session) -> None:
        """One GET: counted as ok only for a 200 whose JSON names this client's user."""
        try:
            r = session.get(self.url, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as e:
            self.error(f"{type(e).__name__}: {e}")
            return
        try:
            data: Any = r.json()
        except ValueError:
            data = None
        if r.status_code != 200 or not isinstance(data, dict) or data.get("name") != self.user:
            ctype = r.headers.get("Content-Type", "")
            self.error(f"{r.status_code} ({ctype}): {r.text[:200]!r}")
            return
        self.ok += 1
        if isinstance(data.get("pid"), int):
            self.pids.add(data["pid"])


def run(client: Client, barrier: threading.Barrier, clock: list[float]) -> None:
    """A client thread's body: nothing escapes it, every failure is an error of its own."""
    try:
        load(client, barrier, clock)
    except Exception as e:
        barrier.abort()  # nobody waits for a thread that died in its warm-up
        client.error(f"the client thread failed: {e!r}")


def load(client: Client, barrier: threading.Barrier, clock: list[float]) -> None:
    """Warm up, wait for every other thread, then load until the deadline or the cap."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"token {client.token}"
        # whoami-tornado answers HTML unless asked for JSON; the others answer JSON anyway.
        session.headers["Accept"] = "application/json"
        for _ in range(WARMUP):
            client.request(session)
        try:
            barrier.wait(START_TIMEOUT)
        except threading.BrokenBarrierError:
            client.error("the start barrier broke (a thread did not finish its warm-up)")
            return
        client.ok = 0  # the warm-up does not count; its errors do
        deadline = clock[0] + DURATION
        sent = 0
        while sent < MAX_PER_THREAD and time.monotonic() < deadline:
            client.request(session)
            sent += 1
        client.elapsed = time.monotonic() - clock[0]


@pytest.fixture
def quiet_urllib3() -> Iterator[None]:
    """The suite logs at DEBUG; urllib3 would log every one of the requests twice."""
    logger = logging.getLogger("urllib3")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def test_every_example_serves_concurrent_token_clients_without_errors(
    examples_hub: RealHub, quiet_urllib3: None
) -> None:
    tag = secrets.token_hex(3)
    clients: list[Client] = []
    for service in EXAMPLES:
        for i in range(THREADS):
            user = f"load-{service.removeprefix('whoami-')}-{i}-{tag}"
            examples_hub.create_user(user, groups=["members"])
            token = examples_hub.user_token(user, note="hubauth load test")
            clients.append(Client(service, user, token, examples_hub.service_url(service)))

    clock: list[float] = []
    barrier = threading.Barrier(len(clients), action=lambda: clock.append(time.monotonic()))
    threads = [
        threading.Thread(target=run, args=(c, barrier, clock), name=f"load-{c.user}")
        for c in clients
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(START_TIMEOUT + DURATION + 2 * TIMEOUT)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"client threads still running after the deadline: {stuck}"

    print(f"\nload: {THREADS} keep-alive client threads per service, all services at once")
    print(f"{'service':<16}{'requests':>10}{'req/s':>10}{'errors':>8}  workers seen")
    served: dict[str, int] = {}
    for service in EXAMPLES:
        mine = [c for c in clients if c.service == service]
        served[service] = sum(c.ok for c in mine)
        seconds = max(c.elapsed for c in mine) or DURATION
        pids = set().union(*(c.pids for c in mine))
        print(
            f"{service:<16}{served[service]:>10,}{served[service] / seconds:>10,.0f}"
            f"{sum(c.errors for c in mine):>8}  {len(pids) if pids else '-'}"
        )

    errors = [(c.user, c.errors, c.samples) for c in clients if c.errors]
    assert not errors, "errors under load:\n" + "\n".join(
        f"{user}: {n} error(s), e.g. {samples}" for user, n, samples in errors
    )
    few = {s: n for s, n in served.items() if n <= MIN_SERVED}
    assert not few, f"services that served {MIN_SERVED} requests or fewer: {few}"
