"""``HubAuth``: turn API tokens into Hub user models, sync or async, cached, scoped.

Same names and signatures as ``jupyterhub.services.auth.HubAuth``; settings come from the
environment the Hub sets (see :mod:`hubauth.config`) and keyword arguments override them.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar, overload

from . import _protocol
from ._async import AsyncDriver
from ._compat import HandlerMethods
from ._sync import SyncDriver
from .cache import MISS, TokenCache
from .config import Config, load_config
from .errors import HubAuthError, HubResponseError, HubUnavailable
from .scopes import check_scopes

__all__ = ["HubAuth"]

log = logging.getLogger("hubauth")

T = TypeVar("T")
Model = dict[str, Any]

# After the Hub failed to answer, known users' expired entries are answered from the cache
# for this many seconds without asking it again (one slow Hub costs one wait, not one each).
_STALE_RETRY_SECONDS = 5.0
# Stale answers are logged at warning level at most this often (each one at debug).
_STALE_LOG_SECONDS = 10.0


class _FromConfig(Generic[T]):
    """A read-only attribute served from the instance's :class:`Config`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _FromConfig[T]: ...
    @overload
    def __get__(self, obj: HubAuth, owner: type) -> T: ...
    def __get__(self, obj: HubAuth | None, owner: type) -> T | _FromConfig[T]:
        if obj is None:
            return self
        value: T = getattr(obj.config, self.name)
        return value

    def __set__(self, obj: HubAuth, value: T) -> None:
        # JupyterHub services assign settings after construction (hub_auth.api_url = ...):
        # it takes effect, validated as at construction (a bad value raises ConfigError).
        obj._reconfigure(self.name, value)


