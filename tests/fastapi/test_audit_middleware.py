"""Audits in the ASGI middleware: the shadow call is a second call of the wrapped app,
after the answer was sent; its answer is compared, never stored nor passed on."""

from __future__ import annotations

from typing import Any

import httpx

from fastapi import FastAPI, Request
from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware
from tests.support.scenarios.harness import settings_for_tests

Q = {"query": "What is the capital of France?"}
PARAPHRASE = {"query": "tell me what is the capital of France"}


async def test_a_hit_is_audited_by_calling_the_app_again() -> None:
    cache = SemanticCache(settings_for_tests(), embedder=HashingTestEmbedder(), audit_rate=1.0)
    calls: list[Any] = []
    app = FastAPI()

    @app.post("/ask")
    async def ask(request: Request) -> dict[str, Any]:
        calls.append(await request.json())
        return {"answer": "Paris"}

    middleware = SemanticCacheMiddleware(app, cache=cache)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.post("/ask", json=Q)).headers["x-semcache"] == "miss"
        hit = await c.post("/ask", json=PARAPHRASE)
        assert hit.headers["x-semcache"] == "hit" and hit.json() == {"answer": "Paris"}
        await middleware.engine.drain(10)
    assert calls == [Q, PARAPHRASE]  # the shadow call: the same request, to the app
    assert middleware.engine.auditor.ledger.events()["agreed"] == 1
    assert cache.counters["stores"] == 1
    state = await cache.audit_state(hit.headers["x-semcache-entry"])
    assert state is not None and state.samples[0][1] is True
    await cache.close()
