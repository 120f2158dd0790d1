"""Throughput of a Tornado service with and without token auth: hubauth vs JupyterHub's.

    .venv/bin/python benchmarks/load.py            # 10 s per variant, about 1 minute
    .venv/bin/python benchmarks/load.py --quick    # 3 s per variant, about 20 s
    .venv/bin/python benchmarks/load.py --rounds 3 --json load.json
    .venv/bin/python benchmarks/load.py --quick --only none,hubauth --profile

One Tornado process per variant on 127.0.0.1 (a fresh one each time), all answering
``GET /whoami`` with the caller's model as JSON:

- ``none``: a plain ``RequestHandler`` writing a fixed model, no auth at all;
- ``hubauth``: ``hubauth.tornado.HubAuthenticated`` + ``@authenticated``, writing
  ``self.current_user``;
- ``jupyterhub``: ``jupyterhub.services.auth.HubAuthenticated`` + ``@authenticated``, as its
  docs show (``get_current_user`` calls ``hub_auth.get_user(self)``, which is synchronous:
  each request waits for JupyterHub's background thread);
- ``jupyterhub-async``: the same mixin, but ``prepare()`` awaits
  ``hub_auth.get_user(self, sync=False)`` first (what jupyter-server's JupyterHub extension
  does); for information.

Every request carries the same API token in its ``Authorization`` header (the unauthenticated
service ignores it), so after one warm-up request the libraries answer from their caches:
this measures the per-request cost of the auth layer, not the Hub. The load comes from a
few separate client processes (asyncio, raw HTTP/1.1, keep-alive, one request in flight per
connection) that check every answer. Run on demand; nothing asserts a timing. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import os
import platform
import secrets
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVICE = "bench"  # the service's name: both libraries require access:services!service=bench
SERVICE_TOKEN = "service-token-" + "s" * 32
USER = "alice"
PATH = "/whoami"
VARIANTS = ("none", "hubauth", "jupyterhub", "jupyterhub-async")
DESCRIPTIONS = {
    "none": "no auth",
    "hubauth": "hubauth.tornado.HubAuthenticated",
    "jupyterhub": "jupyterhub.services.auth.HubAuthenticated",
    "jupyterhub-async": "  same, get_user(sync=False) in prepare()",
}
TARGET_COST = 10.0  # %: hubauth's auth may cost at most this share of no-auth throughput
SATURATED = 90.0  # % of one core: a client process this busy may be holding the load back
KEPT_ERRORS = 5


@dataclass(frozen=True)
class Settings:
    duration: float  # measured seconds per variant
    warmup: float  # seconds of load before the measured window
    connections: int  # keep-alive connections in total
    clients: int  # client processes the connections are spread over
    rounds: int  # runs per variant (interleaved); the table shows the median
    max_requests: int  # hard cap on requests per connection


# ---------------------------------------------------------------------------- the services


def make_app(variant: str, api_url: str) -> Any:
    """The Tornado application for ``variant``; each library is imported only when used."""
    from tornado.web import Application, RequestHandler, authenticated

    settings: dict[str, Any] = {"log_function": lambda _handler: None}  # no access log
    if variant == "none":
        sys.path.insert(0, str(HERE))
        from stubhub import user_model

        model = user_model(USER)

        class NoAuth(RequestHandler):
            def get(self) -> None:
                self.write(model)

        return Application([(PATH, NoAuth)], **settings)

    if variant == "hubauth":
        import hubauth
        from hubauth.tornado import HubAuthenticated

        class HubauthWhoAmI(HubAuthenticated, RequestHandler):
            @authenticated
            def get(self) -> None:
                self.write(self.current_user)

        auth = hubauth.HubAuth(api_url=api_url, api_token=SERVICE_TOKEN, service_name=SERVICE)
        return Application([(PATH, HubauthWhoAmI)], hub_auth=auth, **settings)

    from jupyterhub.services import auth as jh

    class JupyterhubWhoAmI(jh.HubAuthenticated, RequestHandler):  # type: ignore[misc,unused-ignore]
        def initialize(self, hub_auth: Any) -> None:
            self.hub_auth = hub_auth

        @authenticated
        def get(self) -> None:
            self.write(self.current_user)

    class JupyterhubAsyncWhoAmI(JupyterhubWhoAmI):
        async def prepare(self) -> None:
            model = await self.hub_auth.get_user(self, sync=False)
            try:
                self._hub_auth_user_cache = self.check_hub_user(model) if model else None
            except jh.UserNotAllowed:
                self._hub_auth_user_cache = None

    jh_auth = jh.HubAuth(
        api_url=api_url,
        api_token=SERVICE_TOKEN,
        access_scopes={f"access:services!service={SERVICE}"},
    )
    handler = JupyterhubAsyncWhoAmI if variant == "jupyterhub-async" else JupyterhubWhoAmI
    return Application([(PATH, handler, {"hub_auth": jh_auth})], **settings)


def serve(variant: str, api_url: str) -> None:
    """Server process: print the port, serve until SIGTERM or SIGINT."""
    for name in ("tornado", "hubauth", "jupyterhub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    async def main() -> None:
        sockets = bind_sockets(0, "127.0.0.1", backlog=1024)
        server = HTTPServer(make_app(variant, api_url))
        server.add_sockets(sockets)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        print(sockets[0].getsockname()[1], flush=True)
        await stop.wait()
        server.stop()

    asyncio.run(main())


# ---------------------------------------------------------------------------- load generator


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request in flight; checks and counts every answer."""

    def __init__(self, run: _ClientRun) -> None:
        self.run = run
        self.buf = bytearray()
        self.body_start = -1
        self.length = 0
        self.status_ok = False
        self.sent = 0
        self.finished = False
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.sent += 1
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.body_start < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            i = head.find(b"\r\ncontent-length:")
            if i < 0:
                self.run.error(f"no Content-Length: {bytes(buf[:300])!r}")
                self.stop()
                return
            j = head.find(b"\r\n", i + 2)
            self.length = int(head[i + 17 : j if j >= 0 else len(head)])
            self.status_ok = head.startswith(b"http/1.1 200 ")
            self.body_start = end + 4
        stop = self.body_start + self.length
        if len(buf) < stop:
            return
        run = self.run
        now = run.loop.time()
        if not self.status_ok or run.expect not in buf[self.body_start : stop]:
            run.error(bytes(buf[:stop][:300]).decode(errors="replace"))
        elif run.t_measure <= now <= run.t_end:
            run.ok += 1
        else:
            run.outside += 1
        del buf[:stop]
        self.body_start = -1
        if now >= run.t_end or self.sent >= run.max_requests:
            self.stop()
        else:
            self.send()

    def stop(self) -> None:
        self.finished = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.run.error(f"connection lost: {exc!r}")
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class _ClientRun:
    loop: asyncio.AbstractEventLoop
    request: bytes
    expect: bytes
    t_measure: float
    t_end: float
    max_requests: int
    ok: int = 0
    outside: int = 0  # answers before or after the measured window
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < KEPT_ERRORS:
            self.samples.append(what)


