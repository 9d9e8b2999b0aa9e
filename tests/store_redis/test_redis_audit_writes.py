"""Audit outcomes in Redis: the conditional metadata write (``replace_metadata``) holds
against writes from other clients (other processes) landing between its read and its
write, on a single server and on Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from semcache import SemanticCache
from semcache.protocols import VectorStore
from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.caches import cache_over
from tests.support.entries import an_entry
from tests.support.interleaved import Interleaved
from tests.support.pausing import PausingVectorStore

pytestmark = pytest.mark.redis

Q = "how do I reset my password on the website"


@pytest.fixture
def stores(
    two_clients: tuple[Interleaved, RedisResponseStore],
) -> tuple[Interleaved, RedisResponseStore]:
    """Two clients of one store, as two processes have: the first can be interleaved."""
    return two_clients


@pytest.fixture
async def stored(
    stores: tuple[Interleaved, RedisResponseStore],
) -> tuple[Interleaved, RedisResponseStore, Entry]:
    """The two clients, and an entry set through the first."""
    mine, theirs = stores
    e = an_entry()
    await mine.set(e, 600)
    return mine, theirs, e


@asynccontextmanager
async def replicas(
    stores: tuple[Interleaved, RedisResponseStore],
    vector_store: VectorStore | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[SemanticCache, SemanticCache]]:
    """Two started caches, one over each client, as two replicas of an application
    are: ``vector_store`` where they share their index, else an index each."""
    a, b = (
        cache_over(
            store,
            vector_store=vector_store,
            threshold=0.3,
            store_timeout_ms=10_000,
            lookup_timeout_ms=10_000,
            **settings,
        )
        for store in stores
    )
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_write_landing_in_between_wins(
    stored: tuple[Interleaved, RedisResponseStore, Entry],
) -> None:
    mine, theirs, e = stored

    async def their_outcome() -> None:
        assert await theirs.replace_metadata(e, {"status": 200, "theirs": 1})

    mine.between = their_outcome
    assert await mine.replace_metadata(e, {"status": 200, "mine": 1}) is False
    got = await mine.get(e.entry_id)
    assert got is not None and got.metadata == {"status": 200, "theirs": 1}
    assert await mine.replace_metadata(got, {"status": 200, "theirs": 1, "mine": 1})


async def test_an_entry_deleted_in_between_is_not_recreated(
    stored: tuple[Interleaved, RedisResponseStore, Entry],
) -> None:
    mine, theirs, e = stored

    async def their_delete() -> None:
        assert await theirs.delete(e.entry_id)

    mine.between = their_delete
    assert await mine.replace_metadata(e, {"mine": 1}) is False
    assert await theirs.get(e.entry_id) is None
    assert await theirs.get_exact("p", e.query) is None
    assert await theirs.count() == 0


async def test_an_answer_stored_in_between_is_kept(
    stored: tuple[Interleaved, RedisResponseStore, Entry],
) -> None:
    mine, theirs, e = stored
    newer = an_entry(entry_id=e.entry_id, payload=b"newer")

    async def their_refresh() -> None:
        await theirs.set(newer, 600)

    mine.between = their_refresh
    assert await mine.replace_metadata(e, {"mine": 1}) is False
    assert await theirs.get(e.entry_id) == newer


async def test_the_write_keeps_the_entry_s_expiry(
    stored: tuple[Interleaved, RedisResponseStore, Entry],
) -> None:
    mine, _, e = stored
    client = await mine._connect()
    key = mine._entry_key(e.entry_id)
    before = await client.pexpiretime(key)
    assert await mine.replace_metadata(e, {"n": 1})
    assert await client.pexpiretime(key) == before == int(e.expires_at * 1000)


async def test_outcomes_of_two_caches_sharing_redis_are_all_kept(
    stores: tuple[Interleaved, RedisResponseStore],
) -> None:
    mine, _ = stores
    async with replicas(stores, max_false_hit_rate=0.75) as (a, b):
        entry_id = await a.store(Q, b"answer", ttl=600)
        assert entry_id is not None

        async def their_outcome() -> None:
            assert await b.record_audit(entry_id, 0.8, True) is not None

        mine.between = their_outcome
        state = await a.record_audit(entry_id, 0.9, True)
        assert state is not None and len(state.samples) == 2
        assert await b.audit_state(entry_id) == state
        hit = await b.lookup(Q)
        assert hit is not None and hit.payload == b"answer"


async def test_an_answer_another_replica_stored_since_the_hit_keeps_its_vector_and_state(
    stores: tuple[Interleaved, RedisResponseStore],
) -> None:
    vectors = PausingVectorStore(256)
    async with replicas(stores, vectors) as (a, b):
        entry_id = await a.store(Q, b"old answer", ttl=600)
        served = await a.lookup("how do I reset my password")
        assert entry_id is not None and served is not None and served.source == "semantic"
        # The version read back from Redis by another replica is the one served.
        same = await b.lookup(Q)
        assert same is not None and same.version == served.version
        assert await b.store(Q, b"new answer", ttl=600) == entry_id
        # A failed audit of the old answer, recorded after the refresh: dropped.
        assert (
            await a.record_audit(entry_id, served.similarity, False, version=served.version) is None
        )
        assert not await a.report_wrong_hit(entry_id, version=served.version)
        assert await b.audit_state(entry_id) is None
        now = await b.lookup("how do I reset my password")
        assert now is not None and now.payload == b"new answer" and now.source == "semantic"
        # Its own failed audit quarantines it, while the other replica stores a third
        # answer between the quarantine and the vector delete: that one keeps its vector.

        async def their_refresh() -> None:
            assert await b.store(Q, b"third answer", ttl=600) == entry_id

        vectors.between = their_refresh
        state = await a.record_audit(entry_id, now.similarity, False, version=now.version)
        assert state is not None and state.quarantined
        assert await vectors.count() == 1
        third = await a.lookup("how do I reset my password")
        assert third is not None and third.payload == b"third answer"
        assert third.source == "semantic"
