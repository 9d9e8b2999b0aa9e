"""Conversations matched turn by turn (`context_mode="turns"`), on the model-free embedder."""

import asyncio
from typing import Any

import pytest

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache.turns import MAX_TURNS, Turn, TurnMatcher, split_turns

ORDER = (
    "user: Hi, my order 48213 arrived with a cracked screen protector\n"
    "assistant: Sorry about that! I can send a replacement for order 48213 or refund it.\n"
    "user: I would like a replacement please"
)


def test_split_turns_reads_the_rendered_roles() -> None:
    text = 'user: first line\nsecond line\nassistant: answer\n\nuser:   \ntool: {"x":1}'
    assert split_turns(text) == [
        Turn("user", "first line second line"),
        Turn("assistant", "answer"),
        Turn("tool", '{"x":1}'),
    ]
    assert split_turns("no roles at all") == [Turn("user", "no roles at all")]
    assert split_turns("") == []


@pytest.fixture
def matcher() -> TurnMatcher:
    embedder = HashingTestEmbedder()
    # The hashing embedder scores unrelated texts near 0 and a one-word change ~0.8-0.9.
    return TurnMatcher(embedder.embed, match_at=0.75, related_at=0.45)


async def test_the_same_turns_with_chatter_around_them_match(matcher: TurnMatcher) -> None:
    padded = (
        "user: hello!\nassistant: Hi, how can I help you today?\n"
        + ORDER
        + "\nassistant: one moment\nuser: ok thanks"
    )
    assert await matcher.compare(padded, ORDER) is None
    assert await matcher.compare(ORDER, padded) is None


async def test_a_swapped_detail_is_a_conflict(matcher: TurnMatcher) -> None:
    swapped = ORDER.replace("48213", "48231")
    assert await matcher.compare(swapped, ORDER) == "conflict"


async def test_a_negated_turn_is_a_conflict(matcher: TurnMatcher) -> None:
    negated = ORDER.replace("I would like a replacement", "I would not like a replacement")
    assert await matcher.compare(negated, ORDER) == "conflict"


async def test_another_conversation_is_no_match(matcher: TurnMatcher) -> None:
    other = (
        "user: my internet keeps dropping every evening\n"
        "assistant: Let's restart the router and check the cable."
    )
    assert await matcher.compare(other, ORDER) == "unmatched"


async def test_a_changed_turn_is_refused(matcher: TurnMatcher) -> None:
    changed = ORDER.replace(
        "I would like a replacement please", "I would like a refund to my card please"
    )
    assert await matcher.compare(changed, ORDER) in ("changed", "conflict")


async def test_a_turn_replaced_by_an_unrelated_one_is_refused(matcher: TurnMatcher) -> None:
    # Two wishes in words that share nothing score as unrelated turns; each side then has
    # a turn the other lacks, which is a replacement, not chatter added on one side.
    ours = ORDER.replace("I would like a replacement please", "just refund everything today")
    assert await matcher.compare(ours, ORDER) == "replaced"
    assert await matcher.compare(ORDER, ours) == "replaced"


async def test_chatter_on_both_sides_is_not_a_replacement(matcher: TurnMatcher) -> None:
    ours = ORDER + "\nassistant: anything else?\nuser: thanks!"
    theirs = "user: hi there\n" + ORDER + "\nuser: ok, one sec"
    assert await matcher.compare(ours, theirs) is None


@pytest.mark.parametrize(
    "aside",
    [
        # About something else: the cache cannot tell it from the two below.
        "user: also, are your stores open on sunday mornings?\nassistant: Yes, from ten until four.\n",
        # An instruction the answer follows.
        "user: from now on please answer in french\nassistant: D'accord.\n",
        # Someone's details the answer may repeat.
        "user: my name is alice jones, email alice.jones@example.com\nassistant: Noted, Alice.\n",
    ],
)
async def test_an_exchange_that_says_something_on_one_side_only_is_another_conversation(
    matcher: TurnMatcher, aside: str
) -> None:
    # Stored with it: the answer may have followed it, and must not reach a conversation
    # without it. Asked with it: the stored answer never saw it.
    assert await matcher.compare(aside + ORDER, ORDER) == "extra"
    assert await matcher.compare(ORDER, aside + ORDER) == "extra"
    assert await matcher.compare(ORDER + "\n" + aside.strip(), ORDER) == "extra"


