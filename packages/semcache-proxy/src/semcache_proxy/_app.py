"""The proxy application: operations endpoints, then the cache middleware, then forwarding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from semcache import SemanticCache, Settings
from semcache_fastapi import SemanticCacheMiddleware
from semcache_proxy._forward import Forwarder, conflicting_framing, framing_error
from semcache_proxy._metrics import ProxyMetrics
from semcache_proxy._ops import OpsEndpoints
from semcache_proxy.settings import ProxySettings

__all__ = ["SemanticCacheProxy", "create_semantic_cache_proxy_app"]

log = logging.getLogger("semcache.proxy")


class SemanticCacheProxy:
    """ASGI app: ``/healthz``, ``/readyz``, ``/metrics`` and the admin API answered here;
    every other request goes through :class:`SemanticCacheMiddleware` to the upstream."""

    def __init__(
        self,
        cache: SemanticCache,
        forwarder: Forwarder,
        metrics: ProxyMetrics,
        middleware_options: dict[str, Any],
        *,
        owns_cache: bool,
    ) -> None:
        self.cache = cache
        self.forwarder = forwarder
        self.metrics = metrics
        cache.lookup_observers.append(metrics.observe_lookup)
        self.cached_app = SemanticCacheMiddleware(forwarder, cache=cache, **middleware_options)
        engine = self.cached_app.engine
        self.ops = OpsEndpoints(cache, metrics, engine.savings, engine.auditor)
        metrics.watch(cache, engine.breakers.open_count, engine.savings, engine.auditor)
        self._owns_cache = owns_cache
        self._warmup: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and self.ops.handles(scope["path"]):
            await self.ops(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if conflicting_framing(scope):  # refused before the cache or the upstream sees it
            await framing_error(self.metrics.wrap_send(send))
            return
        await self.cached_app(scope, receive, self.metrics.wrap_send(send))

    async def startup(self) -> None:
        # Load the model in the background: the proxy answers (uncached) meanwhile,
        # and /readyz says when the cache is ready.
        self._warmup = asyncio.get_running_loop().create_task(self._start_cache())

    async def _start_cache(self) -> None:
        try:
            await self.cache.start()
        except Exception:
            log.exception("semcache proxy: the cache could not start; requests pass through")

    async def shutdown(self) -> None:
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
            with contextlib.suppress(BaseException):
                await self._warmup
        await self.forwarder.aclose()
        if self._owns_cache:
            await self.cache.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_semantic_cache_proxy_app(
    upstream: str | None = None,
    cache: SemanticCache | None = None,
    *,
    timeout: float | None = None,
    verify: bool | str | None = None,
    httpx_client_kwargs: dict[str, Any] | None = None,
    settings: Settings | None = None,
    **middleware_options: Any,
) -> SemanticCacheProxy:
    """A reverse proxy to ``upstream`` with a semantic cache in front.

    Unset arguments come from ``settings`` (``SEMANTIC_CACHE_*``): the upstream from
    ``SEMANTIC_CACHE_PROXY_UPSTREAM``, the timeout from ``SEMANTIC_CACHE_PROXY_TIMEOUT``,
    TLS verification from ``SEMANTIC_CACHE_PROXY_VERIFY``; the configuration file's
    ``[upstreams]`` send path prefixes to other upstreams, and its ``[[routes]]`` set
    per-route policies. ``middleware_options`` go to
    :class:`semcache_fastapi.SemanticCacheMiddleware` (``extract_query``, ``methods``...).
    """
    owns_cache = cache is None
    if cache is None:
        cache = SemanticCache(settings)
    s = cache.settings.group(ProxySettings)
    upstream = upstream or s.proxy_upstream
    timeout = s.proxy_timeout if timeout is None else timeout
    verify = s.proxy_verify if verify is None else verify
    client_kwargs: dict[str, Any] = {
        "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        "verify": verify,
        "limits": httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        **(httpx_client_kwargs or {}),
    }

    def client_factory() -> httpx.AsyncClient:
        client = httpx.AsyncClient(**client_kwargs)
        client.headers.clear()  # forward the client's headers only, add none of httpx's
        return client

    # Generation endpoints only, unless told otherwise; two proxies for two upstreams
    # sharing one store never share answers.
    middleware_options.setdefault(
        "paths", [p.strip() for p in s.proxy_paths.split(",") if p.strip()]
    )
    middleware_options.setdefault(
        "exact_paths", [p.strip() for p in s.proxy_exact_paths.split(",") if p.strip()]
    )
    config = cache.settings.config_file
    mounts = config.upstreams if config is not None else ()
    metrics = ProxyMetrics()
    forwarder = Forwarder(
        upstream, client_factory, on_upstream=metrics.observe_upstream, mounts=mounts
    )
    # Where each request goes is in its partition: a prefix's upstream, else the default.
    middleware_options.setdefault(
        "destination", forwarder.destination if mounts else upstream.rstrip("/")
    )
    return SemanticCacheProxy(cache, forwarder, metrics, middleware_options, owns_cache=owns_cache)
