"""Talking to the Hub: hubauth vs ``jupyterhub.services.auth``, side by side, in one run.

    .venv/bin/python benchmarks/misses.py             # stub and real Hub: a few minutes
    .venv/bin/python benchmarks/misses.py --quick     # smaller counts: about a minute
    .venv/bin/python benchmarks/misses.py --only stub --json misses.json

Cache misses (one Hub round trip each, distinct tokens), sequential and 100 at once, on the
sync and the async path; the OAuth code exchange; ``http+unix`` against TCP loopback; logins
per second through the Tornado example; and cache hits, for reference. Against a stub Hub
in a process of its own (HTTP/1.1 keep-alive, one write per answer, as Tornado writes) and
against a real JupyterHub. Every row is measured for both libraries in the same run,
interleaved; the ratio says how many times faster hubauth is (>= 1: at least as fast). Run
on demand; nothing asserts a timing. README.md in this folder says what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from run import (
    LIBS,
    SERVICE_TOKEN,
    Row,
    close_async,
    close_sync,
    fmt,
    make_auth,
    print_table,
    quiet_logs,
    ratio_str,
    versions,
)
from stubhub import StubProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "whoami-tornado" / "whoami_tornado.py"
CLIENT_ID = "service-bench"
REDIRECT = "http://127.0.0.1:9/services/bench/oauth_callback"
VERIFIER = "v" * 43
SECTIONS = ("stub", "realhub", "logins")


@dataclass(frozen=True)
class Counts:
    sequential: int  # distinct tokens per timed repeat of a sequential miss figure
    rounds: int  # rounds of 100 concurrent misses per repeat
    concurrent: int  # lookups in flight at once
    exchanges: int  # code exchanges per repeat
    repeats: int  # interleaved repeats per figure (best and median kept)
    hits: int  # cache-hit calls per repeat
    login_seconds: float  # measured seconds of logins per library per repeat
    login_clients: int  # browsers logging in at once
    real_tokens: int  # tokens made on the real Hub


FULL = Counts(300, 10, 100, 200, 5, 20_000, 8.0, 4, 200)
QUICK = Counts(100, 3, 100, 50, 3, 5_000, 3.0, 4, 100)


def make_oauth(lib: str, api_url: str) -> Any:
    args = {"api_url": api_url, "api_token": SERVICE_TOKEN, "oauth_client_id": CLIENT_ID}
    if lib == "hubauth":
        import hubauth

        return hubauth.HubOAuth(**args, oauth_redirect_uri=REDIRECT)
    from jupyterhub.services.auth import HubOAuth

    return HubOAuth(**args, oauth_redirect_uri=REDIRECT)


def fresh_tokens(n: int, tag: str) -> list[str]:
    """Tokens the stub knows, never asked before (its model is named after the tag)."""
    salt = secrets.token_hex(4)
    return [f"known-{tag}-{salt}{i:06d}-{'k' * 16}" for i in range(n)]


@dataclass
class Figure:
    """Seconds per operation (or per round) of one library, over the repeats."""

    samples: list[float]
    per: int  # operations each sample covers

    @property
    def best_us(self) -> float:
        return min(self.samples) / self.per * 1e6

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / self.per * 1e6

    @property
    def best_rate(self) -> float:
        return self.per / min(self.samples)


def interleave(
    repeats: int, runs: dict[str, Callable[[int], float]], per: int
) -> dict[str, Figure]:
    """Run each library's ``run(repeat)`` in turn, ``repeats`` times, the order swapped
    every repeat: drift hits both alike.
    """
    samples: dict[str, list[float]] = {lib: [] for lib in runs}
    for i in range(repeats):
        for lib, run in list(runs.items())[:: 1 if i % 2 == 0 else -1]:
            samples[lib].append(run(i))
    return {lib: Figure(s, per) for lib, s in samples.items()}


# ---------------------------------------------------------------------------- figures


Tokens = Callable[[str, int], list[str]]


def sync_sequential(api_url: str, tokens: Tokens, counts: Counts, **kw: Any) -> Any:
    auths = {lib: make_auth(lib, api_url) for lib in LIBS}
    for lib, auth in auths.items():
        auth.user_for_token(tokens(lib, -1)[0])  # opens the connection (and JupyterHub's thread)

    def runner(lib: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            batch, f = tokens(lib, i), auths[lib].user_for_token
            t = time.perf_counter()
            for tok in batch:
                f(tok, **kw)
            return time.perf_counter() - t

        return run

    try:
        return interleave(counts.repeats, {lib: runner(lib) for lib in LIBS}, counts.sequential)
    finally:
        for auth in auths.values():
            close_sync(auth)


def async_sequential(api_url: str, tokens: Tokens, counts: Counts, **kw: Any) -> Any:
    async def main() -> dict[str, Figure]:
        auths = {lib: make_auth(lib, api_url) for lib in LIBS}
        for lib, auth in auths.items():
            await auth.user_for_token(tokens(lib, -1)[0], sync=False)
        samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for i in range(counts.repeats):
            for lib, auth in auths.items():
                batch, f = tokens(lib, i), auth.user_for_token
                t = time.perf_counter()
                for tok in batch:
                    await f(tok, sync=False, **kw)
                samples[lib].append(time.perf_counter() - t)
        for auth in auths.values():
            await close_async(auth)
        return {lib: Figure(s, counts.sequential) for lib, s in samples.items()}

    return asyncio.run(main())


def async_concurrent(api_url: str, tokens: Tokens, counts: Counts, **kw: Any) -> Any:
    """``counts.rounds`` rounds of ``asyncio.gather`` over 100 tokens never seen before."""
    n = counts.concurrent

    async def main() -> dict[str, Figure]:
        auths = {lib: make_auth(lib, api_url) for lib in LIBS}
        for lib, auth in auths.items():  # opens the connections
            await asyncio.gather(*(auth.user_for_token(t, sync=False) for t in tokens(lib, -1)))
        samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for i in range(counts.repeats):
            for lib, auth in auths.items():
                total = 0.0
                for r in range(counts.rounds):
                    batch = tokens(lib, i * 1000 + r)
                    t = time.perf_counter()
                    calls = (auth.user_for_token(x, sync=False, **kw) for x in batch)
                    models = await asyncio.gather(*calls)
                    total += time.perf_counter() - t
                    assert all(m is not None for m in models), lib
                samples[lib].append(total)
        for auth in auths.values():
            await close_async(auth)
        return {lib: Figure(s, n * counts.rounds) for lib, s in samples.items()}

    return asyncio.run(main())


def sync_concurrent(api_url: str, tokens: Tokens, counts: Counts, **kw: Any) -> Any:
    """100 threads released together, each looking up one token never seen before."""
    n = counts.concurrent

    def rounds(lib: str, auth: Any, i: int) -> float:
        start, end = threading.Barrier(n + 1), threading.Barrier(n + 1)
        batches = [tokens(lib, i * 1000 + r) for r in range(counts.rounds)]
        failed: list[BaseException] = []

        def worker(k: int) -> None:
            for batch in batches:
                start.wait()
                try:
                    assert auth.user_for_token(batch[k], **kw) is not None
                except BaseException as e:
                    failed.append(e)
                end.wait()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
        for th in threads:
            th.start()
        total = 0.0
        for _ in batches:
            start.wait()
            t = time.perf_counter()
            end.wait()
            total += time.perf_counter() - t
        for th in threads:
            th.join()
        assert not failed, failed[:3]
        return total

    auths = {lib: make_auth(lib, api_url) for lib in LIBS}
    for lib, auth in auths.items():
        # One call first: JupyterHub's sync path makes its thread lazily, and threads racing
        # to make it fail ("This event loop is already running"; run.py counts those).
        auth.user_for_token(tokens(lib, -2)[0], **kw)
        rounds(lib, auth, -1)  # warm up: connections
    try:
        runs = {lib: (lambda i, lib=lib: rounds(lib, auths[lib], i)) for lib in LIBS}
        return interleave(counts.repeats, runs, n * counts.rounds)
    finally:
        for auth in auths.values():
            close_sync(auth)


def exchanges(api_url: str, codes: Tokens, counts: Counts) -> Any:
    """The OAuth code exchange (``POST /oauth2/token``), sync and async, one after another."""
    auths = {lib: make_oauth(lib, api_url) for lib in LIBS}
    for lib, auth in auths.items():
        auth.token_for_code(codes(lib, -1)[0], code_verifier=VERIFIER)

    def run_sync(lib: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            batch, auth = codes(lib, i), auths[lib]
            t = time.perf_counter()
            for code in batch:
                auth.token_for_code(code, code_verifier=VERIFIER)
            return time.perf_counter() - t

        return run

    sync = interleave(counts.repeats, {lib: run_sync(lib) for lib in LIBS}, counts.exchanges)
    for auth in auths.values():
        close_sync(auth)

    async def main() -> dict[str, Figure]:
        oauths = {lib: make_oauth(lib, api_url) for lib in LIBS}
        for lib, auth in oauths.items():
            await auth.token_for_code(codes(lib, -2)[0], code_verifier=VERIFIER, sync=False)
        samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for i in range(counts.repeats):
            for lib, auth in oauths.items():
                batch = codes(lib, 100 + i)
                t = time.perf_counter()
                for code in batch:
                    await auth.token_for_code(code, code_verifier=VERIFIER, sync=False)
                samples[lib].append(time.perf_counter() - t)
        for auth in oauths.values():
            await close_async(auth)
        return {lib: Figure(s, counts.exchanges) for lib, s in samples.items()}

    return {"sync": sync, "async": asyncio.run(main())}


def hits(api_url: str, counts: Counts) -> dict[str, dict[str, Figure]]:
    """Cache hits for reference (run.py has the full figure): the same token, again."""
    out: dict[str, dict[str, Figure]] = {}
    auths = {lib: make_auth(lib, api_url) for lib in LIBS}
    token = fresh_tokens(1, "hit")[0]
    for auth in auths.values():
        auth.user_for_token(token)

    def sync_run(lib: str) -> Callable[[int], float]:
        f = auths[lib].user_for_token

        def run(i: int) -> float:
            t = time.perf_counter()
            for _ in range(counts.hits):
                f(token)
            return time.perf_counter() - t

        return run

    out["sync"] = interleave(counts.repeats, {lib: sync_run(lib) for lib in LIBS}, counts.hits)
    for auth in auths.values():
        close_sync(auth)

    async def main() -> dict[str, Figure]:
        a = {lib: make_auth(lib, api_url) for lib in LIBS}
        for auth in a.values():
            await auth.user_for_token(token, sync=False)
        samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for _ in range(counts.repeats):
            for lib, auth in a.items():
                f = auth.user_for_token
                t = time.perf_counter()
                for _ in range(counts.hits):
                    await f(token, sync=False)
                samples[lib].append(time.perf_counter() - t)
        for auth in a.values():
            await close_async(auth)
        return {lib: Figure(s, counts.hits) for lib, s in samples.items()}

    out["async"] = asyncio.run(main())
    return out


def unix_vs_tcp(tcp_url: str, unix_url: str, counts: Counts) -> dict[str, dict[str, Figure]]:
    """hubauth's sequential misses over TCP loopback and over http+unix, interleaved."""
    urls = {"tcp": tcp_url, "unix": unix_url}
    out: dict[str, dict[str, Figure]] = {}
    auths = {k: make_auth("hubauth", u) for k, u in urls.items()}
    for k, auth in auths.items():
        auth.user_for_token(fresh_tokens(1, f"warm{k}")[0])

    def sync_run(k: str) -> Callable[[int], float]:
        def run(i: int) -> float:
            batch, f = fresh_tokens(counts.sequential, f"s{k}{i}"), auths[k].user_for_token
            t = time.perf_counter()
            for tok in batch:
                f(tok)
            return time.perf_counter() - t

        return run

    out["sync"] = interleave(counts.repeats, {k: sync_run(k) for k in urls}, counts.sequential)
    for auth in auths.values():
        auth.close()

    async def main() -> dict[str, Figure]:
        a = {k: make_auth("hubauth", u) for k, u in urls.items()}
        for k, auth in a.items():
            await auth.user_for_token(fresh_tokens(1, f"awarm{k}")[0], sync=False)
        samples: dict[str, list[float]] = {k: [] for k in urls}
        for i in range(counts.repeats):
            for k in list(urls)[:: 1 if i % 2 == 0 else -1]:
                batch, f = fresh_tokens(counts.sequential, f"a{k}{i}"), a[k].user_for_token
                t = time.perf_counter()
                for tok in batch:
                    await f(tok, sync=False)
                samples[k].append(time.perf_counter() - t)
        for auth in a.values():
            auth.close()
        return {k: Figure(v, counts.sequential) for k, v in samples.items()}

    out["async"] = asyncio.run(main())
    return out


