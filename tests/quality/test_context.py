"""Earlier conversation turns: exact partitioning (default) and semantic matching."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder

Q = "what is its population"
PARIS = "user: What is the capital of France?\nassistant: Paris."
PARIS_AGAIN = "user: what's the capital of France?\nassistant: Paris."
BERLIN = "user: What is the capital of Germany?\nassistant: Berlin."


def make(mode: str, **overrides: Any) -> SemanticCache:
    # The hashing test embedder scores "what is" vs "what's" about 0.77.
    values: dict[str, Any] = {
        "context_mode": mode,
        "threshold": 0.7,
        "context_threshold": 0.8,
        "batch_max_size": 1,
    }
    values.update(overrides)
    return SemanticCache(Settings.from_env({}, **values), embedder=HashingTestEmbedder())


@pytest.fixture
async def exact() -> AsyncIterator[SemanticCache]:
    async with make("exact") as cache:
        yield cache


@pytest.fixture
async def semantic() -> AsyncIterator[SemanticCache]:
    async with make("semantic") as cache:
        yield cache


async def test_exact_mode_needs_the_same_context(exact: SemanticCache) -> None:
    await exact.store(Q, b"67 million", context=PARIS)
    hit = await exact.lookup(Q, context=PARIS)
    assert hit is not None and hit.source == "exact"
    assert await exact.lookup(Q, context=PARIS_AGAIN) is None
    assert await exact.lookup(Q, context=BERLIN) is None
    assert await exact.lookup(Q) is None  # a first question never gets a follow-up's answer


async def test_semantic_mode_matches_an_equivalent_context(semantic: SemanticCache) -> None:
    await semantic.store(Q, b"67 million", context=PARIS)
    hit = await semantic.lookup("what's its population", context=PARIS_AGAIN)
    assert hit is not None and hit.payload == b"67 million" and hit.source == "semantic"


async def test_semantic_mode_rejects_another_conversation(semantic: SemanticCache) -> None:
    await semantic.store(Q, b"67 million", context=PARIS)
    assert await semantic.lookup(Q, context=BERLIN) is None
    assert semantic.counters["rejected_by_context"] == 1
    assert semantic.counters["exact_hits"] == 0  # same text, other context: no exact hit


async def test_context_is_checked_by_the_verifier_too() -> None:
    # Contexts that embed close but differ in a number are different conversations.
    async with make("semantic", context_threshold=0.5) as cache:
        await cache.store("what is my balance", b"$12", context="user: my account number is 4471")
        assert (
            await cache.lookup("what is my balance", context="user: my account number is 9302")
            is None
        )
        assert cache.counters["rejected_by_context"] == 1
    async with make("semantic", context_threshold=0.5, verifier="none") as cache:
        await cache.store("what is my balance", b"$12", context="user: my account number is 4471")
        assert await cache.lookup("what is my balance", context="user: my account number is 9302")


async def test_first_question_and_follow_up_never_match(semantic: SemanticCache) -> None:
    await semantic.store(Q, b"follow-up answer", context=PARIS)
    assert await semantic.lookup(Q) is None
    await semantic.store("what is the capital of spain", b"Madrid")
    assert await semantic.lookup("what is the capital of spain", context=PARIS) is None


async def test_same_follow_up_after_different_conversations_is_kept_apart(
    semantic: SemanticCache,
) -> None:
    id_paris = await semantic.store(Q, b"67 million", context=PARIS)
    id_berlin = await semantic.store(Q, b"83 million", context=BERLIN)
    assert id_paris != id_berlin
    assert (await semantic.lookup(Q, context=PARIS)).payload == b"67 million"  # type: ignore[union-attr]
    assert (await semantic.lookup(Q, context=BERLIN)).payload == b"83 million"  # type: ignore[union-attr]


async def test_context_vector_is_stored_but_never_served(semantic: SemanticCache) -> None:
    await semantic.store(Q, b"x", context=PARIS, metadata={"content-type": "text/plain"})
    for query in (Q, "what's its population"):
        hit = await semantic.lookup(query, context=PARIS_AGAIN if "'" in query else PARIS)
        assert hit is not None
        assert hit.metadata == {"content-type": "text/plain"}


async def test_query_and_context_are_embedded_in_one_call() -> None:
    embedder = HashingTestEmbedder()
    settings = Settings.from_env({}, context_mode="semantic", threshold=0.7, batch_max_size=1)
    async with SemanticCache(settings, embedder=embedder) as cache:
        assert await cache.lookup(Q, context=PARIS) is None
        assert (embedder.calls, embedder.texts_embedded) == (1, 2)
        await cache.store(Q, b"x", context=PARIS)  # reuses the vectors of the miss
        assert embedder.calls == 1
        await cache.lookup("what's its population", context=PARIS_AGAIN)
        assert (embedder.calls, embedder.texts_embedded) == (2, 4)


async def test_without_context_nothing_changes(semantic: SemanticCache) -> None:
    await semantic.store("how do i reset my password", b"x")
    assert (await semantic.lookup("how do i reset my password")).source == "exact"  # type: ignore[union-attr]
    assert await semantic.lookup("how can i reset my password")


async def test_switching_modes_never_serves_a_follow_up_to_a_first_question() -> None:
    async with make("semantic") as first:
        await first.store(Q, b"follow-up answer", context=PARIS)
        shared = {"vector_store": first.vector_store, "response_store": first.response_store}
        settings = Settings.from_env({}, context_mode="exact", threshold=0.7, batch_max_size=1)
        second = SemanticCache(settings, embedder=HashingTestEmbedder(), **shared)
        await second.start()
        assert await second.lookup(Q) is None
        assert second.counters["rejected_by_context"] == 1
        await second.close()
