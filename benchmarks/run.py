"""hubauth vs ``jupyterhub.services.auth.HubAuth``, side by side, on one stub Hub.

    .venv/bin/python benchmarks/run.py            # full run (a few minutes)
    .venv/bin/python benchmarks/run.py --quick    # smaller counts, under 30 s
    .venv/bin/python benchmarks/run.py --json out.json --profile

Run on demand; nothing here is part of the test suite and nothing asserts a timing. See
README.md in this folder for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import os
import platform
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stubhub import StubHub, user_model

HERE = Path(__file__).resolve().parent
SERVICE_TOKEN = "service-token-" + "s" * 32
# One known token per library, shaped like a Hub token (32 hex characters).
USER_TOKENS = {lib: secrets.token_hex(16) for lib in ("hubauth", "jupyterhub")}
LIBS = ("hubauth", "jupyterhub")
MB = 1024 * 1024


@dataclass(frozen=True)
class Counts:
    hit_seconds: float  # wall time per timed repeat of a cache-hit loop
    repeats: int  # timed repeats per cache-hit figure (best and median reported)
    import_runs: int  # fresh interpreters per import figure (median reported)
    flight: int  # concurrent callers in the single-flight test
    flight_delay: float  # seconds the stub waits before answering there
    mem_tokens: int  # distinct unknown tokens through hubauth
    jh_mem_tokens: int  # distinct unknown tokens through JupyterHub (extrapolated if fewer)
    mem_maxsize: int | None  # hubauth cache_maxsize for the memory run (None: the default)
    concurrency: int = 32  # in-flight lookups in the memory run


FULL = Counts(0.25, 7, 15, 50, 0.05, 100_000, 20_000, None)
QUICK = Counts(0.05, 3, 3, 50, 0.05, 3_000, 2_000, 500)


# ---------------------------------------------------------------------------- helpers


def quiet_logs() -> None:
    """JupyterHub warns once per unknown token; neither library should log in a timing loop."""
    for name in ("tornado.application", "tornado.general", "hubauth", "jupyterhub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def make_auth(lib: str, api_url: str, **extra: Any) -> Any:
    if lib == "hubauth":
        import hubauth

        return hubauth.HubAuth(api_url=api_url, api_token=SERVICE_TOKEN, **extra)
    from jupyterhub.services.auth import HubAuth

    return HubAuth(api_url=api_url, api_token=SERVICE_TOKEN, **extra)


async def close_async(auth: Any) -> None:
    """Close what the library opened on the running loop (its HTTP client)."""
    if hasattr(auth, "close"):  # hubauth
        auth.close()
        return
    from jupyterhub.httpclient import JupyterHubHTTPClient

    await JupyterHubHTTPClient.loop_instance().close()


def close_sync(auth: Any) -> None:
    if hasattr(auth, "close"):
        auth.close()
        return
    # JupyterHub's sync path runs an event loop in a one-thread pool: close its client there.
    from jupyterhub.httpclient import JupyterHubHTTPClient

    async def close_client() -> None:
        await JupyterHubHTTPClient.loop_instance().close()

    auth._synchronize(close_client)
    auth._pool.shutdown()


def cache_size(auth: Any) -> int | None:
    try:
        return len(auth.cache)
    except (AttributeError, TypeError):
        return None


def autorange(run: Callable[[int], float], seconds: float) -> int:
    """A call count for which ``run(count)`` takes about ``seconds``."""
    n = 16
    while True:
        dt = run(n)
        if dt >= seconds / 4:
            return max(1, int(n * seconds / dt))
        n *= 4


async def autorange_async(run: Callable[[int], Awaitable[float]], seconds: float) -> int:
    n = 16
    while True:
        dt = await run(n)
        if dt >= seconds / 4:
            return max(1, int(n * seconds / dt))
        n *= 4


@dataclass
class Timing:
    best_us: float
    median_us: float
    calls_per_repeat: int
    repeats: int


def summarize(samples: list[float], n: int) -> Timing:
    per_call = [s / n * 1e6 for s in samples]
    return Timing(min(per_call), statistics.median(per_call), n, len(samples))


# ---------------------------------------------------------------------------- 1, 2: cache hits


def bench_sync_hits(hub: StubHub, counts: Counts) -> dict[str, Any]:
    auths = {lib: make_auth(lib, hub.api_url) for lib in LIBS}
    loops: dict[str, Callable[[int], float]] = {}
    for lib, auth in auths.items():
        model = auth.user_for_token(USER_TOKENS[lib])  # the one miss: fills the cache
        assert model is not None and model["name"] == "alice", (lib, model)
        f = auth.user_for_token

        def run(n: int, f: Callable[[str], Any] = f, tok: str = USER_TOKENS[lib]) -> float:
            t = time.perf_counter()
            for _ in range(n):
                f(tok)
            return time.perf_counter() - t

        run(200)  # warm-up
        loops[lib] = run
    sizes = {lib: autorange(loops[lib], counts.hit_seconds) for lib in LIBS}
    samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
    for _ in range(counts.repeats):  # interleaved, so drift hits both alike
        for lib in LIBS:
            samples[lib].append(loops[lib](sizes[lib]))
    hub_requests = {lib: hub.by_token[USER_TOKENS[lib]] for lib in LIBS}
    for auth in auths.values():
        close_sync(auth)
    hub.reset_counts()
    out: dict[str, Any] = {lib: asdict(summarize(samples[lib], sizes[lib])) for lib in LIBS}
    out["hub_requests"] = hub_requests  # 1 each: every call after the first was a hit
    return out


def bench_async_hits(hub: StubHub, counts: Counts) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        auths = {lib: make_auth(lib, hub.api_url) for lib in LIBS}
        loops: dict[str, Callable[[int], Awaitable[float]]] = {}
        for lib, auth in auths.items():
            model = await auth.user_for_token(USER_TOKENS[lib], sync=False)
            assert model is not None and model["name"] == "alice", (lib, model)
            f = auth.user_for_token

            async def run(n: int, f: Callable[..., Any] = f, tok: str = USER_TOKENS[lib]) -> float:
                t = time.perf_counter()
                for _ in range(n):
                    await f(tok, sync=False)
                return time.perf_counter() - t

            await run(200)
            loops[lib] = run
        sizes = {lib: await autorange_async(loops[lib], counts.hit_seconds) for lib in LIBS}
        samples: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for _ in range(counts.repeats):
            for lib in LIBS:
                samples[lib].append(await loops[lib](sizes[lib]))
        for auth in auths.values():
            await close_async(auth)
        out: dict[str, Any] = {lib: asdict(summarize(samples[lib], sizes[lib])) for lib in LIBS}
        out["hub_requests"] = {lib: hub.by_token[USER_TOKENS[lib]] for lib in LIBS}
        return out

    try:
        return asyncio.run(main())
    finally:
        hub.reset_counts()


def profile_sync_hit(hub: StubHub, calls: int = 50_000) -> str:
    """cProfile of hubauth's sync cache hit: where its microseconds go."""
    auth = make_auth("hubauth", hub.api_url)
    tok = USER_TOKENS["hubauth"]
    auth.user_for_token(tok)
    f = auth.user_for_token
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        f(tok)
    prof.disable()
    close_sync(auth)
    hub.reset_counts()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


