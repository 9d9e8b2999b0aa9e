"""One follow-up stored after many conversations (the semantic and turns context modes).

Every conversation of a partition shares one vector index there, so "do I need a visa?"
asked after forty trips is forty candidates at the same similarity. The request must get
the answer of its own conversation, never another's, whatever the crowd.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from semcache import SemanticCache, Settings
from semcache.crowd import CROWD_FACTOR, closest_contexts
from semcache.testing import HashingTestEmbedder
from semcache.types import Entry, VectorMatch

PLACES = [f"Town{n:02d}" for n in range(40)]
QUESTION = "Do I need a visa for that?"


def history(place: str, *, padded: bool = False) -> str:
    chatter = "user: hello there!\nassistant: Hi! How can I help?\n" if padded else ""
    return (
        chatter + f"user: I am planning a trip to {place} in May with my family\n"
        f"assistant: {place} is lovely in May; flights leave daily from the capital."
    )


Make = Callable[[str], Awaitable[SemanticCache]]


@pytest.fixture
async def crowded() -> AsyncIterator[Make]:
    """Caches in a context mode, top_k 4, on the model-free embedder."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(mode: str) -> SemanticCache:
            settings = Settings.from_env({}, context_mode=mode, top_k=4)
            cache = SemanticCache(settings, embedder=HashingTestEmbedder())
            return await stack.enter_async_context(cache)

        yield make


async def _fill(cache: SemanticCache, places: list[str]) -> None:
    for place in places:
        await cache.store(QUESTION, place.encode(), partition="team", context=history(place))


@pytest.mark.parametrize("mode", ["semantic", "turns"])
async def test_the_same_conversation_gets_its_own_answer_among_forty(
    crowded: Make, mode: str
) -> None:
    cache = await crowded(mode)
    await _fill(cache, PLACES)
    for place in PLACES:
        hit = await cache.lookup(QUESTION, partition="team", context=history(place))
        assert hit is not None and hit.payload == place.encode(), place
        assert hit.source == "exact"


@pytest.mark.parametrize("mode", ["semantic", "turns"])
async def test_a_reworded_question_after_the_same_conversation_finds_it_among_the_fetched(
    crowded: Make, mode: str
) -> None:
    cache = await crowded(mode)
    places = PLACES[: 4 * CROWD_FACTOR]  # as many as are fetched at top_k 4
    await _fill(cache, places)
    for place in places:
        hit = await cache.lookup(
            "do i need a visa for that", partition="team", context=history(place)
        )
        assert hit is not None and hit.payload == place.encode(), place


async def test_a_padded_conversation_finds_its_own_among_as_many_as_are_fetched(
    crowded: Make,
) -> None:
    cache = await crowded("turns")
    places = PLACES[: 4 * CROWD_FACTOR]
    await _fill(cache, places)
    for place in places:
        hit = await cache.lookup(QUESTION, partition="team", context=history(place, padded=True))
        assert hit is not None and hit.payload == place.encode(), place
        assert hit.source == "semantic"


@pytest.mark.parametrize("mode", ["semantic", "turns"])
async def test_a_crowd_never_answers_another_partition_or_another_conversation(
    crowded: Make, mode: str
) -> None:
    cache = await crowded(mode)
    await _fill(cache, PLACES)
    assert await cache.lookup(QUESTION, partition="other", context=history("Town01")) is None
    other = "user: my laptop will not turn on\nassistant: Hold the power button for ten seconds."
    assert await cache.lookup(QUESTION, partition="team", context=other) is None
    if mode == "turns":  # semantic mode embeds the whole history: a place swap can pass
        for place in ("Elsewhere", "Town99"):
            assert await cache.lookup(QUESTION, partition="team", context=history(place)) is None


def _candidate(n: int, similarity: float, context: str | None) -> tuple[VectorMatch, Entry]:
    entry = Entry(f"e{n}", "p", "q", b"", {}, 0.0, None, context)
    return VectorMatch(f"e{n}", similarity), entry


def test_closest_contexts_keeps_the_closest_questions_and_the_closest_conversations() -> None:
    ours = "user: my order 48213 arrived broken\nassistant: sorry about that"
    candidates = [
        _candidate(0, 0.99, "user: where is my parcel\nassistant: on its way"),
        _candidate(1, 0.98, "user: what are your opening hours\nassistant: nine to five"),
        _candidate(2, 0.97, "user: hello\nuser: my order 48213 arrived broken"),
        _candidate(3, 0.96, None),
        _candidate(4, 0.95, "user: can i pay by card\nassistant: yes"),
        _candidate(5, 0.94, ours),
        _candidate(6, 0.93, "user: my order arrived broken\nassistant: sorry"),
    ]
    kept = closest_contexts(ours, candidates, 2)
    # e0 and e1 (the closest questions), then e5 (the same) and e6 (most words shared).
    assert [m.entry_id for m, _ in kept] == ["e0", "e1", "e5", "e6"]
    assert closest_contexts(ours, candidates[:4], 2) == candidates[:4]


async def test_conversations_that_share_words_never_push_out_the_closest_question(
    crowded: Make,
) -> None:
    cache = await crowded("turns")
    await cache.store(QUESTION, b"own", partition="team", context=history("Lyon", padded=True))
    for n in range(4 * CROWD_FACTOR):
        await cache.store(
            "Do I need a visa for that trip?",
            b"other",
            partition="team",
            context=history(f"Town{n:02d}"),
        )
    hit = await cache.lookup(QUESTION, partition="team", context=history("Lyon"))
    assert hit is not None and hit.payload == b"own"
