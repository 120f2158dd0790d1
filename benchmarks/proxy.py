"""hubauth-proxy vs jhsingle-native-proxy in front of the same app, and the app alone.

    .venv/bin/python benchmarks/proxy.py            # 5 rounds of 5 s per figure: ~5 minutes
    .venv/bin/python benchmarks/proxy.py --quick    # 1 round of 2 s: ~40 s
    .venv/bin/python benchmarks/proxy.py --json proxy.json

Three servers, one run: the trivial app alone ("direct"), hubauth-proxy in front of its own
copy of the app, and jhsingle-native-proxy (the tool a user would otherwise pick for "any app
behind Hub login") in front of another copy. Both proxies start the app themselves, as a
user's server for ``alice`` (``JUPYTERHUB_USER``, the same access scope), authenticate every
request with the same API token against the stub Hub (``stubhub.py``; after the first
request both answer from their caches), and strip the prefix. Figures:

- requests/s: ``GET /hello`` (an 18-byte JSON answer) over 16 keep-alive connections from two
  client processes; overhead = 1 - proxied / direct;
- added latency: one connection, one request at a time; median and p99, minus the app's own;
- websocket messages/s: echo round trips of 100-byte messages on one websocket, 16 in flight;
- memory while streaming: the proxy process's peak RSS above its resting RSS while a client
  downloads 90 MB slowly (1 MiB reads, paced) and while one uploads 90 MB (jhsingle runs
  with ``--progressive``, its streaming mode, for this figure; it buffers uploads either way);
- whether a 200 MB download gets through at all (jhsingle-native-proxy's HTTP client stops at
  100 MB, its default ``max_body_size``).

Each figure is the median over interleaved rounds (every round measures every variant).
Nothing asserts a figure; the target (hubauth-proxy ahead of jhsingle-native-proxy on every
figure, under 15 % throughput overhead) is printed beside the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import _ClientRun, _Conn, _split, _stop, table  # noqa: E402
from stubhub import StubHub, user_model  # noqa: E402

USER = "alice"
PREFIX = f"/user/{USER}/"
TOKEN = "bench-user-token-" + "u" * 24
SERVICE_TOKEN = "bench-server-token-" + "s" * 24
TARGET_OVERHEAD = 15.0
STREAM_MB = 90  # jhsingle-native-proxy cannot pass 100 MB or more (see big_download)
BIG_MB = 200


# ---------------------------------------------------------------------------- the app


def serve_app(port: int) -> None:
    """The trivial app: /hello, /ws (echo), /download?size=N, /upload (counted, streamed)."""
    from tornado.httpserver import HTTPServer
    from tornado.web import Application, RequestHandler, stream_request_body
    from tornado.websocket import WebSocketHandler

    class Hello(RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(b'{"hello": "world"}')

    class Echo(WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            await self.write_message(message, binary=isinstance(message, bytes))

        def check_origin(self, origin: str) -> bool:
            return True

    class Download(RequestHandler):
        async def get(self) -> None:
            size = int(self.get_query_argument("size"))
            self.set_header("Content-Length", str(size))
            chunk = b"\0" * 65536
            while size > 0:
                self.write(chunk[: min(size, len(chunk))])
                size -= len(chunk)
                await self.flush()

    @stream_request_body
    class Upload(RequestHandler):
        size = 0

        def data_received(self, chunk: bytes) -> None:
            self.size += len(chunk)

        def post(self) -> None:
            self.finish({"size": self.size})

    async def main() -> None:
        app = Application(
            [("/hello", Hello), ("/ws", Echo), ("/download", Download), ("/upload", Upload)],
            log_function=lambda _h: None,
        )
        HTTPServer(app, max_body_size=2**40).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------------------- the servers


def _env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "HUBAUTH_"))}
    env.update(
        JUPYTERHUB_API_URL=api_url,
        JUPYTERHUB_API_TOKEN=SERVICE_TOKEN,
        JUPYTERHUB_USER=USER,
        JUPYTERHUB_SERVICE_PREFIX=PREFIX,
        JUPYTERHUB_CLIENT_ID=f"jupyterhub-user-{USER}",
        JUPYTERHUB_OAUTH_CALLBACK_URL=f"{PREFIX}oauth_callback",
        JUPYTERHUB_OAUTH_ACCESS_SCOPES=json.dumps([f"access:servers!user={USER}"]),
        HUBAUTH_COOKIE_SECRET=secrets.token_hex(32),
    )
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One variant: its process, where it listens, and the path prefix in front of the app."""

    def __init__(self, name: str, api_url: str, *, progressive: bool = False) -> None:
        self.name = name
        self.port = _free_port()
        me = str(Path(__file__).resolve())
        app = [sys.executable, me, "--app"]
        if name == "direct":
            cmd = [*app, str(self.port)]
            self.prefix = "/"
        elif name == "hubauth-proxy":
            cmd = [sys.executable, "-m", "hubauth.proxy", "--port", str(self.port)]
            cmd += ["--strip-prefix", "--log-level", "WARNING", "--", *app, "{port}"]
            self.prefix = PREFIX
        else:
            # jhsingle-native-proxy takes the app's options as {--}name (click would read them).
            cmd = [sys.executable, "-m", "jhsingle_native_proxy.main", "--port", str(self.port)]
            cmd += ["--ip", "127.0.0.1", "--last-activity-interval", "0", "--no-logs"]
            cmd += ["--ready-timeout", "30", *(["--progressive"] if progressive else [])]
            cmd += [sys.executable, me, "{--}app", "{port}"]
            self.prefix = PREFIX
        self.log = open(os.devnull, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, env=_env(api_url), stdout=self.log, stderr=subprocess.STDOUT
        )
        self.headers = {} if name == "direct" else {"Authorization": f"token {TOKEN}"}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}{path}"

    def wait(self) -> None:
        import requests

        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                r = requests.get(self.url("hello"), headers=self.headers, timeout=5)
                if r.status_code == 200 and r.json() == {"hello": "world"}:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer {self.url('hello')}")
            time.sleep(0.1)

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