# ---------------------------------------------------------------------------- 3: import cost

IMPORT_CODE = (
    "import sys, time\n"
    "n = len(sys.modules)\n"
    "t = time.perf_counter()\n"
    "import {module}\n"
    "t = time.perf_counter() - t\n"
    "print(t, len(sys.modules) - n)\n"
)
IMPORT_MODULES = {"hubauth": "hubauth", "jupyterhub": "jupyterhub.services.auth"}


def bench_import(counts: Counts) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    cmds = {
        lib: [sys.executable, "-c", IMPORT_CODE.format(module=m)]
        for lib, m in IMPORT_MODULES.items()
    }
    cmds["interpreter"] = [sys.executable, "-c", "pass"]
    inside: dict[str, list[float]] = {lib: [] for lib in cmds}
    whole: dict[str, list[float]] = {lib: [] for lib in cmds}
    modules: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as cwd:  # no local folder shadows an installed package
        for i in range(counts.import_runs + 1):
            for lib, cmd in cmds.items():
                t = time.perf_counter()
                proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
                dt = time.perf_counter() - t
                if proc.returncode:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
                if i == 0:
                    continue  # the first run may compile bytecode: not counted
                whole[lib].append(dt)
                if lib != "interpreter":
                    seconds, n_modules = proc.stdout.split()
                    inside[lib].append(float(seconds))
                    modules[lib] = int(n_modules)
    out: dict[str, Any] = {}
    for lib in cmds:
        out[lib] = {
            "whole_process_ms": statistics.median(whole[lib]) * 1e3,
            "runs": len(whole[lib]),
        }
        if inside[lib]:
            out[lib]["import_ms"] = statistics.median(inside[lib]) * 1e3
            out[lib]["modules_loaded"] = modules[lib]
    return out


