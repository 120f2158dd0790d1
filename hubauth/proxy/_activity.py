"""Telling the Hub that a user's server is in use, so the idle culler spares it.

As a user's server, the proxy gets ``JUPYTERHUB_ACTIVITY_URL`` (``POST /users/:name/activity``)
from the Hub. Every request and websocket message marks the server active (a timestamp, no
I/O); the Hub hears of it at most once per interval, first as soon as traffic follows a
quiet spell, then again at the end of the interval if traffic went on meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

from .._protocol import HubRequest
from ..auth import HubAuth
from ..errors import HubAuthError

__all__ = ["Activity"]

log = logging.getLogger("hubauth.proxy")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


class Activity:
    """Reports activity of server ``server_name`` to ``url``, throttled to ``interval``."""

    def __init__(self, auth: HubAuth, url: str, server_name: str, interval: float) -> None:
        self.auth = auth
        self.url = url
        self.server_name = server_name
        self.interval = interval
        self.last_seen = 0.0  # wall clock of the last traffic
        self.last_sent = 0.0  # wall clock of the activity last reported
        self.last_post = -1e9  # monotonic time of the last report
        self.reports = 0
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """Traffic now. Cheap: a timestamp, and now and then a report scheduled."""
        self.last_seen = time.time()
        if self._pending is not None or (self._task is not None and not self._task.done()):
            return
        loop = asyncio.get_running_loop()
        wait = self.last_post + self.interval - loop.time()
        if wait <= 0:
            self._report()
        else:
            self._pending = loop.call_later(wait, self._report)

    def _report(self) -> None:
        self._pending = None
        if self.last_seen <= self.last_sent:
            return
        self.last_post = asyncio.get_running_loop().time()
        self._task = asyncio.ensure_future(self._send(self.last_seen))

    async def _send(self, seen: float) -> None:
        stamp = _iso(seen)
        body = {"servers": {self.server_name: {"last_activity": stamp}}, "last_activity": stamp}
        req = HubRequest(
            "POST",
            self.url,
            headers={
                "Authorization": f"token {self.auth.api_token}",
                "Content-Type": "application/json",
            },
            body=json.dumps(body).encode(),
            idempotent=False,
        )
        try:
            reply = await self.auth._async.send(req)
        except HubAuthError as e:
            log.warning("Could not report activity to the Hub at %s: %s", self.url, e)
            return
        finally:
            if self.last_seen > seen and self._pending is None:
                # Traffic went on while reporting: report it at the end of this interval.
                loop = asyncio.get_running_loop()
                wait = max(0.0, self.last_post + self.interval - loop.time())
                self._pending = loop.call_later(wait, self._report)
        if reply.status >= 400:
            log.warning(
                "The Hub answered %s to the activity report at %s (does the server's token "
                "have users:activity?)",
                reply.status,
                self.url,
            )
            return
        self.last_sent = seen
        self.reports += 1
        log.debug("Reported activity at %s to the Hub", stamp)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
