"""The transports for ``httpx`` clients, and the clients that carry them.

Where a request goes (its *destination*, part of the partition) is the request URL's
``scheme://host[:port]``, or one of ``upstreams`` when the URL lies under it: the value
the reverse proxy puts in the partition for its upstream, so a client calling an
upstream directly and a client going through a proxy to it share entries
(:func:`~semcache_httpx.destination_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from semcache_httpx._core import AsyncTransportBase, SyncTransportBase, make_client

if TYPE_CHECKING:
    from semcache import SemanticCache

__all__ = [
    "AsyncSemanticCacheTransport",
    "SemanticCacheTransport",
    "async_httpx_client",
    "httpx_client",
]


class SemanticCacheTransport(SyncTransportBase, httpx.BaseTransport):
    """Semantic cache for a sync httpx client (``OpenAI(http_client=...)``).

    ``httpx.Client(transport=SemanticCacheTransport(cache))`` answers a POST to a
    generation endpoint (:data:`semcache.http.GENERATION_PATHS`) whose question means
    the same as one already answered with the stored answer, streamed answers included;
    every response it looks at carries ``X-Semcache: hit|miss|bypass``. The request
    rules are the proxy's: same partition (model, parameters, system prompt, earlier
    turns, credential, destination), same stored and replayed headers, and a cache
    problem never fails a request. A miss is stored before its body's last read
    returns, so the next request sees it.

    Options:
        cache: the :class:`semcache.SemanticCache` (it runs on the process's loop thread).
        transport: the transport that sends requests (default :class:`httpx.HTTPTransport`).
        upstreams: base URLs with a path that stand for a destination (a reverse proxy's
            ``--upstream``); see :func:`~semcache_httpx.destination_of`.
        paths: glob patterns of the cached paths, relative to the destination (``*``
            matches ``/`` too); default the generation endpoints; ``None``: every path.
        methods: request methods looked at (default POST only).
        extract_query, extract_model, extract_partition: ``(request, body) -> str | None``
            with the :class:`httpx.Request` and the parsed JSON body, as in the other
            adapters.
        cache_settings: :class:`semcache.Settings` for the request rules; default the cache's.
        ignored_fields: top-level body fields left out of the partition.
        max_response_bytes: responses larger than this are passed on, not stored.
    """

    _hx: ClassVar[Any] = httpx


class AsyncSemanticCacheTransport(AsyncTransportBase, httpx.AsyncBaseTransport):
    """Semantic cache for an async httpx client (``AsyncOpenAI(http_client=...)``).

    The options are those of :class:`SemanticCacheTransport`; ``transport`` defaults to
    :class:`httpx.AsyncHTTPTransport`. The cache runs on the caller's event loop.
    """

    _hx: ClassVar[Any] = httpx


def httpx_client(
    cache: SemanticCache,
    *,
    transport: httpx.BaseTransport | None = None,
    cache_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> httpx.Client:
    """An :class:`httpx.Client` with the semantic cache in front of its transport.

    ``OpenAI(http_client=semcache_httpx.httpx_client(cache))``. ``cache_options`` go
    to :class:`SemanticCacheTransport` (``upstreams``, ``paths``...), the rest to
    :class:`httpx.Client`; its connection options (``verify``, ``cert``, ``http2``,
    ``limits``, ``proxy``...) build the wrapped transport when none is given.
    """
    client: httpx.Client = make_client(
        SemanticCacheTransport, cache, transport, cache_options, client_options
    )
    return client


def async_httpx_client(
    cache: SemanticCache,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    cache_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An :class:`httpx.AsyncClient` with the semantic cache in front of its transport.

    ``AsyncOpenAI(http_client=semcache_httpx.async_httpx_client(cache))``; the options
    are those of :func:`httpx_client`.
    """
    client: httpx.AsyncClient = make_client(
        AsyncSemanticCacheTransport, cache, transport, cache_options, client_options
    )
    return client
