import asyncio
import time

import pytest

from semcache import Hit, SemanticCache
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder, StalledEmbedder

Q = "how do I reset my password on the website"
PARAPHRASE = "how do I reset my password on the web site please"


async def test_miss_then_exact_hit_without_embedding(cache, embedder):
    assert await cache.lookup(Q) is None
    entry_id = await cache.store(Q, b"answer", metadata={"status": 200})
    calls = embedder.calls
    hit = await cache.lookup(f"  {Q}\n")
    assert hit == Hit(b"answer", {"status": 200}, 1.0, entry_id, "exact")
    assert embedder.calls == calls  # the fast path needs no embedding
    # The exact key is the text as sent: case and punctuation make a semantic hit.
    folded = await cache.lookup("How do I RESET my password on the website?")
    assert folded is not None and folded.source == "semantic" and folded.entry_id == entry_id


async def test_semantic_hit(cache):
    await cache.store(Q, b"answer")
    hit = await cache.lookup(PARAPHRASE)
    assert hit is not None and hit.source == "semantic" and hit.payload == b"answer"
    assert 0.8 <= hit.similarity < 1.0


async def test_unrelated_question_misses(cache):
    await cache.store(Q, b"answer")
    assert await cache.lookup("what is the capital of france") is None


async def test_partitions_never_cross(cache):
    await cache.store(Q, b"tenant a", partition="a")
    assert await cache.lookup(Q, partition="b") is None
    assert await cache.lookup(PARAPHRASE, partition="b") is None
    assert (await cache.lookup(Q, partition="a")).payload == b"tenant a"


async def test_only_the_query_is_embedded(cache, embedder):
    seen = []
    original = embedder.embed

    async def spy(texts):
        seen.extend(texts)
        return await original(texts)

    embedder.embed = spy
    await cache.lookup(Q, partition="model=gpt-4o;system=You are a pirate")
    assert seen == [Q.lower()]


async def test_miss_then_store_embeds_once(cache, embedder):
    assert await cache.lookup(Q) is None
    calls = embedder.calls
    await cache.store(Q, b"answer")
    assert embedder.calls == calls


async def test_ttl_expiry(cache):
    await cache.store(Q, b"answer", ttl=1)
    assert await cache.lookup(Q) is not None
    deadline = time.monotonic() + 5
    while await cache.lookup(Q) is not None:
        assert time.monotonic() < deadline, "entry outlived its TTL"
        await asyncio.sleep(0.05)
    assert await cache.lookup(PARAPHRASE) is None
    assert await cache.sweep() == 1  # the expired vector is deleted, not only filtered


async def test_same_query_replaces_entry(cache):
    first = await cache.store(Q, b"old")
    second = await cache.store(Q, b"new")
    assert first == second
    assert (await cache.lookup(Q)).payload == b"new"
    assert (await cache.lookup(PARAPHRASE)).payload == b"new"


async def test_vector_without_payload_is_a_miss_and_cleaned_up(cache):
    entry_id = await cache.store(Q, b"answer")
    await cache.response_store.delete(entry_id)  # evicted or expired behind our back
    assert await cache.lookup(PARAPHRASE) is None
    await asyncio.gather(*cache._background)
    assert await cache.vector_store.count() == 0


async def test_eviction_bounds_the_cache(embedder):
    async with SemanticCache(embedder=embedder, max_entries=5, threshold=0.8) as cache:
        for i in range(8):
            await cache.store(f"question number {i} about the weather in town {i}", b"x")
        assert await cache.vector_store.count() == 5
        assert await cache.response_store.count() == 5
        assert await cache.lookup("question number 0 about the weather in town 0") is None
        assert await cache.lookup("question number 7 about the weather in town 7") is not None


async def test_persistence_across_restart(tmp_path):
    async with SemanticCache(
        embedder=HashingTestEmbedder(), data_path=str(tmp_path), threshold=0.8, verifier=None
    ) as c1:
        await c1.store(Q, b"kept", partition="t")
    async with SemanticCache(
        embedder=HashingTestEmbedder(), data_path=str(tmp_path), threshold=0.8, verifier=None
    ) as c2:
        assert (await c2.lookup(Q, partition="t")).source == "exact"
        hit = await c2.lookup(PARAPHRASE, partition="t")
        assert hit is not None and hit.payload == b"kept"


async def test_single_flight_collapses_concurrent_misses(cache):
    upstream_calls = 0

    async def handle():
        async with cache.single_flight("key") as flight:
            if not flight.leader:
                hit = await cache.lookup(Q)
                if hit is not None:
                    return hit.payload
            nonlocal upstream_calls
            upstream_calls += 1
            await asyncio.sleep(0.05)  # the upstream takes a while
            await cache.store(Q, b"answer")
            return b"answer"

    results = await asyncio.gather(*(handle() for _ in range(20)))
    assert results == [b"answer"] * 20
    assert upstream_calls == 1


