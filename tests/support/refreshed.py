"""An answer stored and served, then stored again under the same entry id (a refresh):
the helpers of tests on what an eviction of the first answer leaves of the second."""

from __future__ import annotations

import asyncio
from typing import Any

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder

__all__ = [
    "FAR",
    "NEAR",
    "Q",
    "assert_new_answer_kept",
    "make_cache",
    "refresh",
    "served",
    "settle",
]

Q = "how do I reset my password on the website"
NEAR = "how do I reset my password on the web site please"
FAR = "how do I reset my password"


def make_cache(responses: Any, vectors: Any) -> SemanticCache:
    """A cache whose paraphrases of :data:`Q` are semantic hits, with generous budgets."""
    return SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=vectors,
        response_store=responses,
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        max_false_hit_rate=0.75,
        store_timeout_ms=60_000,
        lookup_timeout_ms=60_000,
    )


async def settle(cache: SemanticCache) -> None:
    """Let the background alias writes finish."""
    while cache._background:
        await asyncio.gather(*cache._background)


async def served(cache: SemanticCache) -> tuple[str, str]:
    """``b"old answer"`` stored for :data:`Q` and served to :data:`NEAR` (semantic): its
    entry id and the version that was served."""
    entry = await cache.store(Q, b"old answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry is not None and hit is not None and hit.source == "semantic"
    assert hit.version is not None
    await settle(cache)
    return entry, hit.version


async def refresh(cache: SemanticCache, entry: str) -> None:
    """``b"new answer"`` stored again under ``entry``, then served to :data:`NEAR`
    (semantic), whose alias is written before this returns."""
    assert await cache.store(Q, b"new answer", ttl=600) == entry
    hit = await cache.lookup(NEAR)
    assert hit is not None and hit.payload == b"new answer"
    await settle(cache)


async def assert_new_answer_kept(cache: SemanticCache, entry: str, old: str) -> None:
    """``b"new answer"`` (stored by :func:`refresh`) is under ``entry``, not the ``old``
    version, and served: exact, from its alias, and semantic (its vector kept)."""
    stored = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert stored is not None and stored.payload == b"new answer"
    assert stored.version != old
    exact = await cache.lookup(Q)
    assert exact is not None and exact.source == "exact" and exact.payload == b"new answer"
    alias = await cache.lookup(NEAR)
    assert alias is not None and alias.source == "exact" and alias.payload == b"new answer"
    semantic = await cache.lookup(FAR)
    assert semantic is not None and semantic.source == "semantic"
    assert semantic.payload == b"new answer"
