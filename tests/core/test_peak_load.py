"""Peaks keep their hits: time queued behind the process's own backlog is not a component
failure, and past a bound the embedding queue sheds to the exact path instead."""

from __future__ import annotations

import asyncio
import time

from semcache import SemanticCache, Settings
from semcache.budget import CallBudget, LoopLagMonitor, current_call, waiting_for_capacity
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder, SlowEmbedder

QUESTIONS = [
    "how long does shipping to canada take",
    "can I return a swimsuit after wearing it",
    "which payment cards do you accept online",
    "does the warranty cover a cracked phone screen",
    "how do I reset my account password",
    "where is your nearest store in berlin",
    "are gift cards refundable for cash",
    "what size charger does the laptop need",
    "can I change the delivery address after ordering",
    "do you ship fresh flowers on sundays",
    "how do I cancel my monthly subscription",
    "is there a student discount on software",
]


def _cache(embedder, responses=None, **overrides) -> SemanticCache:
    settings = Settings.from_env({}, **overrides)
    return SemanticCache(
        settings,
        embedder=embedder,
        vector_store=MemoryVectorStore(embedder.dimension),
        response_store=responses or MemoryResponseStore(),
        verifier=None,
    )


async def test_time_queued_for_the_model_is_not_the_models_failure():
    # Each model call is well inside its 150 ms budget, but twelve lookups at once queue
    # for up to 600 ms behind each other: that wait is ours, not the model's.
    cache = _cache(
        SlowEmbedder(0.1),
        embedder_timeout_ms=150,
        batch_max_size=2,
        batch_window_ms=0,
        lookup_timeout_ms=5000,
        breaker_failures=1,
    )
    async with cache:
        for q in QUESTIONS:
            await cache.store(q, q.encode())
        hits = await asyncio.gather(*(cache.lookup(q + " please") for q in QUESTIONS))
        assert cache.breakers["embedder"].state == "closed"
        assert cache.counters["errors"] == 0
        assert [h.payload if h else None for h in hits] == [q.encode() for q in QUESTIONS]


async def test_a_model_slow_on_its_own_still_opens_its_breaker():
    cache = _cache(SlowEmbedder(0.3), embedder_timeout_ms=100, breaker_failures=2)
    async with cache:
        for q in QUESTIONS[:2]:
            assert await cache.lookup(q) is None
        assert cache.breakers["embedder"].state == "open"


async def test_event_loop_lag_is_not_the_stores_failure():
    # The store answers in 10 ms, but the loop is blocked for 300 ms meanwhile (a
    # saturated process): its 100 ms budget runs out through no fault of its own.
    responses = FlakyStore(MemoryResponseStore())
    cache = _cache(HashingTestEmbedder(), responses, store_timeout_ms=100, breaker_failures=1)
    async with cache:
        await cache.store(QUESTIONS[0], b"answer")
        responses.delay = 0.01
        for _ in range(3):
            lookup = asyncio.get_running_loop().create_task(cache.lookup(QUESTIONS[0]))
            await asyncio.sleep(0.005)  # the lookup is waiting on the store
            time.sleep(0.3)  # noqa: ASYNC251 - the loop is blocked on purpose
            await lookup
        assert cache.counters["lag_timeouts"] >= 1
        assert cache.breakers["response store"].state == "closed"
        responses.delay = 0.0
        hit = await cache.lookup(QUESTIONS[0])
        assert hit is not None and hit.payload == b"answer"


async def test_a_store_slow_on_a_loop_that_keeps_up_still_opens_its_breaker():
    responses = FlakyStore(MemoryResponseStore())
    cache = _cache(HashingTestEmbedder(), responses, store_timeout_ms=50, breaker_failures=2)
    async with cache:
        responses.delay = 0.2
        for q in QUESTIONS[:2]:
            assert await cache.lookup(q) is None
        assert cache.breakers["response store"].state == "open"


