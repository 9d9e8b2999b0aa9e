"""Breakers leave every state correctly, even when a call is cancelled or a budget runs out."""

from __future__ import annotations

import asyncio

import pytest

from semcache import SemanticCache, Settings
from semcache.breaker import CircuitBreaker
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder, StalledEmbedder


def test_a_cancelled_half_open_trial_lets_the_next_call_try_again():
    breaker = CircuitBreaker("embedder", failures=1, cooldown=0.0)
    breaker.record_failure("boom")
    assert breaker.state == "half-open"
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # one trial at a time
    breaker.record_cancelled()
    assert breaker.allow()


async def test_a_lookup_cancelled_during_the_trial_does_not_wedge_the_breaker():
    settings = Settings.from_env(
        {}, breaker_failures=1, breaker_cooldown_ms=0, embedder_timeout_ms=60_000, batch_max_size=1
    )
    async with SemanticCache(settings, embedder=StalledEmbedder(), verifier=None) as cache:
        breaker = cache.breakers["embedder"]
        breaker.record_failure("earlier failure")
        lookup = asyncio.get_running_loop().create_task(cache.lookup("how do I reset it"))
        for _ in range(200):  # until the trial call is running
            if not breaker.allow():
                break
            breaker.record_cancelled()  # undo our own probe
            await asyncio.sleep(0.005)
        lookup.cancel()  # as the sync bridge does when its budget runs out
        with pytest.raises(asyncio.CancelledError):
            await lookup
        assert breaker.allow(), "the breaker refuses forever after a cancelled trial"


async def test_a_store_slow_only_because_the_lookup_budget_ran_out_is_not_charged():
    responses = FlakyStore(MemoryResponseStore())
    settings = Settings.from_env(
        {}, lookup_timeout_ms=300, store_timeout_ms=250, breaker_failures=1, batch_max_size=1
    )
    cache = SemanticCache(
        settings,
        embedder=HashingTestEmbedder(),
        vector_store=MemoryVectorStore(256),
        response_store=responses,
        verifier=None,
    )
    async with cache:
        responses.delay = 0.2  # each call within its own 250 ms, two of them are not
        await cache.lookup("what is the refund policy")
        assert cache.breakers["response store"].state == "closed"
        responses.delay = 0.4  # over its own budget: that is the store's fault
        await cache.lookup("what is the refund policy")
        assert cache.breakers["response store"].state == "open"
