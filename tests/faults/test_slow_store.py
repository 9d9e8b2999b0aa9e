"""A slow store or a stuck model never adds more than the configured budget to a request.

The proxy runs under uvicorn on a loopback port with its stores wrapped in
:class:`semcache.testing.FlakyStore`; once the stores are slowed down far past every
budget, each request still gets the upstream's answer, within the budget that should
bind. The other budgets in play are set far longer, so a request that waits on the
wrong one (or on the injected delay) takes several times longer than one that waits on
the right one; the bound lies halfway between, which a busy two-core machine does not
reach. The breaker then stops calling the slow store, and the cache hits again once the
store is fast again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from semcache import SemanticCache
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.testing import FlakyStore, HashingTestEmbedder, StalledEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.scenarios.harness import settings_for_tests
from tests.support.servers import serve_asgi

from .conftest import CHAT, chat

STALL_S = 30.0
"""Injected delay: far past every budget, so only the budget can explain a fast answer."""
OTHER_BUDGET_MS = 6000
"""A budget that should not bind: set far past the one under test."""


def _ceiling(budget_s: float, next_s: float) -> float:
    """Halfway from the budget that should bind to the shortest delay a broken build
    would show instead (``next_s``: another budget, or the stall), and at most a quarter
    of the stall."""
    assert next_s >= 4 * budget_s, "the budgets under test are too close to tell apart"
    return min(budget_s + (next_s - budget_s) / 2, STALL_S / 4)


def _proxy(
    upstream: str, *, slow: str, lookup_ms: int, store_ms: int, cooldown_ms: int = 2000
) -> tuple[Any, SemanticCache, list[FlakyStore]]:
    vectors = FlakyStore(MemoryVectorStore(256))
    responses = FlakyStore(MemoryResponseStore())
    settings = settings_for_tests(
        lookup_timeout_ms=lookup_ms,
        store_timeout_ms=store_ms,
        breaker_failures=3,
        breaker_cooldown_ms=cooldown_ms,
        batch_max_size=1,
    )
    cache = SemanticCache(
        settings,
        embedder=HashingTestEmbedder(),
        vector_store=vectors,
        response_store=responses,
        verifier=None,
    )
    slowed = {"vectors": [vectors], "responses": [responses], "both": [vectors, responses]}[slow]
    return create_semantic_cache_proxy_app(upstream, cache), cache, slowed


async def _timed(client: httpx.AsyncClient, question: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.post(CHAT, json=chat(question))
    return response, time.perf_counter() - started


def _answers(response: httpx.Response, question: str) -> bool:
    content = response.json()["choices"][0]["message"]["content"]
    return bool(response.status_code == 200 and content.endswith(f" to: {question}"))


@pytest.mark.parametrize("slow", ["vectors", "responses", "both"])
@pytest.mark.parametrize(
    ("lookup_ms", "store_ms"),
    [(300, 5000), (OTHER_BUDGET_MS, 150)],
    ids=["lookup-budget-binds", "store-budget-binds"],
)
def test_slow_store_adds_at_most_the_budget(slow: str, lookup_ms: int, store_ms: int) -> None:
    fake = FakeLLM()
    # The first store call that overruns its budget ends the lookup; two leave room.
    budget_s = min(lookup_ms, 2 * store_ms) / 1000
    # Broken, a request waits for the other budget (one store call, or the lookup).
    ceiling_s = _ceiling(budget_s, max(lookup_ms, store_ms) / 1000)
    with serve_asgi(fake.app) as upstream:
        app, cache, slowed = _proxy(upstream, slow=slow, lookup_ms=lookup_ms, store_ms=store_ms)
        with serve_asgi(app) as url:

            async def run() -> None:
                async with httpx.AsyncClient(base_url=url, timeout=STALL_S * 2) as client:
                    stored = "how do I export my data to csv"
                    first, _ = await _timed(client, stored)
                    assert first.headers["x-semcache"] == "miss"
                    hit, _ = await _timed(client, stored)
                    assert hit.headers["x-semcache"] == "hit"

                    for store in slowed:
                        store.delay = STALL_S
                    questions = [stored, stored + " please", "a question never asked before"]
                    # One at a time, then all at once: no request waits on the store.
                    for q in questions:
                        response, elapsed = await _timed(client, q)
                        assert _answers(response, q)
                        assert elapsed < ceiling_s, (q, elapsed, budget_s)
                    results = await asyncio.gather(
                        *(_timed(client, f"{stored} {i}") for i in range(8))
                    )
                    for i, (response, elapsed) in enumerate(results):
                        assert _answers(response, f"{stored} {i}")
                        assert elapsed < ceiling_s, (elapsed, budget_s)

                    if store_ms < lookup_ms:
                        # Store calls timed out one by one: the breaker opened, and the
                        # slow store is no longer called at all.
                        assert any(b.state == "open" for b in cache.breakers.values())
                        calls = sum(s.calls for s in slowed)
                        response, _ = await _timed(client, "while the breaker is open")
                        assert _answers(response, "while the breaker is open")
                        assert sum(s.calls for s in slowed) == calls

                    # Fast again: hits come back once the breaker lets a call through.
                    for store in slowed:
                        store.delay = 0.0
                    deadline = time.monotonic() + 10
                    while True:
                        response, _ = await _timed(client, stored)
                        if response.headers["x-semcache"] == "hit":
                            break
                        assert time.monotonic() < deadline, "the cache did not recover"
                        await asyncio.sleep(0.05)  # poll interval

            asyncio.run(run())
    assert fake.calls >= 1


def test_stuck_model_adds_at_most_the_embedder_budget() -> None:
    fake = FakeLLM()
    embedder_ms = 300
    # Broken, a request waits for the lookup budget (or for ever: the model is stuck).
    ceiling_s = _ceiling(embedder_ms / 1000, OTHER_BUDGET_MS / 1000)
    with serve_asgi(fake.app) as upstream:
        cache = SemanticCache(
            settings_for_tests(
                embedder_timeout_ms=embedder_ms,
                lookup_timeout_ms=OTHER_BUDGET_MS,
                breaker_failures=2,
            ),
            embedder=StalledEmbedder(),
            verifier=None,
        )
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url:

            async def run() -> None:
                async with httpx.AsyncClient(base_url=url, timeout=STALL_S) as client:
                    results = await asyncio.gather(
                        *(_timed(client, f"question number {i}") for i in range(6))
                    )
                    for i, (response, elapsed) in enumerate(results):
                        assert _answers(response, f"question number {i}")
                        assert response.headers["x-semcache"] == "miss"
                        assert elapsed < ceiling_s, (elapsed, embedder_ms)

            asyncio.run(run())
