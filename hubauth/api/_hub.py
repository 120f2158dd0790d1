"""Endpoint flows for the Hub itself: version and info, health, services (including
runtime ones), the proxy's routing table, shutdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ._core import Base, Flow
from ._models import HubInfo, ProxyRoute, Service, Version
from ._wire import segment

__all__ = ["Hub"]


class Hub(Base):
    def _info(self) -> Flow[Version]:
        """The Hub's version (``GET /``, no scope needed)."""
        return cast(Version, (yield from self._call(self._req("GET", "/", "/"))))

    def _hub_info(self) -> Flow[HubInfo]:
        """Python, Spawner and Authenticator of the Hub (``GET /info``)."""
        req = self._req("GET", "/info", "/info", scopes=["read:hub"])
        return cast(HubInfo, (yield from self._call(req)))

    def _health(self) -> Flow[bool]:
        """Whether the Hub answers its health check (``GET /health``, no scope needed)."""
        yield from self._call(self._req("GET", "/health", "/health"))
        return True

    def _services(self) -> Flow[dict[str, Service]]:
        """Every service the token may list, by name (``GET /services``)."""
        req = self._req("GET", "/services", "/services", scopes=["list:services"])
        return cast(dict[str, Service], (yield from self._call(req)))

    def _service(self, name: str) -> Flow[Service]:
        req = self._req(
            "GET",
            "/services/{name}",
            f"/services/{segment(name, 'service name')}",
            scopes=["read:services", "read:services:name"],
        )
        return cast(Service, (yield from self._call(req)))

    def _add_service(self, name: str, spec: Mapping[str, Any] | None = None) -> Flow[Service]:
        """Register a service at runtime (``POST /services/:name``; ``spec`` as in
        ``c.JupyterHub.services``, without ``command``)."""
        req = self._req(
            "POST",
            "/services/{name}",
            f"/services/{segment(name, 'service name')}",
            scopes=["admin:services"],
            ok=(200, 201),
            body=dict(spec or {}) or {"name": name},
        )
        return cast(Service, (yield from self._call(req)))

    def _remove_service(self, name: str) -> Flow[None]:
        """Remove a service added at runtime (``DELETE /services/:name``)."""
        req = self._req(
            "DELETE",
            "/services/{name}",
            f"/services/{segment(name, 'service name')}",
            scopes=["admin:services"],
            ok=(200, 204),
        )
        yield from self._call(req)

    def _proxy_routes(self) -> Flow[dict[str, ProxyRoute]]:
        """The proxy's routing table, all pages, by route spec (``GET /proxy``)."""
        found = yield from self._pages("/proxy", "/proxy", scopes=["proxy"])
        return cast(dict[str, ProxyRoute], found)

    def _sync_proxy(self) -> Flow[None]:
        """Make the Hub check the proxy's routes now (``POST /proxy``)."""
        req = self._req("POST", "/proxy", "/proxy", scopes=["proxy"], idempotent=True)
        yield from self._call(req)

    def _notify_proxy(
        self, *, api_url: str | None = None, auth_token: str | None = None
    ) -> Flow[None]:
        """Tell the Hub a new proxy is in charge (``PATCH /proxy``), then it syncs routes."""
        body = {k: v for k, v in (("api_url", api_url), ("auth_token", auth_token)) if v}
        req = self._req("PATCH", "/proxy", "/proxy", scopes=["proxy"], body=body or {})
        yield from self._call(req)

    def _shutdown(self, *, proxy: bool | None = None, servers: bool | None = None) -> Flow[None]:
        """Shut the Hub down (``POST /shutdown``); ``proxy``/``servers``: stop those too."""
        body = {k: v for k, v in (("proxy", proxy), ("servers", servers)) if v is not None}
        req = self._req("POST", "/shutdown", "/shutdown", scopes=["shutdown"], ok=(202,), body=body)
        yield from self._call(req)
