"""How the judge is switched on, and the grey-zone rules with an in-process judge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semcache import SemanticCache, Settings
from semcache.errors import SettingsError
from semcache.testing import HashingTestEmbedder
from semcache.verify import DefaultVerifier
from semcache.verify.judge import SOFT_RULES, GreyZoneVerifier, JudgeBudget, judging
from semcache.verify.levels import Levels
from semcache_judge_llm import LLMJudge


class CountingJudge:
    """Says ``answer`` and counts the pairs it was asked about."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    async def same_answer(self, query: str, candidate: str) -> bool | None:
        self.asked.append((query, candidate))
        return self.answer

    async def aclose(self) -> None:
        pass


def test_off_by_default() -> None:
    cache = SemanticCache(Settings.from_env({}), embedder=HashingTestEmbedder())
    assert isinstance(cache.verifier, DefaultVerifier)


@pytest.mark.parametrize(("name", "inner"), [("default", DefaultVerifier), ("none", type(None))])
def test_the_setting_wraps_whatever_verifier_is_configured(name: str, inner: type) -> None:
    environ = {
        "SEMANTIC_CACHE_VERIFIER": name,
        "SEMANTIC_CACHE_JUDGE": "llm",
        "SEMANTIC_CACHE_JUDGE_URL": "http://127.0.0.1:9/v1",
        "SEMANTIC_CACHE_JUDGE_MODEL": "tiny-judge",
        "SEMANTIC_CACHE_JUDGE_FLOOR": "0.6",
        "SEMANTIC_CACHE_JUDGE_TIMEOUT_MS": "300",
        "SEMANTIC_CACHE_JUDGE_BUDGET": "5",
    }
    cache = SemanticCache(Settings.from_env(environ), embedder=HashingTestEmbedder())
    verifier = cache.verifier
    assert isinstance(verifier, GreyZoneVerifier) and isinstance(verifier.inner, inner)
    assert verifier.search_floor == 0.6 and verifier.timeout == 0.3
    assert verifier.budget.calls_per_minute == 5
    assert isinstance(verifier.judge, LLMJudge) and verifier.judge.timeout == 0.3


def test_an_openai_judge_needs_a_url_and_a_model() -> None:
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_JUDGE_URL"):
        SemanticCache(Settings.from_env({"SEMANTIC_CACHE_JUDGE": "llm"}))
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_JUDGE_MODEL"):
        SemanticCache(
            Settings.from_env({"SEMANTIC_CACHE_JUDGE": "llm", "SEMANTIC_CACHE_JUDGE_API": "ollama"})
        )


def test_only_the_topic_and_question_rules_are_soft() -> None:
    assert frozenset({"topic", "question"}) == SOFT_RULES


async def test_a_soft_rejection_above_the_threshold_goes_to_the_judge() -> None:
    # "capital of austria" / "capital of australia": one topic word, 0.91 < the rule's 0.92.
    judge = CountingJudge(False)
    verifier = GreyZoneVerifier(DefaultVerifier(), judge, threshold=0.85)
    verdict = await verifier.verdict("capital of austria", "capital of australia", 0.91)
    assert verdict.rule == "judge" and len(judge.asked) == 1
    judge.answer = None  # no opinion: the rule's own verdict stands
    verdict = await verifier.verdict("capital of austria", "capital of australia", 0.91)
    assert verdict.rule == "topic"


async def test_below_the_floor_the_judge_is_not_asked() -> None:
    judge = CountingJudge(True)
    verifier = GreyZoneVerifier(None, judge, floor=0.6, threshold=0.85)
    assert (await verifier.verdict("a b c", "a b d", 0.59)).rule == "threshold"
    assert (await verifier.verdict("a b c", "a b d", 0.6)).rule is None
    assert len(judge.asked) == 1 and verifier.counters["hits_won"] == 1


async def test_a_plain_verifiers_refusal_is_final() -> None:
    class RefuseAll:
        async def verify(self, query: str, candidate: str, similarity: float) -> bool:
            return False

    judge = CountingJudge(True)
    verifier = GreyZoneVerifier(RefuseAll(), judge, threshold=0.85)
    assert (await verifier.verdict("a", "b", 0.7)).rule == "verifier"
    assert judge.asked == []


