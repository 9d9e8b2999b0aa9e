"""The ASGI middleware's lifespan shutdown writes the embedded stores' files before the
process exits: the app owns the cache, but uvicorn re-raises SIGTERM after shutdown and
the queued writes would die with the process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.types import Message

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware


async def answer(scope, receive, send):
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"answer": "42"}'})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await answer(scope, receive, send)


async def test_lifespan_shutdown_writes_what_the_stores_queued(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_path=str(tmp_path / "data"))
    cache = SemanticCache(settings, embedder=HashingTestEmbedder(), verifier=None)
    middleware = SemanticCacheMiddleware(app, cache=cache)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    lifespan = asyncio.get_running_loop().create_task(
        middleware({"type": "lifespan"}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for n in range(20):
            response = await client.post("/ask", json={"query": f"question number {n}?"})
            assert response.headers["x-semcache"] == "miss"
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    stats = await cache.stats()
    assert stats["stores"] == 20
    assert stats["entries_journal"]["pending"] == 0, stats["entries_journal"]
    assert stats["vectors_journal"]["pending"] == 0, stats["vectors_journal"]
    await cache.close()