# ---------------------------------------------------------------------------- 4: single flight


def bench_single_flight(hub: StubHub, counts: Counts) -> dict[str, Any]:
    hub.delay = counts.flight_delay
    n = counts.flight
    out: dict[str, Any] = {"callers": n, "delay_s": counts.flight_delay}
    try:
        # asyncio.gather of n lookups of one unseen token
        async def gather(lib: str) -> dict[str, Any]:
            token = f"flight-async-{lib}-" + "f" * 32
            hub.users[token] = user_model("flight")
            auth = make_auth(lib, hub.api_url)
            t = time.perf_counter()
            models = await asyncio.gather(
                *(auth.user_for_token(token, sync=False) for _ in range(n))
            )
            dt = time.perf_counter() - t
            await close_async(auth)
            assert all(m is not None and m["name"] == "flight" for m in models), lib
            return {"hub_requests": hub.by_token[token], "wall_ms": dt * 1e3}

        out["async"] = {lib: asyncio.run(gather(lib)) for lib in LIBS}

        # n threads released together, each asking for one unseen token on the sync path
        def threads(lib: str, auth: Any, round_: str) -> dict[str, Any]:
            token = f"flight-sync-{round_}-{lib}-" + "f" * 32
            hub.users[token] = user_model("flight")
            barrier = threading.Barrier(n + 1)
            models: list[Any] = []
            errors: list[str] = []

            def call() -> None:
                barrier.wait()
                try:
                    models.append(auth.user_for_token(token))
                except Exception as e:
                    errors.append(type(e).__name__)

            pool = [threading.Thread(target=call) for _ in range(n)]
            for th in pool:
                th.start()
            barrier.wait()
            t = time.perf_counter()
            for th in pool:
                th.join(30)
            dt = time.perf_counter() - t
            stuck = sum(th.is_alive() for th in pool)
            assert all(m and m["name"] == "flight" for m in models), lib
            return {
                "hub_requests": hub.by_token[token],
                "wall_ms": dt * 1e3,
                "errors": len(errors) + stuck,
                "error_types": sorted(set(errors)),
                "stuck": stuck,
            }

        def sync_rounds(lib: str) -> dict[str, Any]:
            # First on a fresh instance (a service's first burst), then once it has made
            # one call: JupyterHub sets up its background thread lazily, on first use.
            auth = make_auth(lib, hub.api_url)
            cold = threads(lib, auth, "cold")
            auth.user_for_token(USER_TOKENS[lib])
            warm = threads(lib, auth, "warm")
            close_sync(auth)
            return {**warm, "cold": cold}

        out["sync_threads"] = {lib: sync_rounds(lib) for lib in LIBS}
    finally:
        hub.delay = 0.0
        hub.reset_counts()
    return out


# ---------------------------------------------------------------------------- 5: memory


def _rss() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / MB if sys.platform == "darwin" else peak / 1024
        return float("nan"), peak_mb


def memory_child(lib: str, api_url: str, tokens: int, maxsize: int | None, conc: int) -> None:
    """Run in a fresh interpreter: push ``tokens`` distinct unknown tokens, print JSON."""
    quiet_logs()
    extra = {"cache_maxsize": maxsize} if maxsize and lib == "hubauth" else {}
    auth = make_auth(lib, api_url, **extra)

    async def batch(start: int, stop: int) -> None:
        async def worker(w: int) -> None:
            for i in range(start + w, stop, conc):
                model = await auth.user_for_token(f"unknown-{i:09d}-{'u' * 32}", sync=False)
                assert model is None

        await asyncio.gather(*(worker(w) for w in range(conc)))

    def sample(done: int) -> dict[str, float]:
        gc.collect()
        rss, peak = _rss()
        traced, _ = tracemalloc.get_traced_memory()
        size = cache_size(auth)
        return {
            "tokens": done,
            "traced_mb": traced / MB,
            "rss_mb": rss,
            "peak_rss_mb": peak,
            "cache_size": -1 if size is None else size,
        }

    async def main() -> dict[str, Any]:
        tracemalloc.start()
        await batch(-conc * 2, 0)  # warm-up: the HTTP client and its pools exist before "before"
        samples = [sample(0)]
        steps = 10
        wall = 0.0
        for k in range(steps):
            start, stop = tokens * k // steps, tokens * (k + 1) // steps
            t = time.perf_counter()
            await batch(start, stop)
            wall += time.perf_counter() - t
            samples.append(sample(stop))
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await close_async(auth)
        return {
            "lib": lib,
            "tokens": tokens,
            "cache_maxsize": getattr(getattr(auth, "cache", None), "maxsize", None),
            "wall_s": wall,
            "traced_peak_mb": traced_peak / MB,
            "samples": samples,
        }

    print(json.dumps(asyncio.run(main())))


