"""The environment the Hub would give a service, from its entry in a Hub config.

``hubauth doctor --hub-config jupyterhub_config.py --service NAME`` runs the config file
(as ``jupyterhub -f`` does, with a stand-in for traitlets' ``get_config()``: hubauth never
imports JupyterHub) and reads ``c.JupyterHub.services`` and the Hub's address from it.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["entry_environment", "load_entry"]


class _Section:
    """``c.JupyterHub`` and friends: any attribute can be set, unset ones read as None."""

    def __init__(self) -> None:
        self.__dict__["values"] = {}

    def __getattr__(self, name: str) -> Any:
        values: dict[str, Any] = self.__dict__["values"]
        if name[:1].isupper():  # c.JupyterHub.X: a section of sections
            return values.setdefault(name, _Section())
        return values.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__["values"][name] = value


def load_entry(path: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(service entry, Hub settings)`` for service ``name`` in the config at ``path``."""
    config = _Section()
    try:
        runpy.run_path(path, {"get_config": lambda: config, "c": config})
    except OSError as e:
        raise ConfigError(f"cannot read the Hub config {path!r}: {e.strerror}") from None
    except Exception as e:  # the operator's own file: say where it broke
        raise ConfigError(
            f"the Hub config {path!r} failed to run: {type(e).__name__}: {e}"
        ) from None
    hub = config.JupyterHub
    services = hub.services or []
    for entry in services:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            settings = {
                key: getattr(hub, key)
                for key in ("base_url", "hub_connect_url", "hub_ip", "hub_port", "hub_bind_url")
            }
            settings["load_roles"] = hub.load_roles or []
            return dict(entry), settings
    known = ", ".join(str(s.get("name")) for s in services if isinstance(s, Mapping)) or "none"
    raise ConfigError(
        f"the Hub config {path!r} has no service named {name!r} in c.JupyterHub.services "
        f"(it has: {known})"
    )


def _api_url(settings: Mapping[str, Any], base_url: str) -> str:
    connect = settings.get("hub_connect_url") or settings.get("hub_bind_url")
    if connect:
        return f"{str(connect).rstrip('/')}{base_url}hub/api"
    ip = settings.get("hub_ip") or "127.0.0.1"
    if ip in ("0.0.0.0", "::", ""):  # noqa: S104 - how the Hub reads it, not a bind here
        ip = "127.0.0.1"
    return f"http://{ip}:{settings.get('hub_port') or 8081}{base_url}hub/api"


def entry_environment(entry: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, str]:
    """The ``JUPYTERHUB_*`` variables the Hub sets for this service (and its own
    ``environment``), as JupyterHub 6.1 derives them."""
    name = str(entry.get("name", ""))
    base = "/" + str(settings.get("base_url") or "/").strip("/") + "/"
    base = "/" if base == "//" else base
    env = {
        str(k): v if isinstance(v, str) else json.dumps(v)
        for k, v in dict(entry.get("environment") or {}).items()
    }
    env.update(
        {
            "JUPYTERHUB_SERVICE_NAME": name,
            "JUPYTERHUB_API_URL": _api_url(settings, base),
            "JUPYTERHUB_BASE_URL": base,
            "JUPYTERHUB_CLIENT_ID": str(entry.get("oauth_client_id") or f"service-{name}"),
        }
    )
    if entry.get("api_token"):
        env["JUPYTERHUB_API_TOKEN"] = str(entry["api_token"])
    prefix = f"{base}services/{name}/"
    if entry.get("url"):
        env["JUPYTERHUB_SERVICE_URL"] = str(entry["url"])
        env["JUPYTERHUB_SERVICE_PREFIX"] = prefix
    if entry.get("url") or entry.get("oauth_redirect_uri"):
        env["JUPYTERHUB_OAUTH_CALLBACK_URL"] = str(
            entry.get("oauth_redirect_uri") or f"{prefix}oauth_callback"
        )
    return env
