"""Throughput of a trivial FastAPI endpoint under uvicorn: no auth, hubauth, and the approach
of JupyterHub's own FastAPI example (one Hub call per request), in one run.

    .venv/bin/python benchmarks/load_fastapi.py            # 5 interleaved rounds of 5 s
    .venv/bin/python benchmarks/load_fastapi.py --quick    # one round of 3 s per variant

One uvicorn process per variant (one worker, uvloop and httptools when installed, no access
log) serves ``GET /whoami`` with the caller's model as JSON:

- ``none``: the endpoint returns a fixed model, no auth at all;
- ``dependency``: the same, through a dependency of ``HubUser``'s shape that checks nothing
  (a security scheme with a sub-scheme, the connection, the security scopes, the response):
  what FastAPI's dependency injection alone costs (for information);
- ``hubauth``: ``user: HubUser`` (``hubauth.fastapi``);
- ``hubauth-asgi``: ``hubauth.asgi.HubAuthMiddleware`` in front of no auth's endpoint (the
  model is in ``request.user``; the endpoint need not read it);
- ``jupyterhub-example``: what JupyterHub's ``examples/service-fastapi`` does: a dependency
  reads the token (``OAuth2AuthorizationCodeBearer`` and ``APIKeyQuery``, ``auto_error=False``),
  opens an ``httpx.AsyncClient`` for the Hub API and asks ``GET /user`` on every request, then
  checks that one of the access scopes is in the model's scopes. It has no cache;
- ``jupyterhub-example-shared``: the same with one ``httpx.AsyncClient`` for the whole
  process (a new client per request, as the example has, builds a TLS context each time):
  the cost of a Hub call per request alone (for information).

Every request carries the same token; after one warm-up request hubauth answers from its
cache, so its row is the auth layer's own cost. The load generator and the measurement are
benchmarks/load.py's. Needs ``pip install -e ".[bench]"`` (fastapi, uvicorn, httpx).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations as objects.
import argparse
import dataclasses
import json
import logging
import os
import secrets
import signal
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402  (benchmarks/load.py: the load generator and the measurement)

VARIANTS = (
    "none",
    "dependency",
    "hubauth",
    "hubauth-asgi",
    "jupyterhub-example",
    "jupyterhub-example-shared",
)
DESCRIPTIONS = {
    "none": "no auth",
    "dependency": "  no auth, a dependency shaped as HubUser",
    "hubauth": "hubauth.fastapi (user: HubUser)",
    "hubauth-asgi": "hubauth.asgi.HubAuthMiddleware",
    "jupyterhub-example": "JupyterHub's examples/service-fastapi",
    "jupyterhub-example-shared": "  same, one shared httpx client",
}


def make_app(variant: str, api_url: str) -> Any:
    """The FastAPI app for ``variant`` (each library imported only when used)."""
    from typing import Annotated

    from fastapi import Depends, FastAPI, HTTPException, Security

    app = FastAPI()

    if variant == "none":
        from stubhub import user_model

        model = user_model(load.USER)

        @app.get(load.PATH)
        async def plain() -> dict[str, Any]:
            return model

        return app

    if variant == "dependency":
        from fastapi import Response
        from fastapi.security import SecurityScopes
        from fastapi.security.base import SecurityBase
        from starlette.requests import HTTPConnection
        from stubhub import user_model

        from hubauth.fastapi import _HubTokenScheme, hub_user

        fixed = user_model(load.USER)

        class Nobody(SecurityBase):
            def __init__(self) -> None:
                self.model, self.scheme_name = hub_user.model, "Nobody"

            async def __call__(
                self,
                conn: HTTPConnection,
                security_scopes: SecurityScopes,
                response: Response,
                _token: Annotated[None, Security(_HubTokenScheme())] = None,
            ) -> dict[str, Any]:
                return fixed

        @app.get(load.PATH)
        async def shaped(user: Annotated[dict[str, Any], Security(Nobody())]) -> dict[str, Any]:
            return user

        return app

    if variant in ("hubauth", "hubauth-asgi"):
        from hubauth import HubAuth

        auth = HubAuth(api_url=api_url, api_token=load.SERVICE_TOKEN, service_name=load.SERVICE)
        if variant == "hubauth-asgi":
            from stubhub import user_model

            from hubauth.asgi import HubAuthMiddleware

            same = user_model(load.USER)

            @app.get(load.PATH)
            async def behind_middleware() -> dict[str, Any]:
                return same  # no auth's endpoint: the middleware in front is the difference

            return HubAuthMiddleware(app, auth)

        from hubauth.fastapi import HubUser

        app.state.hub_auth = auth

        @app.get(load.PATH)
        async def whoami(user: HubUser) -> dict[str, Any]:
            return user

        return app

    # JupyterHub's example, in the same shape: token from the header or ?token=, the Hub's
    # /user asked with a new httpx client on every request, any access scope accepted.
    import httpx
    from fastapi.security import OAuth2AuthorizationCodeBearer
    from fastapi.security.api_key import APIKeyQuery

    by_query = APIKeyQuery(name="token", auto_error=False)
    by_header = OAuth2AuthorizationCodeBearer(
        authorizationUrl="/hub/api/oauth2/authorize", tokenUrl="get_token", auto_error=False
    )
    access_scopes = ["access:services"]  # the example's default (exact membership)

    headers = {"Authorization": f"Bearer {load.SERVICE_TOKEN}"}
    shared: list[httpx.AsyncClient] = []

    async def ask_hub(token: str) -> httpx.Response:
        their = {"Authorization": f"Bearer {token}"}
        if variant == "jupyterhub-example-shared":
            if not shared:
                shared.append(httpx.AsyncClient(base_url=api_url, headers=headers))
            return await shared[0].get("/user", headers=their)
        async with httpx.AsyncClient(base_url=api_url, headers=headers) as client:
            return await client.get("/user", headers=their)

    async def current_user(
        query_token: Annotated[str | None, Security(by_query)],
        header_token: Annotated[str | None, Security(by_header)],
    ) -> dict[str, Any]:
        token = query_token or header_token
        if token is None:
            raise HTTPException(401, "Must login with token parameter or Authorization header")
        r = await ask_hub(token)
        if r.is_error:
            raise HTTPException(400, "Error getting user info from token")
        user: dict[str, Any] = r.json()
        if any(scope in user["scopes"] for scope in access_scopes):
            return user
        raise HTTPException(403, f"User not authorized: {user['name']}")

    @app.get(load.PATH)
    async def example(user: Annotated[dict[str, Any], Depends(current_user)]) -> dict[str, Any]:
        return user

    return app


def serve(variant: str, api_url: str) -> None:
    """Server process: one uvicorn worker on a free port (printed), until SIGTERM."""
    import uvicorn

    for name in ("hubauth", "httpx", "uvicorn"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        make_app(variant, api_url), access_log=False, log_level="error", lifespan="off"
    )
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def inprocess_us(variants: list[str], api_url: str, token: str, n: int) -> dict[str, float]:
    """CPU microseconds per request for each variant's app called in this process as uvicorn
    would (no sockets, no HTTP parsing): the best of 7 interleaved repeats of ``n`` calls.
    Steadier than req/s on a busy machine; what the app and the auth layer cost by themselves.
    """
    import asyncio

    apps = {v: make_app(v, api_url) for v in variants}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": load.PATH,
        "raw_path": load.PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls(app: Any, count: int) -> float:
        start = time.process_time()  # this process's CPU: less moved by the rest of the machine
        for _ in range(count):
            await app(dict(scope), receive, send)
        return (time.process_time() - start) / count * 1e6

    async def main() -> dict[str, float]:
        best = {v: float("inf") for v in apps}
        for app in apps.values():
            await calls(app, 20)  # warm-up; fills hubauth's cache
        for _ in range(7):
            for v, app in apps.items():
                best[v] = min(best[v], await calls(app, n))
        return best

    best = asyncio.run(main())
    if set(statuses) != {200}:
        raise RuntimeError(f"in-process calls answered {sorted(set(statuses))}")
    return best


def versions() -> dict[str, str]:
    import fastapi
    import uvicorn

    info = load.versions()
    info.pop("tornado", None)
    return {**info, "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="one round of 3 s per variant")
    p.add_argument("--duration", type=float, help="measured seconds per variant (5)")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    p.add_argument("--clients", type=int, default=2, help="client processes (2)")
    p.add_argument("--rounds", type=int, help="runs per variant, interleaved (5; 1 with --quick)")
    p.add_argument("--only", metavar="LIST", default=",".join(VARIANTS), help=f"of {VARIANTS}")
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON here")
    p.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--api-url", help=argparse.SUPPRESS)
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.api_url)
        return 0
    if args.client:
        load.client(*json.loads(args.client))
        return 0

    only = [v for v in VARIANTS if v in {x.strip() for x in args.only.split(",")}]
    if "none" not in only:
        p.error("--only must include none (every cost is measured against it)")
    s = load.Settings(
        duration=args.duration or (3.0 if args.quick else 5.0),
        warmup=1.0 if args.quick else 2.0,
        connections=max(1, args.connections),
        clients=max(1, min(args.clients, args.connections)),
        rounds=max(1, args.rounds or (1 if args.quick else 5)),
        max_requests=1_000_000,
    )
    info = versions()
    print(
        "FastAPI under uvicorn, no auth vs hubauth vs JupyterHub's FastAPI example: "
        + ", ".join(f"{k} {v}" for k, v in info.items())
        + f"; {s.duration:g} s per variant x {s.rounds} round(s)",
        flush=True,
    )
    from stubhub import StubHub, user_model

    os.environ["LOAD_EXPECT"] = f'"name":{json.dumps(load.USER)}'  # FastAPI's compact JSON
    os.environ["LOAD_AUTH_SCHEME"] = "Bearer"  # JupyterHub's example takes only Bearer
    token = secrets.token_hex(16)
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in only}
    with StubHub({token: user_model(load.USER)}) as hub:
        for r in range(s.rounds):
            for v in only:
                before = hub.by_token[token]
                print(f"... {v}" + (f" (round {r + 1})" if s.rounds > 1 else ""), end="")
                res = load.measure(v, hub.api_url, token, s, script=Path(__file__).resolve())
                res["hub_lookups"] = hub.by_token[token] - before
                runs[v].append(res)
                print(f": {load.fmt(res['req_per_s'])} req/s", flush=True)
        local = [v for v in only if not v.startswith("jupyterhub")]
        print("... in-process µs per request", flush=True)
        inproc = inprocess_us(local, hub.api_url, token, n=500 if args.quick else 2000)
    elapsed = time.perf_counter() - started
    summary = {v: load.summarize(rs) for v, rs in runs.items()}
    for v, rs in runs.items():
        summary[v]["cost_pct"] = statistics.median(
            100 * (1 - x["req_per_s"] / n["req_per_s"])
            for x, n in zip(rs, runs["none"], strict=True)
        )
    base_us = summary["none"]["server_cpu_us_per_req"]
    print()
    rows = []
    for v in only:
        m = summary[v]
        rows.append(
            (
                DESCRIPTIONS[v],
                load.fmt(m["req_per_s"]),
                "-" if v == "none" else f"{m['cost_pct']:.1f} %",
                load.fmt(m["server_cpu_us_per_req"], 1),
                "-" if v == "none" else f"{m['server_cpu_us_per_req'] - base_us:+.1f}",
                str(m["hub_lookups"]),
                str(m["errors"]),
                f"{m['other_cpu_pct']:.0f}",
            )
        )
    load.table(
        (
            "variant",
            "req/s",
            "auth cost",
            "server CPU µs/req",
            "µs added",
            "Hub lookups",
            "errors",
            "other CPU %",
        ),
        rows,
        right={1, 2, 3, 4, 5, 6, 7},
    )
    print(
        "\nin-process µs per request (best of 7, no sockets): "
        + ", ".join(
            f"{DESCRIPTIONS[v].strip()} {us:.1f}"
            + ("" if v == "none" else f" ({us - inproc['none']:+.1f})")
            for v, us in inproc.items()
        )
    )
    verdict: dict[str, float] = {}
    base_total = summary["none"]["server_cpu_us_per_req"]
    for v in ("hubauth", "hubauth-asgi"):
        if v in inproc:
            added = inproc[v] - inproc["none"]
            verdict[f"{v}_inprocess_share_pct"] = share = 100 * added / (base_total + added)
            print(
                f"{DESCRIPTIONS[v]}: in-process µs added / (no-auth server CPU µs + that): "
                f"{share:.1f} %"
            )
    if "hubauth" in summary:
        cost = summary["hubauth"]["cost_pct"]
        verdict["hubauth_cost_pct"] = cost
        print(
            f"\nhubauth's auth cost: {cost:.1f} % of the no-auth throughput (median over rounds,"
            f" each against its round's no-auth run); target < {load.TARGET_COST:g} %: "
            + ("met" if cost < load.TARGET_COST else "NOT met")
        )
    if "hubauth" in summary and "dependency" in summary:
        own = 100 * (1 - summary["hubauth"]["req_per_s"] / summary["dependency"]["req_per_s"])
        verdict["hubauth_own_cost_pct"] = own
        print(
            f"of which FastAPI's dependency injection: against a dependency of the same shape "
            f"that checks nothing, hubauth's own cost is {own:.1f} %"
        )
    if "hubauth-asgi" in summary:
        cost = summary["hubauth-asgi"]["cost_pct"]
        verdict["hubauth_asgi_cost_pct"] = cost
        print(f"hubauth.asgi.HubAuthMiddleware's auth cost: {cost:.1f} %")
    for other, what in (
        ("jupyterhub-example", "JupyterHub's FastAPI example (a Hub call per request)"),
        ("jupyterhub-example-shared", "the same with one shared client"),
    ):
        if "hubauth" in summary and other in summary:
            ratio = summary["hubauth"]["req_per_s"] / summary[other]["req_per_s"]
            verdict[f"hubauth_vs_{other}_ratio"] = ratio
            print(f"hubauth serves {ratio:.1f}x the requests per second of {what}.")
    print(f"\ntotal {elapsed:.1f} s; compare rows of one run (see benchmarks/README.md).")
    if args.json:
        doc = {
            "versions": info,
            "settings": dataclasses.asdict(s),
            "runs": runs,
            "summary": summary,
        }
        Path(args.json).write_text(json.dumps({**doc, "verdict": verdict}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