# ---------------------------------------------------------------------------- the stub


def bench_stub(counts: Counts) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="hubauth-bench-")
    res: dict[str, Any] = {}

    def stub_tokens(size: int) -> Callable[[str, int], list[str]]:
        return lambda lib, i: fresh_tokens(size, f"{lib}{i}")

    seq, conc = stub_tokens(counts.sequential), stub_tokens(counts.concurrent)
    with StubProcess(f"{folder}/hub.sock") as stub:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("sync_miss", lambda: sync_sequential(stub.api_url, seq, counts)),
            ("async_miss", lambda: async_sequential(stub.api_url, seq, counts)),
            ("sync_concurrent", lambda: sync_concurrent(stub.api_url, conc, counts)),
            ("async_concurrent", lambda: async_concurrent(stub.api_url, conc, counts)),
            ("exchange", lambda: exchanges(stub.api_url, stub_tokens(counts.exchanges), counts)),
            ("unix_sync_miss", lambda: sync_sequential(stub.unix_api_url, seq, counts)),
            ("unix_async_miss", lambda: async_sequential(stub.unix_api_url, seq, counts)),
            ("unix_vs_tcp", lambda: unix_vs_tcp(stub.api_url, stub.unix_api_url, counts)),
            ("hits", lambda: hits(stub.api_url, counts)),
        ]
        for key, step in steps:
            t = time.perf_counter()
            print(f"    stub {key}", end="", flush=True)
            res[key] = step()
            print(f" ({time.perf_counter() - t:.1f} s)", flush=True)
        res["stub_requests"] = stub.requests()
    return res


