"""A cache over a response store the test chose (often one it can pause), with the
hashing embedder (unless the test brings one), an embedded vector index and no verifier."""

from __future__ import annotations

from typing import Any

from semcache import SemanticCache
from semcache.protocols import Embedder, ResponseStore, VectorStore
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder

__all__ = ["cache_over"]


def cache_over(
    response_store: ResponseStore,
    *,
    vector_store: VectorStore | None = None,
    embedder: Embedder | None = None,
    **settings: Any,
) -> SemanticCache:
    """A cache (not started) over ``response_store``: ``vector_store`` where several caches
    share one index (as replicas share pgvector), else an index of its own; ``embedder``
    where the test holds its start (:mod:`tests.support.starts`), else the hashing one."""
    return SemanticCache(
        embedder=HashingTestEmbedder() if embedder is None else embedder,
        vector_store=MemoryVectorStore(256) if vector_store is None else vector_store,
        response_store=response_store,
        verifier=None,
        **settings,
    )
