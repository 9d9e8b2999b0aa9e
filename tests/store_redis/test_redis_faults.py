"""Redis going away or stalling mid-test: misses within budget, breaker, recovery.

Each test runs its own redis-server (never the shared one), stops it with
`SHUTDOWN NOSAVE` or pauses it with SIGSTOP, and brings it back.
"""

from __future__ import annotations

import time

import pytest

from semcache import SemanticCache, Settings
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder
from semcache_store_redis import RedisResponseStore
from tests.support.polling import until
from tests.support.redis_servers import RedisServer, random_prefix

pytestmark = pytest.mark.redis

QUESTION = "what is the capital of france"
BUDGET_S = 0.25  # store_timeout_ms below
SLOWEST_OK_S = 1.0  # no lookup may wait on a dead server anywhere near seconds


def make_cache(uri: str) -> SemanticCache:
    settings = Settings.from_env(
        {},
        store_timeout_ms=int(BUDGET_S * 1000),
        breaker_failures=3,
        breaker_cooldown_ms=500,
        threshold=0.8,
        batch_max_size=1,
    )
    store = RedisResponseStore(uri, prefix=random_prefix(), socket_timeout=1.0, connect_timeout=0.5)
    return SemanticCache(
        settings,
        embedder=HashingTestEmbedder(64),
        vector_store=MemoryVectorStore(64),
        response_store=store,
        verifier=None,
    )


async def timed_lookups(cache: SemanticCache, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        hit = await cache.lookup(QUESTION, partition="t")
        times.append(time.perf_counter() - start)
        assert hit is None
    return times


async def test_redis_stopped_then_restarted(private_redis: RedisServer) -> None:
    cache = make_cache(private_redis.uri)
    async with cache:
        assert await cache.store(QUESTION, b"paris", partition="t")
        hit = await cache.lookup(QUESTION, partition="t")
        assert hit is not None and hit.payload == b"paris"

        private_redis.stop()
        times = await timed_lookups(cache, 6)
        assert max(times) < SLOWEST_OK_S, times
        assert cache.breakers["response store"].state == "open"
        assert times[-1] < 0.1, "an open breaker skips Redis"
        start = time.perf_counter()
        assert await cache.store("another question", b"x", partition="t") is None
        assert time.perf_counter() - start < SLOWEST_OK_S

        private_redis.start()  # empty: SHUTDOWN NOSAVE took the data with it
        await until(lambda: cache.store(QUESTION, b"paris again", partition="t"), within=10)
        hit = await cache.lookup(QUESTION, partition="t")
        assert hit is not None and hit.payload == b"paris again"
        assert cache.breakers["response store"].state == "closed"
        print(f"redis stopped: lookups took {[round(t * 1000) for t in times]} ms")


async def test_redis_paused_then_resumed(private_redis: RedisServer) -> None:
    cache = make_cache(private_redis.uri)
    async with cache:
        assert await cache.store(QUESTION, b"paris", partition="t")
        private_redis.pause()
        try:
            times = await timed_lookups(cache, 6)
        finally:
            private_redis.resume()
        assert max(times) < SLOWEST_OK_S, times
        assert all(t < BUDGET_S * 3 for t in times)
        assert times[-1] < 0.1, "an open breaker skips Redis"
        assert cache.breakers["response store"].state == "open"

        async def served() -> bool:
            hit = await cache.lookup(QUESTION, partition="t")
            assert hit is None or hit.payload == b"paris"  # never anything else
            return hit is not None

        await until(served, within=10)
        assert cache.breakers["response store"].state == "closed"
        print(f"redis paused: lookups took {[round(t * 1000) for t in times]} ms")
