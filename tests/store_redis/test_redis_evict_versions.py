"""Evicting an answer in Redis: the conditional delete (``delete_if_current``) holds
against a new answer stored by another client (another process) between its read and
its delete, and the cache's eviction of a reported answer keeps a refresh that lands
after its version check, on a single server and on Redis Cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from semcache import SemanticCache
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.interleaved import RedisReadThenInterleaved
from tests.support.redis_servers import delete_prefix, random_prefix

pytestmark = pytest.mark.redis

Q = "how do I reset my password on the website"
NEAR = "how do I reset my password on the web site please"
FAR = "how do I reset my password"


def entry(**kw: Any) -> Entry:
    values: dict[str, Any] = {
        "entry_id": uuid.uuid4().hex,
        "partition": "p",
        "query": "what is the refund policy",
        "payload": b"answer",
        "metadata": {"status": 200},
        "created_at": time.time(),
        "expires_at": time.time() + 600,
    }
    values.update(kw)
    return Entry(**values)


@pytest.fixture(params=["single", "cluster"])
def uri(request: pytest.FixtureRequest) -> str:
    name = "shared_redis" if request.param == "single" else "cluster_uri"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def stores(
    uri: str,
) -> AsyncIterator[tuple[RedisReadThenInterleaved, RedisResponseStore]]:
    """Two clients of one store, as two processes have: the first can be interleaved."""
    prefix = random_prefix()
    mine = RedisReadThenInterleaved(uri, prefix=prefix, model_id="test", dimension=8)
    theirs = RedisResponseStore(uri, prefix=prefix, model_id="test", dimension=8)
    yield mine, theirs
    await mine.aclose()
    await theirs.aclose()
    delete_prefix(uri, prefix)


async def keys_of(store: RedisResponseStore) -> list[str]:
    client = await store._connect()
    return sorted([k.decode() async for k in client.scan_iter(match=store.prefix + "*")])


async def test_a_new_answer_stored_between_the_read_and_the_delete_is_kept(
    stores: tuple[RedisReadThenInterleaved, RedisResponseStore],
) -> None:
    mine, theirs = stores
    e = entry()
    await theirs.set(e, 600)
    newer = entry(entry_id=e.entry_id, payload=b"newer")

    async def refreshed() -> None:
        await theirs.set(newer, 600)
        assert await theirs.add_alias("p", "a paraphrase", newer)

    mine.between = refreshed
    assert await mine.delete_if_current(e) is False
    assert mine.between is None  # it ran, between the read and the script
    assert await theirs.get(e.entry_id) == newer
    assert await theirs.get_exact_entry("p", e.query) == newer
    assert await theirs.get_exact_entry("p", "a paraphrase") == newer
    assert await mine.delete_if_current(newer) is True
    assert await keys_of(mine) == []  # payload, exact key, members and aliases


async def test_a_refused_delete_keeps_the_exact_key_and_aliases(
    stores: tuple[RedisReadThenInterleaved, RedisResponseStore],
) -> None:
    mine, theirs = stores
    e = entry()
    await theirs.set(e, 600)
    assert await theirs.add_alias("p", "a paraphrase", e)

    async def audited() -> None:  # the same answer, with what an audit learned
        assert await theirs.replace_metadata(e, {"status": 200, "n": 1})

    mine.between = audited
    assert await mine.delete_if_current(e) is False
    now = await theirs.get(e.entry_id)
    assert now is not None and now.metadata == {"status": 200, "n": 1}
    assert await theirs.get_exact_entry("p", e.query) == now
    assert await theirs.get_exact_entry("p", "a paraphrase") == now


async def test_a_delete_landing_in_between_is_not_undone(
    stores: tuple[RedisReadThenInterleaved, RedisResponseStore],
) -> None:
    mine, theirs = stores
    e = entry()
    await theirs.set(e, 600)

    async def deleted() -> None:
        assert await theirs.delete(e.entry_id)

    mine.between = deleted
    assert await mine.delete_if_current(e) is False
    assert await theirs.get(e.entry_id) is None
    assert await keys_of(mine) == []


@pytest.fixture
async def replica(uri: str) -> AsyncIterator[tuple[SemanticCache, RedisReadThenInterleaved]]:
    prefix = random_prefix()
    store = RedisReadThenInterleaved(uri, prefix=prefix, model_id="test", dimension=256)
    cache = SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=MemoryVectorStore(256),
        response_store=store,
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        store_timeout_ms=5000,
        lookup_timeout_ms=10_000,
    )
    await cache.start()
    yield cache, store
    await cache.close()
    delete_prefix(uri, prefix)


async def settle(cache: SemanticCache) -> None:
    """Let the background alias writes finish."""
    while cache._background:
        await asyncio.gather(*cache._background)


async def served(cache: SemanticCache) -> tuple[str, str]:
    entry_id = await cache.store(Q, b"old answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry_id is not None and hit is not None and hit.source == "semantic"
    assert hit.version is not None
    await settle(cache)
    return entry_id, hit.version


async def assert_new_answer_kept(cache: SemanticCache, entry_id: str) -> None:
    stored = await cache.response_store.get(entry_id)  # type: ignore[union-attr]
    assert stored is not None and stored.payload == b"new answer"
    exact = await cache.lookup(Q)
    assert exact is not None and exact.source == "exact" and exact.payload == b"new answer"
    semantic = await cache.lookup(FAR)
    assert semantic is not None and semantic.source == "semantic"
    assert semantic.payload == b"new answer"


@pytest.mark.parametrize("window", ["after the version check", "inside the store"])
async def test_a_refresh_during_the_eviction_of_a_reported_answer_keeps_the_new_one(
    replica: tuple[SemanticCache, RedisReadThenInterleaved], window: str
) -> None:
    cache, store = replica
    entry_id, old = await served(cache)

    async def refreshed() -> None:
        assert await cache.store(Q, b"new answer", ttl=600) == entry_id

    if window == "after the version check":
        store.after_read = refreshed  # the cache has read the version it compares
    else:
        store.between = refreshed  # the store has read the bytes its script compares
    assert await cache.report_wrong_hit(entry_id, version=old) is False
    assert store.after_read is None and store.between is None
    await assert_new_answer_kept(cache, entry_id)
    now = await cache.response_store.get(entry_id)  # type: ignore[union-attr]
    assert now is not None
    assert await cache.report_wrong_hit(entry_id, version=now.version) is True
    assert await cache.lookup(Q) is None and await cache.lookup(FAR) is None
    assert await cache.vector_store.count() == 0  # type: ignore[union-attr]