async def test_past_the_queue_bound_lookups_take_the_exact_path_and_say_so():
    embedder = SlowEmbedder(0.05)
    cache = _cache(embedder, batch_max_size=2, batch_queue_max_ms=120, lookup_timeout_ms=10_000)
    async with cache:
        await cache.store("the stored question", b"stored answer")
        stored_calls = embedder.calls
        # Twenty new questions at once: the model measured at 50 ms a text, the queue
        # would reach a second; the ones past 120 ms of expected wait are not embedded.
        results = await asyncio.gather(
            *(cache.lookup(q) for q in QUESTIONS + ["the stored question"] * 8)
        )
        shed = cache.counters["lookups_shed_to_exact"]
        assert shed >= 10
        assert embedder.calls - stored_calls <= len(QUESTIONS) - shed + 1
        # The cheap hits are kept: every exact repeat was answered.
        assert [r.payload for r in results[len(QUESTIONS) :]] == [b"stored answer"] * 8
        assert cache.breakers["embedder"].state == "closed"


async def test_a_store_past_the_queue_bound_keeps_its_exact_answer():
    embedder = SlowEmbedder(0.05)
    cache = _cache(embedder, batch_max_size=2, batch_queue_max_ms=120, lookup_timeout_ms=10_000)
    async with cache:
        await cache.lookup("warm the model up")  # measures its time per text
        ids = await asyncio.gather(*(cache.store(q, q.encode()) for q in QUESTIONS))
        assert all(ids)
        assert cache.counters["stores_shed_to_exact"] >= 5
        for q in QUESTIONS:  # every answer is there for its exact repeat
            hit = await cache.lookup(q)
            assert hit is not None and hit.payload == q.encode()


async def test_waiting_for_capacity_moves_the_components_budget():
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 1.0
    async with asyncio.timeout(0.05) as timeout:
        call = CallBudget(0.05, deadline, timeout)
        with waiting_for_capacity(call):
            assert call.started_at is None
            assert timeout.when() > loop.time() + 0.5  # the caller's deadline only
            await asyncio.sleep(0.1)  # longer than the component's own budget
        assert call.started_at is not None
        assert timeout.when() <= loop.time() + 0.05
    assert current_call() is None
    with waiting_for_capacity():  # outside a cache call: nothing to move
        pass


async def test_loop_lag_monitor_sees_a_blocked_loop():
    monitor = LoopLagMonitor(interval=0.01)
    monitor.start()
    try:
        with monitor.watching():
            await asyncio.sleep(0.05)
            since = time.monotonic()
            assert monitor.worst_since(since) < 0.05
            time.sleep(0.2)  # noqa: ASYNC251 - the loop is blocked on purpose
            assert monitor.worst_since(since) >= 0.15  # the overdue wake counts at once
            await asyncio.sleep(0.02)
            assert monitor.worst_since(since) >= 0.15
            assert monitor.worst_since(time.monotonic()) < 0.05
    finally:
        await monitor.stop()


async def test_loop_lag_monitor_sees_a_block_before_its_first_wake():
    monitor = LoopLagMonitor(interval=0.01)
    monitor.start()
    try:
        since = time.monotonic()
        with monitor.watching():
            time.sleep(0.2)  # noqa: ASYNC251 - blocked before the sampler ever ran
            assert monitor.worst_since(since) >= 0.15
    finally:
        await monitor.stop()


async def test_an_idle_cache_does_not_wake_the_loop_to_sample_it():
    cache = _cache(HashingTestEmbedder())
    async with cache:
        await cache.store(QUESTIONS[0], b"answer")
        assert await cache.lookup(QUESTIONS[0]) is not None
        # The sampler notes its last wake and stops once no call is in flight.
        for _ in range(100):
            if not cache.loop_lag.sampling:
                break
            await asyncio.sleep(cache.loop_lag.interval)
        assert not cache.loop_lag.sampling


async def test_calls_queued_behind_a_stuck_model_give_up_with_it():
    # The wait behind a model call that is past its own budget is the model's fault:
    # queued lookups are misses at once, not after the whole lookup budget.
    from semcache.testing import StalledEmbedder

    cache = _cache(
        StalledEmbedder(), embedder_timeout_ms=200, lookup_timeout_ms=5000, breaker_failures=100
    )
    async with cache:
        started = time.perf_counter()
        results = await asyncio.gather(*(cache.lookup(q) for q in QUESTIONS[:6]))
        assert results == [None] * 6
        assert time.perf_counter() - started < 1.5
