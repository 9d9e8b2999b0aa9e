"""PostgreSQL going away or stalling mid-test: misses within budget, breaker, recovery.

The tests run a throwaway PostgreSQL cluster of their own (never the shared server),
stop it like a crash (`pg_ctl stop -m immediate`) or pause every process of it with
SIGSTOP, and bring it back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from semcache import SemanticCache, Settings
from semcache.stores import MemoryResponseStore
from semcache.testing import HashingTestEmbedder
from semcache_store_pgvector import PgVectorStore
from tests.support.pg_servers import PgCluster
from tests.support.polling import until

pytestmark = pytest.mark.postgres

STORED = "what is the capital of france"
ASKED = "what is the capital city of france"  # a semantic match: needs the vector search
# Checks the match once at start-up. Not ASKED: a paraphrase that hit becomes an exact
# alias, which would then be answered without PostgreSQL.
CHECKED = "what is the capital of france please"
BUDGET_S = 0.25
SLOWEST_OK_S = 1.0


def make_cache(cluster: PgCluster, prefix: str) -> SemanticCache:
    settings = Settings.from_env(
        {},
        store_timeout_ms=int(BUDGET_S * 1000),
        breaker_failures=3,
        breaker_cooldown_ms=500,
        threshold=0.8,
        batch_max_size=1,
    )
    store = PgVectorStore(cluster.uri, 64, prefix=prefix, connect_timeout=1.0, command_timeout=2.0)
    return SemanticCache(
        settings,
        embedder=HashingTestEmbedder(64),
        vector_store=store,
        response_store=MemoryResponseStore(),
        verifier=None,
    )


async def timed_misses(cache: SemanticCache, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        assert await cache.lookup(ASKED, partition="t") is None
        times.append(time.perf_counter() - start)
    return times


async def ready_cache(cluster: PgCluster, prefix: str) -> SemanticCache:
    cache = make_cache(cluster, prefix)
    await cache.start()
    await until(lambda: cache.store(STORED, b"Paris", partition="t"), within=10)  # cold start
    hit = await cache.lookup(CHECKED, partition="t")
    assert hit is not None and hit.source == "semantic" and hit.payload == b"Paris"
    return cache


def served_correctly(cache: SemanticCache) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        hit = await cache.lookup(ASKED, partition="t")
        assert hit is None or hit.payload == b"Paris"  # never anything else
        return hit is not None

    return check


async def test_postgres_stopped_then_restarted(pg_cluster: PgCluster) -> None:
    cache = await ready_cache(pg_cluster, "stopped")
    try:
        pg_cluster.stop("immediate")
        times = await timed_misses(cache, 6)
        assert max(times) < SLOWEST_OK_S, times
        assert cache.breakers["vector store"].state == "open"
        assert times[-1] < 0.1, "an open breaker skips PostgreSQL"
        start = time.perf_counter()
        assert await cache.store("a question while it is down", b"x", partition="t") is None
        assert time.perf_counter() - start < SLOWEST_OK_S

        pg_cluster.start()
        await until(served_correctly(cache), within=15)
        assert cache.breakers["vector store"].state == "closed"
        assert await cache.store("a question after it came back", b"y", partition="t")
        print(f"postgres stopped: lookups took {[round(t * 1000) for t in times]} ms")
    finally:
        if not _up(pg_cluster):
            pg_cluster.start()
        await cache.close()


async def test_postgres_paused_then_resumed(pg_cluster: PgCluster) -> None:
    cache = await ready_cache(pg_cluster, "paused")
    try:
        pg_cluster.pause()
        try:
            times = await timed_misses(cache, 6)
        finally:
            pg_cluster.resume()
        assert max(times) < SLOWEST_OK_S, times
        assert all(t < BUDGET_S * 3 for t in times)
        assert times[-1] < 0.1, "an open breaker skips PostgreSQL"
        assert cache.breakers["vector store"].state == "open"

        await until(served_correctly(cache), within=15)
        assert cache.breakers["vector store"].state == "closed"
        print(f"postgres paused: lookups took {[round(t * 1000) for t in times]} ms")

        # Closing while the server hangs does not hang the application.
        pg_cluster.pause()
        start = time.perf_counter()
        await cache.close()
        assert time.perf_counter() - start < 3
    finally:
        pg_cluster.resume()
        await cache.close()


def _up(cluster: PgCluster) -> bool:
    return (cluster.datadir / "postmaster.pid").exists()
