"""Two tenants hammer the same questions at once: zero cross-tenant hits.

The upstream names the tenant it was called for in every answer, so an answer that
reaches the other tenant is visible. Both tenants send the same questions, exact
repeats and paraphrases, concurrently, first through the proxy (tenant = the
``Authorization`` credential) and then through the middleware (tenant from a
server-side ``extract_partition``).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from semcache_fastapi import SemanticCacheMiddleware
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.servers import serve_asgi

from .conftest import CHAT, TenantEcho, chat, hashing_cache

QUESTIONS = [
    "how do I reset my password",
    "how do I export my data to csv",
    "what payment methods do you accept",
    "where can I download my invoices",
    "how long does shipping take",
]
ASKS = QUESTIONS + [q + " please" for q in QUESTIONS]
PER_TENANT = 120
WORKERS = 8


async def _hammer(
    url: str, tenants: dict[str, dict[str, str]], answer_tenant: Any
) -> Counter[tuple[str, str]]:
    """Every tenant's workers send ``PER_TENANT`` requests in all; returns
    (tenant, x-semcache) counts, asserting each answer is the asking tenant's."""
    seen: Counter[tuple[str, str]] = Counter()

    async def worker(tenant: str, headers: dict[str, str], seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
            for _ in range(PER_TENANT // WORKERS):
                question = rng.choice(ASKS)
                response = await client.post(CHAT, json=chat(question))
                assert response.status_code == 200, response.text
                data = response.json()
                assert answer_tenant(data) == tenant, (tenant, question, data)
                # Its own answer, or the stored one of the same question or its paraphrase.
                group = question.removesuffix(" please")
                assert data["question"].removesuffix(" please") == group, (question, data)
                seen[(tenant, response.headers["x-semcache"])] += 1

    await asyncio.gather(
        *(
            worker(tenant, headers, seed=1000 * t + i)
            for t, (tenant, headers) in enumerate(tenants.items())
            for i in range(WORKERS)
        )
    )
    return seen


def test_proxy_tenants_by_credential_never_share_answers() -> None:
    echo = TenantEcho(latency=0.02)
    cache = hashing_cache()
    tenants = {
        "Bearer key-a": {"Authorization": "Bearer key-a"},
        "Bearer key-b": {"Authorization": "Bearer key-b"},
    }
    with serve_asgi(echo.app) as upstream:
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url:
            seen = asyncio.run(_hammer(url, tenants, lambda data: data["tenant"]))
    for tenant in tenants:
        # Both tenants were served from the cache many times, each from its own entries.
        assert seen[(tenant, "hit")] > PER_TENANT // 2, seen
    assert cache.counters["semantic_hits"] > 0


def test_middleware_tenants_by_extract_partition_never_share_answers() -> None:
    echo = TenantEcho(latency=0.02)
    cache = hashing_cache()
    # The app resolves the tenant itself (here from a session header) and answers for it.
    app = Starlette(routes=[Route(CHAT, _tenant_endpoint(echo), methods=["POST"])])
    wrapped = SemanticCacheMiddleware(
        app, cache=cache, extract_partition=lambda request, body: request.headers.get("x-session")
    )
    sessions = {"tenant-a": {"X-Session": "tenant-a"}, "tenant-b": {"X-Session": "tenant-b"}}
    with serve_asgi(wrapped) as url:
        seen = asyncio.run(_hammer(url, sessions, lambda data: data["tenant"]))
    for tenant in sessions:
        assert seen[(tenant, "hit")] > PER_TENANT // 2, seen


def _tenant_endpoint(echo: TenantEcho) -> Any:
    async def endpoint(request: Request) -> Response:
        echo.calls += 1
        body = await request.json()
        await asyncio.sleep(echo.latency)
        return JSONResponse(
            {
                "tenant": request.headers.get("x-session"),
                "question": body["messages"][-1]["content"],
                "n": echo.calls,
            }
        )

    return endpoint
