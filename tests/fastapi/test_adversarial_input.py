"""No question, however hostile its text, stalls the event loop that serves everyone.

Each adversarial question fills a request body up to the 1 MiB limit with what makes
text analysis backtrack (runs of quote marks, brackets, digits, separators). The test
runs the middleware on its own event loop beside a task that measures how late that
loop wakes up: each request may cost the loop at most 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware

LIMIT = 1 << 20
MAX_LAG = 0.050


def fill(unit: str, tail: str = "") -> str:
    """``unit`` repeated so the JSON body is just under the 1 MiB limit."""
    per_unit = len(json.dumps(unit)) - 2 if unit.isascii() else len(unit.encode()) * 2
    count = (LIMIT - 200 - len(tail)) // max(per_unit, 1)
    return unit * count + tail


ADVERSARIAL = {
    "straight quotes": fill('"'),
    "curly quotes": fill("“"),
    "single quotes": fill("'"),
    "backticks": fill("`"),
    "quoted words": fill('"a" '),
    "brackets": fill("(["),
    "digits": fill("1"),
    "decimal points": fill("1."),
    "ticket numbers": fill("#1-"),
    "question marks then a word": fill("?", "x"),
    "sentence ends then a word": fill(". ", "x"),
    "underscores": fill("a_"),
    "spaces": fill(" \t", "x"),
}


class LoopLag:
    """The longest time the event loop was late to wake a 1 ms sleeper."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - before - 0.001)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        await asyncio.sleep(0.005)
        self.worst = 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def answer(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"answer": f"{len(body)} bytes"})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env({}, threshold=0.8, batch_max_size=1, max_body_bytes=LIMIT)
    cache = SemanticCache(settings, embedder=HashingTestEmbedder())
    app = SemanticCacheMiddleware(
        Starlette(routes=[Route("/ask", answer, methods=["POST"])]), cache=cache
    )
    await cache.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await cache.close()


def body_for(question: str) -> bytes:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": question}]})
    assert len(body) <= LIMIT
    return body.encode()


async def ask(client: httpx.AsyncClient, question: str | bytes) -> httpx.Response:
    body = question if isinstance(question, bytes) else body_for(question)
    return await client.post("/ask", content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("name", list(ADVERSARIAL))
async def test_a_hostile_question_costs_the_loop_under_50_ms(client, name):
    question = body_for(ADVERSARIAL[name])  # encoded here: the client's work is not measured
    async with LoopLag() as lag:
        first = await ask(client, question)
    assert first.status_code == 200 and first.headers["x-semcache"] == "miss"
    assert lag.worst < MAX_LAG, f"{name}: the loop stalled {lag.worst * 1000:.0f} ms"

    await asyncio.sleep(0.05)  # the store runs after the answer
    async with LoopLag() as lag:
        repeat = await ask(client, question)
    assert repeat.headers["x-semcache"] == "hit"  # served exact-only
    assert lag.worst < MAX_LAG, f"{name} (repeat): the loop stalled {lag.worst * 1000:.0f} ms"


async def test_a_long_question_is_never_served_semantically(client):
    question = fill("the quick brown fox jumps over the lazy dog ")
    assert (await ask(client, question)).headers["x-semcache"] == "miss"
    await asyncio.sleep(0.05)
    near = question[:-40] + "the quick brown cat jumps over the lazy dog"
    assert (await ask(client, near)).headers["x-semcache"] == "miss"


async def test_hostile_pairs_in_the_verifier_cost_the_loop_under_50_ms():
    from semcache.verify import DefaultVerifier

    verifier = DefaultVerifier()
    for name, question in ADVERSARIAL.items():
        async with LoopLag() as lag:
            await verifier.verify(question, question[::-1], 0.99)
        assert lag.worst < MAX_LAG, f"{name}: the loop stalled {lag.worst * 1000:.0f} ms"
