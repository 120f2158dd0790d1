"""``hubauth-proxy``: any web app behind JupyterHub login, as a service or a user's server.

Run ``hubauth-proxy --help`` (or ``python -m hubauth.proxy``). The proxy starts the app
(``hubauth-proxy [options] -- cmd ... {port} {prefix}``) or forwards to ``--upstream``,
decides who may pass with the same core flows as every hubauth adapter, and tells the app
who is calling in ``X-Forwarded-User`` / ``X-Forwarded-Groups``. See docs/proxy.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError
from ._options import ProxyOptions, parse_args

__all__ = ["ProxyOptions", "main", "parse_args", "run"]


def run(options: ProxyOptions) -> int:
    """Run the proxy with ``options`` until it is stopped or the app exits; its exit status."""
    from ._server import serve  # imports the Tornado web stack only when serving

    return asyncio.run(serve(options))


def main(argv: Sequence[str] | None = None) -> int:
    """The ``hubauth-proxy`` command. The environment is read here, once."""
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as e:
        sys.stderr.write(f"hubauth-proxy: error: {e}\n")
        return 2
    level = getattr(logging, options.log_level, None)
    logging.basicConfig(
        level=level if isinstance(level, int) else logging.INFO,
        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
    )
    try:
        return run(options)
    except ConfigError as e:
        logging.getLogger("hubauth.proxy").error("%s", e)
        return 2
