"""Semantic cache as an httpx transport, for the OpenAI and Anthropic SDKs and any httpx client.

    client = OpenAI(http_client=semcache_httpx.httpx_client(cache))

:mod:`semcache_httpx.httpx2` has the same for ``httpx2`` clients (Anthropic 2.x).
"""

from semcache_httpx._core import destination_of
from semcache_httpx.transport import (
    AsyncSemanticCacheTransport,
    SemanticCacheTransport,
    async_httpx_client,
    httpx_client,
)

__all__ = [
    "AsyncSemanticCacheTransport",
    "SemanticCacheTransport",
    "async_httpx_client",
    "destination_of",
    "httpx_client",
]