async def test_single_flight_do_shares_result_and_errors(cache):
    calls = 0

    async def fetch():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return calls

    assert (
        await asyncio.gather(*(cache.single_flight.do("k", fetch) for _ in range(10))) == [1] * 10
    )

    async def boom():
        await asyncio.sleep(0.02)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(cache.single_flight.do("k", boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_hanging_embedder_is_a_miss_within_budget():
    async with SemanticCache(
        embedder=StalledEmbedder(), embedder_timeout_ms=100, lookup_timeout_ms=300
    ) as cache:
        t0 = time.monotonic()
        assert await cache.lookup(Q) is None
        assert time.monotonic() - t0 < 1.0
        assert await cache.store(Q, b"x") is None


async def test_whole_lookup_budget_caps_a_slow_path():
    async with SemanticCache(
        embedder=StalledEmbedder(), embedder_timeout_ms=10_000, lookup_timeout_ms=150
    ) as cache:
        t0 = time.monotonic()
        assert await cache.lookup(Q) is None
        assert time.monotonic() - t0 < 1.0


async def test_failing_store_is_a_miss_and_breaker_skips_it(embedder):
    responses = FlakyStore(MemoryResponseStore())
    async with SemanticCache(
        embedder=embedder,
        response_store=responses,
        threshold=0.8,
        breaker_failures=2,
        breaker_cooldown_ms=200,
    ) as cache:
        await cache.store(Q, b"answer")
        responses.down = True
        assert await cache.lookup(Q) is None
        assert await cache.lookup(Q) is None
        assert cache.breakers["response store"].state == "open"
        calls = responses.calls
        assert await cache.lookup(Q) is None
        assert responses.calls == calls  # the open breaker did not call the store
        assert await cache.store("another question", b"x") is None

        responses.down = False
        deadline = time.monotonic() + 5
        while (hit := await cache.lookup(Q)) is None:  # half-open trial after the cooldown
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert hit.payload == b"answer"
        assert cache.breakers["response store"].state == "closed"


async def test_failing_vector_store_never_raises(embedder):
    vectors = FlakyStore(MemoryVectorStore(embedder.dimension))
    vectors.down = True
    async with SemanticCache(embedder=embedder, vector_store=vectors, threshold=0.8) as cache:
        assert await cache.store(Q, b"answer") is None
        assert await cache.lookup(PARAPHRASE) is None


async def test_disabled_cache_does_nothing(embedder):
    async with SemanticCache(embedder=embedder, enabled=False) as cache:
        assert await cache.store(Q, b"x") is None
        assert await cache.lookup(Q) is None
        assert embedder.calls == 0


async def test_flush_and_delete(cache):
    a = await cache.store(Q, b"a", partition="one")
    await cache.store(Q, b"b", partition="two")
    assert await cache.delete(a) is True
    assert await cache.lookup(Q, partition="one") is None
    assert await cache.flush("two") == 1
    assert await cache.lookup(Q, partition="two") is None


async def test_verifier_rejection_is_a_miss(embedder):
    class RejectAll:
        async def verify(self, query, candidate, similarity):
            return False

    async with SemanticCache(embedder=embedder, verifier=RejectAll(), threshold=0.8) as cache:
        await cache.store(Q, b"answer")
        assert await cache.lookup(PARAPHRASE) is None
        assert cache.counters["rejected_by_verifier"] == 1
        assert (await cache.lookup(Q)).source == "exact"  # exact repeats need no verifying


async def test_empty_query_is_never_cached(cache):
    assert await cache.store("   ", b"x") is None
    assert await cache.lookup("") is None


@pytest.mark.parametrize("payload", [b"", b"\x00\xff" * 1000, "héllo ✓".encode()])
async def test_payload_bytes_round_trip(cache, payload):
    await cache.store(Q, payload)
    assert (await cache.lookup(Q)).payload == payload


async def test_lookup_observers_see_every_result_and_duration(cache):
    seen = []
    cache.lookup_observers.append(lambda hit, seconds: seen.append((hit, seconds)))
    await cache.store(Q, b"answer")
    walls = []
    for query in (Q, "something else entirely different"):
        started = time.perf_counter()
        await cache.lookup(query)
        walls.append(time.perf_counter() - started)
    assert [hit.source if hit else None for hit, _ in seen] == ["exact", None]
    # Each duration is the lookup's own: positive, and within the wall time around it.
    for (_, seconds), wall in zip(seen, walls, strict=True):
        assert 0 < seconds <= wall


@pytest.mark.parametrize("context", [None, "an earlier turn"])
async def test_invalid_unicode_is_never_cached_nor_embedded(cache, embedder, context):
    bad = "how do I reset my password \ud800"
    assert await cache.store(bad, b"x", context=context) is None
    assert await cache.lookup(bad, context=context) is None
    assert await cache.store(Q, b"x", context="turn \udfff") is None
    assert await cache.lookup(Q, context="turn \udfff") is None
    assert embedder.calls == 0
    assert all(b.state == "closed" for b in cache.breakers.values())
