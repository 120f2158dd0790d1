"""cull-idle: stop idle JupyterHub servers (and, if asked, delete idle users).

The options and their meanings are jupyterhub-idle-culler 2.0's, so this can replace it in
a Hub config as it is. Every ``--cull-every`` seconds (the first round at once):

- each ready server (default and named; pending ones are left alone) whose last activity
  (else its start) is at least ``--timeout`` seconds ago is stopped, or removed with
  ``--remove-named-servers``; ``--max-age`` stops servers started that long ago even if
  active; ``--cull-default-servers=false`` / ``--cull-named-servers=false`` spare a kind;
- with ``--cull-users``, a user with no server left running (none stopping either) whose
  last activity (else creation) is ``--timeout`` ago, or created ``--max-age`` ago, is
  deleted; admins too unless ``--cull-admin-users=false``.

It talks to the Hub only through :class:`hubauth.api.AsyncHubAPI`: at most
``--concurrency`` requests in flight (0: no limit), ``--api-page-size`` users a page (0:
the Hub's default), retries where safe. A round that fails (the Hub restarting, a 5xx)
logs one warning and the next round tries again. ``--ssl-enabled`` talks to a Hub with
``internal_ssl`` using the certificates under ``--internal-certs-location``.

Run it as a Hub-managed service (see jupyterhub_config.py) or on its own::

    JUPYTERHUB_API_TOKEN=... python cull_idle_servers.py --timeout=3600 \\
        --url=http://127.0.0.1:8081/hub/api

Its token needs ``list:users``, ``read:users:activity``, ``read:servers`` and
``delete:servers`` (with ``--cull-users``: ``admin:users``).
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


def seconds_since(value: object, now: datetime) -> float | None:
    when = parse_date(value)
    return None if when is None else (now - when).total_seconds()


def idle_seconds(server: dict[str, Any], now: datetime) -> float | None:
    """Seconds since the server's last activity (else since it started), or None if unknown."""
    since = parse_date(server.get("last_activity")) or parse_date(server.get("started"))
    return None if since is None else (now - since).total_seconds()


