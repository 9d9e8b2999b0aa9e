"""A Redis delete removes an entry in two steps: its payload, then (in its partition's
slot, another Cluster slot) its exact key, membership and aliases. A new answer stored
under the same id between the two steps keeps its exact key and its membership, on a
single server and on Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.entries import an_entry
from tests.support.interleaved import RedisUnindexInterleaved
from tests.support.redis_clients import keys_of, two_clients_of

pytestmark = pytest.mark.redis

Clients = tuple[RedisUnindexInterleaved, RedisResponseStore]


@pytest.fixture
async def clients(redis_uri: str) -> AsyncIterator[Clients]:
    """Two clients of one store, as two processes have: the first can be interleaved."""
    async with two_clients_of(RedisUnindexInterleaved, redis_uri) as two:
        yield two


async def remove(store: RedisResponseStore, how: str, entry: Entry) -> bool:
    if how == "delete":
        return await store.delete(entry.entry_id)
    return await store.delete_if_current(entry)


@pytest.mark.parametrize("how", ["delete", "delete_if_current"])
async def test_a_new_answer_stored_between_the_two_steps_keeps_its_exact_key(
    clients: Clients, how: str
) -> None:
    mine, theirs = clients
    e = an_entry()
    await theirs.set(e, 600)
    assert await theirs.add_alias("p", "a paraphrase", e)
    newer = an_entry(entry_id=e.entry_id, payload=b"newer")  # the same question, refreshed

    entered, release = mine.pause_next()
    removing = asyncio.create_task(remove(mine, how, e))
    await entered.wait()  # the payload is gone; its exact key and membership are not yet
    assert await theirs.get(e.entry_id) is None
    await theirs.set(newer, 600)
    release.set()
    assert await removing is True

    assert await theirs.get(e.entry_id) == newer
    assert await theirs.get_exact("p", e.query) == e.entry_id
    assert await theirs.get_exact_entry("p", e.query) == newer
    # The old answer's alias went with it.
    assert await theirs.get_exact_entry("p", "a paraphrase") is None
    assert await theirs.flush("p") == 1  # still listed in its partition
    assert await keys_of(theirs) == []


@pytest.mark.parametrize("ttl", [600, None])
async def test_the_keys_put_back_expire_with_the_new_answer(
    clients: Clients, ttl: int | None
) -> None:
    mine, theirs = clients
    e = an_entry()
    await theirs.set(e, 600)
    newer = an_entry(entry_id=e.entry_id, payload=b"newer", expires_at=None)

    async def refreshed() -> None:
        await theirs.set(newer, ttl)

    mine.between = refreshed
    assert await mine.delete(e.entry_id) is True
    assert mine.between is None  # it ran, between the two steps
    assert await theirs.get_exact_entry("p", e.query) == newer
    client = await theirs._connect()
    keys = await keys_of(theirs)
    assert len(keys) == 3  # payload, exact key, partition members
    deadlines = [await client.pexpiretime(k) for k in keys]
    if ttl is None:
        assert deadlines == [-1, -1, -1]
    else:
        assert min(deadlines) > 0 and max(deadlines) - min(deadlines) < 1000


async def test_an_exact_key_that_names_another_entry_is_left_to_it(clients: Clients) -> None:
    mine, theirs = clients
    e = an_entry()
    await theirs.set(e, 600)
    newer = an_entry(entry_id=e.entry_id, payload=b"newer")
    other = an_entry(payload=b"other")  # the same question, stored under another id

    async def stored() -> None:
        await theirs.set(newer, 600)
        await theirs.set(other, 600)

    mine.between = stored
    assert await mine.delete(e.entry_id) is True
    assert mine.between is None
    assert await theirs.get_exact("p", e.query) == other.entry_id
    assert await theirs.get(e.entry_id) == newer
    assert await theirs.flush("p") == 2  # both listed in the partition
    assert await keys_of(theirs) == []


async def test_a_delete_of_the_new_answer_before_its_keys_are_put_back_is_not_undone(
    clients: Clients,
) -> None:
    mine, theirs = clients
    e = an_entry()
    await theirs.set(e, 600)
    newer = an_entry(entry_id=e.entry_id, payload=b"newer")

    async def deleted() -> None:
        assert await theirs.delete(e.entry_id) is True

    async def refreshed() -> None:
        await theirs.set(newer, 600)
        mine.between = deleted  # once mine has read it, before it writes its keys back

    mine.between = refreshed
    assert await mine.delete(e.entry_id) is True
    assert mine.between is None  # both ran
    assert await theirs.get(e.entry_id) is None
    assert await theirs.get_exact("p", e.query) is None
    assert await keys_of(theirs) == []  # no exact key nor membership of a deleted answer


async def test_a_delete_without_a_new_answer_leaves_nothing(clients: Clients) -> None:
    mine, theirs = clients
    e = an_entry()
    await theirs.set(e, 600)
    assert await theirs.add_alias("p", "a paraphrase", e)
    assert await mine.delete(e.entry_id) is True
    assert await mine.delete_if_current(e) is False
    assert await keys_of(theirs) == []