class HubAuth(HandlerMethods):
    """Identify API tokens with the Hub (``GET /hub/api/user``).

    Every setting defaults from the environment; keyword arguments override, e.g.
    ``HubAuth(api_url="http://hub:8081/hub/api", cache_max_age=60)``. Assigning a setting
    later (``auth.api_url = ...``) takes effect, validated the same way.
    """

    api_token: _FromConfig[str] = _FromConfig()
    api_url: _FromConfig[str] = _FromConfig()
    hub_prefix: _FromConfig[str] = _FromConfig()
    base_url: _FromConfig[str] = _FromConfig()
    hub_host: _FromConfig[str] = _FromConfig()
    service_name: _FromConfig[str] = _FromConfig()
    access_scopes: _FromConfig[frozenset[str]] = _FromConfig()
    cache_max_age: _FromConfig[float] = _FromConfig()
    allow_token_in_url: _FromConfig[bool] = _FromConfig()
    allow_websocket_cookie_auth: _FromConfig[bool] = _FromConfig()
    cookie_options: _FromConfig[Mapping[str, Any]] = _FromConfig()
    certfile: _FromConfig[str] = _FromConfig()
    keyfile: _FromConfig[str] = _FromConfig()
    client_ca: _FromConfig[str] = _FromConfig()
    oauth_client_id: _FromConfig[str] = _FromConfig()
    oauth_redirect_uri: _FromConfig[str] = _FromConfig()
    oauth_state_max_age: _FromConfig[float] = _FromConfig()
    cookie_host_prefix_enabled: _FromConfig[bool] = _FromConfig()
    service_url: _FromConfig[str] = _FromConfig()
    oauth_client_allowed_scopes: _FromConfig[frozenset[str]] = _FromConfig()
    public_url: _FromConfig[str] = _FromConfig()
    public_hub_url: _FromConfig[str] = _FromConfig()
    cookie_secret: _FromConfig[tuple[str, ...]] = _FromConfig()
    cache_negative_max_age: _FromConfig[float] = _FromConfig()
    cache_maxsize: _FromConfig[int] = _FromConfig()
    connect_timeout: _FromConfig[float] = _FromConfig()
    request_timeout: _FromConfig[float] = _FromConfig()
    stale_max_age: _FromConfig[float] = _FromConfig()

    _oauth = False

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        timer: Callable[[], float] | None = None,
        **settings: object,
    ) -> None:
        # What the settings came from, kept so that assigning one later re-validates all.
        self._environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        self._settings = dict(settings)
        self._timer = timer
        self.config: Config = load_config(self._environ, oauth=self._oauth, **settings)
        self._configured()

    def _configured(self) -> None:
        """Build what derives from ``self.config`` (again, when a setting was assigned)."""
        cfg = self.config
        cache: TokenCache | None = getattr(self, "cache", None)
        if cache is not None and cache.maxsize == cfg.cache_maxsize:
            cache.max_age = cfg.cache_max_age  # entries already cached keep their expiry
            cache.negative_max_age = min(cfg.cache_negative_max_age, cfg.cache_max_age)
            cache.stale_max_age = cfg.stale_max_age
        else:
            cache_args: dict[str, Any] = {"timer": self._timer} if self._timer else {}
            self.cache = TokenCache(
                maxsize=cfg.cache_maxsize,
                max_age=cfg.cache_max_age,
                negative_max_age=cfg.cache_negative_max_age,
                stale_max_age=cfg.stale_max_age,
                **cache_args,
            )
        for old in (getattr(self, "_sync", None), getattr(self, "_async", None)):
            if old is not None:
                old.close()
        # Stale answers (see _stale_or_raise): the cache's clock, and when the Hub last failed.
        self._now: Callable[[], float] = self._timer or time.monotonic
        self._hub_failed_at: float | None = None
        self._stale_logged_at: float | None = None
        self._stale_unlogged = 0
        self._sync = SyncDriver(cfg)
        self._async = AsyncDriver(cfg)

    def _reconfigure(self, name: str, value: object) -> None:
        """Assign one setting: validated with all the others, as at construction."""
        settings = {**self._settings, name: value}
        for alias, target in (("cookie_cache_max_age", "cache_max_age"),):
            if name == target:
                settings.pop(alias, None)
        self.config = load_config(self._environ, oauth=self._oauth, **settings)
        self._settings = settings
        self._configured()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r}, api_token=[secure])"

    # Older JupyterHub spellings, kept for drop-in use.
    @property
    def cookie_cache_max_age(self) -> float:
        return self.config.cache_max_age

    @cookie_cache_max_age.setter
    def cookie_cache_max_age(self, value: float) -> None:
        self._reconfigure("cache_max_age", value)

    @property
    def oauth_scopes(self) -> frozenset[str]:
        return self.config.access_scopes

    @oauth_scopes.setter
    def oauth_scopes(self, value: Iterable[str]) -> None:
        self._reconfigure("access_scopes", value)

    @property
    def login_url(self) -> str:
        """Where a browser logs in: empty for token-only auth, as in JupyterHub, so
        ``@authenticated`` answers 403 instead of redirecting (HubOAuth: the authorize URL).
        """
        return self.config.login_url

    @login_url.setter
    def login_url(self, value: str) -> None:
        self._reconfigure("login_url", value)

    # ------------------------------------------------------------ identify

    @overload
    def user_for_token(
        self,
        token: str,
        use_cache: bool = ...,
        session_id: str = ...,
        *,
        sync: Literal[True] = ...,
    ) -> Model | None: ...
    @overload
    def user_for_token(
        self,
        token: str,
        use_cache: bool = ...,
        session_id: str = ...,
        *,
        sync: Literal[False],
    ) -> Awaitable[Model | None]: ...
    def user_for_token(
        self,
        token: str,
        use_cache: bool = True,
        session_id: str = "",
        *,
        sync: bool = True,
    ) -> Model | Awaitable[Model | None] | None:
        """The Hub's model of whoever holds ``token``, or ``None`` if the Hub does not know it.

        ``sync=False`` returns an awaitable instead of blocking. Raises
        :class:`~hubauth.errors.HubUnavailable` or :class:`~hubauth.errors.HubResponseError`
        when the Hub cannot answer; those are never cached.
        """
        clean = _protocol.clean_token(token)
        if not sync:
            return self._user_for_token_async(clean, use_cache, session_id)
        if clean is None:
            return None
        key = self._key(clean, session_id)
        if use_cache and self._hub_failed_at is not None:
            stale = self._stale_while_failing(key)
            if stale is not MISS:
                return stale  # type: ignore[no-any-return]
        load = functools.partial(self._ask_hub_sync, clean)
        try:
            return self.cache.load_sync(key, load, use_cache=use_cache)
        except (HubUnavailable, HubResponseError) as e:
            return self._stale_or_raise(key, e, use_cache)

    async def _user_for_token_async(
        self, clean: str | None, use_cache: bool, session_id: str
    ) -> Model | None:
        if clean is None:
            return None
        key = self._key(clean, session_id)
        cached = self.cache.get(key) if use_cache else MISS  # a hit costs no further coroutine
        if cached is not MISS:
            return cached  # type: ignore[no-any-return]
        if use_cache and self._hub_failed_at is not None:
            stale = self._stale_while_failing(key)
            if stale is not MISS:
                return stale  # type: ignore[no-any-return]
        load = functools.partial(self._ask_hub_async, clean)
        try:
            return await self.cache.load_async(key, load, use_cache=use_cache)
        except (HubUnavailable, HubResponseError) as e:
            return self._stale_or_raise(key, e, use_cache)

    # -- stale answers: known users through a Hub outage

    def _stale_while_failing(self, key: tuple[str, str]) -> Any:
        """Shortly after the Hub failed, an expired known user's stale model (without
        asking the Hub again), else ``MISS``.
        """
        failed_at = self._hub_failed_at
        if failed_at is None or self._now() - failed_at >= _STALE_RETRY_SECONDS:
            self._hub_failed_at = None
            return MISS
        if self.cache.get(key) is not MISS:
            return MISS  # fresh after all: the normal path answers it
        stale = self.cache.stale(key)
        if stale is not MISS:
            self._log_stale(stale, "it failed moments ago")
        return stale

    def _stale_or_raise(self, key: tuple[str, str], error: HubAuthError, use_cache: bool) -> Model:
        """The Hub could not answer: a known user's model that expired at most
        ``stale_max_age`` ago, if the failure is an outage (refused, reset, timeout, 5xx);
        else ``error`` is raised. The cache entry is not extended.
        """
        outage = isinstance(error, HubUnavailable) or (error.status or 0) >= 500
        if not outage:
            raise error
        self._hub_failed_at = self._now()
        stale = self.cache.stale(key) if use_cache else MISS
        if stale is MISS:
            raise error
        self._log_stale(stale, str(error))
        return stale  # type: ignore[no-any-return]

    def _log_stale(self, model: Model, why: str) -> None:
        now = self._now()
        last = self._stale_logged_at
        if last is not None and now - last < _STALE_LOG_SECONDS:
            self._stale_unlogged += 1
            log.debug(
                "Served %s %s from its cached model (the Hub could not answer)",
                model.get("kind", "user"),
                model.get("name"),
            )
            return
        more = f" ({self._stale_unlogged} more stale answers since the last message)"
        log.warning(
            "The Hub could not answer (%s): served %s %s from its cached model, expired at "
            "most stale_max_age=%gs ago%s",
            why,
            model.get("kind", "user"),
            model.get("name"),
            self.config.stale_max_age,
            more if self._stale_unlogged else "",
        )
        self._stale_logged_at = now
        self._stale_unlogged = 0

    def _cached_clean(self, clean: str, session_id: str) -> Any:
        """What the cache holds for a token already checked with ``clean_token`` (a model
        copy or ``None``), or ``cache.MISS``. Never asks the Hub: the flows answer cache hits
        with it, without I/O or a coroutine.
        """
        return self.cache.get(TokenCache.key(clean, session_id))

    def _ask_hub_sync(self, token: str) -> Model | None:
        req = _protocol.user_request(self.config.api_url, token)
        return _protocol.read_user_reply(req, self._sync.send(req))

    async def _ask_hub_async(self, token: str) -> Model | None:
        req = _protocol.user_request(self.config.api_url, token)
        return _protocol.read_user_reply(req, await self._async.send(req))

    @staticmethod
    def _key(token: str, session_id: object) -> tuple[str, str]:
        return TokenCache.key(token, session_id if isinstance(session_id, str) else "")

    def evict_token(self, token: str) -> int:
        """Forget what the cache knows of ``token`` (e.g. after revoking it); return how much."""
        clean = _protocol.clean_token(token)
        return self.cache.evict(clean) if clean else 0

    # ------------------------------------------------------------ authorize

    def check_scopes(self, required: str | Iterable[str], model: Mapping[str, Any]) -> set[str]:
        """The subset of ``required`` that the model's scopes grant (truthy when allowed)."""
        return check_scopes(required, model)

    def close(self) -> None:
        """Close the connection pools (the object stays usable: they reopen on demand)."""
        self._sync.close()
        self._async.close()
