"""A client for the Hub's REST API, acting with the service's own token.

What services like the idle culler need: users (paginated, filtered), one user, groups,
starting and stopping servers, runtime services, tokens. Each endpoint is written once as
an I/O-free flow; :class:`HubAPI` (blocking) and :class:`AsyncHubAPI` (``await``) run the
same flows, with retries for idempotent calls and a limit on requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from ._async import AsyncDriver
from ._protocol import HubRequest, HubResponse
from ._sync import SyncDriver
from .config import Config, load_config
from .errors import HubAPIError, HubResponseError, HubUnavailable, ServiceTokenRejected

__all__ = ["PAGINATION_MEDIA_TYPE", "AsyncHubAPI", "HubAPI"]

log = logging.getLogger("hubauth")

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"

T = TypeVar("T")
P = ParamSpec("P")
Model = dict[str, Any]
Flow = Generator[HubRequest, HubResponse, T]


def _quote(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected a non-empty name, got {name!r}")
    return urllib.parse.quote(name, safe="")


class _Endpoints:
    """The endpoints as flows: build requests, read replies. No I/O here."""

    config: Config
    page_size: int

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: str = "application/json",
    ) -> HubRequest:
        query = urllib.parse.urlencode(
            {k: v for k, v in (params or {}).items() if v is not None}, doseq=True
        )
        url = f"{self.config.api_url}{path}" + (f"?{query}" if query else "")
        headers = {
            "Authorization": f"token {self.config.api_token}",
            "Accept": accept,
            "User-Agent": "hubauth",
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        return HubRequest(method, url, headers, data, idempotent=method in ("GET", "DELETE"))

    def _call(self, req: HubRequest, ok: Sequence[int] = (200,)) -> Flow[Any]:
        resp = yield req
        return _read(req, resp, ok)

    def _paginated(self, path: str, params: Mapping[str, Any] | None = None) -> Flow[list[Model]]:
        items: list[Model] = []
        offset = 0
        while True:
            query = {**(params or {}), "offset": offset, "limit": self.page_size}
            req = self._request("GET", path, params=query, accept=PAGINATION_MEDIA_TYPE)
            data = yield from self._call(req)
            if isinstance(data, list):  # a Hub without pagination answers the whole list
                return data
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise HubResponseError(
                    f"the Hub at {req.url.split('?')[0]} answered a page without 'items'",
                    url=req.url,
                    status=200,
                )
            items.extend(data["items"])
            nxt = (data.get("_pagination") or {}).get("next")
            # A filtered page may be empty while more follow (the Hub filters after paging):
            # go on while there is a next page that moves forward.
            following = int(nxt.get("offset", -1)) if isinstance(nxt, dict) else -1
            if following <= offset:
                return items
            offset = following

    # -- the endpoints ------------------------------------------------------------

    def _info(self) -> Flow[Model]:
        """The Hub's version (``GET /``)."""
        result: Model = yield from self._call(self._request("GET", "/"))
        return result

    def _users(self, /, *, state: str | None = None, **filters: Any) -> Flow[list[Model]]:
        """Every user (all pages); ``state="ready"|"active"|"inactive"`` filters by servers."""
        return (yield from self._paginated("/users", {"state": state, **filters}))

    def _user(self, name: str) -> Flow[Model]:
        """One user's model (``GET /users/:name``)."""
        result: Model = yield from self._call(self._request("GET", f"/users/{_quote(name)}"))
        return result

    def _groups(self) -> Flow[list[Model]]:
        """Every group (all pages)."""
        return (yield from self._paginated("/groups"))

    def _group(self, name: str) -> Flow[Model]:
        """One group's model, with its ``users``."""
        result: Model = yield from self._call(self._request("GET", f"/groups/{_quote(name)}"))
        return result

    def _server_path(self, user: str, server_name: str) -> str:
        base = f"/users/{_quote(user)}"
        return f"{base}/servers/{_quote(server_name)}" if server_name else f"{base}/server"

    def _start_server(
        self, user: str, server_name: str = "", options: Mapping[str, Any] | None = None
    ) -> Flow[int]:
        """Start a user's default (or named) server: 201 started, 202 pending."""
        req = self._request("POST", self._server_path(user, server_name), body=dict(options or {}))
        resp = yield req
        _read(req, resp, (201, 202))
        return resp.status

    def _stop_server(self, user: str, server_name: str = "", *, remove: bool = False) -> Flow[int]:
        """Stop a user's default (or named) server: 204 stopped, 202 pending."""
        body = {"remove": True} if remove and server_name else None
        req = self._request("DELETE", self._server_path(user, server_name), body=body)
        resp = yield req
        _read(req, resp, (202, 204))
        return resp.status

    def _services(self) -> Flow[dict[str, Model]]:
        """Every service, by name (``GET /services``)."""
        result: dict[str, Model] = yield from self._call(self._request("GET", "/services"))
        return result

    def _service(self, name: str) -> Flow[Model]:
        result: Model = yield from self._call(self._request("GET", f"/services/{_quote(name)}"))
        return result

    def _add_service(self, name: str, spec: Mapping[str, Any] | None = None) -> Flow[Model]:
        """Register a service at runtime (``POST /services/:name``; needs admin:services)."""
        req = self._request("POST", f"/services/{_quote(name)}", body=dict(spec or {}))
        result: Model = yield from self._call(req, (200, 201))
        return result

    def _remove_service(self, name: str) -> Flow[None]:
        """Remove a service added at runtime (``DELETE /services/:name``)."""
        yield from self._call(self._request("DELETE", f"/services/{_quote(name)}"), (200, 204))

    def _tokens(self, user: str) -> Flow[list[Model]]:
        """A user's API tokens (models, without the secrets)."""
        data = yield from self._call(self._request("GET", f"/users/{_quote(user)}/tokens"))
        tokens = data.get("api_tokens", []) if isinstance(data, dict) else data
        return list(tokens)

    def _create_token(
        self,
        user: str,
        *,
        note: str = "",
        scopes: Sequence[str] | None = None,
        expires_in: int | None = None,
    ) -> Flow[Model]:
        """Issue a token for ``user``; the answer's ``token`` field is the secret (once)."""
        body: dict[str, Any] = {"note": note}
        if scopes is not None:
            body["scopes"] = list(scopes)
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        req = self._request("POST", f"/users/{_quote(user)}/tokens", body=body)
        result: Model = yield from self._call(req, (200, 201))
        return result

    def _revoke_token(self, user: str, token_id: str) -> Flow[None]:
        path = f"/users/{_quote(user)}/tokens/{_quote(token_id)}"
        yield from self._call(self._request("DELETE", path), (200, 204))