# ---------------------------------------------------------------------------- a real Hub


def _real_hub(services: list[dict[str, Any]], roles: list[dict[str, Any]]) -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.realhub import RealHub

    return RealHub(services=services, roles=roles)


def _authorize_codes(hub: Any, session: requests.Session, n: int) -> list[str]:
    """``n`` authorization codes for the bench client, as a logged-in browser gets them."""
    out = []
    url = f"{hub.hub_url}api/oauth2/authorize"
    for _ in range(n):
        params = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "state": secrets.token_urlsafe(8),
        }
        r = session.get(url, params=params, allow_redirects=False, timeout=30)
        location = r.headers.get("Location", "")
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).get("code")
        if r.status_code != 302 or not code:
            raise RuntimeError(f"no code from the Hub: {r.status_code} {location} {r.text[:300]}")
        out.append(code[0])
    return out


def bench_realhub(counts: Counts) -> dict[str, Any]:
    bench = {
        "name": "bench",
        "api_token": SERVICE_TOKEN,
        "oauth_client_id": CLIENT_ID,
        "oauth_redirect_uri": REDIRECT,
        "oauth_no_confirm": True,
    }
    roles = [
        {"name": "bench", "scopes": ["read:users"], "services": ["bench"]},
        {"name": "user", "scopes": ["self", "access:services!service=bench"]},
    ]
    res: dict[str, Any] = {}
    with _real_hub([bench], roles) as hub:
        hub.create_user("bench-user")
        print(f"    real Hub up; making {counts.real_tokens} tokens", flush=True)
        pool = [hub.user_token("bench-user") for _ in range(counts.real_tokens)]
        api = hub.hub_api_url
        n = counts.concurrent

        def seq(lib: str, i: int) -> list[str]:
            return pool[: counts.sequential] if i >= 0 else pool[-1:]

        def conc(lib: str, i: int) -> list[str]:
            start = (i % 7) * 10 % max(1, len(pool) - n)
            return pool[start : start + n]

        real = Counts(
            min(counts.sequential, len(pool)),
            counts.rounds,
            n,
            counts.exchanges // 4,
            counts.repeats,
            counts.hits,
            counts.login_seconds,
            counts.login_clients,
            counts.real_tokens,
        )
        steps: list[tuple[str, Callable[[], Any]]] = [
            # A real Hub has a few hundred tokens, not a new one per lookup: the same ones are
            # asked again, with use_cache=False so that each stays a miss.
            ("sync_miss", lambda: sync_sequential(api, seq, real, use_cache=False)),
            ("async_miss", lambda: async_sequential(api, seq, real, use_cache=False)),
            ("sync_concurrent", lambda: sync_concurrent(api, conc, real, use_cache=False)),
            ("async_concurrent", lambda: async_concurrent(api, conc, real, use_cache=False)),
        ]
        for key, step in steps:
            t = time.perf_counter()
            print(f"    real Hub {key}", end="", flush=True)
            res[key] = step()
            print(f" ({time.perf_counter() - t:.1f} s)", flush=True)
        browser = requests.Session()
        hub.login(browser, "bench-user")
        need = real.exchanges * (2 * real.repeats + 2) * len(LIBS) + 8
        print(f"    real Hub: {need} authorization codes", flush=True)
        codes = iter(_authorize_codes(hub, browser, need))
        t = time.perf_counter()
        print("    real Hub exchange", end="", flush=True)
        res["exchange"] = exchanges(
            api, lambda lib, i: [next(codes) for _ in range(real.exchanges)], real
        )
        print(f" ({time.perf_counter() - t:.1f} s)", flush=True)
        browser.close()
    return res


