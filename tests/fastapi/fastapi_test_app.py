"""The scenario routes (see ``tests.support.scenarios.backend``) as a FastAPI app behind the middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi.responses import StreamingResponse

from fastapi import BackgroundTasks, FastAPI, Request, Response
from semcache import SemanticCache
from semcache_fastapi import SemanticCacheMiddleware
from tests.support.scenarios.backend import Backend, Reply


def _response(reply: Reply) -> Response:
    response = Response(reply.body, status_code=reply.status)
    for name, value in reply.headers:
        response.headers.append(name, value)
    return response


def build_app(backend: Backend, cache: SemanticCache, **options: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await cache.close()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SemanticCacheMiddleware, cache=cache, **options)

    def sse(stream: AsyncIterator[bytes]) -> StreamingResponse:
        headers = dict(backend.stream_headers())
        return StreamingResponse(stream, media_type=headers.pop("content-type"), headers=headers)

    @app.post("/api/answer")
    async def answer(request: Request) -> Response:
        return _response(await backend.aanswer(await request.body(), dict(request.headers)))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            return sse(backend.astream(dict(request.headers)))
        return _response(await backend.aanswer(await request.body(), dict(request.headers)))

    @app.post("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        return sse(backend.astream(dict(request.headers)))

    @app.post("/api/forever")
    async def forever(request: Request) -> StreamingResponse:
        return sse(backend.aforever(dict(request.headers)))

    @app.post("/api/background")
    async def background(request: Request, tasks: BackgroundTasks) -> Response:
        headers = dict(request.headers)
        tasks.add_task(backend.background_done, headers)
        return _response(await backend.aanswer(await request.body(), headers))

    @app.post("/api/limited")
    async def limited(request: Request) -> Response:
        return _response(backend.limited(await request.body(), dict(request.headers)))

    return app