async def test_a_routes_own_threshold_is_the_bar(tmp_path: object) -> None:
    judge = CountingJudge(None)
    verifier = GreyZoneVerifier(DefaultVerifier(), judge)
    settings = Settings.from_env({}, threshold=0.8, batch_max_size=1)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=verifier) as cache:
        assert verifier.threshold == 0.8  # told by the cache, and passed on
        assert isinstance(verifier.inner, DefaultVerifier) and verifier.inner.threshold == 0.8
        await cache.store("how do i reset my password", b"a")
        asked = "how do i reset my password please"  # 0.93, the rules accept it
        assert await cache.lookup(asked) is not None
        assert judge.asked == []
        # A route asking for 0.95: the same candidate is below its bar, so the judge is asked,
        # and without an opinion it is a miss.
        assert await cache.lookup(asked, threshold=0.95) is None
        assert len(judge.asked) == 1


async def test_the_budget_counts_calls_and_tokens_per_minute() -> None:
    now = [0.0]
    budget = JudgeBudget(2, tokens_per_minute=100, clock=lambda: now[0])
    assert budget.take() and budget.take() and not budget.take()
    now[0] = 60.0
    assert budget.take()
    budget.spend_tokens(100)
    assert not budget.take()  # the tokens are spent though a call is left
    now[0] = 121.0
    assert budget.take()


async def test_a_judge_that_never_returns_is_cut_off_by_the_verifiers_timeout() -> None:
    class Stuck:
        async def same_answer(self, query: str, candidate: str) -> bool | None:
            await asyncio.Event().wait()  # never set
            return True

        async def aclose(self) -> None:
            pass

    verifier = GreyZoneVerifier(DefaultVerifier(), Stuck(), timeout=0.05, threshold=0.85)
    # The outer bound only keeps a broken build from hanging the suite.
    verdict = await asyncio.wait_for(verifier.verdict("a b c", "a b c d", 0.7), 30)
    assert verdict.rule == "threshold"
    assert verifier.counters["calls"] == 1 and verifier.counters["no_opinion"] == 1


async def test_levels_for_another_model_leave_the_rules_under_the_judge_at_their_defaults(
    tmp_path: Path,
) -> None:
    path = tmp_path / "levels.json"
    path.write_text(Levels(threshold=0.61, top=0.97, model_id="some/other-model").to_json())
    settings = Settings.from_env(
        {},
        verifier_params=str(path),
        judge="llm",
        judge_url="http://127.0.0.1:9",
        judge_model="tiny-judge",
    )
    async with SemanticCache(settings, embedder=HashingTestEmbedder()) as cache:
        verifier = cache.verifier
        assert isinstance(verifier, GreyZoneVerifier)
        assert isinstance(verifier.inner, DefaultVerifier)
        assert verifier.inner.top == DefaultVerifier().top
        # The judge and the rules still agree on the threshold the cache uses.
        assert verifier.threshold == verifier.inner.threshold == cache.threshold


async def test_a_yes_on_earlier_turns_wins_no_hit_by_itself() -> None:
    judge = CountingJudge(True)
    verifier = GreyZoneVerifier(DefaultVerifier(), judge, threshold=0.85)
    assert await verifier.verify("i live in canada", "i live in ontario canada", 0.8)
    assert verifier.counters["yes"] == 1 and verifier.counters["hits_won"] == 0
    assert (await verifier.verdict("how do i cook rice", "how to cook rice fast", 0.8)).accepted
    assert verifier.counters["yes"] == 2 and verifier.counters["hits_won"] == 1


async def test_a_judge_that_never_returns_costs_no_hit_the_rules_would_serve() -> None:
    class Stuck:
        async def same_answer(self, query: str, candidate: str) -> bool | None:
            await asyncio.Event().wait()  # never set
            return True

        async def aclose(self) -> None:
            pass

    question = "best way to cook brown rice at home"
    # One word apart: refused by a strict topic rule (a soft rule: the judge is asked).
    near = [question + " " + word for word in ("fast", "slowly", "today")]
    # The same words and some filler: served by the rules, ranked below the three.
    reworded = "the best way to cook brown rice at home please thanks"

    def rules() -> DefaultVerifier:
        return DefaultVerifier(top=0.99)

    settings = Settings.from_env({}, threshold=0.8, batch_max_size=1)
    served: list[bytes | None] = []
    # Each of the three may be asked (the cap would stop at the first): the time bound is
    # what this is about.
    judged = GreyZoneVerifier(rules(), Stuck(), timeout=0.8, max_calls_per_lookup=len(near))
    for verifier in (rules(), judged):
        async with SemanticCache(
            settings, embedder=HashingTestEmbedder(), verifier=verifier
        ) as cache:
            for text in near:
                await cache.store(text, text.encode())
            await cache.store(reworded, b"rinse, then simmer 45 minutes")
            hit = await cache.lookup(question)
            served.append(None if hit is None else hit.payload)
    assert served[0] == b"rinse, then simmer 45 minutes"  # the rules alone
    assert served[1] == served[0]  # the judge, silent, must not cost that hit