def client(
    port: int, connections: int, t0: float, t_measure: float, t_end: float, cap: int
) -> None:
    """Client process: ``connections`` connections from ``t0``; print what it saw as JSON.

    The times are ``time.monotonic()`` values, which every process on Linux shares.
    """
    token = os.environ["LOAD_USER_TOKEN"]
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {os.environ.get('LOAD_AUTH_SCHEME', 'token')} {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    # (JSON with or without a space after the colon: tornado's and FastAPI's.)
    expect = os.environ.get("LOAD_EXPECT", f'"name": {json.dumps(USER)}').encode()

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        run = _ClientRun(loop, request, expect, t_measure, t_end, cap)
        late = loop.time() - t0
        await asyncio.sleep(max(0.0, t0 - loop.time()))
        cpu: dict[str, float] = {}

        def mark(key: str) -> None:
            cpu[key + "_cpu"], cpu[key + "_wall"] = time.process_time(), loop.time()

        loop.call_at(t_measure, mark, "start")
        conns: list[_Conn] = []
        for _ in range(connections):
            try:
                _, conn = await loop.create_connection(lambda: _Conn(run), "127.0.0.1", port)
                conns.append(conn)
            except OSError as e:
                run.error(f"connect: {e!r}")
        await asyncio.gather(*(c.closed for c in conns))
        mark("end")
        cpu.setdefault("start_cpu", cpu["end_cpu"])
        cpu.setdefault("start_wall", cpu["end_wall"])
        wall = cpu["end_wall"] - cpu["start_wall"]
        return {
            "ok": run.ok,
            "outside": run.outside,
            "errors": run.errors,
            "samples": run.samples,
            "connections": len(conns),
            "cpu_pct": 100 * (cpu["end_cpu"] - cpu["start_cpu"]) / wall if wall > 0 else 0.0,
            "late_s": max(0.0, late),
        }

    print(json.dumps(asyncio.run(main())), flush=True)


# ---------------------------------------------------------------------------- one measurement


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "HUBAUTH_"))}
    return {**env, **extra}


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def measure(
    variant: str,
    api_url: str,
    token: str,
    s: Settings,
    profile: str | None = None,
    script: Path | None = None,
) -> dict[str, Any]:
    """Start ``variant``'s server, warm it up, load it, and return what was seen.

    ``profile``: run the server under cProfile and write its stats to this path.
    ``script``: the benchmark whose ``--serve`` and ``--client`` run (this one by default).
    """
    me = str(script or Path(__file__).resolve())
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    with tempfile.TemporaryFile() as server_log:
        server = subprocess.Popen(
            [sys.executable, *profiler, me, "--serve", variant, "--api-url", api_url],
            stdout=subprocess.PIPE,
            stderr=server_log,
            env=_child_env(),
        )
        clients: list[subprocess.Popen[str]] = []
        try:
            assert server.stdout is not None
            ready, _, _ = select.select([server.stdout], [], [], 60)
            line = server.stdout.readline() if ready else b""
            if not line.strip().isdigit():
                server_log.seek(0)
                raise RuntimeError(
                    f"{variant} server did not start: {line!r}\n{server_log.read().decode()}"
                )
            port = int(line)
            # The one request the Hub is asked about (the others are cache hits), and a check.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            scheme = os.environ.get("LOAD_AUTH_SCHEME", "token")
            conn.request("GET", PATH, headers={"Authorization": f"{scheme} {token}"})
            first = conn.getresponse()
            body = first.read()
            conn.close()
            if first.status != 200 or json.loads(body).get("name") != USER:
                raise RuntimeError(f"{variant}: first request -> {first.status} {body[:300]!r}")

            t0 = time.monotonic() + 0.5  # the clients start together, once all are up
            t_measure = t0 + s.warmup
            t_end = t_measure + s.duration
            for n in _split(s.connections, s.clients):
                cmd = [
                    sys.executable,
                    me,
                    "--client",
                    json.dumps([port, n, t0, t_measure, t_end, s.max_requests]),
                ]
                clients.append(
                    subprocess.Popen(
                        cmd,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=_child_env(LOAD_USER_TOKEN=token),
                    )
                )
            _sleep_until(t_measure)
            cpu0, mach0 = _proc_cpu_s(server.pid), _machine_cpu()
            _sleep_until(t_end)
            cpu1, mach1 = _proc_cpu_s(server.pid), _machine_cpu()
            results = []
            for proc in clients:
                try:
                    out, err = proc.communicate(timeout=max(1.0, t_end + 30 - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                    raise RuntimeError(f"{variant}: a client process did not stop") from None
                if proc.returncode:
                    raise RuntimeError(f"{variant}: a client process failed:\n{err}")
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for proc in clients:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            _stop(server)
    ok = sum(r["ok"] for r in results)
    busy, total = mach1[0] - mach0[0], mach1[1] - mach0[1]
    cpus = os.cpu_count() or 1
    server_pct = 100 * (cpu1 - cpu0) / s.duration
    clients_pct = [r["cpu_pct"] for r in results]
    return {
        "variant": variant,
        "req_per_s": ok / s.duration,
        "requests": ok,
        "errors": sum(r["errors"] for r in results),
        "error_samples": [x for r in results for x in r["samples"]][:KEPT_ERRORS],
        "server_cpu_pct": server_pct,
        "server_cpu_us_per_req": 1e6 * (cpu1 - cpu0) / ok if ok else float("nan"),
        "client_cpu_pct": clients_pct,
        "client_late_s": max(r["late_s"] for r in results),
        "connections": sum(r["connections"] for r in results),
        "machine_busy_pct": 100 * busy / total if total else float("nan"),
        # Everything else on the machine, in % of one core: the noise in this measurement.
        "other_cpu_pct": max(0.0, cpus * 100 * busy / total - server_pct - sum(clients_pct))
        if total
        else float("nan"),
    }


# ---------------------------------------------------------------------------- report


def fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def ratio_str(r: float) -> str:
    return f"{r:,.1f}x" if r >= 10 else f"{r:.2f}x"


def table(head: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(head))
    print(line(tuple("-" * w for w in widths)))
    for r in rows:
        print(line(r))


def inprocess_us(
    variant: str, api_url: str, token: str, *, n: int = 3000, repeats: int = 7
) -> float:
    """Server CPU µs per request for ``variant``, in this process and without sockets: the
    same app, requests pushed through Tornado's handler machinery; best of ``repeats``.

    Steadier than req/s under load, which moves by 10-30 % between server launches here.
    """
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    app = make_app(variant, api_url)
    headers = {"Host": "127.0.0.1", "Authorization": f"token {token}", "Accept": "*/*"}

    class Connection:
        context = type("Context", (), {"remote_ip": "127.0.0.1", "protocol": "http"})()

        def set_close_callback(self, callback: Any) -> None:
            pass

        def write_headers(self, *args: Any, **kwargs: Any) -> Any:
            return _done()

        def write(self, chunk: bytes) -> Any:
            return _done()

        def finish(self) -> None:
            pass

    def _done() -> Any:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def run(count: int) -> float:
        start = time.process_time()
        for _ in range(count):
            request = HTTPServerRequest(
                start_line=RequestStartLine("GET", PATH, "HTTP/1.1"),
                headers=HTTPHeaders(headers),
                connection=Connection(),  # type: ignore[arg-type]
            )
            dispatcher = app.find_handler(request)
            dispatcher.execute()
            while dispatcher.handler is None or not dispatcher.handler._finished:
                await asyncio.sleep(0)
        return (time.process_time() - start) / count * 1e6

    async def best() -> float:
        await run(200)  # warm: the token is cached from here on
        return min([await run(n) for _ in range(repeats)])

    return asyncio.run(best())


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant over its rounds: medians of the rates, totals of the counts, and the
    busiest client process seen.
    """
    return {
        "req_per_s": statistics.median(r["req_per_s"] for r in runs),
        "req_per_s_runs": [r["req_per_s"] for r in runs],
        "errors": sum(r["errors"] for r in runs),
        "error_samples": [x for r in runs for x in r["error_samples"]][:KEPT_ERRORS],
        "server_cpu_pct": statistics.median(r["server_cpu_pct"] for r in runs),
        "server_cpu_us_per_req": statistics.median(r["server_cpu_us_per_req"] for r in runs),
        "client_cpu_max_pct": max(max(r["client_cpu_pct"]) for r in runs),
        "machine_busy_pct": statistics.median(r["machine_busy_pct"] for r in runs),
        "other_cpu_pct": statistics.median(r["other_cpu_pct"] for r in runs),
        "hub_lookups": sum(r["hub_lookups"] for r in runs),
        "client_late_s": max(r["client_late_s"] for r in runs),
    }


def report(res: dict[str, dict[str, Any]], s: Settings) -> list[dict[str, Any]]:
    base = res.get("none", {}).get("req_per_s")
    base_us = res.get("none", {}).get("server_cpu_us_per_req")

    def cost(v: str) -> float | None:
        """Throughput lost to auth, % of the no-auth figure: per round against the no-auth
        run just before it (the machine drifts less within a round), median over rounds.
        """
        if not base or v not in res:
            return None
        paired = res[v].get("cost_pct_runs")
        if paired:
            return float(statistics.median(paired))
        return 100 * (1 - res[v]["req_per_s"] / base)

    def cpu_cost(v: str) -> float | None:
        """The same, from server CPU per request: what a CPU-bound server would lose."""
        return (
            100 * (1 - base_us / res[v]["server_cpu_us_per_req"]) if base_us and v in res else None
        )

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f} %"

    head = (
        "variant",
        "req/s",
        "auth cost",
        "server CPU %",
        "server CPU µs/req",
        "busiest client CPU %",
        "other CPU %",
        "Hub lookups",
        "errors",
    )
    rows = [
        (
            DESCRIPTIONS[v],
            fmt(r["req_per_s"]),
            "-" if v == "none" else pct(cost(v)),
            fmt(r["server_cpu_pct"]),
            fmt(r["server_cpu_us_per_req"]),
            fmt(r["client_cpu_max_pct"]),
            fmt(r["other_cpu_pct"]),
            str(r["hub_lookups"]),
            str(r["errors"]),
        )
        for v, r in res.items()
    ]
    table(head, rows, right=set(range(1, len(head))))

    # The comparison, in benchmarks/run.py's shape.
    summary: list[dict[str, Any]] = []
    if "hubauth" in res and "jupyterhub" in res:
        h, j = res["hubauth"]["req_per_s"], res["jupyterhub"]["req_per_s"]
        summary.append(
            {
                "metric": "req/s with a cached token",
                "hubauth": fmt(h),
                "jupyterhub": fmt(j),
                "ratio": ratio_str(h / j),
                "target": "(info)",
                "met": None,
            }
        )
    hc, jc = cost("hubauth"), cost("jupyterhub")
    if hc is not None:
        summary.append(
            {
                "metric": "auth cost, % of no-auth req/s",
                "hubauth": pct(hc),
                "jupyterhub": pct(jc),
                "ratio": "",
                "target": f"hubauth < {TARGET_COST:g} %",
                "met": hc < TARGET_COST,
            }
        )
    hcc, jcc = cpu_cost("hubauth"), cpu_cost("jupyterhub")
    if hcc is not None:
        summary.append(
            {
                "metric": "auth cost from server CPU µs/req",
                "hubauth": pct(hcc),
                "jupyterhub": pct(jcc),
                "ratio": "",
                "target": f"hubauth < {TARGET_COST:g} %",
                "met": hcc < TARGET_COST,
            }
        )
    if "hubauth" in res and "jupyterhub-async" in res:
        h, a = res["hubauth"]["req_per_s"], res["jupyterhub-async"]["req_per_s"]
        summary.append(
            {
                "metric": "req/s vs jupyterhub with async get_user",
                "hubauth": fmt(h),
                "jupyterhub": f"{fmt(a)} (cost {pct(cost('jupyterhub-async'))})",
                "ratio": ratio_str(h / a),
                "target": "(info)",
                "met": None,
            }
        )
    if summary:
        print()
        columns = ("metric", "hubauth", "jupyterhub", "ratio", "target", "met")
        table(
            columns,
            [
                (
                    *(str(row[k]) for k in columns[:-1]),
                    "-" if row["met"] is None else ("yes" if row["met"] else "NO"),
                )
                for row in summary
            ],
            right=set(),
        )

    worst = max(r["client_cpu_max_pct"] for r in res.values())
    print(
        f"\nload generator: {s.clients} process(es), {s.connections} keep-alive connections "
        f"in all, one request in flight each; busiest client process {worst:.0f} % of a core"
        + (
            f" (below {SATURATED:g} %: not the bottleneck)"
            if worst < SATURATED
            else f" (at or above {SATURATED:g} %: it may be holding the load back)"
        )
    )
    late = max(r["client_late_s"] for r in res.values())
    if late > 0.5:
        print(f"a client process started {late:.2f} s late: the warm-up absorbed it")
    errors = {v: r["error_samples"] for v, r in res.items() if r["errors"]}
    for v, samples in errors.items():
        print(f"ERRORS in {v} ({res[v]['errors']}), e.g. {samples}")
    return summary


def profile_server(variant: str, api_url: str, token: str, s: Settings) -> str:
    """One more load on ``variant``'s server, which runs under cProfile; its top functions."""
    import io
    import pstats

    print(f"... {variant} under cProfile", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "server.prof")
        res = measure(variant, api_url, token, s, profile=path)
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_callees("prepare")
    return f"{fmt(res['req_per_s'])} req/s with the profiler on\n{out.getvalue()}"


def versions() -> dict[str, str]:
    import jupyterhub
    import tornado

    import hubauth

    return {
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "hubauth": getattr(hubauth, "__version__", "?"),
        "jupyterhub": jupyterhub.__version__,
        "tornado": tornado.version,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument(
        "--quick", action="store_true", help="one round of 3 s per variant (else 5 of 5 s)"
    )
    p.add_argument("--duration", type=float, help="measured seconds per variant")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    p.add_argument("--clients", type=int, default=2, help="client processes (2)")
    p.add_argument("--rounds", type=int, help="runs per variant, interleaved (5; 1 with --quick)")
    p.add_argument(
        "--max-requests", type=int, default=1_000_000, help="cap per connection (1,000,000)"
    )
    p.add_argument(
        "--only", metavar="LIST", default=",".join(VARIANTS), help=f"subset of {VARIANTS}"
    )
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON here")
    p.add_argument(
        "--profile",
        nargs="?",
        const="hubauth",
        choices=VARIANTS,
        help="afterwards, run one more (untimed) load on this variant's server (hubauth if "
        "none is named) under cProfile and print where its time goes",
    )
    p.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--api-url", help=argparse.SUPPRESS)
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.serve:
        serve(args.serve, args.api_url)
        return 0
    if args.client:
        client(*json.loads(args.client))
        return 0

    only = [v for v in VARIANTS if v in {x.strip() for x in args.only.split(",")}]
    if not only:
        p.error(f"--only: none of {VARIANTS}")
    duration = args.duration or (3.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 5)
    s = Settings(
        duration=duration,
        warmup=1.0 if args.quick else 2.0,
        connections=max(1, args.connections),
        clients=max(1, min(args.clients, args.connections)),
        rounds=max(1, rounds),
        max_requests=max(1, args.max_requests),
    )
    info = versions()
    print(
        "Tornado throughput, no auth vs hubauth vs jupyterhub.services.auth: "
        + ", ".join(f"{k} {v}" for k, v in info.items())
        + f"; {fmt(s.duration, 1)} s per variant x {s.rounds} round(s)",
        flush=True,
    )

    sys.path.insert(0, str(HERE))
    from stubhub import StubHub, user_model

    token = secrets.token_hex(16)
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in only}
    with StubHub({token: user_model(USER)}) as hub:
        for r in range(s.rounds):
            for v in only:
                before = hub.by_token[token]
                print(
                    f"... {v}" + (f" (round {r + 1})" if s.rounds > 1 else ""), end="", flush=True
                )
                res = measure(v, hub.api_url, token, s)
                res["hub_lookups"] = hub.by_token[token] - before
                runs[v].append(res)
                print(f": {fmt(res['req_per_s'])} req/s", flush=True)
        profile = profile_server(args.profile, hub.api_url, token, s) if args.profile else None
        inproc = {}
        if "none" in only and "hubauth" in only:
            print("... in-process CPU per request", flush=True)
            inproc = {
                v: inprocess_us(v, hub.api_url, token, n=1000 if args.quick else 3000)
                for v in only
                if v != "jupyterhub-async"
            }
    elapsed = time.perf_counter() - started
    summary = {v: summarize(rs) for v, rs in runs.items()}
    for v, rs in runs.items():
        if v != "none" and "none" in runs:
            summary[v]["cost_pct_runs"] = [
                100 * (1 - r["req_per_s"] / n["req_per_s"])
                for r, n in zip(rs, runs["none"], strict=True)
            ]
    print()
    rows = report(summary, s)
    if inproc:
        base = summary["none"]["server_cpu_us_per_req"]

        def share(v: str) -> float | None:
            if v not in inproc:
                return None
            added = inproc[v] - inproc["none"]
            return 100 * added / (base + added)

        h, j = share("hubauth"), share("jupyterhub")
        print(
            "\nin-process CPU per request (µs, best of 7, no sockets): "
            + ", ".join(f"{v} {us:.1f}" for v, us in inproc.items())
        )
        row = {
            "metric": "auth share of server CPU (in-process µs added / no-auth µs under load)",
            "hubauth": "-" if h is None else f"{h:.1f} %",
            "jupyterhub": "-" if j is None else f"{j:.1f} %",
            "ratio": "",
            "target": f"hubauth < {TARGET_COST:g} %",
            "met": h is not None and h < TARGET_COST,
        }
        rows.append(row)
        print(
            f"{row['metric']}: hubauth {row['hubauth']}, jupyterhub {row['jupyterhub']}; "
            f"target {row['target']}: {'yes' if row['met'] else 'NO'}"
        )
    print(
        f"\ntotal {elapsed:.1f} s. req/s move with whatever else runs on the machine (the "
        "'other CPU %' column); server CPU µs/req moves less. Compare within one run."
    )
    if profile:
        print(f"\n{args.profile} server under load, cProfile (sorted by own time):")
        print(profile)
    if args.json:
        doc = {
            "versions": info,
            "settings": asdict(s),
            "elapsed_s": elapsed,
            "runs": runs,
            "summary": summary,
            "table": rows,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
