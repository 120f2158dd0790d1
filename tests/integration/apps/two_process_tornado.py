"""examples/whoami-tornado as ONE service run by SEVERAL processes behind ONE port.

Tornado's pre-fork model: the parent binds ``JUPYTERHUB_SERVICE_URL``'s port once
(``tornado.netutil.bind_sockets``), then ``tornado.process.fork_processes(N)``; every child
serves the example's app on the shared socket, so the kernel picks which process answers
each connection (one request per connection here). Run by a real Hub as a managed service
(tests/integration/test_realhub_oauth.py), with ``HUBAUTH_COOKIE_SECRET`` in its
``environment`` so that every process can read the cookies another one set.

Every answer carries ``X-Hubauth-Pid`` (the process that answered); the JSON model gets a
``pid`` too. Options:

- ``--processes N``: how many processes (1: no fork at all). Default 2.
- ``--hub-scopes JSON``: a JSON list to use as the page handler's ``hub_scopes``.
- ``--tag TEXT``: ignored; marks the command line so a test can find stray processes.

The children die with their parent: they ask the kernel for SIGTERM when it exits
(``PR_SET_PDEATHSIG``), so stopping the service (the Hub sends its parent SIGTERM) or
killing it leaves no orphan serving the port.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.process import fork_processes
from tornado.web import Application, RequestHandler, authenticated

from hubauth.tornado import HubOAuthCallbackHandler, HubOAuthLogoutHandler

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "whoami-tornado" / "whoami_tornado.py"
PR_SET_PDEATHSIG = 1


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("whoami_tornado", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ExampleWhoAmI: Any = load_example().WhoAmI


class PidHeader(RequestHandler):
    """Every answer (pages, redirects, refusals: ``clear()`` keeps it) names its process."""

    def set_default_headers(self) -> None:
        self.set_header("X-Hubauth-Pid", str(os.getpid()))


class WhoAmI(PidHeader, ExampleWhoAmI):  # type: ignore[misc]
    @authenticated
    def get(self) -> None:
        if "application/json" in self.request.headers.get("Accept", ""):
            self.write({**self.current_user, "pid": os.getpid()})
            return
        super().get()
        self.write(f"<p id=pid>{os.getpid()}</p>")


class Callback(PidHeader, HubOAuthCallbackHandler):
    pass


class Logout(PidHeader, HubOAuthLogoutHandler):
    pass


def make_app(hub_scopes: list[str] | None) -> Application:
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    page: Any = WhoAmI
    if hub_scopes is not None:
        page = type("RestrictedWhoAmI", (WhoAmI,), {"hub_scopes": hub_scopes})
    return Application(
        [
            (prefix + "oauth_callback", Callback),
            (prefix + "logout", Logout),
            (prefix.rstrip("/") + "/?.*", page),
        ]
    )


def die_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent exits; exit now if it already has."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before prctl: nobody would tell us
        sys.exit(0)


async def serve(sockets: list[Any], hub_scopes: list[str] | None) -> None:
    # The Hub's proxy keeps its connections to the service open, which would pin every
    # request to the process that accepted the first one: close after each answer, so the
    # kernel picks a process per request (as for many browsers, each on its own connection).
    server = HTTPServer(make_app(hub_scopes), no_keep_alive=True)
    server.add_sockets(sockets)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--hub-scopes", type=json.loads, default=None)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    sockets = bind_sockets(url.port or 80, url.hostname or "127.0.0.1")
    if args.processes > 1:
        parent = os.getpid()
        # The parent stays in here for good, waiting for its children; each child returns,
        # with the listening socket inherited. No restarts: a crash must show, not hide.
        fork_processes(args.processes, max_restarts=0)
        die_with_parent(parent)
    asyncio.run(serve(sockets, args.hub_scopes))


if __name__ == "__main__":
    main()
