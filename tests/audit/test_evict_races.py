"""An answer reported wrong (feedback with the version that was served) is evicted only
while its entry still holds that answer: a refresh landing at any moment of the eviction
keeps its new answer, with its vector and exact keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from semcache import SemanticCache
from semcache.http import CachePlan, HttpCacheEngine, Replay, StoredResponse
from semcache.protocols import ConditionalDelete
from semcache.types import Entry
from tests.support.lacking import Lacking
from tests.support.pausing import PausingResponseStore, PausingVectorStore
from tests.support.refreshed import (
    FAR,
    Q,
    assert_new_answer_kept,
    make_cache,
    refresh,
    served,
)


def cache_over(responses: object) -> SemanticCache:
    return make_cache(responses, PausingVectorStore(256))


@pytest.fixture
async def parts() -> AsyncIterator[tuple[SemanticCache, PausingResponseStore]]:
    store = PausingResponseStore()
    cache = cache_over(store)
    await cache.start()
    yield cache, store
    await cache.close()


async def test_a_refresh_between_the_version_check_and_the_delete_keeps_the_new_answer(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    assert isinstance(store, ConditionalDelete)
    entry, old = await served(cache)
    store.after_read = lambda: refresh(cache, entry)  # lands once the version is read
    assert await cache.report_wrong_hit(entry, version=old) is False
    await assert_new_answer_kept(cache, entry, old)
    # The report on the answer served now still evicts it, vector and all.
    now = await cache.lookup(FAR)
    assert now is not None and now.version is not None
    assert await cache.report_wrong_hit(entry, version=now.version) is True
    assert await cache.vector_store.count() == 0  # type: ignore[union-attr]
    assert await cache.lookup(Q) is None and await cache.lookup(FAR) is None


async def test_audit_outcomes_landing_on_the_same_answer_do_not_stop_its_eviction(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    entry, old = await served(cache)

    async def audited() -> None:  # metadata changes, the answer does not
        assert await cache.record_audit(entry, 0.9, True, version=old) is not None

    store.after_read = audited
    assert await cache.report_wrong_hit(entry, version=old) is True
    assert await store.get(entry) is None
    assert await cache.vector_store.count() == 0  # type: ignore[union-attr]
    assert await cache.lookup(FAR) is None


async def test_a_refresh_between_the_delete_and_the_vector_delete_keeps_its_vector(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, _ = parts
    vectors = cache.vector_store
    assert isinstance(vectors, PausingVectorStore)
    entry, old = await served(cache)

    async def refreshed() -> None:  # payload and vector stored again, old one evicted
        assert await cache.store(Q, b"new answer", ttl=600) == entry

    vectors.between = refreshed
    assert await cache.report_wrong_hit(entry, version=old) is True
    assert await vectors.count() == 1
    hit = await cache.lookup(FAR)
    assert hit is not None and hit.source == "semantic" and hit.payload == b"new answer"


async def test_a_store_without_conditional_deletes_reads_again_before_deleting() -> None:
    store = PausingResponseStore()
    cache = cache_over(Lacking(store, "delete_if_current"))
    await cache.start()
    try:
        assert not isinstance(cache.response_store, ConditionalDelete)
        entry, old = await served(cache)
        store.after_read = lambda: refresh(cache, entry)
        assert await cache.report_wrong_hit(entry, version=old) is False
        await assert_new_answer_kept(cache, entry, old)
        now = await store.get(entry)
        assert now is not None
        assert await cache.report_wrong_hit(entry, version=now.version) is True
        assert await store.get(entry) is None
    finally:
        await cache.close()


async def test_a_store_that_refuses_an_unchanged_entry_is_not_retried_forever() -> None:
    class Refusing(PausingResponseStore):
        refused = 0

        async def delete_if_current(self, entry: Entry) -> bool:
            self.refused += 1
            return False

    store = Refusing()
    cache = cache_over(store)
    await cache.start()
    try:
        entry, old = await served(cache)
        assert await cache.report_wrong_hit(entry, version=old) is False
        assert 1 <= store.refused <= 5
        assert await store.get(entry) is not None
    finally:
        await cache.close()


PLAN = CachePlan("What is the capital of France?", "p", ttl=60, metadata={"path": "/x"})
PARAPHRASE = CachePlan("tell me what is the capital of France", "p", metadata={"path": "/x"})
JSON = (("content-type", "application/json"),)


async def test_feedback_through_the_auditor_keeps_an_answer_stored_meanwhile(
    parts: tuple[SemanticCache, PausingResponseStore],
) -> None:
    cache, store = parts
    engine = HttpCacheEngine(cache)
    entry = await engine.store(PLAN, StoredResponse(200, JSON, b'{"answer": "Lyon"}'))
    replay = await engine.begin(PARAPHRASE)
    assert entry is not None and isinstance(replay, Replay)
    served_version = dict(replay.headers)["x-semcache-entry-version"]
    new = StoredResponse(200, JSON, b'{"answer": "Paris"}')

    async def refreshed() -> None:
        assert await engine.store(PLAN, new) == entry

    store.after_read = refreshed
    found = await engine.auditor.feedback(entry, version=served_version)
    assert found is False
    assert engine.auditor.ledger.events()["feedback_wrong"] == 1
    again = await engine.begin(PARAPHRASE)
    assert isinstance(again, Replay) and b"".join(again.chunks) == new.body
