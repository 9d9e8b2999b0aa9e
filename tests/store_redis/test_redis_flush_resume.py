"""A Redis partition flush works through the partition's members a batch at a time, and
removes a member only once its entry is deleted: cut off anywhere (the cache's time
budget, a dropped connection), every entry it has not deleted is still a member, and a
flush sent again removes them all. An answer stored again while a flush runs is either
flushed or kept whole. On a single server and on Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from semcache.types import Entry
from semcache_store_redis import RedisResponseStore, _store
from tests.support.entries import an_entry
from tests.support.interleaved import RedisFlushInterleaved
from tests.support.redis_clients import keys_of, two_clients_of

pytestmark = pytest.mark.redis

Clients = tuple[RedisFlushInterleaved, RedisResponseStore]


@pytest.fixture
async def clients(redis_uri: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Clients]:
    """Two clients of one store, as two processes have: the first can be interleaved.
    Batches of 4 members, so that a few entries take several."""
    monkeypatch.setattr(_store, "_BATCH", 4)
    async with two_clients_of(RedisFlushInterleaved, redis_uri) as two:
        yield two


async def fill(store: RedisResponseStore, n: int = 10, *, aliases: int = 0) -> list[Entry]:
    """``n`` entries in partition ``gone`` (the first ``aliases`` with an alias each), and
    one in ``kept``."""
    entries = [an_entry(partition="gone", query=f"question {i}") for i in range(n)]
    for e in entries:
        await store.set(e, 600)
    for e in entries[:aliases]:
        assert await store.add_alias("gone", f"{e.query}, in other words", e)
    await store.set(an_entry(partition="kept", entry_id="kept"), 600)
    return entries


async def stored(store: RedisResponseStore, entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if await store.get(e.entry_id) is not None]


async def member_ids(store: RedisResponseStore, partition: str) -> set[str]:
    client = await store._connect()
    members = await client.zrange(store._members_key(partition), 0, -1)
    return {m.decode()[32:] for m in members if isinstance(m, bytes)}


async def keys_left(store: RedisResponseStore, entries: list[Entry]) -> list[str]:
    """Keys of partition ``gone``: its members, exact keys and alias sets, and payloads."""
    payloads = {store._entry_key(e.entry_id) for e in entries}
    return [k for k in await keys_of(store) if "{gone}" in k or k in payloads]


async def assert_kept_untouched(store: RedisResponseStore) -> None:
    assert await store.get_exact("kept", "what is the refund policy") == "kept"
    assert await member_ids(store, "kept") == {"kept"}


async def cut_off(store: RedisFlushInterleaved, point: str, how: str) -> None:
    """Flush partition ``gone``, cut off at ``point``: an error, or a cancel (the budget)."""
    if how == "error":

        async def drop() -> None:
            raise redis.exceptions.ConnectionError("connection lost")

        setattr(store, point, drop)
        with pytest.raises(redis.exceptions.ConnectionError):
            await store.flush("gone")
        return
    entered, _ = store.pause_next(point)
    flushing = asyncio.create_task(store.flush("gone"))
    await entered.wait()
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing


@pytest.mark.parametrize("how", ["error", "cancel"])
@pytest.mark.parametrize("point", ["before_batch", "after_forget", "after_unlink"])
async def test_a_flush_cut_off_leaves_what_it_did_not_delete_to_the_next(
    clients: Clients, point: str, how: str
) -> None:
    mine, theirs = clients
    entries = await fill(theirs, aliases=3)  # 13 members: 4 batches

    await cut_off(mine, point, how)

    left = await stored(theirs, entries)
    if point == "after_forget":
        assert len(left) == len(entries)  # the first batch's payloads are not deleted yet
    else:
        assert 0 < len(left) < len(entries)  # the first batch's are, the others not
    assert {e.entry_id for e in left} <= await member_ids(theirs, "gone")
    assert await mine.flush("gone") == len(left)  # sent again, it finishes the job
    assert await keys_left(theirs, entries) == []
    for e in entries:
        assert await theirs.get_exact("gone", e.query) is None
    await assert_kept_untouched(theirs)


async def test_a_partition_larger_than_a_scan_page_is_flushed_whole(clients: Clients) -> None:
    mine, theirs = clients
    entries = await fill(theirs, 200, aliases=20)  # a hash table: ZSCAN pages through it
    assert await mine.flush("gone") == 200
    assert await keys_left(theirs, entries) == []
    await assert_kept_untouched(theirs)


async def test_an_answer_stored_again_once_its_payload_is_flushed_is_kept_whole(
    clients: Clients,
) -> None:
    mine, theirs = clients
    entries = await fill(theirs)
    again: list[Entry] = []

    async def store_again() -> None:
        # The first batch's payloads are gone, their exact keys and members not yet.
        for e in entries:
            if await theirs.get(e.entry_id) is None:
                again.append(e)
                await theirs.set(e, 600)

    mine.after_unlink = store_again
    assert await mine.flush("gone") == len(entries)
    assert 0 < len(again) < len(entries)
    assert await stored(theirs, entries) == again
    for e in again:  # found by its question, and by the next flush of its partition
        assert await theirs.get_exact("gone", e.query) == e.entry_id
    assert await member_ids(theirs, "gone") == {e.entry_id for e in again}
    assert await theirs.flush("gone") == len(again)
    assert await keys_left(theirs, entries) == []


async def test_an_answer_stored_again_before_its_payload_is_flushed_is_flushed(
    clients: Clients,
) -> None:
    mine, theirs = clients
    entries = await fill(theirs)

    async def store_again() -> None:
        # The first batch's exact keys are gone, their payloads not yet.
        for e in entries:
            await theirs.set(e, 600)

    mine.after_forget = store_again
    assert await mine.flush("gone") == len(entries)
    assert await stored(theirs, entries) == []
    for e in entries:
        assert await theirs.get_exact("gone", e.query) is None
    # What the answers stored again wrote back names no payload; the next flush drops it.
    assert await theirs.flush("gone") == 0
    assert await keys_left(theirs, entries) == []
    await assert_kept_untouched(theirs)
