"""An answer reported wrong (feedback with the version that was served) is evicted only
while its entry still holds that answer: a refresh landing at any moment of the eviction
keeps its new answer, with its vector and exact keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from semcache import SemanticCache
from semcache.http import CachePlan, HttpCacheEngine, Replay, StoredResponse
from semcache.protocols import ConditionalDelete
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry
from tests.support.interleaved import ReadThenInterleaved, VectorDeleteInterleaved

Q = "how do I reset my password on the website"
NEAR = "how do I reset my password on the web site please"
FAR = "how do I reset my password"


async def settle(cache: SemanticCache) -> None:
    """Let the background alias writes finish."""
    while cache._background:
        await asyncio.gather(*cache._background)


def make_cache(responses: Any) -> SemanticCache:
    return SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=VectorDeleteInterleaved(256),
        response_store=responses,
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        max_false_hit_rate=0.75,
        store_timeout_ms=60_000,
        lookup_timeout_ms=60_000,
    )


@pytest.fixture
async def parts() -> AsyncIterator[tuple[SemanticCache, ReadThenInterleaved]]:
    store = ReadThenInterleaved()
    cache = make_cache(store)
    await cache.start()
    yield cache, store
    await cache.close()


async def served(cache: SemanticCache) -> tuple[str, str]:
    """An answer stored and served semantically: its entry id and version."""
    entry = await cache.store(Q, b"old answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry is not None and hit is not None and hit.source == "semantic"
    assert hit.version is not None
    await settle(cache)
    return entry, hit.version


async def refresh(cache: SemanticCache, entry: str) -> None:
    """The same request stored again (a new answer under the same id), then a paraphrase
    served from it, whose alias is written before the eviction goes on."""
    assert await cache.store(Q, b"new answer", ttl=600) == entry
    hit = await cache.lookup(NEAR)
    assert hit is not None and hit.payload == b"new answer"
    await settle(cache)


async def assert_new_answer_kept(cache: SemanticCache, entry: str, old: str) -> None:
    stored = await cache.response_store.get(entry)  # type: ignore[union-attr]
    assert stored is not None and stored.payload == b"new answer"
    assert stored.version != old
    exact = await cache.lookup(Q)
    assert exact is not None and exact.source == "exact" and exact.payload == b"new answer"
    alias = await cache.lookup(NEAR)  # the new answer's alias, written after the refresh
    assert alias is not None and alias.source == "exact" and alias.payload == b"new answer"
    semantic = await cache.lookup(FAR)  # its vector kept
    assert semantic is not None and semantic.source == "semantic"
    assert semantic.payload == b"new answer"


async def test_a_refresh_between_the_version_check_and_the_delete_keeps_the_new_answer(
    parts: tuple[SemanticCache, ReadThenInterleaved],
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
    parts: tuple[SemanticCache, ReadThenInterleaved],
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
    parts: tuple[SemanticCache, ReadThenInterleaved],
) -> None:
    cache, _ = parts
    vectors = cache.vector_store
    assert isinstance(vectors, VectorDeleteInterleaved)
    entry, old = await served(cache)

    async def refreshed() -> None:  # payload and vector stored again, old one evicted
        assert await cache.store(Q, b"new answer", ttl=600) == entry

    vectors.before_delete = refreshed
    assert await cache.report_wrong_hit(entry, version=old) is True
    assert await vectors.count() == 1
    hit = await cache.lookup(FAR)
    assert hit is not None and hit.source == "semantic" and hit.payload == b"new answer"


class WithoutConditionalDelete:
    """A store that predates ``delete_if_current`` (``ConditionalDelete``): everything
    else is the interleaving store's."""

    def __init__(self, inner: ReadThenInterleaved) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "delete_if_current":
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_store_without_conditional_deletes_reads_again_before_deleting() -> None:
    store = ReadThenInterleaved()
    cache = make_cache(WithoutConditionalDelete(store))
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
    class Refusing(ReadThenInterleaved):
        refused = 0

        async def delete_if_current(self, entry: Entry) -> bool:
            self.refused += 1
            return False

    store = Refusing()
    cache = make_cache(store)
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
    parts: tuple[SemanticCache, ReadThenInterleaved],
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
