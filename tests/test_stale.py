"""Known users through a Hub outage, on every adapter: when the Hub cannot answer (refused,
reset, timeout, 5xx), a user whose cached model expired at most ``stale_max_age`` ago is
still let in, and it is logged. Never when the Hub says 403, never from an "unknown token"
answer, never past the window, and answering stale never extends it.

The cache's clock is a test clock (``timer=``), so "expired a minute ago" is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from hubauth import HubAuth
from hubauth.cache import MISS, TokenCache
from hubauth.testing import FakeHub

from .services import ADAPTERS, Service, browser, free_port, log_in, make_auth, refusal, serve

MAX_AGE = 60
STALE = 120


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stale:
    svc: Service
    clock: Clock

    def get(self, token: str) -> requests.Response:
        return requests.get(
            self.svc.page(), headers={"Authorization": f"token {token}"}, timeout=30
        )


def _serve(adapter: str, hub: FakeHub, **settings: object) -> Iterator[Stale]:
    clock = Clock()
    port = free_port()
    auth = make_auth(
        hub,
        f"http://127.0.0.1:{port}",
        cache_max_age=MAX_AGE,
        request_timeout=1,
        connect_timeout=1,
        timer=clock,
        **{"stale_max_age": STALE, **settings},
    )
    with serve(adapter, auth, port) as url:
        yield Stale(Service(url, auth, hub, adapter), clock)
    auth.close()


@pytest.fixture(params=ADAPTERS)
def stale(request: pytest.FixtureRequest, fake_hub: FakeHub) -> Iterator[Stale]:
    yield from _serve(request.param, fake_hub)


def break_hub(hub: FakeHub, fault: str) -> None:
    hub.delay = 5
    if fault.startswith("status"):
        hub.fault_status = int(fault[len("status") :])
        hub.fault = "status"
    else:
        hub.fault = fault


@pytest.mark.parametrize("fault", ["down", "reset", "slow", "status500", "status503"])
def test_a_known_user_is_let_in_while_the_hub_cannot_answer(
    stale: Stale, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """bob was checked a minute and a second ago (cache_max_age is 60 s); the Hub is then
    down, resetting, hanging or failing. bob is let in from his cached model, and the
    service's log says that it did so and why.
    """
    hub = stale.svc.hub
    token = hub.add_user("bob")
    assert stale.get(token).status_code == 200
    stale.clock.now += MAX_AGE + 1
    break_hub(hub, fault)
    caplog.set_level(logging.WARNING, "hubauth")
    r = stale.get(token)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "bob"
    assert any(
        "served user bob from its cached model" in m and "stale_max_age=120s" in m
        for m in caplog.messages
    ), caplog.messages
    newcomer = "never-seen-token-0123456789"
    expected = 502 if fault.startswith("status") else 503  # nothing cached: the Hub's trouble
    assert stale.get(newcomer).status_code == expected
    hub.fault = None
    stale.clock.now += 10  # past the short pause in which stale answers skip the Hub
    assert stale.get(token).status_code == 200


def test_the_window_is_stale_max_age_and_a_stale_answer_does_not_extend_it(
    stale: Stale,
) -> None:
    hub = stale.svc.hub
    token = hub.add_user("bob")
    assert stale.get(token).status_code == 200
    hub.fault = "down"
    for seconds in (MAX_AGE + 1, MAX_AGE + 60, MAX_AGE + STALE - 1):
        stale.clock.now = 1000 + seconds
        assert stale.get(token).status_code == 200, seconds
    stale.clock.now = 1000 + MAX_AGE + STALE + 1  # expired more than stale_max_age ago
    r = stale.get(token)
    assert r.status_code == 503, r.text
    assert "Hub" in refusal(r)[1]


def test_a_hub_403_is_final_and_never_answered_from_the_cache(stale: Stale) -> None:
    """The Hub says the token is gone (revoked, expired): that answer wins at once, and its
    "unknown token" entry is never turned back into the user by a later outage.
    """
    hub = stale.svc.hub
    token = hub.add_user("bob")
    assert stale.get(token).status_code == 200
    hub.revoke(token)
    stale.clock.now += MAX_AGE + 1
    assert stale.get(token).status_code == 401
    hub.fault = "down"
    assert stale.get(token).status_code == 401  # the negative answer, from the cache
    stale.clock.now += 30  # the negative answer expired too; the Hub is still down
    r = stale.get(token)
    assert r.status_code == 503, r.text


@pytest.mark.parametrize("fault", ["garbage", "html", "wrong_shape", "redirect"])
def test_a_hub_that_answers_wrongly_is_not_an_outage(stale: Stale, fault: str) -> None:
    """A Hub answering 200 with nonsense, or a redirect, is misconfigured, not down: the
    service says so (502) rather than papering over it with old answers.
    """
    hub = stale.svc.hub
    token = hub.add_user("bob")
    assert stale.get(token).status_code == 200
    stale.clock.now += MAX_AGE + 1
    hub.fault = fault
    assert stale.get(token).status_code == 502


def test_a_browser_login_is_kept_through_an_outage(stale: Stale) -> None:
    b = browser()
    assert log_in(stale.svc, b, "carol").status_code == 200
    stale.clock.now += MAX_AGE + 1
    stale.svc.hub.fault = "down"
    r = b.get(stale.svc.page(), allow_redirects=False)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "carol"


def test_one_hanging_hub_costs_one_wait_not_one_per_user(fake_hub: FakeHub) -> None:
    """With the Hub hanging, the first expired user waits for request_timeout and is let
    in; for the next few seconds other expired users are answered from the cache at once,
    without asking the Hub again; after that the Hub is tried again.
    """
    for s in _serve("tornado", fake_hub):
        tokens = [fake_hub.add_user(f"user{i}") for i in range(4)]
        for t in tokens:
            assert s.get(t).status_code == 200
        s.clock.now += MAX_AGE + 1
        break_hub(fake_hub, "slow")
        asked = fake_hub.count()
        assert s.get(tokens[0]).status_code == 200  # waited 1 s for the Hub
        assert fake_hub.count() == asked + 1
        for t in tokens[1:]:
            assert s.get(t).status_code == 200
        assert fake_hub.count() == asked + 1  # not asked again
        s.clock.now += 6
        assert s.get(tokens[1]).status_code == 200
        assert fake_hub.count() == asked + 2  # tried again once the pause was over


def test_stale_max_age_zero_turns_it_off(fake_hub: FakeHub) -> None:
    for s in _serve("wsgi", fake_hub, stale_max_age=0):
        token = fake_hub.add_user("bob")
        assert s.get(token).status_code == 200
        s.clock.now += MAX_AGE + 1
        fake_hub.fault = "down"
        assert s.get(token).status_code == 503


def test_lookups_that_skip_the_cache_never_get_a_stale_answer(fake_hub: FakeHub) -> None:
    from hubauth import HubUnavailable

    clock = Clock()
    auth = HubAuth(api_url=fake_hub.api_url, api_token=fake_hub.add_service("svc"), timer=clock)
    token = fake_hub.add_user("bob")
    assert auth.user_for_token(token)
    clock.now += 400
    fake_hub.fault = "down"
    with pytest.raises(HubUnavailable):
        auth.user_for_token(token, use_cache=False)
    assert auth.user_for_token(token)["name"] == "bob"  # default stale_max_age: 300 s
    auth.close()


def test_cache_keeps_user_entries_for_the_stale_window_only() -> None:
    clock = Clock()
    cache = TokenCache(max_age=10, negative_max_age=5, stale_max_age=20, timer=clock)
    user, gone = TokenCache.key("u"), TokenCache.key("g")
    cache.put(user, {"name": "u", "scopes": []})
    cache.put(gone, None)
    clock.now += 11
    assert cache.get(user) is MISS
    assert cache.stale(user) == {"name": "u", "scopes": []}
    assert cache.stale(gone) is MISS  # an "unknown token" answer is never stale-served
    copy = cache.stale(user)
    copy["name"] = "changed"
    assert cache.stale(user)["name"] == "u"  # callers get copies
    clock.now += 20
    assert cache.stale(user) is MISS
    assert len(cache) == 0


def test_every_caller_of_one_load_gets_its_own_model() -> None:
    """The first caller gets the freshly loaded model itself; waiters, later hits and stale
    answers get copies of the cache's own copy: changing one changes nobody else's.
    """
    import asyncio

    cache = TokenCache(max_age=10, stale_max_age=10, timer=Clock())
    key = TokenCache.key("t")
    gate: asyncio.Future[None] | None = None

    async def load() -> dict[str, object]:
        assert gate is not None
        await gate
        return {"name": "u", "scopes": ["a"], "groups": []}

    async def main() -> list[object]:
        nonlocal gate
        gate = asyncio.get_running_loop().create_future()
        calls = [asyncio.ensure_future(cache.load_async(key, load)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.set_result(None)
        return list(await asyncio.gather(*calls))

    first, *waiters = asyncio.run(main())
    assert isinstance(first, dict)
    first["scopes"].append("changed")
    first["name"] = "changed"
    for other in [*waiters, cache.get(key), cache.stale(key)]:
        assert other == {"name": "u", "scopes": ["a"], "groups": []}