DELAY = (
    "user: our flight mr 602 on 3 august landed 3 hours late, can we claim?\n"
    "assistant: I can see booking zt4k9p, two passengers on mr 602 on 3 august. The delay "
    "was caused by a crew shortage, which was within the airline's control."
)


async def test_a_long_turn_edited_in_one_phrase_is_a_change(matcher: TurnMatcher) -> None:
    # The shared words dominate the turn's vector; the edit is what matters.
    edited = DELAY.replace("a crew shortage, which was within", "a strike, outside")
    assert await matcher.compare(edited, DELAY) == "changed"


async def test_a_count_edited_in_a_turn_that_repeats_it_elsewhere_is_a_change(
    matcher: TurnMatcher,
) -> None:
    loan = (
        "user: can I keep the book longer?\n"
        "assistant: It has been renewed once; a loan can be renewed up to 3 times, as long "
        "as no one else has reserved the book."
    )
    edited = loan.replace("renewed once;", "renewed 3 times;")
    assert await matcher.compare(edited, loan) == "changed"


async def test_the_same_words_in_another_order_are_a_change(matcher: TurnMatcher) -> None:
    keep = "user: I was going to cancel it because of work, but I decided to keep it"
    cancel = "user: I was going to keep it, but because of work I decided to cancel it"
    assert await matcher.compare(keep, cancel) == "changed"


async def test_punctuation_and_case_in_a_long_turn_are_no_edit(matcher: TurnMatcher) -> None:
    retyped = DELAY.replace("The delay was", "the delay was").replace("mr 602 on", "mr 602, on")
    assert await matcher.compare(retyped, DELAY) is None


async def test_turn_vectors_are_remembered() -> None:
    embedder = HashingTestEmbedder()
    matcher = TurnMatcher(embedder.embed)
    await matcher.compare(ORDER, ORDER + "\nuser: thanks")
    texts = embedder.texts_embedded
    await matcher.compare(ORDER, ORDER + "\nuser: thanks")
    assert embedder.texts_embedded == texts


async def test_through_the_cache_a_padded_conversation_hits_and_a_swapped_one_does_not() -> None:
    settings = Settings.from_env({}, context_mode="turns", threshold=0.7, batch_max_size=1)
    async with SemanticCache(settings, embedder=HashingTestEmbedder()) as cache:
        question = "how long will the replacement take"
        await cache.store(question, b"3-5 days", context=ORDER)
        padded = ORDER + "\nassistant: anything else?\nuser: no that's all, thanks"
        assert await cache.lookup(question, context=padded) is not None
        swapped = ORDER.replace("48213", "48231")
        assert await cache.lookup(question, context=swapped) is None
        assert await cache.lookup(question) is None  # a first question never matches


async def test_a_conversation_over_the_turn_bound_is_never_matched_by_meaning(
    matcher: TurnMatcher,
) -> None:
    long = "\n".join(f"user: question number {i} about the order" for i in range(MAX_TURNS + 1))
    assert await matcher.compare(long, long + "\nuser: thanks") == "too-long"


def test_the_number_of_earlier_turns_is_not_part_of_the_partition() -> None:
    # Chatter adds turns; in the meaning-based context modes the turns are matched by the
    # context, so only one placeholder stands for them in what the partition hashes.
    from semcache.http.extract import extract

    short = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "my order 48213 is late"},
            {"role": "assistant", "content": "sorry, checking"},
            {"role": "user", "content": "how long will it take"},
        ],
    }
    padded = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello!"},
            {"role": "user", "content": "my order 48213 is late"},
            {"role": "assistant", "content": "sorry, checking"},
            {"role": "user", "content": "how long will it take"},
        ],
    }
    a, b = extract(short), extract(padded)
    assert a is not None and b is not None
    assert a.rest_without_context == b.rest_without_context
    assert a.rest != b.rest  # exact context mode: still another partition
    other_system = {
        **padded,
        "messages": [{"role": "system", "content": "be verbose"}, *padded["messages"][1:]],
    }
    c = extract(other_system)
    assert c is not None and c.rest_without_context != b.rest_without_context


