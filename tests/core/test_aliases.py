"""A paraphrase that hit once is an exact hit the next time: no embedding."""

import asyncio
import time

from semcache import SemanticCache
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import HashingTestEmbedder

Q = "how do I reset my password on the website"
PARAPHRASE = "how do I reset my password on the web site please"


async def settle(cache: SemanticCache) -> None:
    """Let the background alias writes finish."""
    while cache._background:
        await asyncio.gather(*cache._background)


async def test_repeated_paraphrase_costs_no_embedding(cache, embedder):
    entry_id = await cache.store(Q, b"answer", metadata={"status": 200})
    first = await cache.lookup(PARAPHRASE)
    assert first is not None and first.source == "semantic" and first.entry_id == entry_id
    await settle(cache)
    calls = embedder.calls
    for _ in range(3):
        again = await cache.lookup(PARAPHRASE)
        assert again is not None and again.source == "exact"
        assert (again.payload, again.metadata, again.entry_id) == (
            b"answer",
            {"status": 200},
            entry_id,
        )
    assert embedder.calls == calls
    assert cache.counters["exact_hits"] == 3 and cache.counters["semantic_hits"] == 1


async def test_alias_never_crosses_partitions(cache, embedder):
    await cache.store(Q, b"tenant a", partition="a")
    assert (await cache.lookup(PARAPHRASE, partition="a")).source == "semantic"
    await settle(cache)
    assert await cache.lookup(PARAPHRASE, partition="b") is None
    assert (await cache.lookup(PARAPHRASE, partition="a")).source == "exact"


async def test_alias_dies_with_its_entry(cache, embedder):
    entry_id = await cache.store(Q, b"answer")
    await cache.lookup(PARAPHRASE)
    await settle(cache)
    assert (await cache.lookup(PARAPHRASE)).source == "exact"
    assert await cache.delete(entry_id) is True
    assert await cache.lookup(PARAPHRASE) is None
    # Replaced (the same question stored again): the next paraphrase is embedded again.
    await cache.store(Q, b"first")
    await cache.lookup(PARAPHRASE)
    await settle(cache)
    await cache.store(Q, b"second")
    hit = await cache.lookup(PARAPHRASE)
    assert hit.source == "semantic" and hit.payload == b"second"
    await settle(cache)
    await cache.flush()
    assert await cache.lookup(PARAPHRASE) is None


async def test_alias_expires_with_its_entry(cache):
    await cache.store(Q, b"answer", ttl=1)
    await cache.lookup(PARAPHRASE)
    await settle(cache)
    assert (await cache.lookup(PARAPHRASE)).source == "exact"
    await asyncio.sleep(1.1)
    assert await cache.lookup(PARAPHRASE) is None


async def test_rejected_hit_adds_no_alias(embedder):
    class RejectAll:
        async def verify(self, query, candidate, similarity):
            return False

    async with SemanticCache(embedder=embedder, verifier=RejectAll(), threshold=0.8) as cache:
        await cache.store(Q, b"answer")
        assert await cache.lookup(PARAPHRASE) is None
        await settle(cache)
        calls = embedder.calls
        assert await cache.lookup(PARAPHRASE) is None
        assert embedder.calls == calls + 1  # embedded again: no alias was stored
        assert await cache.response_store.get_exact(cache._partition("", ""), PARAPHRASE) is None


async def test_context_alias_only_for_the_same_context(embedder):
    async with SemanticCache(
        embedder=embedder,
        verifier=None,
        threshold=0.8,
        context_mode="semantic",
        context_threshold=0.5,
    ) as cache:
        ctx = "we were talking about the account settings page"
        await cache.store(Q, b"answer", context=ctx)
        # A similar, not equal, context: a semantic hit, but no alias.
        similar = "we were talking about the account settings page today"
        hit = await cache.lookup(PARAPHRASE, context=similar)
        assert hit is not None and hit.source == "semantic"
        await settle(cache)
        assert (await cache.lookup(PARAPHRASE, context=similar)).source == "semantic"
        # The same context: aliased, and the alias serves that context only.
        assert (await cache.lookup(PARAPHRASE, context=ctx)).source == "semantic"
        await settle(cache)
        calls = embedder.calls
        assert (await cache.lookup(PARAPHRASE, context=ctx)).source == "exact"
        assert embedder.calls == calls
        assert await cache.lookup(PARAPHRASE) is None  # a first question: never that answer
        assert (await cache.lookup(PARAPHRASE, context=similar)).source == "semantic"