# ---------------------------------------------------------------------------- logins


JH_IMPORTS = (
    "from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated\n"
    "from tornado.web import RequestHandler as HubOAuthLogoutHandler\n"
)


def jupyterhub_variant(folder: Path) -> Path:
    """examples/whoami-tornado with its import line changed to jupyterhub.services.auth
    (and the ``cookie_secret`` setting JupyterHub's mixin needs for its cookies).
    """
    source = EXAMPLE.read_text()
    line = (
        "from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthenticated, "
        "HubOAuthLogoutHandler\n"
    )
    assert line in source, "the example's import line changed"
    source = source.replace(line, JH_IMPORTS)
    end = '            (prefix.rstrip("/") + "/?.*", WhoAmI),\n        ]\n    )\n'
    assert end in source, "the example's make_app() changed"
    source = source.replace(
        end, end[: -len("\n    )\n")] + ",\n        cookie_secret=os.urandom(32),\n    )\n"
    )
    path = folder / "whoami_tornado_jupyterhub.py"
    path.write_text(source)
    return path


def bench_logins(counts: Counts) -> dict[str, Any]:
    """Browsers logging in through the Tornado example (hubauth) and the same example on
    jupyterhub.services.auth, both Hub-managed services of one real Hub: OAuth redirect,
    the Hub's authorize page, the callback's code exchange and user lookup, the page.
    """
    folder = Path(tempfile.mkdtemp(prefix="hubauth-logins-"))
    names = {"hubauth": "whoami-hubauth", "jupyterhub": "whoami-jupyterhub"}
    scripts = {"hubauth": EXAMPLE, "jupyterhub": jupyterhub_variant(folder)}
    services = []
    for lib, name in names.items():
        port = _free_port()
        services.append(
            {
                "name": name,
                "url": f"http://127.0.0.1:{port}",
                "command": [sys.executable, str(scripts[lib])],
                "oauth_no_confirm": True,
                "environment": {
                    "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
                    "HUBAUTH_COOKIE_SECRET": secrets.token_hex(32),
                },
            }
        )
    roles = [{"name": "user", "scopes": ["self", "access:services"]}]
    res: dict[str, Any] = {}
    with _real_hub(services, roles) as hub:
        for name in names.values():
            hub.wait_for_service(name)
        browsers = []
        for k in range(counts.login_clients):
            hub.create_user(f"login-{k}")
            s = requests.Session()
            s.headers["Accept"] = "text/html"
            hub.login(s, f"login-{k}")
            browsers.append(s)

        def run(lib: str) -> Callable[[int], float]:
            url = hub.service_url(names[lib])

            def measure(i: int) -> float:
                done = [0]
                stop = time.monotonic() + counts.login_seconds
                errors: list[str] = []

                def client(b: requests.Session) -> None:
                    while time.monotonic() < stop:
                        for c in list(b.cookies):
                            if not c.name.startswith("jupyterhub"):
                                b.cookies.clear(c.domain, c.path, c.name)
                        r = b.get(url, timeout=30)
                        if r.status_code != 200 or "Hello, login-" not in r.text:
                            errors.append(f"{r.status_code} {r.url} {r.text[:200]}")
                            return
                        done[0] += 1

                threads = [threading.Thread(target=client, args=(b,)) for b in browsers]
                t = time.perf_counter()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                wall = time.perf_counter() - t
                if errors:
                    raise RuntimeError(f"{lib} logins failed: {errors[0]}")
                return wall / max(done[0], 1)  # seconds per login

            return measure

        t = time.perf_counter()
        print("    logins", end="", flush=True)
        res["logins"] = interleave(counts.repeats, {lib: run(lib) for lib in LIBS}, 1)
        print(f" ({time.perf_counter() - t:.1f} s)", flush=True)
        for b in browsers:
            b.close()
    return res


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- report


