"""Register a service with a running Hub at runtime, or remove it (``--remove``).

Uses the Hub REST API (``POST``/``DELETE /hub/api/services/:name``) with a token whose role
holds ``admin:services``, from ``JUPYTERHUB_API_TOKEN``; the Hub API URL from ``--url`` or
``JUPYTERHUB_API_URL``. Prints the new service's token once: give it to the service.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from hubauth import HubAPI, HubAuthError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", help="the service's name")
    parser.add_argument("--url", help="Hub API URL (default: $JUPYTERHUB_API_URL)")
    parser.add_argument("--service-url", help="where the service listens (gets a proxy route)")
    parser.add_argument("--remove", action="store_true", help="remove the service instead")
    args = parser.parse_args(argv)
    settings = {"api_url": args.url} if args.url else {}
    try:
        api = HubAPI(**settings)
        if args.remove:
            api.remove_service(args.name)
            print(json.dumps({"removed": args.name}))
            return 0
        token = secrets.token_hex(32)
        spec: dict[str, object] = {"api_token": token}
        if args.service_url:
            spec["url"] = args.service_url
            spec["oauth_redirect_uri"] = f"/services/{args.name}/oauth_callback"
        added = api.add_service(args.name, spec)
        print(json.dumps({"added": added.get("name", args.name), "api_token": token}))
        return 0
    except HubAuthError as e:
        print(f"register_service: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
