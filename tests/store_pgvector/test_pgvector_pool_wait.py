"""A peak that exhausts the connection pool is not a PostgreSQL failure: the wait for a
pooled connection is the process's own backlog, and the breaker stays closed."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from semcache import SemanticCache, Settings
from semcache.stores import MemoryResponseStore
from semcache.testing import HashingTestEmbedder
from semcache_store_pgvector import PgVectorStore
from semcache_store_pgvector._engines import pool_exhausted

STORE_BUDGET_MS = 300  # room for a query on a busy machine; the hold is a multiple of it


async def test_waiting_for_a_pooled_connection_is_not_postgres_failing(pg_uri, pg_prefix):
    store = PgVectorStore(
        pg_uri, 256, prefix=pg_prefix, model_id="pool", pool_size=1, max_overflow=0
    )
    settings = Settings.from_env(
        {}, store_timeout_ms=STORE_BUDGET_MS, breaker_failures=1, lookup_timeout_ms=5000
    )
    cache = SemanticCache(
        settings,
        embedder=HashingTestEmbedder(),
        vector_store=store,
        response_store=MemoryResponseStore(),
        verifier=None,
        threshold=0.6,
    )
    async with cache:
        await cache.store("how long does shipping to canada take", b"a week")
        engine = store._pool()

        holding = asyncio.Event()

        async def hold_the_only_connection() -> None:
            async with engine.connect() as busy:
                holding.set()
                # Held four times the store's budget: counted, the wait would open it.
                await busy.execute(text(f"SELECT pg_sleep({4 * STORE_BUDGET_MS / 1000})"))

        holder = asyncio.get_running_loop().create_task(hold_the_only_connection())
        await holding.wait()
        assert pool_exhausted(engine, store._config_for(read=False))
        hits = await asyncio.gather(
            *(cache.lookup("how long does shipping to canada take please") for _ in range(3))
        )
        await holder
        assert cache.breakers["vector store"].state == "closed"
        assert [h.payload if h else None for h in hits] == [b"a week"] * 3


async def test_a_new_connection_that_hangs_is_still_postgres_failing(pg_uri, pg_prefix):
    # Room left in the pool: the connect is PostgreSQL's own time, counted as before.
    store = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="room", pool_size=2, max_overflow=0)
    try:
        await store.ping()
        assert not pool_exhausted(store._pool(), store._config_for(read=False))
    finally:
        await store.aclose()
