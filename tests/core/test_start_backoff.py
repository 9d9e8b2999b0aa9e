"""A store that fails to build is retried with back-off, and the model is loaded once."""

from __future__ import annotations

import asyncio
from typing import Any

from semcache import SemanticCache, Settings, plugins
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder


class CountingEmbedderPlugin:
    def __init__(self) -> None:
        self.loads = 0

    @plugins.hookimpl
    def semcache_create_embedder(self, name: str, settings: Settings) -> Any:
        self.loads += 1
        return HashingTestEmbedder()


class FailingStorePlugin:
    def __init__(self) -> None:
        self.attempts = 0
        self.broken = True

    @plugins.hookimpl
    def semcache_create_vector_store(
        self, name: str, settings: Settings, model_id: str, dimension: int
    ) -> Any:
        self.attempts += 1
        if self.broken:
            raise ConnectionError("database unreachable")
        return MemoryVectorStore(dimension)


async def test_a_failing_store_is_retried_with_backoff_and_the_model_loads_once():
    embedders, stores = CountingEmbedderPlugin(), FailingStorePlugin()
    plugins.register("embedder", "counting-backoff", embedders)
    plugins.register("vector_store", "failing-backoff", stores)
    settings = Settings.from_env(
        {}, embedder_type="counting-backoff", vector_store="failing-backoff", batch_max_size=1
    )
    cache = SemanticCache(settings, verifier=None)
    try:
        for _ in range(20):  # a burst of requests while the database is down
            assert await cache.lookup("what is the refund policy") is None
        assert embedders.loads == 1
        assert stores.attempts == 1  # the others are misses during the back-off
        assert await cache.ping() == {"vector_store": False, "response_store": False}

        stores.broken = False
        for _ in range(400):  # the first back-off is one second
            await cache.lookup("what is the refund policy")
            if cache.started:
                break
            await asyncio.sleep(0.01)
        assert cache.started
        assert embedders.loads == 1 and stores.attempts == 2
        assert await cache.store("what is the refund policy", b"30 days")
        assert await cache.lookup("what is the refund policy") is not None
    finally:
        await cache.close()
