"""The two faces of the one set of endpoint flows: :class:`HubAPI` (blocking) and
:class:`AsyncHubAPI` (``await``). Each is a send loop (concurrency limit, retries) and a
line per endpoint; every endpoint's logic lives in its flow, written once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._async import AsyncDriver
from .._protocol import HubResponse
from .._sync import SyncDriver
from ..config import load_config
from ..errors import HubUnavailable
from ._core import Flow
from ._events import Progress
from ._groups import Groups
from ._hub import Hub
from ._models import ProgressEvent
from ._servers import Servers
from ._sharing import Sharing
from ._stream import async_stream, sync_stream
from ._users import Users
from ._wire import APIRequest, InvalidArgument, error, retry_delay

__all__ = ["AsyncHubAPI", "HubAPI"]

T = TypeVar("T")
P = ParamSpec("P")


class _Client(Users, Servers, Groups, Sharing, Hub):
    """Settings shared by both facades; the endpoints come from the flow classes."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        max_concurrency: int = 10,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
        page_size: int = 200,
        **settings: object,
    ) -> None:
        if max_concurrency < 1 or page_size < 0:
            raise InvalidArgument(
                "max_concurrency must be >= 1 and page_size >= 0 (0: the Hub's own page size)"
            )
        if retries < 0 or backoff < 0 or max_retry_after < 0:
            raise InvalidArgument("retries, backoff and max_retry_after must be >= 0")
        self.config = load_config(environ, oauth=False, **settings)
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.config.api_url!r}, api_token=[secure])"

    def _delay(
        self, req: APIRequest, outcome: HubResponse | HubUnavailable, attempt: int
    ) -> float | None:
        return retry_delay(
            req,
            outcome,
            attempt,
            retries=self.retries,
            backoff=self.backoff,
            max_retry_after=self.max_retry_after,
        )


def _describe(method: Callable[..., Any], flow: Callable[..., Any]) -> None:
    """Give a facade method the endpoint's public name and docstring."""
    method.__name__ = method.__qualname__ = flow.__name__.lstrip("_")
    method.__doc__ = flow.__doc__


