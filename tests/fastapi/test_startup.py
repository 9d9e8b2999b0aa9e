"""Start-up: "startup complete" means the cache is ready; Django and Flask load it when
the app starts, and an early request waits for it instead of passing through unstored."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import flask

from semcache import Settings, plugins
from semcache.testing import HashingTestEmbedder
from semcache_fastapi import SemanticCacheMiddleware
from semcache_flask import FlaskSemanticCache

LOAD_SECONDS = 2.0


class SlowModelPlugin:
    """An embedder plugin whose model takes ``LOAD_SECONDS`` to load, like a real one."""

    @plugins.hookimpl
    def semcache_create_embedder(self, name: str, settings: Settings) -> Any:
        time.sleep(LOAD_SECONDS)  # the cache builds embedders in a worker thread
        return HashingTestEmbedder()


class SlowStartCache:
    settings = Settings.from_env({})

    def __init__(self) -> None:
        self.started = False

    async def start(self) -> None:
        await asyncio.sleep(0.3)
        self.started = True


async def run_lifespan(middleware: SemanticCacheMiddleware) -> list[float]:
    """Start-up then shutdown; the times at which the app said each was complete."""
    completed: list[float] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(2):
            message = await receive()
            completed.append(time.perf_counter())
            await send({"type": message["type"] + ".complete"})

    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    middleware.app = app
    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return completed


async def test_asgi_startup_completes_once_the_cache_is_ready():
    cache = SlowStartCache()
    middleware = SemanticCacheMiddleware(None, cache=cache)  # type: ignore[arg-type]
    await run_lifespan(middleware)
    assert cache.started  # the app's start-up ran only after the cache was ready


async def test_asgi_startup_in_the_background_when_asked():
    cache = SlowStartCache()
    settings = Settings.from_env({}, start_timeout=0)
    middleware = SemanticCacheMiddleware(None, cache=cache, cache_settings=settings)  # type: ignore[arg-type]
    await run_lifespan(middleware)
    assert not cache.started
    for _ in range(100):
        if cache.started:
            break
        await asyncio.sleep(0.01)
    assert cache.started


def test_flask_first_requests_wait_for_the_model_and_the_repeat_is_a_hit():
    plugins.register("embedder", "slow-load", SlowModelPlugin())
    app = flask.Flask(__name__)
    FlaskSemanticCache(
        app,
        embedder_type="slow-load",
        vector_store="memory",
        response_store="memory",
        lookup_timeout_ms=500,  # far shorter than the model's load
        prefix=f"startup-{time.monotonic_ns()}",
    )

    @app.post("/ask")
    def ask() -> Any:
        return {"answer": "Settings > Account > Reset password"}

    client = app.test_client()
    body = {"messages": [{"role": "user", "content": "How do I reset my password?"}]}
    first = client.post("/ask", json=body)
    assert first.headers["x-semcache"] == "miss"
    assert first.get_json() == {"answer": "Settings > Account > Reset password"}  # read it all
    cache = FlaskSemanticCache.cache_for(app)
    for _ in range(200):  # the answer is stored after it was sent
        if cache.counters["stores"]:
            break
        time.sleep(0.01)
    assert client.post("/ask", json=body).headers["x-semcache"] == "hit"
