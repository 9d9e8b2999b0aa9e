"""Aliases on Redis: keys, expiry, clean-up, and one round trip per exact hit."""

from __future__ import annotations

import asyncio
import time

import pytest

from semcache import SemanticCache
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder
from semcache_store_redis import RedisResponseStore
from tests.store_redis.test_redis_store import entry, keys_of

pytestmark = pytest.mark.redis

Q = "how do I reset my password on the website"
PARAPHRASE = "how do I reset my password on the web site please"


def count_commands(store: RedisResponseStore, client) -> list[tuple]:
    sent: list[tuple] = []
    original = client.execute_command

    async def counting(*args, **kwargs):
        sent.append(args)
        return await original(*args, **kwargs)

    client.execute_command = counting
    return sent


async def settle(cache: SemanticCache) -> None:
    while cache._background:
        await asyncio.gather(*cache._background)


async def test_alias_keys_expire_at_the_entry_s_instant(redis_store):
    e = entry(expires_at=time.time() + 60)
    await redis_store.set(e, 60)
    assert await redis_store.add_alias("p", "a paraphrase", e) is True
    client = await redis_store._connect()
    keys = await keys_of(redis_store)
    assert len(keys) == 5  # payload, exact key, members, alias key, alias set
    deadlines = {await client.pexpiretime(k) for k in keys}
    assert deadlines == {int(e.expires_at * 1000)}


async def test_alias_of_an_entry_without_ttl_never_expires(redis_store):
    e = entry()
    await redis_store.set(e, None)
    assert await redis_store.add_alias("p", "a paraphrase", e) is True
    client = await redis_store._connect()
    assert {await client.pttl(k) for k in await keys_of(redis_store)} == {-1}


async def test_delete_and_flush_leave_no_alias_key_behind(redis_store):
    e = entry("gone")
    await redis_store.set(e, 60)
    await redis_store.add_alias("gone", "paraphrase one", e)
    await redis_store.add_alias("gone", "paraphrase two", e)
    assert await redis_store.delete(e.entry_id) is True
    assert await keys_of(redis_store) == []
    for i in range(3):
        e = entry("gone", f"question {i}")
        await redis_store.set(e, 60)
        await redis_store.add_alias("gone", f"paraphrase {i}", e)
    keep = entry("kept")
    await redis_store.set(keep, 60)
    await redis_store.add_alias("kept", "kept paraphrase", keep)
    assert await redis_store.flush("gone") == 3
    assert all("gone" not in k for k in await keys_of(redis_store))
    assert await redis_store.get_exact_entry("kept", "kept paraphrase") == keep
    assert await redis_store.flush() == 1
    assert await keys_of(redis_store) == []


async def test_refresh_drops_aliases_and_their_keys(redis_store):
    e = entry()
    await redis_store.set(e, 60)
    await redis_store.add_alias("p", "a paraphrase", e)
    await redis_store.set(entry(entry_id=e.entry_id, payload=b"newer"), 60)
    assert await redis_store.get_exact("p", "a paraphrase") is None
    assert len(await keys_of(redis_store)) == 3  # payload, exact key, members


async def test_exact_hit_is_one_round_trip(redis_store):
    e = entry()
    await redis_store.set(e, 60)
    await redis_store.add_alias("p", "a paraphrase", e)
    await redis_store.get_exact_entry("p", e.query)  # loads the script once
    client = await redis_store._connect()
    sent = count_commands(redis_store, client)
    assert await redis_store.get_exact_entry("p", e.query) == e
    assert await redis_store.get_exact_entry("p", "a paraphrase") == e
    assert await redis_store.get_exact_entry("p", "never stored") is None
    assert [c[0] for c in sent] == ["EVALSHA"] * 3


async def test_cache_exact_hit_and_repeated_paraphrase_are_one_round_trip(redis_store):
    embedder = HashingTestEmbedder(8)
    cache = SemanticCache(
        embedder=embedder,
        response_store=redis_store,
        vector_store=MemoryVectorStore(8),
        threshold=0.8,
        verifier=None,
    )
    async with cache:
        await cache.store(Q, b"answer")
        assert (await cache.lookup(Q)).source == "exact"
        assert (await cache.lookup(PARAPHRASE)).source == "semantic"
        await settle(cache)
        client = await redis_store._connect()
        sent = count_commands(redis_store, client)
        calls = embedder.calls
        assert (await cache.lookup(Q)).source == "exact"
        assert len(sent) == 1
        hit = await cache.lookup(PARAPHRASE)
        assert hit is not None and hit.source == "exact" and hit.payload == b"answer"
        assert len(sent) == 2 and embedder.calls == calls
        assert await cache.lookup(PARAPHRASE, partition="other") is None


async def test_repeated_paraphrase_on_cluster(cluster_store):
    embedder = HashingTestEmbedder(8)
    cache = SemanticCache(
        embedder=embedder,
        response_store=cluster_store,
        vector_store=MemoryVectorStore(8),
        threshold=0.8,
        verifier=None,
    )
    async with cache:
        for t in range(3):
            await cache.store(Q, f"a{t}".encode(), partition=f"tenant-{t}")
        for t in range(3):
            assert (await cache.lookup(PARAPHRASE, partition=f"tenant-{t}")).source == "semantic"
        await settle(cache)
        calls = embedder.calls
        for t in range(3):
            hit = await cache.lookup(PARAPHRASE, partition=f"tenant-{t}")
            assert hit.source == "exact" and hit.payload == f"a{t}".encode()
        assert embedder.calls == calls
        assert await cache.flush("tenant-0") == 1
        assert await cache.lookup(PARAPHRASE, partition="tenant-0") is None