def bench_memory(hub: StubHub, counts: Counts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lib, tokens in (("hubauth", counts.mem_tokens), ("jupyterhub", counts.jh_mem_tokens)):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-child",
            lib,
            "--api-url",
            hub.api_url,
            "--tokens",
            str(tokens),
            "--concurrency",
            str(counts.concurrency),
        ]
        if counts.mem_maxsize:
            cmd += ["--maxsize", str(counts.mem_maxsize)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"memory run for {lib} failed:\n{proc.stderr}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        first, half, last = res["samples"][0], res["samples"][5], res["samples"][-1]
        n = res["tokens"]
        res["hub_requests"] = hub.requests
        res["traced_before_mb"] = first["traced_mb"]
        res["traced_after_mb"] = last["traced_mb"]
        res["rss_before_mb"] = first["rss_mb"]
        res["rss_after_mb"] = last["rss_mb"]
        res["peak_rss_mb"] = last["peak_rss_mb"]
        res["cache_size_after"] = last["cache_size"]
        res["bytes_per_token"] = (last["traced_mb"] - first["traced_mb"]) * MB / n
        # growth over the second half of the run, when any bound has long been reached
        res["second_half_growth_mb"] = last["traced_mb"] - half["traced_mb"]
        second_half = n - half["tokens"]
        res["second_half_bytes_per_token"] = res["second_half_growth_mb"] * MB / second_half
        res["lookups_per_s"] = n / res["wall_s"]
        hub.reset_counts()
        out[lib] = res
    return out


# ---------------------------------------------------------------------------- report


@dataclass
class Row:
    metric: str
    hubauth: str
    jupyterhub: str
    ratio: str
    target: str
    met: bool | None
    note: str = ""
    values: dict[str, Any] = field(default_factory=dict)


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def ratio_str(r: float) -> str:
    return f"{r:,.1f}x" if r >= 10 else f"{r:.2f}x"


def build_rows(res: dict[str, Any], counts: Counts) -> list[Row]:
    rows: list[Row] = []
    if "sync_hit" in res:
        h, j = res["sync_hit"]["hubauth"]["best_us"], res["sync_hit"]["jupyterhub"]["best_us"]
        rows.append(
            Row(
                "sync cache hit, µs/call (best of repeats)",
                fmt(h, 2),
                fmt(j, 2),
                ratio_str(j / h),
                ">= 10x faster",
                j / h >= 10,
                values={"h": h, "j": j},
            )
        )
    if "async_hit" in res:
        h, j = res["async_hit"]["hubauth"]["best_us"], res["async_hit"]["jupyterhub"]["best_us"]
        rows.append(
            Row(
                "async cache hit, µs/call (best of repeats)",
                fmt(h, 2),
                fmt(j, 2),
                ratio_str(j / h),
                "no slower (>= 1x)",
                j / h >= 1,
                values={"h": h, "j": j},
            )
        )
    if "import" in res:
        imp = res["import"]
        h, j = imp["hubauth"]["import_ms"], imp["jupyterhub"]["import_ms"]
        rows.append(
            Row(
                "import time in process, ms (median)",
                fmt(h),
                fmt(j),
                ratio_str(j / h),
                ">= 3x cheaper",
                j / h >= 3,
                values={"h": h, "j": j},
            )
        )
        h2, j2 = imp["hubauth"]["whole_process_ms"], imp["jupyterhub"]["whole_process_ms"]
        base = imp["interpreter"]["whole_process_ms"]
        rows.append(
            Row(
                "python -c 'import …' whole process, ms (median)",
                fmt(h2),
                fmt(j2),
                ratio_str(j2 / h2),
                "(info)",
                None,
                note=f"bare `python -c pass`: {fmt(base)} ms",
            )
        )
        rows.append(
            Row(
                "modules loaded by the import",
                str(imp["hubauth"]["modules_loaded"]),
                str(imp["jupyterhub"]["modules_loaded"]),
                ratio_str(imp["jupyterhub"]["modules_loaded"] / imp["hubauth"]["modules_loaded"]),
                "(info)",
                None,
            )
        )
    if "single_flight" in res:
        sf = res["single_flight"]
        a, s = sf["async"], sf["sync_threads"]
        h, j = a["hubauth"]["hub_requests"], a["jupyterhub"]["hub_requests"]
        rows.append(
            Row(
                f"single flight: Hub requests for {sf['callers']} gathered misses",
                str(h),
                str(j),
                ratio_str(j / h) if h else "n/a",
                "hubauth: 1",
                h == 1,
                note=f"wall ms: hubauth {fmt(a['hubauth']['wall_ms'])}, "
                f"jupyterhub {fmt(a['jupyterhub']['wall_ms'])}",
            )
        )
        h, j = s["hubauth"]["hub_requests"], s["jupyterhub"]["hub_requests"]
        rows.append(
            Row(
                f"single flight: Hub requests for {sf['callers']} threads (sync)",
                str(h),
                str(j),
                ratio_str(j / h) if h else "n/a",
                "hubauth: 1",
                h == 1,
                note=f"wall ms: hubauth {fmt(s['hubauth']['wall_ms'])}, "
                f"jupyterhub {fmt(s['jupyterhub']['wall_ms'])} (its sync path runs "
                "every call on one background thread, one after another; measured "
                "after one earlier call)",
            )
        )
        hc, jc = s["hubauth"]["cold"], s["jupyterhub"]["cold"]
        rows.append(
            Row(
                f"{sf['callers']} sync threads on a fresh instance: calls failed",
                str(hc["errors"]),
                str(jc["errors"]),
                "",
                "hubauth: 0",
                hc["errors"] == 0,
                note="error types: hubauth "
                f"{', '.join(hc['error_types']) or 'none'}, jupyterhub "
                f"{', '.join(jc['error_types']) or 'none'}; Hub requests: hubauth "
                f"{hc['hub_requests']}, jupyterhub {jc['hub_requests']}",
            )
        )
    if "memory" in res:
        mh, mj = res["memory"]["hubauth"], res["memory"]["jupyterhub"]
        target_n = counts.mem_tokens
        rows.append(
            Row(
                "memory: distinct unknown tokens pushed",
                fmt(mh["tokens"], 0),
                fmt(mj["tokens"], 0),
                "",
                "(info)",
                None,
            )
        )
        rows.append(
            Row(
                "memory: cache entries afterwards",
                fmt(mh["cache_size_after"], 0),
                fmt(mj["cache_size_after"], 0),
                "",
                "(info)",
                None,
                note=f"hubauth cache_maxsize={mh['cache_maxsize']}",
            )
        )
        rows.append(
            Row(
                "memory: traced MiB before -> after",
                f"{fmt(mh['traced_before_mb'], 2)} -> {fmt(mh['traced_after_mb'], 2)}",
                f"{fmt(mj['traced_before_mb'], 2)} -> {fmt(mj['traced_after_mb'], 2)}",
                "",
                "(info)",
                None,
            )
        )
        hb, jb = mh["bytes_per_token"], mj["bytes_per_token"]
        rows.append(
            Row(
                "memory: traced growth, bytes/token (whole run)",
                fmt(hb),
                fmt(jb),
                ratio_str(jb / hb) if hb > 1 else "n/a",
                "(info)",
                None,
            )
        )
        flat_limit = 1.0
        hs, js = mh["second_half_growth_mb"], mj["second_half_growth_mb"]
        rows.append(
            Row(
                "memory: traced growth over 2nd half of run, MiB",
                fmt(hs, 2),
                fmt(js, 2),
                "",
                f"hubauth flat (< {flat_limit:g} MiB)",
                hs < flat_limit,
                note=f"{fmt(mh['second_half_bytes_per_token'])} vs "
                f"{fmt(mj['second_half_bytes_per_token'])} bytes/token",
            )
        )
        if mj["tokens"] < target_n:
            extra = jb * target_n / MB
            rows.append(
                Row(
                    f"memory: JupyterHub growth at {fmt(target_n, 0)} tokens, MiB",
                    "",
                    f"~{fmt(extra, 1)} (extrapolated)",
                    "",
                    "(info)",
                    None,
                    note=f"measured on {fmt(mj['tokens'], 0)} tokens, "
                    "growth per token x target count",
                )
            )
        rows.append(
            Row(
                "memory: RSS MiB before -> after (peak)",
                f"{fmt(mh['rss_before_mb'])} -> {fmt(mh['rss_after_mb'])} "
                f"({fmt(mh['peak_rss_mb'])})",
                f"{fmt(mj['rss_before_mb'])} -> {fmt(mj['rss_after_mb'])} "
                f"({fmt(mj['peak_rss_mb'])})",
                "",
                "(info)",
                None,
            )
        )
        rows.append(
            Row(
                "memory run: wall s / misses per s (tracemalloc on)",
                f"{fmt(mh['wall_s'])} / {fmt(mh['lookups_per_s'], 0)}",
                f"{fmt(mj['wall_s'])} / {fmt(mj['lookups_per_s'], 0)}",
                ratio_str(mj["lookups_per_s"] / mh["lookups_per_s"]),
                "(info)",
                None,
                note=f"{counts.concurrency} lookups in flight",
            )
        )
    return rows


def print_table(rows: list[Row]) -> None:
    head = ("metric", "hubauth", "jupyterhub", "ratio", "target", "met")
    cells = [
        (
            r.metric,
            r.hubauth,
            r.jupyterhub,
            r.ratio,
            r.target,
            "-" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for c in cells:
        print(line.format(*c))
    notes = [(r.metric, r.note) for r in rows if r.note]
    if notes:
        print()
        for metric, note in notes:
            print(f"  {metric}: {note}")


def versions() -> dict[str, str]:
    import jupyterhub
    import tornado

    import hubauth

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "hubauth": getattr(hubauth, "__version__", "?"),
        "jupyterhub": jupyterhub.__version__,
        "tornado": tornado.version,
    }


SECTIONS = ("sync", "async", "import", "flight", "memory")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="smaller counts; whole run under 30 s")
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON here")
    p.add_argument(
        "--only",
        metavar="LIST",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    p.add_argument(
        "--profile", action="store_true", help="also print a cProfile of hubauth's sync cache hit"
    )
    p.add_argument("--memory-child", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--api-url", help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=int, help=argparse.SUPPRESS)
    p.add_argument("--maxsize", type=int, help=argparse.SUPPRESS)
    p.add_argument("--concurrency", type=int, default=32, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.memory_child:
        memory_child(args.memory_child, args.api_url, args.tokens, args.maxsize, args.concurrency)
        return 0

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        p.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    counts = QUICK if args.quick else FULL
    quiet_logs()
    # A fresh JupyterHub HubAuth hit by many threads at once leaves coroutines unawaited.
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    info = versions()
    print(
        "hubauth vs jupyterhub.services.auth.HubAuth, "
        + ", ".join(f"{k} {v}" for k, v in info.items())
        + (" [quick]" if args.quick else ""),
        flush=True,
    )
    started = time.perf_counter()
    res: dict[str, Any] = {}
    with StubHub({tok: user_model("alice") for tok in USER_TOKENS.values()}) as hub:
        steps: list[tuple[str, str, Callable[[], Any]]] = [
            ("sync", "sync_hit", lambda: bench_sync_hits(hub, counts)),
            ("async", "async_hit", lambda: bench_async_hits(hub, counts)),
            ("import", "import", lambda: bench_import(counts)),
            ("flight", "single_flight", lambda: bench_single_flight(hub, counts)),
            ("memory", "memory", lambda: bench_memory(hub, counts)),
        ]
        for section, key, run in steps:
            if section in only:
                t = time.perf_counter()
                print(f"... {section}", end="", flush=True)
                res[key] = run()
                print(f" ({time.perf_counter() - t:.1f} s)", flush=True)
        profile = profile_sync_hit(hub) if args.profile else None
    elapsed = time.perf_counter() - started
    rows = build_rows(res, counts)
    print()
    print_table(rows)
    print(f"\ntotal {elapsed:.1f} s")
    if profile:
        print("\nhubauth sync cache hit, cProfile (50,000 calls, sorted by own time):")
        print(profile)
    if args.json:
        doc = {
            "versions": info,
            "quick": args.quick,
            "counts": asdict(counts),
            "elapsed_s": elapsed,
            "results": res,
            "table": [asdict(r) for r in rows],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
