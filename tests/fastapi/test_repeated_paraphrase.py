"""Through the FastAPI middleware: a paraphrase asked again costs no embedding."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from fastapi import FastAPI, Request
from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware
from tests.support.scenarios.harness import settings_for_tests

Q = {"query": "What is the capital of France?"}
PARAPHRASE = {"query": "tell me what is the capital of France"}


async def test_repeated_paraphrase_is_an_exact_hit_with_no_embedding() -> None:
    embedder = HashingTestEmbedder()
    cache = SemanticCache(settings_for_tests(), embedder=embedder)
    calls: list[Any] = []
    app = FastAPI()
    app.add_middleware(SemanticCacheMiddleware, cache=cache)

    @app.post("/ask")
    async def ask(request: Request) -> dict[str, Any]:
        calls.append(await request.json())
        return {"answer": "Paris", "n": len(calls)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.post("/ask", json=Q)).headers["x-semcache"] == "miss"
        first = await c.post("/ask", json=PARAPHRASE)
        assert first.headers["x-semcache"] == "hit"
        assert float(first.headers["x-semcache-similarity"]) < 1.0  # a semantic hit
        for _ in range(100):  # the alias is written in the background
            if not cache._background:
                break
            await asyncio.sleep(0.01)
        embedded = embedder.calls
        for _ in range(3):
            again = await c.post("/ask", json=PARAPHRASE)
            assert again.headers["x-semcache"] == "hit"
            assert again.json() == {"answer": "Paris", "n": 1}
            assert again.headers["x-semcache-entry"] == first.headers["x-semcache-entry"]
        assert embedder.calls == embedded  # no embedding for the repeats
        assert cache.counters["exact_hits"] == 3
        assert len(calls) == 1
    await cache.close()