async def test_exact_only_lookup_is_not_served_an_alias(cache):
    await cache.store(Q, b"answer")
    await cache.lookup(PARAPHRASE)
    await settle(cache)
    assert await cache.lookup(PARAPHRASE, exact=True) is None
    assert (await cache.lookup(Q, exact=True)).payload == b"answer"


async def test_alias_never_hides_the_text_s_own_answer(cache):
    await cache.store(Q, b"answer")
    await cache.lookup(PARAPHRASE)
    await settle(cache)
    await cache.store(PARAPHRASE, b"its own answer")
    assert (await cache.lookup(PARAPHRASE)).payload == b"its own answer"
    assert (await cache.lookup(Q)).payload == b"answer"


async def test_aliases_survive_a_restart_with_their_entry(tmp_path):
    embedder = HashingTestEmbedder()

    def open_cache() -> SemanticCache:
        return SemanticCache(
            embedder=embedder, data_path=str(tmp_path), threshold=0.8, verifier=None
        )

    other, other_paraphrase = "what is the capital city of france", "what is the capital of france"
    async with open_cache() as c1:
        await c1.store(Q, b"kept", partition="t", ttl=60)
        doomed = await c1.store(other, b"paris", partition="t", ttl=60)
        assert (await c1.lookup(PARAPHRASE, partition="t")).source == "semantic"
        assert (await c1.lookup(other_paraphrase, partition="t")).source == "semantic"
        await settle(c1)
        await c1.delete(doomed)
    async with open_cache() as c2:
        calls = embedder.calls
        hit = await c2.lookup(PARAPHRASE, partition="t")
        assert hit is not None and hit.source == "exact" and hit.payload == b"kept"
        assert embedder.calls == calls
        assert await c2.lookup(other_paraphrase, partition="t") is None
        assert embedder.calls == calls + 1  # the deleted entry's alias is gone


async def test_store_without_alias_methods_still_works(embedder):
    class Plain:
        """A third-party store with the protocol's methods only."""

        def __init__(self):
            self.inner = MemoryResponseStore()

        def __getattr__(self, name):
            if name in ("add_alias", "get_exact_entry"):
                raise AttributeError(name)
            return getattr(self.inner, name)

    async with SemanticCache(
        embedder=embedder,
        response_store=Plain(),
        vector_store=MemoryVectorStore(dimension=embedder.dimension),
        threshold=0.8,
        verifier=None,
    ) as cache:
        await cache.store(Q, b"answer")
        assert (await cache.lookup(Q)).source == "exact"
        assert (await cache.lookup(PARAPHRASE)).source == "semantic"
        await settle(cache)
        assert (await cache.lookup(PARAPHRASE)).source == "semantic"


async def test_aliases_count_against_the_byte_budget():
    from semcache.stores.memory_responses import ALIAS_OVERHEAD
    from semcache.types import Entry

    store = MemoryResponseStore(max_bytes=1_000_000)
    e = Entry("id", "p", "question", b"answer", {}, time.time(), None)
    await store.set(e, None)
    base = store.bytes_used()
    assert await store.add_alias("p", "a paraphrase", e) is True
    assert store.bytes_used() == base + len("a paraphrase") + ALIAS_OVERHEAD
    await store.delete("id")
    assert store.bytes_used() == 0


async def test_a_peak_of_one_paraphrase_writes_its_alias_once(embedder):
    class Counting(MemoryResponseStore):
        aliases = 0

        async def add_alias(self, partition, query, entry):
            Counting.aliases += 1
            await asyncio.sleep(0.05)
            return await super().add_alias(partition, query, entry)

    async with SemanticCache(
        embedder=embedder,
        response_store=Counting(),
        vector_store=MemoryVectorStore(dimension=embedder.dimension),
        threshold=0.8,
        verifier=None,
    ) as cache:
        await cache.store(Q, b"answer")
        hits = await asyncio.gather(*(cache.lookup(PARAPHRASE) for _ in range(20)))
        assert all(h is not None and h.source == "semantic" for h in hits)
        await settle(cache)
        assert Counting.aliases == 1 and not cache._aliasing
        assert (await cache.lookup(PARAPHRASE)).source == "exact"