def _blocking(
    flow: Callable[Concatenate[Any, P], Flow[T]],
) -> Callable[Concatenate[HubAPI, P], T]:
    def method(self: HubAPI, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(flow(self, *args, **kwargs))

    _describe(method, flow)
    return method


def _awaitable(
    flow: Callable[Concatenate[Any, P], Flow[T]],
) -> Callable[Concatenate[AsyncHubAPI, P], Awaitable[T]]:
    async def method(self: AsyncHubAPI, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(flow(self, *args, **kwargs))

    _describe(method, flow)
    return method


_PROGRESS_DOC = """A spawn's progress events as they come (``GET .../progress``); the last has
``ready`` or ``failed``. A stream that breaks off first raises
:class:`~hubauth.errors.HubResponseError`. ``timeout``: most seconds in all."""


class HubAPI(_Client):
    """The Hub REST API, blocking (scripts, threads, WSGI apps). Safe across threads."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._driver = SyncDriver(self.config)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    def _send(self, req: APIRequest) -> HubResponse:
        attempt = 0
        while True:
            try:
                with self._slots:
                    resp = self._driver.send(req)
            except HubUnavailable as e:
                delay = self._delay(req, e, attempt)
                if delay is None:
                    raise
            else:
                delay = self._delay(req, resp, attempt)
                if delay is None:
                    return resp
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
            if not isinstance(req, APIRequest):
                raise TypeError("endpoint flows yield APIRequests")
            resp = self._send(req)

    def progress(
        self, user: str, server_name: str = "", *, timeout: float | None = None
    ) -> Iterator[ProgressEvent]:
        req = self._progress_request(user, server_name)
        return self._events(req, timeout)

    progress.__doc__ = _PROGRESS_DOC

    def _events(self, req: APIRequest, timeout: float | None) -> Iterator[ProgressEvent]:
        with sync_stream(self.config, req, timeout) as (head, chunks):
            if head.status != 200:
                raise error(req, head)
            progress = Progress(req.url)
            for chunk in chunks:
                yield from progress.feed(chunk)
                if progress.done:
                    return
            progress.end()

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> HubAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    me = _blocking(Users._me)
    users = _blocking(Users._users)
    user = _blocking(Users._user)
    create_user = _blocking(Users._create_user)
    create_users = _blocking(Users._create_users)
    modify_user = _blocking(Users._modify_user)
    delete_user = _blocking(Users._delete_user)
    report_activity = _blocking(Users._report_activity)
    tokens = _blocking(Users._tokens)
    token = _blocking(Users._token)
    create_token = _blocking(Users._create_token)
    revoke_token = _blocking(Users._revoke_token)
    server = _blocking(Servers._server)
    start_server = _blocking(Servers._start_server)
    create_server = _blocking(Servers._create_server)
    modify_server = _blocking(Servers._modify_server)
    stop_server = _blocking(Servers._stop_server)
    remove_server = _blocking(Servers._remove_server)
    groups = _blocking(Groups._groups)
    group = _blocking(Groups._group)
    create_group = _blocking(Groups._create_group)
    create_groups = _blocking(Groups._create_groups)
    delete_group = _blocking(Groups._delete_group)
    add_group_users = _blocking(Groups._add_group_users)
    remove_group_users = _blocking(Groups._remove_group_users)
    set_group_properties = _blocking(Groups._set_group_properties)
    shares = _blocking(Sharing._shares)
    share = _blocking(Sharing._share)
    revoke_share = _blocking(Sharing._revoke_share)
    revoke_all_shares = _blocking(Sharing._revoke_all_shares)
    share_codes = _blocking(Sharing._share_codes)
    create_share_code = _blocking(Sharing._create_share_code)
    revoke_share_code = _blocking(Sharing._revoke_share_code)
    user_shares = _blocking(Sharing._user_shares)
    user_share = _blocking(Sharing._user_share)
    leave_user_share = _blocking(Sharing._leave_user_share)
    group_shares = _blocking(Sharing._group_shares)
    group_share = _blocking(Sharing._group_share)
    leave_group_share = _blocking(Sharing._leave_group_share)
    info = _blocking(Hub._info)
    hub_info = _blocking(Hub._hub_info)
    health = _blocking(Hub._health)
    services = _blocking(Hub._services)
    service = _blocking(Hub._service)
    add_service = _blocking(Hub._add_service)
    remove_service = _blocking(Hub._remove_service)
    proxy_routes = _blocking(Hub._proxy_routes)
    sync_proxy = _blocking(Hub._sync_proxy)
    notify_proxy = _blocking(Hub._notify_proxy)
    shutdown = _blocking(Hub._shutdown)


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

    async def _send(self, req: APIRequest) -> HubResponse:
        attempt = 0
        while True:
            try:
                async with self._semaphore():
                    resp = await self._driver.send(req)
            except HubUnavailable as e:
                delay = self._delay(req, e, attempt)
                if delay is None:
                    raise
            else:
                delay = self._delay(req, resp, attempt)
                if delay is None:
                    return resp
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
            if not isinstance(req, APIRequest):
                raise TypeError("endpoint flows yield APIRequests")
            resp = await self._send(req)

    def progress(
        self, user: str, server_name: str = "", *, timeout: float | None = None
    ) -> AsyncIterator[ProgressEvent]:
        req = self._progress_request(user, server_name)
        return self._events(req, timeout)

    progress.__doc__ = _PROGRESS_DOC

    async def _events(self, req: APIRequest, timeout: float | None) -> AsyncIterator[ProgressEvent]:
        async with async_stream(self.config, req, timeout) as (head, chunks):
            if head.status != 200:
                raise error(req, head)
            progress = Progress(req.url)
            async for chunk in chunks:
                for event in progress.feed(chunk):
                    yield event
                if progress.done:
                    return
            progress.end()

    def close(self) -> None:
        self._driver.close()

    async def __aenter__(self) -> AsyncHubAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    me = _awaitable(Users._me)
    users = _awaitable(Users._users)
    user = _awaitable(Users._user)
    create_user = _awaitable(Users._create_user)
    create_users = _awaitable(Users._create_users)
    modify_user = _awaitable(Users._modify_user)
    delete_user = _awaitable(Users._delete_user)
    report_activity = _awaitable(Users._report_activity)
    tokens = _awaitable(Users._tokens)
    token = _awaitable(Users._token)
    create_token = _awaitable(Users._create_token)
    revoke_token = _awaitable(Users._revoke_token)
    server = _awaitable(Servers._server)
    start_server = _awaitable(Servers._start_server)
    create_server = _awaitable(Servers._create_server)
    modify_server = _awaitable(Servers._modify_server)
    stop_server = _awaitable(Servers._stop_server)
    remove_server = _awaitable(Servers._remove_server)
    groups = _awaitable(Groups._groups)
    group = _awaitable(Groups._group)
    create_group = _awaitable(Groups._create_group)
    create_groups = _awaitable(Groups._create_groups)
    delete_group = _awaitable(Groups._delete_group)
    add_group_users = _awaitable(Groups._add_group_users)
    remove_group_users = _awaitable(Groups._remove_group_users)
    set_group_properties = _awaitable(Groups._set_group_properties)
    shares = _awaitable(Sharing._shares)
    share = _awaitable(Sharing._share)
    revoke_share = _awaitable(Sharing._revoke_share)
    revoke_all_shares = _awaitable(Sharing._revoke_all_shares)
    share_codes = _awaitable(Sharing._share_codes)
    create_share_code = _awaitable(Sharing._create_share_code)
    revoke_share_code = _awaitable(Sharing._revoke_share_code)
    user_shares = _awaitable(Sharing._user_shares)
    user_share = _awaitable(Sharing._user_share)
    leave_user_share = _awaitable(Sharing._leave_user_share)
    group_shares = _awaitable(Sharing._group_shares)
    group_share = _awaitable(Sharing._group_share)
    leave_group_share = _awaitable(Sharing._leave_group_share)
    info = _awaitable(Hub._info)
    hub_info = _awaitable(Hub._hub_info)
    health = _awaitable(Hub._health)
    services = _awaitable(Hub._services)
    service = _awaitable(Hub._service)
    add_service = _awaitable(Hub._add_service)
    remove_service = _awaitable(Hub._remove_service)
    proxy_routes = _awaitable(Hub._proxy_routes)
    sync_proxy = _awaitable(Hub._sync_proxy)
    notify_proxy = _awaitable(Hub._notify_proxy)
    shutdown = _awaitable(Hub._shutdown)