def rows(res: dict[str, Any]) -> list[Row]:
    out: list[Row] = []

    def time_row(label: str, figs: dict[str, Figure], unit: str = "µs") -> None:
        h, j = figs["hubauth"], figs["jupyterhub"]
        scale = 1e-3 if unit == "ms" else 1.0
        r = j.best_us / h.best_us
        out.append(
            Row(
                label,
                fmt(h.best_us * scale, 2),
                fmt(j.best_us * scale, 2),
                ratio_str(r),
                ">= 1x",
                r >= 1,
                note=f"medians: hubauth {fmt(h.median_us * scale, 2)}, "
                f"jupyterhub {fmt(j.median_us * scale, 2)} {unit}",
                values={"hubauth_best_us": h.best_us, "jupyterhub_best_us": j.best_us},
            )
        )

    def rate_row(label: str, figs: dict[str, Figure]) -> None:
        h, j = figs["hubauth"].best_rate, figs["jupyterhub"].best_rate
        out.append(
            Row(
                label,
                fmt(h, 0),
                fmt(j, 0),
                ratio_str(h / j),
                ">= 1x",
                h / j >= 1,
                values={"hubauth": h, "jupyterhub": j},
            )
        )

    for where, key in (("stub", "stub"), ("real Hub", "realhub")):
        r = res.get(key)
        if not r:
            continue
        time_row(f"{where}: sync miss, µs", r["sync_miss"])
        time_row(f"{where}: async miss, µs", r["async_miss"])
        rate_row(f"{where}: sync, 100 threads at once, misses/s", r["sync_concurrent"])
        rate_row(f"{where}: async, 100 at once, misses/s", r["async_concurrent"])
        time_row(f"{where}: code exchange sync, µs", r["exchange"]["sync"])
        time_row(f"{where}: code exchange async, µs", r["exchange"]["async"])
        if key == "stub":
            time_row("stub over http+unix: sync miss, µs", r["unix_sync_miss"])
            time_row("stub over http+unix: async miss, µs", r["unix_async_miss"])
            for kind in ("sync", "async"):
                unix, tcp = r["unix_vs_tcp"][kind]["unix"], r["unix_vs_tcp"][kind]["tcp"]
                out.append(
                    Row(
                        f"hubauth {kind} miss: http+unix vs TCP loopback, µs",
                        fmt(unix.best_us, 2),
                        fmt(tcp.best_us, 2),
                        ratio_str(tcp.best_us / unix.best_us),
                        "(info)",
                        None,
                        note="here the columns are hubauth over http+unix | over TCP, "
                        f"interleaved; medians {fmt(unix.median_us, 2)} | {fmt(tcp.median_us, 2)}",
                    )
                )
            for kind in ("sync", "async"):
                h, j = r["hits"][kind]["hubauth"], r["hits"][kind]["jupyterhub"]
                out.append(
                    Row(
                        f"{kind} cache hit, µs (for reference)",
                        fmt(h.best_us, 2),
                        fmt(j.best_us, 2),
                        ratio_str(j.best_us / h.best_us),
                        "as today",
                        None,
                    )
                )
    if "logins" in res:
        figs = res["logins"]["logins"]
        h, j = 1 / (figs["hubauth"].best_us / 1e6), 1 / (figs["jupyterhub"].best_us / 1e6)
        out.append(
            Row(
                "logins/s through the Tornado example (real Hub)",
                fmt(h, 1),
                fmt(j, 1),
                ratio_str(h / j),
                ">= 1x",
                h / j >= 1,
            )
        )
    return out


def to_json(value: Any) -> Any:
    if isinstance(value, Figure):
        return {
            "best_us": value.best_us,
            "median_us": value.median_us,
            "per": value.per,
            "samples_s": value.samples,
        }
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="smaller counts")
    p.add_argument("--json", metavar="PATH", help="also write every number as JSON here")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    args = p.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(SECTIONS):
        p.error(f"--only: unknown section(s) {', '.join(sorted(only - set(SECTIONS)))}")
    counts = QUICK if args.quick else FULL
    quiet_logs()
    logging.getLogger("jupyterhub").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    info = versions()
    print("hubauth vs jupyterhub.services.auth: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    started = time.perf_counter()
    res: dict[str, Any] = {}
    for section, run in (
        ("stub", bench_stub),
        ("realhub", bench_realhub),
        ("logins", bench_logins),
    ):
        if section in only:
            print(f"... {section}", flush=True)
            res[section] = run(counts)
    table = rows(res)
    print()
    print_table(table)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    if args.json:
        doc = {
            "versions": info,
            "quick": args.quick,
            "counts": asdict(counts),
            "results": to_json(res),
            "table": [asdict(r) for r in table],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