class _ShortWindow(HashingTestEmbedder):
    """Reads texts of up to 200 characters (a model's input window, in small)."""

    def fits(self, text: str) -> bool:
        return len(text) <= 200


async def test_a_turn_longer_than_the_models_window_makes_the_lookup_exact_only() -> None:
    settings = Settings.from_env({}, context_mode="turns", threshold=0.7, batch_max_size=1)
    long_turn = "user: here is my contract: " + "clause " * 60 + "end"
    context = ORDER + "\n" + long_turn
    async with SemanticCache(settings, embedder=_ShortWindow()) as cache:
        question = "how long will the replacement take"
        await cache.store(question, b"3-5 days", context=context)
        # The same conversation and question: an exact hit, never embedded nor compared.
        assert await cache.lookup(question, context=context) is not None
        # Padded with chatter, it would match by meaning; with a turn the model cannot
        # read whole, only its exact repeat is served.
        assert await cache.lookup(question, context=context + "\nuser: thanks!") is None
        # Its short-turn twin is matched by meaning as usual.
        await cache.store(question, b"3-5 days", context=ORDER, partition="p")
        assert await cache.lookup(question + "?", context=ORDER + "\nuser: thanks", partition="p")


def _long_conversation(seed: int, turns: int = MAX_TURNS) -> str:
    """``turns`` long turns (each analysed afresh: too long for the analysis cache)."""
    words = "order refund screen cracked battery laptop invoice delivery address cancel"
    vocab = words.split()
    lines = []
    for i in range(turns):
        body = " ".join(vocab[(seed + i * 7 + k * 3) % len(vocab)] for k in range(250))
        lines.append(f"{('user', 'assistant')[i % 2]}: turn {i} {body}")
    return "\n".join(lines)


async def test_long_conversations_are_compared_off_the_event_loop() -> None:
    # Forty turns of ~1800 characters are hundreds of text analyses per candidate (top_k
    # per lookup, every lookup): on the loop they would stall every other request.
    embedder = HashingTestEmbedder()
    matcher = TurnMatcher(embedder.embed, match_at=0.75, related_at=0.45)
    ours = _long_conversation(0, MAX_TURNS - 1)
    theirs = ours + "\nuser: thanks"
    await matcher.compare(ours, theirs)  # the turn vectors are remembered now
    compare = asyncio.create_task(matcher.compare(ours, theirs))
    others_ran = 0
    while not compare.done():
        others_ran += 1
        await asyncio.sleep(0)
    assert compare.result() is None
    assert others_ran > 1  # the loop served other tasks while the turns were compared


async def test_turn_vectors_evicted_while_a_comparison_waits_for_the_model() -> None:
    # Another lookup's turns may push this one's remembered vectors out while it waits
    # for the model to embed its new turns: the comparison still completes.
    embedder = HashingTestEmbedder()
    gate = asyncio.Event()
    waiting = asyncio.Event()
    held = False

    async def embed(texts: list[str]) -> Any:
        if held:
            waiting.set()
            await gate.wait()
        return await embedder.embed(texts)

    matcher = TurnMatcher(embed, match_at=0.75, related_at=0.45, remember=4)
    await matcher.compare(ORDER, ORDER + "\nuser: thanks")  # its turns are remembered
    held = True
    first = asyncio.create_task(matcher.compare(ORDER, ORDER + "\nuser: one more thing"))
    await waiting.wait()
    held = False
    other = "user: my router drops\nassistant: restart it\nuser: still drops\nassistant: ok"
    await matcher.compare(other, other + "\nuser: cheers")  # evicts ORDER's turns
    gate.set()
    assert await first is None
