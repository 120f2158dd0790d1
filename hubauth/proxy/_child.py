"""The app as a child process: started with the proxy, its output passed through, stopped
with it (SIGTERM, then SIGKILL after ``--stop-timeout``); when it exits, so does the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
from collections.abc import Mapping, Sequence

__all__ = ["SECRET_VARIABLES", "Child", "ChildError", "child_environment"]

log = logging.getLogger("hubauth.proxy")

# Credentials of the service itself: the app gets none of them unless --forward-token.
SECRET_VARIABLES = (
    "JUPYTERHUB_API_TOKEN",
    "JPY_API_TOKEN",
    "HUBAUTH_COOKIE_SECRET",
    "HUBAUTH_COOKIE_SECRET_FILE",
)


class ChildError(Exception):
    """The app could not be started (no such program, not executable, ...)."""


def child_environment(environ: Mapping[str, str], *, keep_secrets: bool) -> dict[str, str]:
    """The app's environment: the proxy's, without the service's credentials."""
    return {k: v for k, v in environ.items() if keep_secrets or k not in SECRET_VARIABLES}


class Child:
    """One app process. ``returncode`` is set once it has exited."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], stop_timeout: float):
        self.command = tuple(command)
        self.env = dict(env)
        self.stop_timeout = stop_timeout
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def start(self) -> None:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, env=self.env, stdin=subprocess.DEVNULL
            )
        except OSError as e:
            raise ChildError(
                f"cannot start {self.command[0]!r}: {e.strerror or type(e).__name__} "
                "(is it installed, and on PATH?)"
            ) from None
        log.info("Started the app (pid %s): %s", self.proc.pid, " ".join(self.command))

    async def wait(self) -> int:
        if self.proc is None:
            raise ChildError("the app was never started")
        return await self.proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM, and SIGKILL if it is still running after ``stop_timeout`` seconds."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return self.returncode
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except asyncio.TimeoutError:
            log.warning("The app did not stop within %gs of SIGTERM: killing it", self.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return await proc.wait()
