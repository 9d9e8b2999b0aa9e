"""The same transports and clients for ``httpx2`` (the HTTP client of newer SDKs).

``Anthropic`` 2.x takes only ``httpx2`` clients; ``OpenAI`` 3.x takes both::

    from semcache_httpx.httpx2 import httpx_client
    client = Anthropic(http_client=httpx_client(cache))

Needs ``httpx2`` installed (the SDKs that use it install it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import httpx2

from semcache_httpx._core import AsyncTransportBase, SyncTransportBase, make_client

if TYPE_CHECKING:
    from semcache import SemanticCache

__all__ = [
    "AsyncSemanticCacheTransport",
    "SemanticCacheTransport",
    "async_httpx_client",
    "httpx_client",
]


class SemanticCacheTransport(SyncTransportBase, httpx2.BaseTransport):
    """:class:`semcache_httpx.SemanticCacheTransport` for ``httpx2.Client``."""

    _hx: ClassVar[Any] = httpx2


class AsyncSemanticCacheTransport(AsyncTransportBase, httpx2.AsyncBaseTransport):
    """:class:`semcache_httpx.AsyncSemanticCacheTransport` for ``httpx2.AsyncClient``."""

    _hx: ClassVar[Any] = httpx2


def httpx_client(
    cache: SemanticCache,
    *,
    transport: Any = None,
    cache_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> httpx2.Client:
    """An ``httpx2.Client`` with the semantic cache in front of its transport (options as
    :func:`semcache_httpx.httpx_client`)."""
    client: httpx2.Client = make_client(
        SemanticCacheTransport, cache, transport, cache_options, client_options
    )
    return client


def async_httpx_client(
    cache: SemanticCache,
    *,
    transport: Any = None,
    cache_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` with the semantic cache in front of its transport."""
    client: httpx2.AsyncClient = make_client(
        AsyncSemanticCacheTransport, cache, transport, cache_options, client_options
    )
    return client
