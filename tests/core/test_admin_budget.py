"""Admin operations (delete, flush, flush_where, audit_state) while the response store
never answers or fails, or while the cache's start hangs: each ends within the lookup
budget and raises CacheUnavailableError, never a hang and never a result that reads as
"no such entry" or "nothing flushed"; sent again once the store answers (the cache has
started), it does what it was asked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from semcache import CacheUnavailableError, SemanticCache
from semcache.audit.learner import STATE_KEY, AuditState
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore
from semcache.types import Entry
from tests.support.caches import cache_over
from tests.support.entries import an_entry
from tests.support.pausing import PausingVectorStore, SilentAt
from tests.support.starts import HeldStart

Operation = Callable[[SemanticCache, Entry], Awaitable[Any]]

OPERATIONS: dict[str, Operation] = {
    "delete": lambda cache, e: cache.delete(e.entry_id),
    "audit state": lambda cache, e: cache.audit_state(e.entry_id),
    "flush everything": lambda cache, e: cache.flush(),
    "flush a partition": lambda cache, e: cache.flush(e.partition, hashed=True),
    "flush by model": lambda cache, e: cache.flush_where(model="gpt-4o-mini"),
}

SILENT_AT = {
    "delete": ["delete"],
    "audit state": ["get"],
    "flush everything": ["flush"],
    "flush a partition": ["flush"],
    "flush by model": ["partitions_where", "flush"],
}
"""The store calls each operation makes, held in turn."""

BUDGET: dict[str, Any] = {
    "lookup_timeout_ms": 200,
    "flush_timeout_ms": 300,
    "store_timeout_ms": 60_000,
}
"""Short lookup and flush budgets and a store timeout of a minute: only a budget ends a
call to a store that never answers before the test gives up on it."""

GIVE_UP = 20.0
"""Seconds a test waits for an operation before it fails (far past :data:`BUDGET`)."""


def audited_entry() -> Entry:
    """An entry tagged with its model, whose audits quarantined it."""
    state = AuditState().quarantine().to_metadata()
    return an_entry(metadata={"status": 200, "model": "gpt-4o-mini", STATE_KEY: state})


async def unavailable(cache: SemanticCache, operation: str, e: Entry) -> CacheUnavailableError:
    """The operation raises CacheUnavailableError before the test gives up on it."""
    with pytest.raises(CacheUnavailableError) as raised:
        async with asyncio.timeout(GIVE_UP):
            await OPERATIONS[operation](cache, e)
    message = str(raised.value)
    assert "send it again" in message and e.entry_id not in message
    return raised.value


async def done(cache: SemanticCache, store: MemoryResponseStore, operation: str, e: Entry) -> None:
    """The operation, sent again to a store that answers, does what it was asked and
    returns what it returns on success."""
    async with asyncio.timeout(GIVE_UP):
        result = await OPERATIONS[operation](cache, e)
    if operation == "audit state":
        assert result is not None and result.quarantined
        assert await store.get(e.entry_id) == e
    else:
        assert result == (True if operation == "delete" else 1)
        assert await store.get(e.entry_id) is None


@pytest.mark.parametrize(
    ("operation", "silent"),
    [(operation, method) for operation, methods in SILENT_AT.items() for method in methods],
)
async def test_an_admin_operation_on_a_silent_store_ends_within_the_lookup_budget(
    operation: str, silent: str
) -> None:
    store = SilentAt(silent)
    async with cache_over(store, **BUDGET) as cache:
        e = audited_entry()
        await store.set(e, 600)
        entered, _ = store.pause_next()  # never released
        error = await unavailable(cache, operation, e)
        assert entered.is_set()  # it was the store that kept it waiting
        budget = "300 ms flush budget" if operation.startswith("flush") else "200 ms lookup budget"
        assert budget in str(error)
        assert await store.get(e.entry_id) == e  # nothing was done
        # A store that took the call and went silent within the budget is not taken for
        # a failing one: lookups are not skipped for it.
        assert cache.breakers["response store"].state == "closed"
        await done(cache, store, operation, e)


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_an_admin_operation_on_a_failing_store_raises_cache_unavailable(
    operation: str,
) -> None:
    inner = MemoryResponseStore()
    store = FlakyStore(inner)
    async with cache_over(store) as cache:
        e = audited_entry()
        await inner.set(e, 600)
        store.down = True
        error = await unavailable(cache, operation, e)
        assert isinstance(error.__cause__.__cause__, ConnectionError)  # type: ignore[union-attr]
        assert store.calls >= 1
        store.down = False
        assert await inner.get(e.entry_id) == e
        await done(cache, inner, operation, e)


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_an_admin_operation_while_the_start_hangs_ends_within_the_lookup_budget(
    operation: str,
) -> None:
    # The start is held where it asks the model its vector size (an API that never
    # answers): only the lookup budget ends the operation.
    store, embedder = MemoryResponseStore(), HeldStart()
    cache = cache_over(store, embedder=embedder, **BUDGET)
    try:
        e = audited_entry()
        await store.set(e, 600)
        await unavailable(cache, operation, e)
        assert embedder.probed.is_set() and not cache.started  # the start kept it waiting
        assert await store.get(e.entry_id) == e
        # The start went on meanwhile (the budget ended the wait, not the start).
        embedder.release.set()
        await done(cache, store, operation, e)
        assert cache.started
    finally:
        await cache.close()


async def test_a_flush_failing_in_the_vector_store_raises_and_goes_on_when_sent_again() -> None:
    store, vectors = MemoryResponseStore(), FlakyStore(MemoryVectorStore(256))
    async with cache_over(store, vector_store=vectors) as cache:
        e = audited_entry()
        await store.set(e, 600)
        vectors.down = True
        with pytest.raises(CacheUnavailableError, match="vector store"):
            await cache.flush()
        assert await store.get(e.entry_id) is None  # the answers flushed stay flushed
        vectors.down = False
        assert await cache.flush() == 0


async def test_a_delete_whose_vector_never_goes_is_done_within_the_budget() -> None:
    # Its vector's delete never answers: a vector left without its payload is a miss.
    store, vectors = MemoryResponseStore(), PausingVectorStore(256)
    async with cache_over(store, vector_store=vectors, **BUDGET) as cache:
        e = an_entry()
        await store.set(e, 600)
        entered, _ = vectors.pause_next()  # never released
        async with asyncio.timeout(GIVE_UP):
            assert await cache.delete(e.entry_id) is True
        assert entered.is_set()
        assert await store.get(e.entry_id) is None


@pytest.mark.parametrize("operation", ["flush everything", "flush a partition", "flush by model"])
@pytest.mark.parametrize(
    ("settings", "delay"),
    [
        # Slower than one store call's timeout (1 ms).
        pytest.param({"store_timeout_ms": 1}, 0.05, id="slower-than-a-store-call"),
        # Slower than a whole lookup (100 ms), within the flush budget.
        pytest.param(
            {"lookup_timeout_ms": 100, "flush_timeout_ms": 10_000, "store_timeout_ms": 60_000},
            0.3,
            id="slower-than-a-lookup",
        ),
    ],
)
async def test_a_flush_takes_its_whole_budget_and_is_no_failure_of_the_store(
    operation: str, settings: dict[str, Any], delay: float
) -> None:
    # A flush walks every entry it removes, in many round trips: it may take longer than
    # one store call or one lookup may, finishes in one call, and opens no breaker.
    inner = MemoryResponseStore()
    store = FlakyStore(inner)
    async with cache_over(store, breaker_failures=1, **settings) as cache:
        e = audited_entry()
        await inner.set(e, 600)
        store.delay = delay  # every call of the store takes this long
        await done(cache, inner, operation, e)
        assert cache.breakers["response store"].state == "closed"