def hms(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    s = int(seconds)
    return f"{s // 3600:02}:{s % 3600 // 60:02}:{s % 60:02}"


def server_label(user: str, server_name: str) -> str:
    return f"{user}/{server_name}" if server_name else user


class Culler:
    """One round at a time: find what is idle, stop (and delete) it concurrently."""

    def __init__(self, api: AsyncHubAPI, args: argparse.Namespace) -> None:
        self.api = api
        self.args = args
        self._warned_no_servers = False

    async def cull_round(self) -> tuple[int, int]:
        """One round: ``(servers seen, servers stopped)``. Users are deleted as well with
        ``--cull-users``. Raises :class:`~hubauth.HubAuthError` when users cannot be listed.
        """
        args = self.args
        ready = await self.api.users(state="ready")
        idle_users = await self.api.users(state="inactive") if args.cull_users else []
        now = datetime.now(timezone.utc)
        results = await asyncio.gather(
            *(self.handle_user(u, now) for u in [*idle_users, *ready] if isinstance(u, dict))
        )
        return sum(r[0] for r in results), sum(r[1] for r in results)

    async def handle_user(self, user: dict[str, Any], now: datetime) -> tuple[int, int]:
        name = user.get("name")
        if not isinstance(name, str):
            return 0, 0
        servers = user.get("servers")
        if servers is None:
            if not self._warned_no_servers:
                log.warning(
                    "the Hub lists users without their servers: grant this service read:servers"
                )
                self._warned_no_servers = True
            return 0, 0
        stopped = await asyncio.gather(
            *(self.handle_server(name, sn, dict(s), now) for sn, s in servers.items())
        )
        if self.args.cull_users and all(stopped):
            await self.handle_user_deletion(user, now)
        return len(stopped), sum(stopped)

    def should_cull_server(self, server_name: str, server: dict[str, Any], now: datetime) -> bool:
        args = self.args
        label_kind_ok = args.cull_named_servers if server_name else args.cull_default_servers
        inactive = idle_seconds(server, now)
        if inactive is not None and inactive >= args.timeout and label_kind_ok:
            return True
        age = seconds_since(server.get("started"), now)
        return bool(args.max_age and age is not None and age >= args.max_age)

    async def handle_server(
        self, user: str, server_name: str, server: dict[str, Any], now: datetime
    ) -> bool:
        """Stop one server if it is to be culled: whether it is stopped now."""
        label = server_label(user, server_name)
        if server.get("pending"):
            log.warning("not culling %s: pending %s", label, server["pending"])
            return False
        if not server.get("ready"):
            log.warning("not culling %s: not ready", label)
            return False
        if not self.should_cull_server(server_name, server, now):
            return False
        inactive = idle_seconds(server, now)
        remove = bool(server_name) and self.args.remove_named_servers
        try:
            status = await self.api.stop_server(user, server_name, remove=remove)
        except (HubAuthError, OSError) as e:
            log.warning("could not stop %s: %s", label, " ".join(str(e).split()))
            return False
        verb = "removed" if remove else "stopped"
        if status == 202:
            log.info("stopping %s, idle %s (the Hub is still stopping it)", label, hms(inactive))
            return False  # a user with a server still stopping is not deleted
        log.info("%s %s, idle %s", verb, label, hms(inactive))
        return True

    async def handle_user_deletion(self, user: dict[str, Any], now: datetime) -> None:
        args, name = self.args, str(user["name"])
        inactive = seconds_since(user.get("last_activity"), now)
        age = seconds_since(user.get("created"), now)
        if inactive is None:
            inactive = age
        cull = inactive is not None and inactive >= args.timeout
        if user.get("admin") and not args.cull_admin_users:
            cull = False
        if not cull and not (args.max_age and age is not None and age >= args.max_age):
            return
        try:
            await self.api.delete_user(name)
        except (HubAuthError, OSError) as e:
            log.warning("could not delete user %s: %s", name, " ".join(str(e).split()))
            return
        log.info("deleted user %s, idle %s", name, hms(inactive))


async def run(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    if args.ssl_enabled:
        where = args.internal_certs_location
        settings = {
            "certfile": f"{where}/hub-internal/hub-internal.crt",
            "keyfile": f"{where}/hub-internal/hub-internal.key",
            "client_ca": f"{where}/hub-ca/hub-ca.crt",
        }
    api = AsyncHubAPI(
        api_url=args.url,
        max_concurrency=args.concurrency or 2**31,
        page_size=args.api_page_size,
        **settings,
    )
    culler = Culler(api, args)
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
                seen, stopped = this_round.result()
            except (HubAuthError, OSError) as e:
                log.warning(
                    "round %d failed; trying again in %gs: %s",
                    rounds,
                    args.cull_every,
                    " ".join(str(e).split()),
                )
            else:
                log.debug("round %d: %d ready servers, %d stopped", rounds, seen, stopped)
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


def _bool(text: str) -> bool:
    """``--flag``, ``--flag=true|false`` (and 1/0, yes/no), as traitlets reads them."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "y", "on"):
        return True
    if value in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Stop idle JupyterHub servers (and delete idle users); the options of "
        "jupyterhub-idle-culler 2.0. The Hub API token comes from JUPYTERHUB_API_TOKEN."
    )
    p.add_argument("--timeout", type=int, default=600, help="idle seconds before culling (600)")
    p.add_argument("--cull-every", type=int, default=0, help="seconds between rounds (timeout/2)")
    p.add_argument("--url", default=os.environ.get("JUPYTERHUB_API_URL") or DEFAULT_URL)
    p.add_argument("--concurrency", type=int, default=10, help="requests at a time (0: no limit)")
    p.add_argument("--max-age", type=int, default=0, help="cull servers this old even if active")
    p.add_argument("--api-page-size", type=int, default=0, help="users a page (0: the Hub's)")
    flags = {
        "--cull-users": (False, "delete idle users too (needs admin:users)"),
        "--remove-named-servers": (False, "remove named servers, not just stop them"),
        "--cull-admin-users": (True, "with --cull-users, delete admins too"),
        "--cull-default-servers": (True, "cull default servers"),
        "--cull-named-servers": (True, "cull named servers"),
        "--ssl-enabled": (False, "the Hub API uses internal_ssl"),
    }
    for flag, (default, text) in flags.items():
        p.add_argument(flag, type=_bool, nargs="?", const=True, default=default, help=text)
    p.add_argument("--internal-certs-location", default="internal-ssl")
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="default: INFO (DEBUG adds a line per round)",
    )
    p.add_argument("--max-rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("timeout", "cull_every", "concurrency", "max_age", "api_page_size", "max_rounds"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.timeout == 0:
        p.error("--timeout must be > 0")
    args.cull_every = args.cull_every or max(args.timeout // 2, 1)
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
