"""semcache as LangChain's LLM cache: LangChain's fake chat model, sync and async.

The mechanics run on the hashing test embedder (threshold 0.8, the default verifier);
``test_real_model_*`` repeat the promise with all-MiniLM-L6-v2 where it is installed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langchain_core.caches import BaseCache
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration

import semcache_langchain
from semcache import SemanticCache, Settings, sync
from semcache.http.extract import extract
from semcache_langchain import LANGCHAIN_TAG, CacheKey, SemanticLLMCache
from tests.support.broken_caches import BrokenCache, GarbageCache
from tests.support.scenarios.harness import build_cache

QUESTION = "What is the capital of France?"
PARAPHRASE = "tell me what is the capital of France"
ANSWERS = [
    "Paris.",
    "second model call",
    "third model call",
    *(f"model call {n}" for n in range(4, 40)),
]


def chat_model(**kwargs: Any) -> FakeListChatModel:
    """A fake chat model answering ANSWERS in turn (``model.i`` counts its calls while
    fewer than ``len(ANSWERS)``): a cached answer does not advance it."""
    return FakeListChatModel(responses=list(ANSWERS), **kwargs)


def calls(model: FakeListChatModel | FakeListLLM) -> int:
    return model.i


# -- the package ------------------------------------------------------------------------


def test_exports() -> None:
    assert len(set(semcache_langchain.__all__)) == len(semcache_langchain.__all__)
    for name in semcache_langchain.__all__:
        assert getattr(semcache_langchain, name) is not None
    assert issubclass(SemanticLLMCache, BaseCache)


# -- hits and misses, sync and async --------------------------------------------------------


def test_sync_paraphrase_hits_trap_and_temperature_miss(test_cache: SemanticCache) -> None:
    set_llm_cache(SemanticLLMCache(test_cache))
    model = chat_model()
    assert model.invoke(QUESTION).content == "Paris."
    assert test_cache.counters["stores"] == 1

    hit = model.invoke(PARAPHRASE)
    assert hit.content == "Paris." and calls(model) == 1
    assert test_cache.counters["semantic_hits"] == 1
    assert model.invoke(QUESTION).content == "Paris." and calls(model) == 1  # exact repeat

    # Another temperature is another partition: the model is asked.
    assert model.bind(temperature=0.9).invoke(QUESTION).content == "second model call"
    assert calls(model) == 2


async def test_async_paraphrase_hits_trap_and_temperature_miss(test_cache: SemanticCache) -> None:
    set_llm_cache(SemanticLLMCache(test_cache))
    model = chat_model()
    assert (await model.ainvoke(QUESTION)).content == "Paris."
    hit = await model.ainvoke(PARAPHRASE)
    assert hit.content == "Paris." and calls(model) == 1
    assert test_cache.counters["semantic_hits"] == 1
    other = await model.bind(temperature=0.9).ainvoke(PARAPHRASE)
    assert other.content == "second model call" and calls(model) == 2


@pytest.mark.parametrize(
    ("first", "trap"),
    [
        ("Is 17 a prime number?", "Is 21 a prime number?"),  # traps.jsonl number-1
        (
            "How do I enable two-factor authentication?",
            "How do I disable two-factor authentication?",
        ),
    ],
    ids=["number", "negation"],
)
def test_trap_does_not_hit(test_cache: SemanticCache, first: str, trap: str) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    model.invoke(first)
    assert model.invoke(trap).content == "second model call"
    # It was close enough to be a candidate: the verifier turned it down.
    assert test_cache.counters["rejected_by_verifier"] == 1
    assert test_cache.counters["semantic_hits"] == 0


async def test_async_trap_does_not_hit(test_cache: SemanticCache) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    await model.ainvoke("Is 17 a prime number?")
    assert (await model.ainvoke("Is 21 a prime number?")).content == "second model call"
    assert test_cache.counters["rejected_by_verifier"] == 1


def test_the_models_own_cache_parameter_wins_over_the_global_one(
    test_cache: SemanticCache,
) -> None:
    set_llm_cache(None)
    model = chat_model(cache=SemanticLLMCache(test_cache))
    model.invoke(QUESTION)
    assert model.invoke(PARAPHRASE).content == "Paris." and calls(model) == 1


def test_another_model_or_parameter_is_another_partition(test_cache: SemanticCache) -> None:
    cache = SemanticLLMCache(test_cache)
    model = chat_model(cache=cache)
    model.invoke(QUESTION)
    assert model.bind(stop=["\n"]).invoke(QUESTION).content == "second model call"
    other = FakeListChatModel(responses=["another model"], cache=cache)
    assert other.invoke(QUESTION).content == "another model"
    # A namespace (a tenant) is a partition of its own too.
    tenant = chat_model(cache=SemanticLLMCache(test_cache, namespace="tenant-b"))
    assert tenant.invoke(QUESTION).content == "Paris." and calls(tenant) == 1
    assert model.invoke(PARAPHRASE).content == "Paris." and calls(model) == 2


# -- conversations: the last human message is the question --------------------------------


def test_the_system_prompt_is_in_the_partition(test_cache: SemanticCache) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    model.invoke([SystemMessage("Answer in French."), HumanMessage(QUESTION)])
    hit = model.invoke([SystemMessage("Answer in French."), HumanMessage(PARAPHRASE)])
    assert hit.content == "Paris." and calls(model) == 1
    miss = model.invoke([SystemMessage("Answer in German."), HumanMessage(PARAPHRASE)])
    assert miss.content == "second model call"
    assert model.invoke(PARAPHRASE).content == "third model call"  # no system prompt


def test_earlier_turns_are_the_context(test_cache: SemanticCache) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    history = [HumanMessage("I am planning a trip."), AIMessage("Where to?")]
    model.invoke([*history, HumanMessage(QUESTION)])
    assert model.invoke([*history, HumanMessage(PARAPHRASE)]).content == "Paris."
    other = [HumanMessage("I am writing a novel."), AIMessage("What about?")]
    assert model.invoke([*other, HumanMessage(PARAPHRASE)]).content == "second model call"
    assert model.invoke(PARAPHRASE).content == "third model call"  # no history


def test_key_splits_a_conversation_like_the_proxy() -> None:
    cache = SemanticLLMCache(build_cache())
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("I am planning a trip."),
        AIMessage("Where to?"),
        HumanMessage(QUESTION),
    ]
    key = cache.key(dumps(messages), "llm-A")
    assert isinstance(key, CacheKey)
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "I am planning a trip."},
            {"role": "assistant", "content": "Where to?"},
            {"role": "user", "content": QUESTION},
        ]
    }
    found = extract(body)
    assert found is not None
    assert (
        (key.question, key.context)
        == (found.query, found.context)
        == (
            QUESTION,
            "user: I am planning a trip.\nassistant: Where to?",
        )
    )
    assert "Be brief." in key.partition and "llm-A" in key.partition
    assert QUESTION not in key.partition and "planning" not in key.partition
    # Only the question changes: same partition; another LLM string: another one.
    same = cache.key(dumps([*messages[:3], HumanMessage(PARAPHRASE)]), "llm-A")
    assert same is not None and same.partition == key.partition
    other = cache.key(dumps(messages), "llm-B")
    assert other is not None and other.partition != key.partition
    # No human message with text: nothing to look up or store.
    assert cache.key(dumps([SystemMessage("Be brief.")]), "llm-A") is None


async def test_semantic_context_mode_matches_paraphrased_turns() -> None:
    cache = build_cache(context_mode="semantic", context_threshold=0.8)
    try:
        model = chat_model(cache=SemanticLLMCache(cache))
        await model.ainvoke(
            [HumanMessage("I am planning a trip to Europe"), HumanMessage(QUESTION)]
        )
        again = [HumanMessage("i am planning a trip to europe!"), HumanMessage(PARAPHRASE)]
        assert (await model.ainvoke(again)).content == "Paris." and calls(model) == 1
        other = [HumanMessage("I am writing a novel about cats"), HumanMessage(PARAPHRASE)]
        assert (await model.ainvoke(other)).content == "second model call"
    finally:
        await sync.loop_thread().run_async(cache.close())


def test_completion_models_use_the_whole_prompt(test_cache: SemanticCache) -> None:
    llm = FakeListLLM(responses=list(ANSWERS), cache=SemanticLLMCache(test_cache))
    assert llm.invoke(QUESTION) == "Paris."
    assert llm.invoke(PARAPHRASE) == "Paris." and calls(llm) == 1
    assert llm.invoke("Is 17 a prime number?") == "second model call"


def test_a_hit_returns_what_the_model_returned(test_cache: SemanticCache) -> None:
    cache = SemanticLLMCache(test_cache)
    prompt, llm = dumps([HumanMessage(QUESTION)]), "llm"
    message = AIMessage("Paris.", response_metadata={"model_name": "m"}, id="run-1")
    cache.update(prompt, llm, [ChatGeneration(message=message, generation_info={"x": 1})])
    found = cache.lookup(dumps([HumanMessage(PARAPHRASE)]), llm)
    assert found is not None
    (generation,) = found
    assert isinstance(generation, ChatGeneration)
    assert generation.message.content == "Paris."
    assert generation.message.response_metadata == {"model_name": "m"}
    assert generation.generation_info == {"x": 1}


# -- clear ----------------------------------------------------------------------------------


def test_clear_empties_it_and_keeps_other_entries(test_cache: SemanticCache) -> None:
    cache = SemanticLLMCache(test_cache)
    set_llm_cache(cache)
    model = chat_model()
    model.invoke(QUESTION)
    # An answer another adapter stored in the same cache.
    sync.run(test_cache.store("How do I reset my password?", b"proxy answer"), 10)
    cache.clear()
    assert model.invoke(PARAPHRASE).content == "second model call"
    assert sync.run(test_cache.lookup("How do I reset my password?"), 10) is not None


async def test_aclear_empties_it(test_cache: SemanticCache) -> None:
    cache = SemanticLLMCache(test_cache)
    model = chat_model(cache=cache)
    await model.ainvoke(QUESTION)
    await cache.aclear()
    assert (await model.ainvoke(QUESTION)).content == "second model call"
    assert (await model.ainvoke(PARAPHRASE)).content == "second model call"


def test_entries_carry_the_langchain_tag(test_cache: SemanticCache) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    model.invoke(QUESTION)
    assert sync.run(test_cache.flush_where(path=LANGCHAIN_TAG), 10) == 1
    assert model.invoke(QUESTION).content == "second model call"


# -- where it runs: sync code, a running loop, the cache's own loop ---------------------------


async def test_sync_calls_work_inside_a_running_event_loop(test_cache: SemanticCache) -> None:
    model = chat_model(cache=SemanticLLMCache(test_cache))
    assert model.invoke(QUESTION).content == "Paris."  # sync, on this test's loop thread
    assert model.invoke(PARAPHRASE).content == "Paris." and calls(model) == 1
    assert (await model.ainvoke(PARAPHRASE)).content == "Paris."


def test_sync_calls_on_the_caches_own_loop_thread_do_not_deadlock(
    test_cache: SemanticCache,
) -> None:
    cache = SemanticLLMCache(test_cache)
    prompt, llm = dumps([HumanMessage(QUESTION)]), "llm"
    answer = [ChatGeneration(message=AIMessage("Paris."))]

    async def on_the_loop() -> Any:
        cache.update(prompt, llm, answer)  # stored in the background
        return cache.lookup(prompt, llm)  # cannot wait for its own loop: a miss

    started = time.monotonic()
    assert sync.run(on_the_loop(), 10) is None
    assert time.monotonic() - started < 5
    sync.loop_thread().drain(10)
    found = cache.lookup(prompt, llm)
    assert found is not None and found[0].text == "Paris."


def test_sync_calls_from_threads(test_cache: SemanticCache) -> None:
    from concurrent.futures import ThreadPoolExecutor

    model = chat_model(cache=SemanticLLMCache(test_cache))
    model.invoke(QUESTION)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: model.invoke(PARAPHRASE).content, range(8)))
    assert answers == ["Paris."] * 8 and calls(model) == 1


def test_the_shared_cache_and_a_factory() -> None:
    settings = Settings.from_env(
        {},
        embedder_type="testing-hash",
        vector_store="memory",
        response_store="memory",
        threshold=0.8,
        prefix="langchain-shared",
    )
    shared = SemanticLLMCache(settings=settings)
    assert shared.cache is sync.shared_cache(settings)
    built: list[SemanticCache] = []

    def factory() -> SemanticCache:
        built.append(build_cache())
        return built[-1]

    cache = SemanticLLMCache(factory)
    model = chat_model(cache=cache)
    model.invoke(QUESTION)
    assert model.invoke(PARAPHRASE).content == "Paris."
    assert len(built) == 1 and cache.cache is built[0]


# -- a cache problem never fails a model call ------------------------------------------------


class StalledCache(BrokenCache):
    """Lookups and stores that never answer."""

    async def lookup(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)

    async def store(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)


@pytest.mark.parametrize("broken", [BrokenCache, GarbageCache], ids=["raises", "garbage"])
def test_a_broken_cache_fails_open(broken: type[BrokenCache]) -> None:
    model = chat_model(cache=SemanticLLMCache(broken()))  # type: ignore[arg-type]
    assert model.invoke(QUESTION).content == "Paris."
    assert model.invoke(QUESTION).content == "second model call"


@pytest.mark.parametrize("broken", [BrokenCache, GarbageCache], ids=["raises", "garbage"])
async def test_a_broken_cache_fails_open_async(broken: type[BrokenCache]) -> None:
    model = chat_model(cache=SemanticLLMCache(broken()))  # type: ignore[arg-type]
    assert (await model.ainvoke(QUESTION)).content == "Paris."
    assert (await model.ainvoke(QUESTION)).content == "second model call"


async def test_a_stalled_cache_fails_open_within_the_timeout() -> None:
    model = chat_model(cache=SemanticLLMCache(StalledCache(), timeout=0.2))  # type: ignore[arg-type]
    started = time.monotonic()
    assert model.invoke(QUESTION).content == "Paris."
    assert (await model.ainvoke(QUESTION)).content == "second model call"
    assert time.monotonic() - started < 3  # two lookups and two stores, 0.2 s each


def test_a_cache_that_cannot_be_built_fails_open() -> None:
    def factory() -> SemanticCache:
        raise RuntimeError("no database")

    model = chat_model(cache=SemanticLLMCache(factory))
    assert model.invoke(QUESTION).content == "Paris."
    assert model.invoke(QUESTION).content == "second model call"


def test_an_unreadable_prompt_fails_open(test_cache: SemanticCache) -> None:
    cache = SemanticLLMCache(test_cache)
    bogus = '[{"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}]'
    answer = [ChatGeneration(message=AIMessage("x"))]
    cache.update(bogus, "llm", answer)  # a class outside the allowed messages: not revived
    assert cache.lookup(bogus, "llm") is None
    assert test_cache.counters["stores"] == 0


# -- the real model ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_real_model_paraphrase_hits_traps_and_temperature_miss(real_embedder: Any) -> None:
    settings = Settings.from_env({}, vector_store="memory", response_store="memory")
    cache = SemanticCache(settings, embedder=real_embedder)
    try:
        set_llm_cache(SemanticLLMCache(cache))
        model = chat_model()
        assert model.invoke("How do I reset my password?").content == "Paris."
        hit = model.invoke("What are the steps to reset my password?")
        assert hit.content == "Paris." and calls(model) == 1
        assert (await model.ainvoke("how can I reset my password")).content == "Paris."

        model.invoke("How do I enable two-factor authentication?")  # traps.jsonl negation-2
        trap = model.invoke("How do I disable two-factor authentication?")
        assert trap.content == "third model call"
        model.invoke("Is 17 a prime number?")  # traps.jsonl number-1
        assert (await model.ainvoke("Is 21 a prime number?")).content == "model call 5"

        hot = model.bind(temperature=1.5)
        assert hot.invoke("What are the steps to reset my password?").content == "model call 6"
        assert calls(model) == 6
    finally:
        await sync.loop_thread().run_async(cache.close())
