"""Requests waiting on an identical one are let in when the upstream answer is complete,
never held by the first client's reading speed, nor by a leader whose answer is not kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware

BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "what is a p-value"}]})


class GatedApp:
    """An ASGI app whose answers wait for ``gate`` when ``hold`` is set; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.hold = False
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.entered.set()
        while (await receive()).get("more_body"):
            pass
        if self.hold:
            await self.gate.wait()
        body = b'{"answer": "the probability of data at least this extreme"}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body[:20], "more_body": True})
        await send({"type": "http.response.body", "body": body[20:], "more_body": False})


def scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        # The Host the httpx client below sends too: it is part of the partition.
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), *(headers or [])],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def request_once(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the client stays
        raise AssertionError

    return receive


@pytest.fixture
async def setup() -> AsyncIterator[tuple[GatedApp, SemanticCacheMiddleware, httpx.AsyncClient]]:
    settings = Settings.from_env({}, threshold=0.8, batch_max_size=1, single_flight_timeout=30)
    cache = SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None)
    await cache.start()
    app = GatedApp()
    middleware = SemanticCacheMiddleware(app, cache=cache)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield app, middleware, client
    await cache.close()


async def test_followers_do_not_wait_for_a_slow_reader(setup):
    app, middleware, client = setup
    reading = asyncio.Event()
    slow_client_reads = asyncio.Event()

    async def slow_send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            reading.set()
            await slow_client_reads.wait()  # the first client reads its last chunk slowly

    app.hold = True
    leader = asyncio.get_running_loop().create_task(
        middleware(scope(), await request_once(BODY.encode()), slow_send)
    )
    await app.entered.wait()
    follower = asyncio.get_running_loop().create_task(
        client.post(
            "/v1/chat/completions", content=BODY, headers={"content-type": "application/json"}
        )
    )
    await asyncio.sleep(0.05)  # the follower is now waiting on the leader's flight
    app.gate.set()
    await asyncio.wait_for(reading.wait(), 5)
    try:
        answer = await asyncio.wait_for(follower, 5)
    finally:
        slow_client_reads.set()
        await leader
    assert answer.headers["x-semcache"] == "hit"
    assert app.calls == 1


async def test_a_leader_whose_answer_is_not_kept_does_not_hold_the_others(setup):
    app, _, client = setup
    app.hold = True
    headers = {"content-type": "application/json"}
    no_store = asyncio.get_running_loop().create_task(
        client.post(
            "/v1/chat/completions", content=BODY, headers={**headers, "x-semcache-ttl": "0"}
        )
    )
    await app.entered.wait()
    app.entered.clear()
    other = asyncio.get_running_loop().create_task(
        client.post("/v1/chat/completions", content=BODY, headers=headers)
    )
    # The second request reaches the app at once instead of waiting for the first.
    await asyncio.wait_for(app.entered.wait(), 5)
    assert app.calls == 2
    app.gate.set()
    assert (await no_store).headers["x-semcache"] == "miss"
    assert (await other).headers["x-semcache"] == "miss"