def _read(req: HubRequest, resp: HubResponse, ok: Sequence[int]) -> Any:
    """The JSON of an expected answer, or a :class:`HubAPIError` saying what to do."""
    where = f"{req.method} {req.url.split('?')[0]}"
    if resp.status in ok:
        if not resp.body.strip():
            return None
        try:
            return json.loads(resp.body)
        except ValueError:
            raise HubResponseError(
                f"{where} answered {resp.status} with a body that is not JSON",
                url=req.url,
                status=resp.status,
            ) from None
    message = ""
    try:
        data = json.loads(resp.body)
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("error_description") or "")[:500]
    except ValueError:
        pass
    if resp.status == 403:
        hint = message or "the Hub did not say which scope is missing"
        cls: type[HubAPIError] = HubAPIError
        text = (
            f"{where}: the token used lacks a scope for this ({hint}). If it is the "
            "service's own token (JUPYTERHUB_API_TOKEN), grant the scope to the service's "
            "role in the Hub config (c.JupyterHub.load_roles); if it is a visitor's, they "
            "may not do this"
        )
    elif resp.status == 401:
        raise ServiceTokenRejected(
            f"{where}: the Hub does not accept this service's token (JUPYTERHUB_API_TOKEN)",
            url=req.url,
            status=resp.status,
            setting="api_token",
        )
    elif resp.status == 404:
        cls = HubAPIError
        text = f"{where}: not found{': ' + message if message else ''}"
    elif resp.status == 409:
        cls = HubAPIError
        text = f"{where}: conflict{': ' + message if message else ''}"
    elif 300 <= resp.status < 400:
        cls = HubAPIError
        text = f"{where}: redirected; JUPYTERHUB_API_URL should end in /hub/api"
    else:
        cls = HubAPIError
        text = f"{where}: the Hub answered {resp.status}{': ' + message if message else ''}"
    raise cls(text, url=req.url, status=resp.status)


def _checked(req: HubRequest, resp: HubResponse) -> HubResponse:
    """``resp``, unless it is a 5xx: then the :class:`HubAPIError` (which may be retried)."""
    if resp.status >= 500:
        _read(req, resp, ())
    return resp


def _retry_delay(req: HubRequest, error: Exception, attempt: int, api: _Client) -> float | None:
    """Seconds to wait before trying ``req`` again (and a log line saying so), or ``None``
    to give up. Both facades' send loops ask this; only their way of waiting differs.
    """
    if not req.idempotent or attempt >= api.retries:
        return None
    retryable = isinstance(error, HubUnavailable) or (
        isinstance(error, HubAPIError) and (error.status or 0) >= 500
    )
    if not retryable:
        return None
    delay: float = api.backoff * 2.0**attempt
    where = req.url.split("?")[0]
    log.warning("%s %s failed (%s); retrying in %.1fs", req.method, where, error, delay)
    return delay


