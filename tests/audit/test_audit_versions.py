"""What is learned about one answer lands on that answer only. An entry id outlives its
answers (the same request stored again replaces the answer under the same id), while an
audit's shadow call takes seconds and an application may report a wrong hit much
later: the outcome of an answer replaced meanwhile must not land on the new one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from semcache import SemanticCache, Settings
from semcache.http import CachePlan, HttpCacheEngine, Replay, StoredResponse
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry, decode_entry, encode_entry
from tests.support.pausing import PausingVectorStore

PLAN = CachePlan("What is the capital of France?", "p", ttl=60, metadata={"path": "/x"})
PARAPHRASE = CachePlan("tell me what is the capital of France", "p", metadata={"path": "/x"})
OTHER_PARAPHRASE = CachePlan(
    "please tell me what is the capital of France", "p", metadata={"path": "/x"}
)
JSON = (("content-type", "application/json"),)
OLD = StoredResponse(200, JSON, b'{"answer": "Lyon"}')
NEW = StoredResponse(200, JSON, b'{"answer": "Paris"}')
FRESH = StoredResponse(200, JSON, b'{"answer": "Paris, of course"}')

Q = "how do I reset my password on the website"
NEAR = "how do I reset my password on the web site please"
FAR = "how do I reset my password"


class Score:
    """A comparer that always gives ``score`` (0.0: the answers disagree)."""

    def __init__(self, score: float) -> None:
        self.score = score

    async def agreement(self, question: str, cached: str, fresh: str) -> float | None:
        return self.score


class HeldShadow:
    """A shadow call that stays at the upstream until the test lets it answer."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.answer = asyncio.Event()

    async def __call__(self) -> StoredResponse | None:
        self.called.set()
        await self.answer.wait()
        return FRESH


def test_a_version_names_one_stored_answer() -> None:
    e = Entry("id", "p", "q", b"answer", {"status": 200}, 1700000000.123456, 1700000600.0)
    assert len(e.version) == 16 and e.version.isalnum()  # fits a header
    assert decode_entry(encode_entry(e)).version == e.version
    audited = Entry("id", "p", "q", b"answer", {"semcache.audit": {"q": True}}, e.created_at)
    assert audited.version == e.version  # what audits write is not a new answer
    assert Entry("id", "p", "q", b"other", {}, e.created_at).version != e.version
    assert Entry("id", "p", "q", b"answer", {}, e.created_at + 1e-6).version != e.version


@pytest.fixture
async def engine() -> AsyncIterator[HttpCacheEngine]:
    settings = Settings.from_env({}, threshold=0.8, audit_rate=1.0)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None) as cache:
        engine = HttpCacheEngine(cache)
        engine.shadows = True
        engine.auditor.comparer = Score(0.0)  # every audited hit is wrong
        yield engine


async def audited_hit(engine: HttpCacheEngine) -> tuple[str, Replay]:
    entry = await engine.store(PLAN, OLD)
    assert entry is not None
    replay = await engine.begin(PARAPHRASE)
    assert isinstance(replay, Replay) and replay.audit is not None
    return entry, replay


async def audit_at_the_upstream(
    engine: HttpCacheEngine,
) -> tuple[str, asyncio.Task[bool | None], asyncio.Event]:
    """The audit of an audited hit, held in its shadow call until the upstream is let
    answer: ``(entry, the audit, the event that lets the upstream answer)``."""
    entry, replay = await audited_hit(engine)
    assert replay.audit is not None
    shadow = HeldShadow()
    audit = asyncio.create_task(engine.auditor.run(replay.audit, shadow))
    await shadow.called.wait()
    return entry, audit, shadow.answer


async def test_a_hit_carries_the_version_of_the_answer_it_served(engine: HttpCacheEngine) -> None:
    entry, replay = await audited_hit(engine)
    stored = await engine.cache.response_store.get(entry)  # type: ignore[union-attr]
    assert stored is not None and replay.audit is not None
    assert replay.audit.hit.version == stored.version
    assert ("x-semcache-entry-version", stored.version) in replay.headers
    await engine.store(PLAN, NEW)
    exact = await engine.begin(PLAN)
    assert isinstance(exact, Replay)
    new = dict(exact.headers)["x-semcache-entry-version"]
    assert new != stored.version


async def test_a_failed_audit_of_the_answer_still_stored_quarantines_it(
    engine: HttpCacheEngine,
) -> None:
    entry, audit, answer = await audit_at_the_upstream(engine)
    answer.set()
    assert await audit is False
    state = await engine.cache.audit_state(entry)
    assert state is not None and state.quarantined
    assert engine.cache.counters["quarantined"] == 1
    assert not isinstance(await engine.begin(OTHER_PARAPHRASE), Replay)


