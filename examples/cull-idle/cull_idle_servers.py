"""cull-idle: stop JupyterHub user servers that have been idle for too long.

Every ``--cull-every`` seconds it lists the users with a ready server and stops each server
(default and named) whose last activity is more than ``--timeout`` seconds ago. A server the
Hub never saw activity on counts from when it started. It talks to the Hub only through
:class:`hubauth.api.AsyncHubAPI`, with at most ``--concurrency`` requests in flight.

It never gives up because of the Hub: a round that fails (the Hub restarting, a 5xx, a
network blip) logs one warning and the next round tries again.

Run it as a Hub-managed service (see jupyterhub_config.py; the Hub gives it
``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_API_TOKEN``) or on its own::

    JUPYTERHUB_API_TOKEN=... python cull_idle_servers.py --timeout=3600 \\
        --url=http://127.0.0.1:8081/hub/api

Its token needs the scopes ``list:users``, ``read:servers`` and ``delete:servers``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from hubauth import HubAuthError
from hubauth.api import AsyncHubAPI

log = logging.getLogger("cull-idle")

DEFAULT_URL = "http://127.0.0.1:8081/hub/api"


def parse_date(value: object) -> datetime | None:
    """An ISO 8601 timestamp from the Hub (``...Z``, an offset, or naive UTC), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1] in "Zz":  # Python 3.10's fromisoformat does not read "Z"
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def idle_seconds(server: dict[str, Any], now: datetime) -> float | None:
    """Seconds since the server's last activity (else since it started), or None if unknown."""
    since = parse_date(server.get("last_activity")) or parse_date(server.get("started"))
    return None if since is None else (now - since).total_seconds()


def server_label(user: str, server_name: str) -> str:
    return f"{user}/{server_name}" if server_name else user


class Culler:
    """One round at a time: find the idle servers, stop them concurrently."""

    def __init__(self, api: AsyncHubAPI, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self._warned_no_servers = False

    async def cull_round(self) -> tuple[int, int]:
        """Stop every ready server idle longer than the timeout: ``(ready, stopped)``.

        Raises :class:`~hubauth.HubAuthError` when the user list cannot be read.
        """
        users = await self.api.users(state="ready")
        now = datetime.now(timezone.utc)
        ready = 0
        idle: list[tuple[str, str, float]] = []
        for user in users:
            name = user.get("name")
            servers = user.get("servers")
            if not isinstance(name, str):
                continue
            if servers is None:
                if not self._warned_no_servers:
                    log.warning(
                        "the Hub lists users without their servers: grant this service the "
                        "scope read:servers"
                    )
                    self._warned_no_servers = True
                continue
            for server_name, server in servers.items():
                # A pending server is starting or stopping: stopping it would cancel a spawn.
                if not server.get("ready") or server.get("pending"):
                    continue
                ready += 1
                seconds = idle_seconds(server, now)
                if seconds is None:
                    log.debug(
                        "%s: no activity or start time; skipped", server_label(name, server_name)
                    )
                elif seconds > self.timeout:
                    idle.append((name, server_name, seconds))
        results = await asyncio.gather(*(self.stop(*args) for args in idle))
        return ready, sum(results)

    async def stop(self, user: str, server_name: str, idle: float) -> bool:
        """Stop one server; a failure is logged (the next round tries again)."""
        label = server_label(user, server_name)
        try:
            status = await self.api.stop_server(user, server_name)
        except (HubAuthError, OSError) as e:
            log.warning("could not stop %s (idle %ds): %s", label, idle, e)
            return False
        if status == 202:
            log.info("stopping %s, idle %ds (the Hub is still stopping it)", label, idle)
        else:
            log.info("stopped %s, idle %ds", label, idle)
        return True


async def run(args: argparse.Namespace) -> int:
    api = AsyncHubAPI(api_url=args.url, max_concurrency=args.concurrency)
    culler = Culler(api, args.timeout)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    log.info(
        "culling servers idle for more than %gs, every %gs, at %s",
        args.timeout,
        args.cull_every,
        args.url,
    )
    stop_wait = asyncio.ensure_future(stopping.wait())
    rounds = 0
    try:
        while not stopping.is_set():
            rounds += 1
            began = loop.time()
            this_round = asyncio.ensure_future(culler.cull_round())
            await asyncio.wait({this_round, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not this_round.done():  # asked to stop mid-round
                this_round.cancel()
                with contextlib.suppress(asyncio.CancelledError, HubAuthError, OSError):
                    await this_round
                break
            try:
                ready, stopped = this_round.result()
            except (HubAuthError, OSError) as e:
                log.warning(
                    "round %d failed; trying again in %gs: %s",
                    rounds,
                    args.cull_every,
                    " ".join(str(e).split()),
                )
            else:
                log.debug("round %d: %d ready servers, %d stopped", rounds, ready, stopped)
            if args.max_rounds and rounds >= args.max_rounds:
                break
            pause = max(0.0, args.cull_every - (loop.time() - began))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(stop_wait), pause)
    finally:
        stop_wait.cancel()
        api.close()
    log.info("exiting after %d rounds", rounds)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Stop JupyterHub user servers that have been idle for too long. "
        "The Hub API token comes from JUPYTERHUB_API_TOKEN."
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="stop servers idle for more than this many seconds (default: 3600)",
    )
    parser.add_argument(
        "--cull-every",
        type=float,
        default=0,
        help="seconds between checks (default: half the timeout)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("JUPYTERHUB_API_URL") or DEFAULT_URL,
        help=f"the Hub's API URL (default: $JUPYTERHUB_API_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=10,
        help="most requests to the Hub at a time (default: 10)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="default: INFO (DEBUG adds a line per round)",
    )
    parser.add_argument("--max-rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.cull_every < 0:
        parser.error("--cull-every must be >= 0")
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    if args.max_rounds < 0:
        parser.error("--max-rounds must be >= 0")
    args.cull_every = args.cull_every or args.timeout / 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.setLevel(args.log_level)
    try:
        return asyncio.run(run(args))
    except HubAuthError as e:  # a setting is missing or wrong (ConfigError): nothing to retry
        log.error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
