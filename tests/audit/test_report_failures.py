"""A wrong hit reported while the response store fails or never answers, or while the
cache's start hangs: the report ends within the lookup budget, never raises, and says it
was not applied (``None``, not the ``False`` of an entry that is gone); once the store
answers again (the cache has started), it can be sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from semcache import SemanticCache, Settings
from semcache.audit import Auditor
from semcache.stores import MemoryResponseStore
from semcache.testing import FlakyStore
from semcache.types import Entry
from tests.support.caches import cache_over
from tests.support.entries import an_entry
from tests.support.pausing import PausingVectorStore, SilentAt
from tests.support.starts import HeldStart

Report = Callable[[SemanticCache, Entry], Awaitable[bool | None]]

REPORTS: dict[str, Report] = {
    "evict the answer served": lambda cache, e: cache.report_wrong_hit(
        e.entry_id, version=e.version
    ),
    "evict whatever it holds": lambda cache, e: cache.report_wrong_hit(e.entry_id),
    "quarantine": lambda cache, e: cache.report_wrong_hit(
        e.entry_id, evict=False, version=e.version
    ),
    "teach a failed audit": lambda cache, e: cache.report_wrong_hit(
        e.entry_id, evict=False, similarity=0.9, version=e.version
    ),
}

BUDGET: dict[str, Any] = {"lookup_timeout_ms": 200, "store_timeout_ms": 60_000}
"""A short lookup budget and a store timeout of a minute: only the budget ends a call to a
store that never answers before the test gives up on it."""

GIVE_UP = 20.0
"""Seconds a test waits for a report before it fails (far past :data:`BUDGET`)."""


async def applied(cache: SemanticCache, store: MemoryResponseStore, report: str, e: Entry) -> None:
    """The report, sent again to a store that answers, is applied."""
    async with asyncio.timeout(GIVE_UP):
        assert await REPORTS[report](cache, e) is True
    now = await store.get(e.entry_id)
    if report.startswith("evict"):
        assert now is None
    else:
        assert now is not None and (await cache.audit_state(e.entry_id)).quarantined  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("report", "silent"),
    [
        ("evict the answer served", "get"),
        ("evict the answer served", "delete_if_current"),
        ("evict whatever it holds", "delete"),
        ("quarantine", "get"),
        ("teach a failed audit", "get"),
    ],
)
async def test_a_report_to_a_silent_store_ends_within_the_lookup_budget(
    report: str, silent: str
) -> None:
    store = SilentAt(silent)
    async with cache_over(store, max_false_hit_rate=0.75, **BUDGET) as cache:
        e = an_entry()
        await store.set(e, 600)
        entered, _ = store.pause_next()  # never released
        async with asyncio.timeout(GIVE_UP):
            result = await REPORTS[report](cache, e)
        assert entered.is_set()  # it was the store that kept it waiting
        assert result is None and await store.get(e.entry_id) is not None
        await applied(cache, store, report, e)


@pytest.mark.parametrize("report", list(REPORTS))
async def test_a_report_while_the_start_hangs_ends_within_the_lookup_budget(report: str) -> None:
    # The start is held where it asks the model its vector size (an API that never
    # answers): only the lookup budget ends the report.
    store, embedder = MemoryResponseStore(), HeldStart()
    cache = cache_over(store, embedder=embedder, max_false_hit_rate=0.75, **BUDGET)
    try:
        e = an_entry()
        await store.set(e, 600)
        async with asyncio.timeout(GIVE_UP):
            result = await REPORTS[report](cache, e)
        assert embedder.probed.is_set() and not cache.started  # the start kept it waiting
        assert result is None and await store.get(e.entry_id) == e
        # The start went on meanwhile (the budget ended the wait, not the start).
        embedder.release.set()
        await applied(cache, store, report, e)
        assert cache.started
    finally:
        await cache.close()


@pytest.mark.parametrize("report", list(REPORTS))
async def test_a_report_to_a_failing_store_is_not_applied_and_does_not_raise(
    report: str,
) -> None:
    inner = MemoryResponseStore()
    store = FlakyStore(inner)
    async with cache_over(store, max_false_hit_rate=0.75) as cache:
        e = an_entry()
        await inner.set(e, 600)
        store.down = True
        assert await REPORTS[report](cache, e) is None
        assert store.calls >= 1
        store.down = False
        assert await inner.get(e.entry_id) == e
        await applied(cache, inner, report, e)


@pytest.mark.parametrize("report", ["evict the answer served", "evict whatever it holds"])
async def test_an_answer_deleted_before_the_budget_ran_out_is_reported_evicted(
    report: str,
) -> None:
    # Its vector's delete never answers: a vector left without its payload is a miss.
    store, vectors = MemoryResponseStore(), PausingVectorStore(256)
    async with cache_over(store, vector_store=vectors, **BUDGET) as cache:
        e = an_entry()
        await store.set(e, 600)
        entered, _ = vectors.pause_next()  # never released
        async with asyncio.timeout(GIVE_UP):
            assert await REPORTS[report](cache, e) is True
        assert entered.is_set()
        assert await store.get(e.entry_id) is None


def counted(cache: SemanticCache, auditor: Auditor) -> tuple[int, int, int, int]:
    """Wrong-hit reports answered and not applied, as the auditor's ledger and as the
    cache's counters count them."""
    events = auditor.ledger.events()
    return (
        events["feedback_wrong"],
        events["feedback_failed"],
        cache.counters["wrong_hit_reports"],
        cache.counters["wrong_hit_reports_failed"],
    )


async def test_a_report_not_applied_is_counted_apart_and_once_when_sent_again() -> None:
    # The report the client is told to send again (None: a 503) is no report yet.
    store = SilentAt("get")
    async with cache_over(store, **BUDGET) as cache:
        auditor = Auditor(cache, Settings.from_env({}))
        e = an_entry()
        await store.set(e, 600)
        store.pause_next()  # never released
        async with asyncio.timeout(GIVE_UP):
            assert await auditor.feedback(e.entry_id, version=e.version) is None
        assert counted(cache, auditor) == (0, 1, 0, 1)
        # Sent again to a store that answers: applied, and counted once.
        async with asyncio.timeout(GIVE_UP):
            assert await auditor.feedback(e.entry_id, version=e.version) is True
        assert await store.get(e.entry_id) is None
        assert counted(cache, auditor) == (1, 1, 1, 1)
        # A report answered "no such entry" is answered: counted, not as a failure.
        assert await auditor.feedback(e.entry_id, version=e.version) is False
        assert counted(cache, auditor) == (2, 1, 2, 1)
