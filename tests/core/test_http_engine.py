import asyncio

from semcache import SemanticCache, Settings
from semcache.http import CachePlan, HttpCacheEngine, HttpCachePolicy, StoredResponse
from semcache.testing import HashingTestEmbedder


def make_cache(**overrides):
    settings = Settings.from_env(
        {}, threshold=0.8, vector_store="memory", response_store="memory", **overrides
    )
    return SemanticCache(settings, embedder=HashingTestEmbedder())


PLAN = CachePlan("What is the capital of France?", "partition-1", ttl=60, metadata={"path": "/x"})
STORED = StoredResponse(200, (("content-type", "application/json"),), b'{"a": 1}')


async def test_store_then_lookup_round_trip():
    async with make_cache() as cache:
        engine = HttpCacheEngine(cache)
        assert await engine.lookup(PLAN) is None
        assert await engine.store(PLAN, STORED)
        found = await engine.lookup(
            CachePlan("tell me what is the capital of France", "partition-1")
        )
        assert found is not None
        assert found.response.body == STORED.body and 0.8 <= found.similarity < 1
        assert await engine.lookup(CachePlan(PLAN.query, "partition-2")) is None
        assert await engine.store(CachePlan("q", "p", store=False), STORED) is None


async def test_unusable_entries_are_misses():
    async with make_cache() as cache:
        engine = HttpCacheEngine(cache)
        await cache.store(PLAN.query, b"not a stored response", partition=PLAN.partition)
        assert await engine.lookup(PLAN) is None


async def test_entries_the_client_cannot_decode_are_misses():
    async with make_cache() as cache:
        engine = HttpCacheEngine(cache)
        gz = StoredResponse(200, (("content-encoding", "gzip"),), b"\x1f\x8b...")
        await engine.store(PLAN, gz)
        assert await engine.lookup(PLAN) is None
        assert (
            await engine.lookup(CachePlan(PLAN.query, PLAN.partition, accept_encoding="gzip"))
            is not None
        )


class Broken:
    settings = Settings.from_env({})

    async def lookup(self, *a, **k):
        raise RuntimeError("boom")

    async def store(self, *a, **k):
        raise RuntimeError("boom")

    def single_flight(self, key):
        raise RuntimeError("boom")


async def test_a_broken_cache_never_raises():
    engine = HttpCacheEngine(Broken())  # type: ignore[arg-type]
    assert await engine.lookup(PLAN) is None
    assert await engine.store(PLAN, STORED) is None
    ticket = await engine.join_flight(PLAN)
    assert ticket.leader
    await ticket.release()


async def test_single_flight_leader_and_followers():
    async with make_cache() as cache:
        engine = HttpCacheEngine(cache, HttpCachePolicy(cache.settings))
        leader = await engine.join_flight(PLAN)
        assert leader.leader
        follower = asyncio.create_task(engine.join_flight(PLAN))
        await asyncio.sleep(0.01)
        assert not follower.done()  # waits for the leader
        await leader.release()
        await leader.release()  # idempotent
        ticket = await asyncio.wait_for(follower, 5)
        assert not ticket.leader
        async with engine.flight(PLAN) as again:
            assert again.leader  # the flight was released


async def test_breaker_comes_from_settings():
    async with make_cache(upstream_429_threshold=7, upstream_429_cooldown=3.0) as cache:
        engine = HttpCacheEngine(cache)
        assert (engine.breakers.threshold, engine.breakers.cooldown) == (7, 3.0)
        other = Settings.from_env({}, upstream_429_threshold=2)
        assert HttpCacheEngine(cache, settings=other).breakers.threshold == 2


async def test_semantic_context_reaches_the_cache():
    async with make_cache(context_mode="semantic", context_threshold=0.8) as cache:
        engine = HttpCacheEngine(cache)
        skiing = CachePlan(
            PLAN.query, "p", context="user: I am going skiing in the Alps\nassistant: Fun!"
        )
        await engine.store(skiing, STORED)
        similar = CachePlan(
            PLAN.query, "p", context="user: I am going skiing in the alps\nassistant: fun"
        )
        assert await engine.lookup(similar) is not None
        other = CachePlan(
            PLAN.query, "p", context="user: Tell me about databases\nassistant: Sure."
        )
        assert await engine.lookup(other) is None
        assert await engine.lookup(CachePlan(PLAN.query, "p")) is None