@contextmanager
def servers(api_url: str, names: list[str], **kw: Any) -> Iterator[dict[str, Server]]:
    started = {n: Server(n, api_url, **kw) for n in names}
    try:
        for s in started.values():
            s.wait()
        yield started
    finally:
        for s in started.values():
            s.stop()


# ---------------------------------------------------------------------------- load clients


def http_client(port: int, path: str, token: str, conns: int, t0: float, t1: float) -> None:
    """A client process: ``conns`` keep-alive connections until ``t1``; print the count."""
    auth = f"Authorization: token {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n".encode()

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        start = loop.time()
        run = _ClientRun(loop, request, b"world", start + 0.5, start + 0.5 + (t1 - t0), 10**9)
        made = [
            await loop.create_connection(lambda: _Conn(run), "127.0.0.1", port)
            for _ in range(conns)
        ]
        await asyncio.gather(*(c.closed for _, c in made))
        return {"ok": run.ok, "errors": run.errors, "samples": run.samples}

    print(json.dumps(asyncio.run(main())), flush=True)


def throughput(s: Server, seconds: float) -> float:
    me = str(Path(__file__).resolve())
    token = TOKEN if s.name != "direct" else ""
    t0 = time.monotonic() + 0.3
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                me,
                "--http-client",
                json.dumps([s.port, s.prefix + "hello", token, n, t0, t0 + seconds]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in _split(16, 2)
    ]
    results = [
        json.loads(p.communicate(timeout=seconds + 60)[0].strip().splitlines()[-1]) for p in procs
    ]
    errors = sum(r["errors"] for r in results)
    if errors:
        raise RuntimeError(f"{s.name}: {errors} bad answers, e.g. {results[0]['samples'][:1]}")
    return sum(r["ok"] for r in results) / seconds


