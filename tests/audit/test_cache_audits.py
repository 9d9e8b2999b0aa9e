"""What audit outcomes do to entries: quarantine, per-entry thresholds, reports; kept
in the entry, so replicas that share the stores agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from semcache import SemanticCache
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder

Q = "how do I reset my password on the website"
NEAR = "how do I reset my password on the web site please"
FAR = "how do I reset my password"


async def settle(cache: SemanticCache) -> None:
    """Let the background alias writes finish."""
    while cache._background:
        await asyncio.gather(*cache._background)


@pytest.fixture
async def cache() -> AsyncIterator[SemanticCache]:
    c = SemanticCache(
        embedder=HashingTestEmbedder(),
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        max_false_hit_rate=0.75,
    )
    await c.start()
    yield c
    await c.close()


async def similarities(cache: SemanticCache) -> tuple[str, float, float]:
    entry = await cache.store(Q, b"answer", ttl=600)
    near = await cache.lookup(NEAR)
    far = await cache.lookup(FAR)
    assert entry and near and far and near.entry_id == far.entry_id == entry
    assert far.similarity < near.similarity < 1.0
    await settle(cache)
    return entry, near.similarity, far.similarity


async def test_an_agreeing_audit_keeps_the_entry(cache: SemanticCache) -> None:
    entry, near, _ = await similarities(cache)
    state = await cache.record_audit(entry, near, True)
    assert state is not None and state.threshold is None and not state.quarantined
    assert (await cache.audit_state(entry)) == state
    hit = await cache.lookup(NEAR)
    assert hit is not None and hit.payload == b"answer"


async def test_a_failed_audit_quarantines(cache: SemanticCache) -> None:
    cache.settings = cache.settings.replace(max_false_hit_rate=0.05)
    entry, near, _ = await similarities(cache)
    assert (await cache.lookup(NEAR)).source == "exact"  # an alias by now
    stored = await cache.response_store.get(entry)  # type: ignore[union-attr]
    state = await cache.record_audit(entry, near, False)
    assert state is not None and state.quarantined
    assert cache.counters["quarantined"] == 1
    # No semantic hit, the alias included; the entry's own text is still answered.
    assert await cache.lookup(NEAR) is None
    assert await cache.lookup(FAR) is None
    exact = await cache.lookup(Q)
    assert exact is not None and exact.source == "exact" and exact.payload == b"answer"
    assert await cache.vector_store.count() == 0  # type: ignore[union-attr]
    # An alias written late (its write raced the quarantine) is not served either.
    entry_now = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert await cache.response_store.add_alias(entry_now.partition, NEAR, entry_now)  # type: ignore[union-attr]
    assert await cache.lookup(NEAR) is None
    after = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert after.expires_at == stored.expires_at and after.created_at == stored.created_at


async def test_a_failure_raises_the_entry_threshold_above_it(cache: SemanticCache) -> None:
    entry, near, far = await similarities(cache)
    await cache.record_audit(entry, near, True)
    state = await cache.record_audit(entry, far, False)
    assert state is not None and not state.quarantined
    assert state.threshold is not None and far < state.threshold <= near
    # Below the entry's bar: turned down (the alias too); at it: served.
    assert await cache.lookup(FAR) is None
    assert cache.counters["rejected_by_audit"] == 1 and cache.rejections["audit"] == 1
    hit = await cache.lookup(NEAR)
    assert hit is not None and hit.source == "semantic"
    # An alias written late (it raced the audit) is no way around the bar.
    entry_now = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert await cache.response_store.add_alias(entry_now.partition, FAR, entry_now)  # type: ignore[union-attr]
    assert await cache.lookup(FAR) is None
    # A route's own, lower bar does not undo the entry's.
    assert await cache.lookup(FAR, threshold=0.1) is None


async def test_reports_of_wrong_hits(cache: SemanticCache) -> None:
    entry, near, _ = await similarities(cache)
    assert await cache.report_wrong_hit(entry, evict=False, similarity=near)
    assert (await cache.audit_state(entry)).samples == ((pytest.approx(near, abs=1e-6), False),)
    assert await cache.report_wrong_hit(entry)  # evicted
    assert await cache.lookup(Q) is None
    assert not await cache.report_wrong_hit(entry)
    assert await cache.record_audit(entry, near, False) is None  # gone: nothing to learn
    other = await cache.store("what is the capital of france", b"paris")
    assert other and await cache.report_wrong_hit(other, evict=False)
    assert (await cache.audit_state(other)).quarantined
    assert cache.counters["wrong_hit_reports"] == 4


async def test_replicas_sharing_the_stores_agree(redis_prefix: str, shared_redis: str) -> None:
    from semcache_store_redis import RedisResponseStore

    vectors = MemoryVectorStore(256)  # one index for both, as pgvector would be
    replicas = [
        SemanticCache(
            embedder=HashingTestEmbedder(),
            vector_store=vectors,
            response_store=RedisResponseStore(shared_redis, prefix=redis_prefix),
            threshold=0.3,
            verifier=None,
            batch_max_size=1,
            max_false_hit_rate=0.75,
        )
        for _ in range(2)
    ]
    a, b = replicas
    try:
        await a.start()
        await b.start()
        entry, near, far = await similarities(a)
        await a.record_audit(entry, near, True)
        await a.record_audit(entry, far, False)
        assert await b.lookup(FAR) is None and b.counters["rejected_by_audit"] == 1
        assert (await b.lookup(NEAR)) is not None
        await b.record_audit(entry, near, False)  # now quarantined, seen by a too
        assert (await a.audit_state(entry)).quarantined
        assert await a.lookup(NEAR) is None
    finally:
        for replica in replicas:
            await replica.close()


async def test_entry_state_does_not_outlive_a_refresh(cache: SemanticCache) -> None:
    cache.settings = cache.settings.replace(max_false_hit_rate=0.05)
    entry, near, _ = await similarities(cache)
    await cache.record_audit(entry, near, False)
    assert await cache.lookup(NEAR) is None
    # The same question stored again (a refresh) is a new answer: audited anew.
    assert await cache.store(Q, b"second") == entry
    hit = await cache.lookup(NEAR)
    assert hit is not None and hit.payload == b"second"
