"""Evicting an answer in Redis: the conditional delete (``delete_if_current``) holds
against writes from another client (another process) between its read and its delete,
and the cache's eviction of a reported answer keeps a refresh that lands after its
version check, on a single server and on Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from semcache import SemanticCache
from semcache.stores import MemoryVectorStore
from semcache_store_redis import RedisResponseStore
from tests.support.entries import an_entry
from tests.support.interleaved import RedisReadThenInterleaved
from tests.support.redis_clients import keys_of
from tests.support.redis_servers import delete_prefix, random_prefix
from tests.support.refreshed import (
    FAR,
    Q,
    assert_new_answer_kept,
    make_cache,
    refresh,
    served,
)

pytestmark = pytest.mark.redis

Clients = tuple[RedisReadThenInterleaved, RedisResponseStore]


async def test_a_new_answer_stored_between_the_read_and_the_delete_is_kept(
    two_clients: Clients,
) -> None:
    mine, theirs = two_clients
    e = an_entry()
    await theirs.set(e, 600)
    newer = an_entry(entry_id=e.entry_id, payload=b"newer")

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


async def test_a_refused_delete_keeps_the_exact_key_and_aliases(two_clients: Clients) -> None:
    mine, theirs = two_clients
    e = an_entry()
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


async def test_a_delete_landing_in_between_is_not_undone(two_clients: Clients) -> None:
    mine, theirs = two_clients
    e = an_entry()
    await theirs.set(e, 600)

    async def deleted() -> None:
        assert await theirs.delete(e.entry_id)

    mine.between = deleted
    assert await mine.delete_if_current(e) is False
    assert await theirs.get(e.entry_id) is None
    assert await keys_of(mine) == []


@pytest.fixture
async def replica(
    redis_uri: str,
) -> AsyncIterator[tuple[SemanticCache, RedisReadThenInterleaved]]:
    prefix = random_prefix()
    store = RedisReadThenInterleaved(redis_uri, prefix=prefix, model_id="test", dimension=256)
    cache = make_cache(store, MemoryVectorStore(256))
    await cache.start()
    yield cache, store
    await cache.close()
    delete_prefix(redis_uri, prefix)


@pytest.mark.parametrize("window", ["after the version check", "inside the store"])
async def test_a_refresh_during_the_eviction_of_a_reported_answer_keeps_the_new_one(
    replica: tuple[SemanticCache, RedisReadThenInterleaved], window: str
) -> None:
    cache, store = replica
    entry, old = await served(cache)

    async def refreshed() -> None:
        await refresh(cache, entry)

    if window == "after the version check":
        store.after_read = refreshed  # the cache has read the version it compares
    else:
        store.between = refreshed  # the store has read the bytes its script compares
    assert await cache.report_wrong_hit(entry, version=old) is False
    assert store.after_read is None and store.between is None
    await assert_new_answer_kept(cache, entry, old)
    now = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert now is not None
    assert await cache.report_wrong_hit(entry, version=now.version) is True
    assert await cache.lookup(Q) is None and await cache.lookup(FAR) is None
    assert await cache.vector_store.count() == 0  # type: ignore[union-attr]
