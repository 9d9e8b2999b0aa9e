"""The grey zone through the cache: a real chat server judges, the rules go first.

Similarities are the test embedder's (threshold 0.9, floor 0.55): "how can i change my
password" is 0.66 from "how do i reset my password" (a paraphrase: the fake judge says
yes), "how do i reset my router" 0.81 (another request: no). The traps (negation 0.88,
a swapped number 0.80) are within the grey zone too, and the fake judge would say yes to
the number trap: only the rules keep them from it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from semcache.verify.judge import GreyZoneVerifier
from tests.judge._fake_judges import FakeJudge
from tests.judge.conftest import THRESHOLD, make_cache

STORED = "How do I reset my password?"
PARAPHRASE = "How can I change my password?"
OTHER = "How do I reset my router?"


async def test_a_paraphrase_below_the_threshold_is_served_only_with_the_judge(
    openai_fake: FakeJudge,
) -> None:
    async with make_cache(None) as plain:
        await plain.store(STORED, b"use the reset link")
        assert await plain.lookup(PARAPHRASE) is None

    async with make_cache(openai_fake) as cache:
        assert isinstance(cache.verifier, GreyZoneVerifier)
        await cache.store(STORED, b"use the reset link")
        hit = await cache.lookup(PARAPHRASE)
        assert hit is not None and hit.payload == b"use the reset link"
        assert 0.55 <= hit.similarity < THRESHOLD
        # The paraphrase the judge won is an exact key now: its repeats cost no judge call.
        while cache._background:
            await asyncio.gather(*cache._background)
        again = await cache.lookup(PARAPHRASE)
        assert again is not None and again.source == "exact"
        stats = await cache.stats()
    assert openai_fake.state.pairs == [
        ("how do i reset my password", "how can i change my password")
    ]
    judge = stats["judge"]
    assert judge["calls"] == 1 and judge["yes"] == 1 and judge["hits_won"] == 1
    assert judge["tokens"] == 121  # the usage the server reported
    assert judge["cost_usd"] == pytest.approx(121 * 2.0 / 1_000_000)


async def test_a_no_rejects_the_candidate_with_rule_judge(openai_fake: FakeJudge) -> None:
    async with make_cache(openai_fake) as cache:
        await cache.store(STORED, b"use the reset link")
        assert await cache.lookup(OTHER) is None
        stats = await cache.stats()
    assert len(openai_fake.state.requests) == 1
    assert stats["rejections"] == {"judge": 1}
    assert stats["judge"]["no"] == 1 and stats["judge"]["hits_won"] == 0


@pytest.mark.parametrize(
    ("stored", "asked", "rule"),
    [
        (
            "Please cancel my subscription today",
            "Please do not cancel my subscription today",
            "negation",
        ),
        ("Is 17 a prime number?", "Is 21 a prime number?", "number"),
    ],
)
async def test_a_hard_rule_is_final_and_never_reaches_the_judge(
    openai_fake: FakeJudge, stored: str, asked: str, rule: str
) -> None:
    async with make_cache(openai_fake) as cache:
        await cache.store(stored, b"stored answer")
        assert await cache.lookup(asked) is None
        stats = await cache.stats()
    assert openai_fake.state.requests == []
    assert stats["rejections"] == {rule: 1}
    assert stats["judge"]["calls"] == 0


async def test_a_candidate_the_rules_accept_above_the_threshold_skips_the_judge(
    openai_fake: FakeJudge,
) -> None:
    async with make_cache(openai_fake) as cache:
        await cache.store(STORED, b"use the reset link")
        hit = await cache.lookup("how do i reset my password please")
        assert hit is not None and hit.similarity >= THRESHOLD
    assert openai_fake.state.requests == []


async def test_a_judge_that_never_answers_is_no_opinion_and_a_miss(openai_fake: FakeJudge) -> None:
    openai_fake.state.hang = True
    async with make_cache(openai_fake, judge_timeout_ms=200) as cache:
        await cache.store(STORED, b"use the reset link")
        assert await cache.lookup(PARAPHRASE) is None
        stats = await cache.stats()
    assert len(openai_fake.state.requests) == 1
    assert stats["judge"]["no_opinion"] == 1
    # Below the threshold without the judge's yes: a miss by the threshold, not a failure.
    assert stats["rejections"] == {"threshold": 1}
    assert stats["errors"] == 0


async def test_once_the_budget_is_spent_the_judge_is_not_called(openai_fake: FakeJudge) -> None:
    async with make_cache(openai_fake, judge_budget=2) as cache:
        await cache.store(STORED, b"use the reset link")
        asked = [PARAPHRASE, "how could i change my password", "how should i change my password"]
        hits = [await cache.lookup(question) for question in asked]
        stats = await cache.stats()
    assert len(openai_fake.state.requests) == 2
    assert [h is not None for h in hits] == [True, True, False]
    assert stats["judge"]["calls"] == 2 and stats["judge"]["over_budget"] == 1


async def test_the_ollama_chat_api_judges_too(ollama_fake: FakeJudge) -> None:
    async with make_cache(ollama_fake, api="ollama") as cache:
        await cache.store(STORED, b"use the reset link")
        assert await cache.lookup(PARAPHRASE) is not None
        assert await cache.lookup(OTHER) is None
        stats = await cache.stats()
    body = ollama_fake.state.requests[0]
    assert body["stream"] is False and body["model"] == "tiny-judge"
    assert body["options"] == {"temperature": 0, "num_predict": 4}
    assert stats["judge"]["tokens"] == 2 * 102  # prompt_eval_count + eval_count, per call


async def test_the_request_is_short_deterministic_and_the_key_never_logged(
    openai_fake: FakeJudge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    openai_fake.state.status = 401
    async with make_cache(openai_fake) as cache:
        await cache.store(STORED, b"use the reset link")
        assert await cache.lookup(PARAPHRASE) is None
        shown = repr(cache.settings) + repr(cache.verifier.judge)  # type: ignore[union-attr]
    body = openai_fake.state.requests[0]
    assert body["temperature"] == 0 and body["max_tokens"] == 4
    assert body["messages"][0]["role"] == "system"
    assert openai_fake.state.headers[0]["authorization"] == "Bearer sk-judge-secret-7"
    assert "sk-judge-secret-7" not in caplog.text + shown


GREY = ["How do I reset my password?", "How do I reset my account?", "How do I reset my email?"]
"""0.81, 0.82 and 0.82 from OTHER: three grey-zone candidates the fake judge says no to."""


@pytest.mark.parametrize("cap", [None, 2])
async def test_one_lookup_asks_the_judge_about_its_best_candidates_only(
    openai_fake: FakeJudge, cap: int | None
) -> None:
    overrides = {} if cap is None else {"judge_max_calls_per_lookup": cap}
    async with make_cache(openai_fake, "openai", **overrides) as cache:
        for stored in GREY:
            await cache.store(stored, stored.encode())
        assert await cache.lookup(OTHER) is None
        stats = await cache.stats()
    asked = cap or 1  # the default: one call
    # Best first: "email" (0.824), then "account" (0.816).
    best = ["how do i reset my email", "how do i reset my account"][:asked]
    assert openai_fake.state.pairs == [(b, "how do i reset my router") for b in best]
    judge = stats["judge"]
    assert judge["calls"] == judge["no"] == asked
    assert judge["over_lookup_cap"] == len(GREY) - asked and judge["over_budget"] == 0
    # Past the cap, as without a judge: below the threshold, a miss by the threshold.
    assert stats["rejections"] == {"judge": asked, "threshold": len(GREY) - asked}


async def test_each_lookup_has_its_own_calls(openai_fake: FakeJudge) -> None:
    async with make_cache(openai_fake) as cache:
        for stored in GREY:
            await cache.store(stored, stored.encode())
        for _ in range(3):
            assert await cache.lookup(OTHER) is None
        stats = await cache.stats()
    assert len(openai_fake.state.pairs) == 3
    assert stats["judge"]["calls"] == 3 and stats["judge"]["over_lookup_cap"] == 3 * 2


async def test_a_hit_the_judge_won_says_so(openai_fake: FakeJudge) -> None:
    async with make_cache(openai_fake) as cache:
        await cache.store(STORED, b"use the reset link")
        won = await cache.lookup(PARAPHRASE)
        ruled = await cache.lookup("how do i reset my password please")
    assert won is not None and won.verdict == "judge"
    # The rules alone, at or above the threshold: the judge is not asked.
    assert ruled is not None and ruled.verdict == "verifier"
    assert len(openai_fake.state.pairs) == 1


async def test_a_hit_the_judge_won_after_a_closer_candidate_says_judge(
    openai_fake: FakeJudge,
) -> None:
    # The closer "modem" (0.83, turned down by the judge) spends no call on "router"
    # (0.73, the judge would say yes) unless the cap leaves one.
    for cap, verdict in ((1, None), (2, "judge")):
        openai_fake.state.pairs.clear()
        async with make_cache(openai_fake, judge_max_calls_per_lookup=cap) as cache:
            await cache.store("How do I reset my modem?", b"modem")
            await cache.store("How do you reset a router?", b"router")
            hit = await cache.lookup(OTHER)
        assert (None if hit is None else hit.verdict) == verdict
        assert len(openai_fake.state.pairs) == cap
        if hit is not None:
            assert hit.payload == b"router"