def latency(s: Server, n: int) -> tuple[float, float]:
    """Median and p99 of ``n`` sequential requests on one kept-alive connection, in µs."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    times = []
    for i in range(n + 50):
        t = time.perf_counter()
        conn.request("GET", s.prefix + "hello", headers=s.headers)
        body = conn.getresponse().read()
        if i >= 50:  # warm-up
            times.append(time.perf_counter() - t)
        if b"world" not in body:
            raise RuntimeError(f"{s.name}: {body[:200]!r}")
    conn.close()
    times.sort()
    return 1e6 * statistics.median(times), 1e6 * times[int(0.99 * len(times))]


def ws_client(url: str, token: str, seconds: float, window: int) -> None:
    """A client process: echo round trips on one websocket, ``window`` in flight."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def main() -> dict[str, Any]:
        headers = {"Authorization": f"token {token}"} if token else {}
        conn = await websocket_connect(HTTPRequest(url, headers=headers))
        message = "x" * 100
        for _ in range(window):
            await conn.write_message(message)
        end = time.monotonic() + seconds
        count = 0
        start = time.monotonic()
        while time.monotonic() < end:
            if await conn.read_message() is None:
                raise RuntimeError("closed")
            count += 1
            await conn.write_message(message)
        elapsed = time.monotonic() - start
        conn.close()
        return {"per_s": count / elapsed}

    print(json.dumps(asyncio.run(main())), flush=True)


def ws_rate(s: Server, seconds: float) -> float:
    me = str(Path(__file__).resolve())
    url = s.url("ws").replace("http://", "ws://")
    token = TOKEN if s.name != "direct" else ""
    out = subprocess.run(
        [sys.executable, me, "--ws-client", json.dumps([url, token, seconds, 16])],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["per_s"])