def test_the_calls_per_lookup_default_to_one_and_come_from_the_setting() -> None:
    base = {
        "SEMANTIC_CACHE_JUDGE": "llm",
        "SEMANTIC_CACHE_JUDGE_URL": "http://127.0.0.1:9/v1",
        "SEMANTIC_CACHE_JUDGE_MODEL": "tiny-judge",
    }
    capped = base | {"SEMANTIC_CACHE_JUDGE_MAX_CALLS_PER_LOOKUP": "3"}
    for environ, calls in ((base, 1), (capped, 3)):
        cache = SemanticCache(Settings.from_env(environ), embedder=HashingTestEmbedder())
        verifier = cache.verifier
        assert isinstance(verifier, GreyZoneVerifier) and verifier.max_calls_per_lookup == calls


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_a_bad_calls_per_lookup_setting_fails_at_start_up(value: str) -> None:
    environ = {"SEMANTIC_CACHE_JUDGE": "llm", "SEMANTIC_CACHE_JUDGE_MAX_CALLS_PER_LOOKUP": value}
    with pytest.raises(SettingsError, match="SEMANTIC_CACHE_JUDGE_MAX_CALLS_PER_LOOKUP"):
        Settings.from_env(environ)
    with pytest.raises(ValueError, match="max_calls_per_lookup"):
        GreyZoneVerifier(None, CountingJudge(None), max_calls_per_lookup=0)


async def test_within_one_lookup_the_judge_is_asked_up_to_the_cap() -> None:
    judge = CountingJudge(None)  # no opinion: every candidate would go on to the judge
    verifier = GreyZoneVerifier(DefaultVerifier(), judge, threshold=0.85, max_calls_per_lookup=2)
    pairs = [("a b c", f"a b {word}", 0.8) for word in ("d", "e", "f")]
    with judging() as lookup:
        verdicts = [await verifier.verdict(*pair) for pair in pairs]
    assert [v.rule for v in verdicts] == ["threshold"] * 3  # past the cap: as without a judge
    assert judge.asked == [("a b c", "a b d"), ("a b c", "a b e")]
    assert lookup.calls == 2 and verifier.counters["over_lookup_cap"] == 1
    assert verifier.counters["over_budget"] == 0  # capped candidates take no budget
    # The next lookup has its calls again; outside one, each call stands alone.
    with judging():
        await verifier.verdict(*pairs[2])
    await verifier.verdict(*pairs[2])
    assert len(judge.asked) == 4


async def test_a_yes_is_tallied_for_its_lookup_only_when_it_wins_a_hit() -> None:
    judge = CountingJudge(True)
    verifier = GreyZoneVerifier(DefaultVerifier(), judge, threshold=0.85, max_calls_per_lookup=2)
    with judging() as lookup:
        assert await verifier.verify("i live in canada", "i live in ontario canada", 0.8)
        assert lookup.won == 0  # earlier turns: a yes there wins no hit by itself
        assert (await verifier.verdict("how do i cook rice", "how to cook rice fast", 0.8)).accepted
        assert lookup.won == 1 and lookup.calls == 2


async def test_concurrent_lookups_each_have_their_own_calls() -> None:
    class Yielding(CountingJudge):
        async def same_answer(self, query: str, candidate: str) -> bool | None:
            await asyncio.sleep(0)  # let the other lookup run in between
            return await super().same_answer(query, candidate)

    judge = Yielding(None)
    verifier = GreyZoneVerifier(DefaultVerifier(), judge)
    settings = Settings.from_env({}, threshold=0.9, batch_max_size=1)
    async with SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=verifier) as cache:
        for stored in ("password", "account", "email"):  # 0.81 to 0.82 from either question
            await cache.store(f"How do I reset my {stored}?", stored.encode())
        questions = ["How do I reset my router?", "How do I reset my modem?"]
        assert await asyncio.gather(*(cache.lookup(q) for q in questions)) == [None, None]
    # One call each: neither lookup spent the other's, and neither asked about all three.
    assert sorted(query for query, _ in judge.asked) == [
        "how do i reset my modem",
        "how do i reset my router",
    ]
    assert verifier.counters["over_lookup_cap"] == 4
