"""The Hub in trouble, on every adapter: services answer 502/503 (never 500), keep serving
cached users, recover at once, and (Tornado) keep serving while one request waits on the Hub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from hubauth.testing import FakeHub

from .services import ADAPTERS, Service, free_port, make_auth, refusal, serve


@pytest.fixture(params=ADAPTERS)
def quick(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Service]:
    """A service whose Hub calls time out after 1 s (the fake Hub's "slow" waits longer)."""
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}", request_timeout=1, connect_timeout=1)
    with serve(request.param, auth, port) as url:
        yield Service(url, auth, fake_hub, request.param)
    auth.close()


def get(svc: Service, token: str) -> requests.Response:
    return requests.get(svc.page(), headers={"Authorization": f"token {token}"}, timeout=30)


@pytest.mark.parametrize(("fault", "status"), [("reset", 503), ("slow", 503), ("down", 503)])
def test_hub_failing_is_503_and_the_service_recovers_at_once(
    quick: Service, fault: str, status: int
) -> None:
    token = quick.hub.add_user("bob")
    quick.hub.delay = 5
    quick.hub.fault = fault
    r = get(quick, token)
    assert r.status_code == status, r.text
    assert "Hub" in refusal(r)[1]
    quick.hub.fault = None
    assert get(quick, token).status_code == 200  # the first request after the outage


def test_cached_users_are_served_through_an_outage(svc: Service) -> None:
    tokens = [svc.hub.add_user(f"user{i}") for i in range(5)]
    for t in tokens:
        assert get(svc, t).status_code == 200
    svc.hub.fault = "down"
    served = [get(svc, t).status_code for _ in range(10) for t in tokens]
    assert served == [200] * 50  # every request with a cached token succeeded
    newcomer = svc.hub.add_user("late")
    assert get(svc, newcomer).status_code == 503
    svc.hub.fault = None
    assert get(svc, newcomer).status_code == 200


def test_service_stays_up_under_every_fault_in_turn(svc: Service) -> None:
    token = svc.hub.add_user("bob")
    svc.hub.delay = 0.2
    for fault in ("status", "garbage", "html", "redirect", "wrong_shape", "reset", "slow", "down"):
        svc.hub.fault = fault
        svc.auth.evict_token(token)
        r = get(svc, token)
        assert r.status_code in (200, 502, 503), (fault, r.status_code)
        assert r.status_code != 500
    svc.hub.fault = None
    assert get(svc, token).status_code == 200


def test_a_slow_hub_does_not_stall_a_tornado_service(fake_hub: FakeHub) -> None:
    port = free_port()
    auth = make_auth(fake_hub, f"http://127.0.0.1:{port}")
    with serve("tornado", auth, port):
        svc = Service(f"http://127.0.0.1:{port}", auth, fake_hub, "tornado")
        cached = fake_hub.add_user("cached")
        assert get(svc, cached).status_code == 200
        fake_hub.delay = 3
        fake_hub.fault = "slow"
        pending_done = threading.Event()
        results: list[int] = []

        def miss() -> None:
            results.append(get(svc, fake_hub.add_user("newcomer")).status_code)
            pending_done.set()

        waiting = threading.Thread(target=miss)
        waiting.start()
        while fake_hub.count("/hub/api/user") < 2:  # the miss has reached the Hub
            time.sleep(0.01)
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            assert get(svc, cached).status_code == 200
            latencies.append(time.perf_counter() - start)
        # Served while the other request was still waiting on the Hub: the loop never blocked.
        assert not pending_done.is_set()
        print(f"cached-token latency during a pending miss: max {max(latencies) * 1000:.1f} ms")
        waiting.join(10)
        fake_hub.fault = None
        assert results == [200]
    auth.close()


def test_unknown_tokens_flood(fake_hub: FakeHub) -> None:
    """Distinct unknown tokens: one Hub request each within the negative-cache window, and
    a cache that never grows past its bound (the 100,000-token memory figure is in
    benchmarks/, as a measurement).
    """
    from hubauth import HubAuth

    auth = HubAuth(
        api_url=fake_hub.api_url,
        api_token=fake_hub.add_service("svc"),
        cache_maxsize=500,
        # A window far longer than the test, so a slow machine still asks within it.
        cache_max_age=3600,
        cache_negative_max_age=3600,
    )
    fake_hub.reset_counts()
    batch = [f"unknown-{i:06d}" for i in range(400)]
    for _ in range(3):  # every token asked three times within the window
        for t in batch:
            assert auth.user_for_token(t) is None
    assert fake_hub.count("/hub/api/user") == len(batch)
    for i in range(3000):
        auth.user_for_token(f"flood-{i}")
    assert len(auth.cache) <= 500
    auth.close()