class _Client(_Endpoints):
    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        max_concurrency: int = 10,
        retries: int = 3,
        backoff: float = 0.5,
        page_size: int = 200,
        **settings: object,
    ) -> None:
        if max_concurrency < 1 or retries < 0 or backoff < 0 or page_size < 1:
            raise ValueError("max_concurrency and page_size must be >= 1, retries and backoff >= 0")
        self.config = load_config(environ, oauth=False, **settings)
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff = backoff
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.config.api_url!r}, api_token=[secure])"


def _describe(method: Callable[..., Any], flow: Callable[..., Any]) -> None:
    """Give a facade method the endpoint's public name and docstring."""
    method.__name__ = method.__qualname__ = flow.__name__.lstrip("_")
    method.__doc__ = flow.__doc__


def _blocking(
    flow: Callable[Concatenate[_Endpoints, P], Flow[T]],
) -> Callable[Concatenate[HubAPI, P], T]:
    def method(self: HubAPI, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(flow(self, *args, **kwargs))

    _describe(method, flow)
    return method


def _awaitable(
    flow: Callable[Concatenate[_Endpoints, P], Flow[T]],
) -> Callable[Concatenate[AsyncHubAPI, P], Awaitable[T]]:
    async def method(self: AsyncHubAPI, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(flow(self, *args, **kwargs))

    _describe(method, flow)
    return method


class HubAPI(_Client):
    """The Hub REST API, blocking (scripts, threads, WSGI apps). Safe across threads."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._driver = SyncDriver(self.config)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    def _send(self, req: HubRequest) -> HubResponse:
        attempt = 0
        while True:
            try:
                with self._slots:
                    return _checked(req, self._driver.send(req))
            except (HubUnavailable, HubAPIError) as e:
                delay = _retry_delay(req, e, attempt, self)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def run(self, flow: Flow[T]) -> T:
        """Run an endpoint flow to its result."""
        resp: HubResponse | None = None
        while True:
            try:
                req = flow.send(resp) if resp is not None else next(flow)
            except StopIteration as done:
                result: T = done.value
                return result
            resp = self._send(req)

    def close(self) -> None:
        self._driver.close()

    info = _blocking(_Endpoints._info)
    users = _blocking(_Endpoints._users)
    user = _blocking(_Endpoints._user)
    groups = _blocking(_Endpoints._groups)
    group = _blocking(_Endpoints._group)
    start_server = _blocking(_Endpoints._start_server)
    stop_server = _blocking(_Endpoints._stop_server)
    services = _blocking(_Endpoints._services)
    service = _blocking(_Endpoints._service)
    add_service = _blocking(_Endpoints._add_service)
    remove_service = _blocking(_Endpoints._remove_service)
    tokens = _blocking(_Endpoints._tokens)
    create_token = _blocking(_Endpoints._create_token)
    revoke_token = _blocking(_Endpoints._revoke_token)


class AsyncHubAPI(_Client):
    """The Hub REST API for asyncio/Tornado code: every endpoint is awaited."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._driver = AsyncDriver(self.config)
        self._slots: dict[int, asyncio.Semaphore] = {}

    def _semaphore(self) -> asyncio.Semaphore:
        loop = id(asyncio.get_running_loop())
        if loop not in self._slots:
            self._slots[loop] = asyncio.Semaphore(self.max_concurrency)
        return self._slots[loop]

    async def _send(self, req: HubRequest) -> HubResponse:
        attempt = 0
        while True:
            try:
                async with self._semaphore():
                    return _checked(req, await self._driver.send(req))
            except (HubUnavailable, HubAPIError) as e:
                delay = _retry_delay(req, e, attempt, self)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def run(self, flow: Flow[T]) -> T:
        """Run an endpoint flow to its result."""
        resp: HubResponse | None = None
        while True:
            try:
                req = flow.send(resp) if resp is not None else next(flow)
            except StopIteration as done:
                result: T = done.value
                return result
            resp = await self._send(req)

    def close(self) -> None:
        self._driver.close()

    info = _awaitable(_Endpoints._info)
    users = _awaitable(_Endpoints._users)
    user = _awaitable(_Endpoints._user)
    groups = _awaitable(_Endpoints._groups)
    group = _awaitable(_Endpoints._group)
    start_server = _awaitable(_Endpoints._start_server)
    stop_server = _awaitable(_Endpoints._stop_server)
    services = _awaitable(_Endpoints._services)
    service = _awaitable(_Endpoints._service)
    add_service = _awaitable(_Endpoints._add_service)
    remove_service = _awaitable(_Endpoints._remove_service)
    tokens = _awaitable(_Endpoints._tokens)
    create_token = _awaitable(_Endpoints._create_token)
    revoke_token = _awaitable(_Endpoints._revoke_token)