async def test_an_answer_stored_during_the_shadow_call_is_not_taught_its_outcome(
    engine: HttpCacheEngine,
) -> None:
    entry, audit, answer = await audit_at_the_upstream(engine)
    assert await engine.store(PLAN, NEW) == entry  # refreshed while the upstream answers
    answer.set()
    assert await audit is False  # the hit served was wrong, and is counted so
    assert engine.auditor.ledger.events()["wrong"] == 1
    assert await engine.cache.audit_state(entry) is None  # not taught to the new answer
    assert engine.cache.counters["quarantined"] == 0
    again = await engine.begin(OTHER_PARAPHRASE)  # semantic: the new answer kept its vector
    assert isinstance(again, Replay) and again.audit is not None
    assert b"".join(again.chunks) == NEW.body


@pytest.fixture
async def cache() -> AsyncIterator[SemanticCache]:
    c = SemanticCache(
        embedder=HashingTestEmbedder(),
        vector_store=PausingVectorStore(256),
        threshold=0.3,
        verifier=None,
        batch_max_size=1,
        store_timeout_ms=60_000,
        lookup_timeout_ms=60_000,
    )
    await c.start()
    yield c
    await c.close()


@pytest.fixture
def vectors(cache: SemanticCache) -> PausingVectorStore:
    """The cache's vector index, which can be held in its next delete."""
    assert isinstance(cache.vector_store, PausingVectorStore)
    return cache.vector_store


async def test_a_report_on_an_answer_replaced_since_leaves_the_new_one(
    cache: SemanticCache,
) -> None:
    entry = await cache.store(Q, b"old answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry is not None and hit is not None and hit.source == "semantic"
    assert hit.version is not None
    assert await cache.store(Q, b"new answer", ttl=600) == entry  # later, a refresh
    # Evicting, quarantining or teaching: each about an answer no longer served.
    assert not await cache.report_wrong_hit(entry, version=hit.version)
    assert not await cache.report_wrong_hit(entry, version=hit.version, evict=False)
    assert not await cache.report_wrong_hit(
        entry, version=hit.version, evict=False, similarity=hit.similarity
    )
    assert await cache.record_audit(entry, hit.similarity, False, version=hit.version) is None
    assert await cache.audit_state(entry) is None
    now = await cache.lookup(FAR)
    assert now is not None and now.source == "semantic" and now.payload == b"new answer"
    # A report on the answer stored now applies.
    assert now.version is not None and now.version != hit.version
    assert await cache.report_wrong_hit(entry, version=now.version, evict=False)
    assert (await cache.audit_state(entry)).quarantined  # type: ignore[union-attr]
    assert await cache.report_wrong_hit(entry, version=now.version)
    assert await cache.lookup(Q) is None


async def test_a_report_without_a_version_applies_to_the_answer_stored_now(
    cache: SemanticCache,
) -> None:
    entry = await cache.store(Q, b"old answer", ttl=600)
    assert entry is not None and await cache.lookup(NEAR) is not None
    assert await cache.store(Q, b"new answer", ttl=600) == entry
    assert await cache.report_wrong_hit(entry)  # a plain id, as before versions
    assert await cache.lookup(Q) is None


async def test_an_answer_stored_while_its_entry_is_quarantined_keeps_its_vector(
    cache: SemanticCache, vectors: PausingVectorStore
) -> None:
    entry = await cache.store(Q, b"old answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry is not None and hit is not None and hit.source == "semantic"
    entered, release = vectors.pause_next()
    audit = asyncio.create_task(
        cache.record_audit(entry, hit.similarity, False, version=hit.version)
    )
    await entered.wait()  # quarantine written; its vector delete not yet done
    assert await cache.store(Q, b"new answer", ttl=600) == entry  # payload, then vector
    release.set()
    state = await audit
    assert state is not None and state.quarantined  # of the old answer
    assert await cache.audit_state(entry) is None  # the new answer's own state: none
    assert await vectors.count() == 1
    now = await cache.lookup(FAR)
    assert now is not None and now.source == "semantic" and now.payload == b"new answer"


async def test_a_quarantine_with_nothing_stored_meanwhile_removes_the_vector(
    cache: SemanticCache, vectors: PausingVectorStore
) -> None:
    entry = await cache.store(Q, b"answer", ttl=600)
    hit = await cache.lookup(NEAR)
    assert entry is not None and hit is not None
    state = await cache.record_audit(entry, hit.similarity, False, version=hit.version)
    assert state is not None and state.quarantined
    assert await vectors.count() == 0
    assert await cache.lookup(FAR) is None
