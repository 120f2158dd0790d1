"""What every endpoint flow is made of: a request, one answer read, or all pages of a list.

A flow is a generator that yields :class:`~hubauth.api._wire.APIRequest`\\ s and gets
:class:`~hubauth._protocol.HubResponse`\\ s back; it never does I/O, so the blocking and the
async facade run the very same flows.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

from .._protocol import HubRequest, HubResponse
from ..config import Config
from ..errors import HubResponseError
from ._wire import PAGINATION_MEDIA_TYPE, APIRequest, build, read

__all__ = ["MAX_PAGES", "Base", "Flow"]

T = TypeVar("T")
Flow = Generator[HubRequest, HubResponse, T]

#: Most pages one list call reads: 100,000 pages of 200 are 20 million items. A Hub whose
#: ``next`` keeps moving forward past that is looping, and the call fails.
MAX_PAGES = 100_000


class Base:
    """Request building and reading shared by the endpoint groups (users, servers, ...)."""

    config: Config
    page_size: int
    max_pages: int = MAX_PAGES

    def _req(
        self,
        method: str,
        endpoint: str,
        path: str,
        *,
        scopes: Sequence[str] = (),
        ok: Sequence[int] = (200,),
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: str = "application/json",
        idempotent: bool | None = None,
    ) -> APIRequest:
        return build(
            self.config.api_url,
            self.config.api_token,
            method,
            endpoint,
            path,
            scopes=scopes,
            ok=ok,
            params=params,
            body=body,
            accept=accept,
            idempotent=idempotent,
        )

    def _call(self, req: APIRequest) -> Flow[Any]:
        """Send ``req``; its JSON answer (``None`` when empty), or the error it means."""
        resp = yield req
        return read(req, resp)

    def _status(self, req: APIRequest) -> Flow[int]:
        """Send ``req``; the success status it got (201/202, 202/204, ...)."""
        resp = yield req
        read(req, resp)
        return resp.status

    def _pages(
        self,
        endpoint: str,
        path: str,
        *,
        scopes: Sequence[str],
        params: Mapping[str, Any] | None = None,
    ) -> Flow[Any]:
        """Every item of a paginated list: a list, or a dict for the proxy's routes.

        Follows ``_pagination.next`` while it moves forward; a page may be empty with more
        after it (the Hub filters ``state=ready`` after cutting the page). A ``next`` that
        goes back or stays (a loop), or points past ``total`` (a lie), fails the call.
        """
        items: list[Any] = []
        merged: dict[str, Any] = {}
        offset = 0
        for _ in range(self.max_pages):
            query = {**(params or {}), "offset": offset, "limit": self.page_size or None}
            req = self._req(
                "GET", endpoint, path, scopes=scopes, params=query, accept=PAGINATION_MEDIA_TYPE
            )
            data = yield from self._call(req)
            if isinstance(data, list) and offset == 0:  # a Hub without pagination
                return data
            page = data.get("items") if isinstance(data, dict) else None
            info = data.get("_pagination") if isinstance(data, dict) else None
            if isinstance(data, dict) and page is None and info is None and offset == 0:
                return data  # a dict endpoint without pagination (older proxy API)
            if isinstance(page, list):
                items.extend(page)
            elif isinstance(page, dict):
                merged.update(page)
            else:
                raise self._bad_page(req, "a page without a list of 'items'")
            nxt = info.get("next") if isinstance(info, dict) else None
            if nxt is None:
                return merged if isinstance(page, dict) else items
            following = nxt.get("offset") if isinstance(nxt, dict) else None
            if not isinstance(following, int) or isinstance(following, bool):
                raise self._bad_page(req, f"a next page without an offset ({nxt!r:.100})")
            if following <= offset:
                raise self._bad_page(
                    req, f"pagination that loops (next offset {following} after offset {offset})"
                )
            total = info.get("total") if isinstance(info, dict) else None
            if isinstance(total, int) and not isinstance(total, bool) and following >= total:
                raise self._bad_page(
                    req, f"a next page at offset {following} although total is {total}"
                )
            offset = following
        raise self._bad_page(req, f"more than {self.max_pages} pages")

    @staticmethod
    def _bad_page(req: APIRequest, what: str) -> HubResponseError:
        return HubResponseError(
            f"{req.endpoint} ({req.url.split('?')[0]}) answered {what}; the list is incomplete",
            url=req.url,
            status=200,
        )
