"""Audit outcomes written while other work on the same entry is in flight: each outcome
read and written back (read-modify-write) must neither lose another outcome nor undo
what happened to the entry meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from semcache import SemanticCache
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry

Q = "how do I reset my password on the website"


class PausingResponseStore(MemoryResponseStore):
    """The embedded store, whose next ``get`` can be held until the test lets it go
    (as a network store's reply can be late)."""

    def __init__(self) -> None:
        super().__init__()
        self._hold: tuple[asyncio.Event, asyncio.Event] | None = None

    def pause_next_get(self) -> tuple[asyncio.Event, asyncio.Event]:
        """``(entered, release)``: set when the held ``get`` has read; set to go on."""
        self._hold = (asyncio.Event(), asyncio.Event())
        return self._hold

    async def get(self, entry_id: str) -> Entry | None:
        entry = await super().get(entry_id)
        hold, self._hold = self._hold, None
        if hold is not None:
            hold[0].set()
            await hold[1].wait()
        return entry


@pytest.fixture
async def parts() -> AsyncIterator[tuple[SemanticCache, PausingResponseStore]]:
    store = PausingResponseStore()
    cache = SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=MemoryVectorStore(256),
        response_store=store,
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        max_false_hit_rate=0.75,
        store_timeout_ms=60_000,
        lookup_timeout_ms=60_000,
    )
    await cache.start()
    yield cache, store
    await cache.close()


async def test_concurrent_outcomes_of_one_entry_are_all_kept(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry = await cache.store(Q, b"answer", ttl=600)
    assert entry is not None
    entered, release = store.pause_next_get()
    first = asyncio.create_task(cache.record_audit(entry, 0.9, True))
    await entered.wait()
    second = asyncio.create_task(cache.record_audit(entry, 0.8, False))
    for _ in range(50):  # it runs as far as it can while the first is held
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, second)
    state = await cache.audit_state(entry)
    assert state is not None and len(state.samples) == 2


@pytest.mark.xfail(
    strict=True,
    reason="record_audit reads the entry and writes it back whole; an entry deleted (or "
    "flushed, or refreshed with a new answer) in between comes back as it was read",
)
async def test_an_outcome_recorded_while_the_entry_is_deleted_does_not_bring_it_back(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry = await cache.store(Q, b"wrong answer", ttl=600)
    assert entry is not None
    entered, release = store.pause_next_get()
    audit = asyncio.create_task(cache.record_audit(entry, 0.9, True))
    await entered.wait()
    assert await cache.delete(entry)  # an operator evicts it (or a feedback report does)
    release.set()
    await audit
    assert await cache.lookup(Q) is None


@pytest.mark.xfail(
    strict=True,
    reason="record_audit reads the entry and writes it back whole: a refresh stored in "
    "between is replaced by the answer it read",
)
async def test_an_outcome_recorded_while_the_entry_is_refreshed_keeps_the_new_answer(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry = await cache.store(Q, b"old answer", ttl=600)
    assert entry is not None
    entered, release = store.pause_next_get()
    audit = asyncio.create_task(cache.record_audit(entry, 0.9, False))
    await entered.wait()
    assert await cache.store(Q, b"new answer", ttl=600) == entry
    release.set()
    await audit
    hit = await cache.lookup(Q)
    assert hit is not None and hit.payload == b"new answer"