# ---------------------------------------------------------------------------- memory


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def peak_rss(pid: int) -> Iterator[dict[str, int]]:
    """Samples ``pid``'s RSS every 10 ms; yields a dict that gets ``base`` and ``peak``."""
    out = {"base": _rss_kib(pid), "peak": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            out["peak"] = max(out["peak"], _rss_kib(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()


def big_download(s: Server) -> bool:
    """Whether a 200 MB download arrives whole."""
    import requests

    size = BIG_MB * 1024 * 1024
    with requests.get(
        s.url(f"download?size={size}"), headers=s.headers, stream=True, timeout=300
    ) as r:
        got = sum(len(c) for c in r.iter_content(1024 * 1024)) if r.status_code == 200 else 0
    return got == size


def streaming_memory(s: Server) -> dict[str, float]:
    """Peak RSS growth (MiB) of the proxy while a slow client downloads, then uploads."""
    import requests

    size = STREAM_MB * 1024 * 1024
    out = {}
    with peak_rss(s.proc.pid) as m:
        r = requests.get(
            s.url(f"download?size={size}"), headers=s.headers, stream=True, timeout=300
        )
        got = 0
        for chunk in r.iter_content(1024 * 1024):
            got += len(chunk)
            time.sleep(0.004)  # a client slower than the app: back-pressure, or buffering
        r.close()
    if got != size:
        raise RuntimeError(f"{s.name}: downloaded {got} of {size} bytes")
    out["download_mib"] = max(0, m["peak"] - m["base"]) / 1024
    body = b"\0" * size  # with a Content-Length (jhsingle-native-proxy refuses chunked: 400)
    with peak_rss(s.proc.pid) as m:
        r = requests.post(s.url("upload"), data=body, headers=s.headers, timeout=300)
    if r.status_code != 200 or r.json()["size"] != size:
        raise RuntimeError(f"{s.name}: upload -> {r.status_code} {r.text[:200]}")
    out["upload_mib"] = max(0, m["peak"] - m["base"]) / 1024
    out["big_download"] = big_download(s)
    return out


# ---------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    p.add_argument("--app", type=int, help=argparse.SUPPRESS)
    p.add_argument("--http-client", help=argparse.SUPPRESS)
    p.add_argument("--ws-client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.app:
        serve_app(args.app)
        return 0
    if args.http_client:
        http_client(*json.loads(args.http_client))
        return 0
    if args.ws_client:
        ws_client(*json.loads(args.ws_client))
        return 0
    rounds, seconds, n_lat = (1, 2.0, 500) if args.quick else (args.rounds, 5.0, 2000)
    names = ["direct", "hubauth-proxy", "jhsingle-native-proxy"]
    per: dict[str, dict[str, list[Any]]] = {
        n: {"req_per_s": [], "latency_us": [], "ws_per_s": []} for n in names
    }
    with StubHub({TOKEN: user_model(USER)}) as hub, servers(hub.api_url, names) as running:
        # Interleaved: each round measures every variant, so they share the machine's moods.
        for _ in range(rounds):
            for name in names:
                per[name]["req_per_s"].append(throughput(running[name], seconds))
                per[name]["latency_us"].append(latency(running[name], n_lat))
                per[name]["ws_per_s"].append(ws_rate(running[name], seconds))
        res: dict[str, dict[str, Any]] = {
            n: {
                "rounds": per[n],
                "req_per_s": per[n]["req_per_s"],
                "latency_us": (
                    statistics.median(x[0] for x in per[n]["latency_us"]),
                    statistics.median(x[1] for x in per[n]["latency_us"]),
                ),
                "ws_per_s": statistics.median(per[n]["ws_per_s"]),
            }
            for n in names
        }
        res["hubauth-proxy"].update(streaming_memory(running["hubauth-proxy"]))
        lookups = dict(hub.by_token)
    with (
        StubHub({TOKEN: user_model(USER)}) as hub,
        servers(hub.api_url, ["jhsingle-native-proxy"], progressive=True) as running,
    ):
        res["jhsingle-native-proxy"].update(streaming_memory(running["jhsingle-native-proxy"]))

    d = res["direct"]
    rps = {n: statistics.median(res[n]["req_per_s"]) for n in names}
    rows = []
    for n in names:
        r = res[n]
        over = 100 * (1 - rps[n] / rps["direct"]) if n != "direct" else 0.0
        added = r["latency_us"][0] - d["latency_us"][0]
        rows.append(
            [
                n,
                f"{rps[n]:.0f}",
                "" if n == "direct" else f"{over:.1f} %",
                f"{r['latency_us'][0]:.0f} / {r['latency_us'][1]:.0f}",
                "" if n == "direct" else f"{added:.0f}",
                f"{r['ws_per_s']:.0f}",
                "" if n == "direct" else f"{r['download_mib']:.1f} / {r['upload_mib']:.1f}",
                "" if n == "direct" else ("yes" if r["big_download"] else "NO"),
            ]
        )
    print(f"\nhubauth-proxy vs jhsingle-native-proxy ({rounds} round(s) of {seconds:g} s; "
          f"Hub lookups by token: {lookups})\n")  # fmt: skip
    head = ["", "req/s", "overhead", "latency µs p50/p99", "added µs", "ws msg/s"]
    table(
        [*head, "RSS MiB dl/ul", f"{BIG_MB} MB download"],
        rows,
        right={1, 2, 3, 4, 5, 6, 7},
    )
    h, j = res["hubauth-proxy"], res["jhsingle-native-proxy"]
    ratios = {
        "req/s": rps["hubauth-proxy"] / rps["jhsingle-native-proxy"],
        "added latency": (j["latency_us"][0] - d["latency_us"][0])
        / max(1.0, h["latency_us"][0] - d["latency_us"][0]),
        "ws msg/s": h["ws_per_s"] / j["ws_per_s"],
        "download RSS": (j["download_mib"] + 1) / (h["download_mib"] + 1),
        "upload RSS": (j["upload_mib"] + 1) / (h["upload_mib"] + 1),
    }
    print("\nhubauth-proxy ÷ jhsingle-native-proxy (> 1: hubauth-proxy ahead; RSS as (x+1)/(y+1))")
    table(["figure", "ratio"], [[k, f"{v:.2f}x"] for k, v in ratios.items()], right={1})
    overhead = 100 * (1 - rps["hubauth-proxy"] / rps["direct"])
    ahead = all(v > 1 for v in ratios.values())
    print(
        f"\ntarget: ahead on every figure: {'yes' if ahead else 'NO'}; throughput overhead "
        f"{overhead:.1f} % (target < {TARGET_OVERHEAD:g} %): "
        f"{'met' if overhead < TARGET_OVERHEAD else 'NOT met'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"results": res, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
