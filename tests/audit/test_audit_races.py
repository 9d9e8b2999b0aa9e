"""Audit outcomes written while other work on the same entry is in flight: each outcome
read and written back (read-modify-write) must neither lose another outcome nor undo
what happened to the entry meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from semcache import SemanticCache
from semcache.audit import AuditState
from semcache.protocols import ConditionalMetadata
from semcache.stores import MemoryResponseStore
from semcache.types import Entry
from tests.support.caches import cache_over
from tests.support.pausing import PausingResponseStore

Q = "how do I reset my password on the website"


@pytest.fixture
async def parts() -> AsyncIterator[tuple[SemanticCache, PausingResponseStore]]:
    store = PausingResponseStore()
    async with cache_over(
        store,
        threshold=0.3,
        batch_max_size=1,
        max_false_hit_rate=0.75,
        store_timeout_ms=60_000,
        lookup_timeout_ms=60_000,
    ) as cache:
        yield cache, store


async def held_outcome(
    cache: SemanticCache, store: PausingResponseStore, answer: bytes, agreed: bool
) -> tuple[str, asyncio.Task[AuditState | None], asyncio.Event]:
    """``answer`` stored at ``Q``, and an outcome of it (at similarity 0.9) being recorded,
    held just after it has read the entry: ``(entry, the outcome, release)``."""
    entry = await cache.store(Q, answer, ttl=600)
    assert entry is not None
    entered, release = store.pause_next()
    audit = asyncio.create_task(cache.record_audit(entry, 0.9, agreed))
    await entered.wait()
    return entry, audit, release


async def failed_outcome_across_a_refresh(
    cache: SemanticCache, store: PausingResponseStore
) -> tuple[str, AuditState | None]:
    """A failed outcome of an old answer (one that would quarantine it), held after its
    read while a new answer is stored under the same entry: ``(entry, its state)``."""
    entry, audit, release = await held_outcome(cache, store, b"old answer", False)
    assert await cache.store(Q, b"new answer", ttl=600) == entry
    release.set()
    return entry, await audit


async def test_concurrent_outcomes_of_one_entry_are_all_kept(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry, first, release = await held_outcome(cache, store, b"answer", True)
    second = asyncio.create_task(cache.record_audit(entry, 0.8, False))
    for _ in range(50):  # it runs as far as it can while the first is held
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, second)
    state = await cache.audit_state(entry)
    assert state is not None and len(state.samples) == 2


async def test_an_outcome_recorded_while_the_entry_is_deleted_does_not_bring_it_back(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry, audit, release = await held_outcome(cache, store, b"wrong answer", True)
    assert await cache.delete(entry)  # an operator evicts it (or a feedback report does)
    release.set()
    await audit
    assert await cache.lookup(Q) is None


async def test_an_outcome_recorded_while_the_entry_is_refreshed_keeps_the_new_answer(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    await failed_outcome_across_a_refresh(cache, store)
    hit = await cache.lookup(Q)
    assert hit is not None and hit.payload == b"new answer"


async def test_an_outcome_of_a_replaced_answer_is_not_taught_to_the_new_one(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry, state = await failed_outcome_across_a_refresh(cache, store)
    assert state is None
    assert await cache.audit_state(entry) is None
    hit = await cache.lookup("how can I reset my password on the website")
    assert hit is not None and hit.source == "semantic" and hit.payload == b"new answer"


async def test_outcomes_of_two_caches_sharing_one_store_are_all_kept(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    # Two caches over one store are two replicas over a shared one: no lock spans both.
    cache, store = parts
    async with cache_over(store, max_false_hit_rate=0.75, store_timeout_ms=60_000) as other:
        entry, first, release = await held_outcome(cache, store, b"answer", True)
        assert await other.record_audit(entry, 0.8, True) is not None
        release.set()
        state = await first
        assert state is not None and len(state.samples) == 2
        assert await cache.audit_state(entry) == state
        hit = await cache.lookup(Q)
        assert hit is not None and hit.payload == b"answer"


class WithoutConditionalWrites:
    """A store that predates ``replace_metadata`` (``ConditionalMetadata``): everything
    else is the pausing store's."""

    def __init__(self, inner: PausingResponseStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "replace_metadata":
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize("meanwhile", ["nothing", "deleted", "refreshed"])
async def test_a_store_without_conditional_writes_writes_only_over_what_was_read(
    meanwhile: str,
) -> None:
    store = PausingResponseStore()
    async with cache_over(
        WithoutConditionalWrites(store),  # type: ignore[arg-type]
        threshold=0.3,
        max_false_hit_rate=0.75,
        store_timeout_ms=60_000,
    ) as cache:
        assert not isinstance(cache.response_store, ConditionalMetadata)
        entry, audit, release = await held_outcome(cache, store, b"old answer", True)
        if meanwhile == "deleted":
            assert await cache.delete(entry)
        elif meanwhile == "refreshed":
            assert await cache.store(Q, b"new answer", ttl=600) == entry
        release.set()
        state = await audit
        if meanwhile == "nothing":
            assert state is not None and await cache.audit_state(entry) == state
            return
        assert state is None and await cache.audit_state(entry) is None
        hit = await cache.lookup(Q)
        if meanwhile == "deleted":
            assert hit is None
        else:
            assert hit is not None and hit.payload == b"new answer"


async def test_a_store_that_refuses_an_unchanged_entry_is_not_retried_forever() -> None:
    class Refusing(MemoryResponseStore):
        refused = 0

        async def replace_metadata(self, entry: Entry, metadata: Any) -> bool:
            self.refused += 1
            return False

    store = Refusing()
    async with cache_over(store, store_timeout_ms=60_000, lookup_timeout_ms=60_000) as cache:
        entry = await cache.store(Q, b"answer", ttl=600)
        assert entry is not None
        assert await cache.record_audit(entry, 0.9, True) is None
        assert 1 <= store.refused <= 5
        assert await cache.audit_state(entry) is None
