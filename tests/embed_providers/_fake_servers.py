"""Small local servers that speak the Ollama, Cohere and Voyage embedding APIs.

Each runs a Starlette app under uvicorn on a free 127.0.0.1 port in a thread of its own.
Vectors come from ``HashingTestEmbedder``, so they are deterministic and texts sharing
words score high. A test can script the next responses (429, 503...), add latency, or
change the key the server accepts; every request body and header set is recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from semcache.testing import HashingTestEmbedder

OLLAMA_MODELS = {"nomic-embed-text": 768, "all-minilm:33m": 384, "tiny-embed": 48}
OLLAMA_CHAT_MODELS = {"llama3.2"}
COHERE_MODELS = {
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "tiny-cohere": 40,
}
COHERE_INPUT_TYPES = {"search_query", "search_document", "classification", "clustering"}
VOYAGE_MODELS = {
    "voyage-3.5": 1024,
    "voyage-3-large": 1024,
    "voyage-3-lite": 512,
    "tiny-voyage": 56,
}
VOYAGE_FLEXIBLE = {"voyage-3.5", "voyage-3-large"}
VOYAGE_TOKEN_LIMITS = {"voyage-3.5": 320_000, "voyage-3-large": 120_000}

_embedders: dict[int, HashingTestEmbedder] = {}


def reference_vectors(texts: list[str], dimension: int, prefix: str = "") -> list[list[float]]:
    """What the fake servers answer for ``texts`` (``prefix`` models an input-type prompt)."""
    embedder = _embedders.setdefault(dimension, HashingTestEmbedder(dimension))
    rows = [embedder._vector(f"{prefix} {t}" if prefix else t) for t in texts]
    return [[float(x) for x in row] for row in rows]


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeState:
    """What the server does next and what it has seen."""

    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    body_sizes: list[int] = field(default_factory=list)
    """Bytes of each request body, as received."""
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    delay: float = 0.0
    width_override: int | None = None

    def batch_sizes(self, key: str) -> list[int]:
        return [len(r[key]) if isinstance(r[key], list) else 1 for r in self.requests]


class FakeServer:
    """A provider API on ``url``; ``state`` is read and changed by tests."""

    def __init__(self, name: str, routes: list[Route], api_key: str | None) -> None:
        self.name = name
        self.default_key = api_key
        self.state = FakeState(api_key=api_key)
        routes = [*routes, Route("/healthz", lambda r: PlainTextResponse("ok"))]
        self.app = Starlette(routes=routes)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it Nagle and delayed ACKs add 40 ms a call.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name=name
        )

    def start(self) -> FakeServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake {self.name} server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)

    def reset(self) -> None:
        self.state = FakeState(api_key=self.default_key)

    async def intake(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """Record the request; return a scripted or latency-delayed early response if due."""
        raw = await request.body()
        body = json.loads(raw)
        self.state.requests.append(body)
        self.state.body_sizes.append(len(raw))
        self.state.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.state.script:
            step = self.state.script.pop(0)
            return body, JSONResponse(step.body, step.status, headers=step.headers)
        if self.state.delay:
            # Like a slow provider, but one that stops working once the client gave up,
            # so a long injected delay does not hold the server open after the test.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.state.delay
            while (left := deadline - loop.time()) > 0:
                if await request.is_disconnected():
                    return body, Response(status_code=499)
                await asyncio.sleep(min(left, 0.05))  # poll interval
        return body, None

    def authorized(self, request: Request) -> bool:
        if self.state.api_key is None:
            return True
        return request.headers.get("authorization") == f"Bearer {self.state.api_key}"

    def width(self, native: int) -> int:
        return self.state.width_override or native


def ollama_server() -> FakeServer:
    async def embed(request: Request) -> Response:
        body, early = await server.intake(request)
        if early is not None:
            return early
        if not server.authorized(request):
            return JSONResponse({"error": "unauthorized"}, 401)
        model = body.get("model")
        if model in OLLAMA_CHAT_MODELS:
            return JSONResponse({"error": f'"{model}" does not support embeddings'}, 400)
        name = model if model in OLLAMA_MODELS else str(model).removesuffix(":latest")
        if name not in OLLAMA_MODELS:
            return JSONResponse({"error": f'model "{model}" not found, try pulling it first'}, 404)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimension = server.width(body.get("dimensions") or OLLAMA_MODELS[name])
        return JSONResponse(
            {
                "model": model,
                "embeddings": reference_vectors(texts, dimension),
                "total_duration": 1000,
                "load_duration": 10,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            }
        )

    server = FakeServer("ollama", [Route("/api/embed", embed, methods=["POST"])], None)
    return server


def cohere_server(api_key: str) -> FakeServer:
    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse({"id": str(uuid.uuid4()), "message": message}, status)

    async def embed(request: Request) -> Response:
        body, early = await server.intake(request)
        if early is not None:
            return early
        if not server.authorized(request):
            return error("invalid api token", 401)
        model = body.get("model")
        if model not in COHERE_MODELS:
            return error(f"model '{model}' not found, make sure the model ID is correct", 404)
        texts = body.get("texts") or []
        if len(texts) > 96:
            return error(
                f"invalid request: total number of texts must be at most 96 - received {len(texts)}",
                400,
            )
        input_type = body.get("input_type")
        if input_type not in COHERE_INPUT_TYPES:
            return error(
                "invalid request: valid input_type must be provided with the provided model", 400
            )
        if "float" not in body.get("embedding_types", ["float"]):
            return error("invalid request: this fake only serves float embeddings", 400)
        dimension = COHERE_MODELS[model]
        if "output_dimension" in body:
            if model != "embed-v4.0" and model != "tiny-cohere":
                return error(
                    "invalid request: output_dimension is only supported by embed-v4.0", 400
                )
            dimension = body["output_dimension"]
        dimension = server.width(dimension)
        return JSONResponse(
            {
                "id": str(uuid.uuid4()),
                "embeddings": {"float": reference_vectors(texts, dimension, input_type)},
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}},
                "response_type": "embeddings_by_type",
            }
        )

    server = FakeServer("cohere", [Route("/v2/embed", embed, methods=["POST"])], api_key)
    return server


def voyage_server(api_key: str) -> FakeServer:
    def error(detail: str, status: int) -> JSONResponse:
        return JSONResponse({"detail": detail}, status)

    async def embed(request: Request) -> Response:
        body, early = await server.intake(request)
        if early is not None:
            return early
        if not server.authorized(request):
            return error("Provided API key is invalid.", 401)
        model = body.get("model")
        if model not in VOYAGE_MODELS:
            return error(f"Model {model} is not supported.", 400)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if len(texts) > 1000:
            return error(f"The batch size limit is 1000. Your batch size is {len(texts)}.", 400)
        tokens = sum(len(t.encode()) for t in texts)  # a byte is at least a token's worth
        limit = VOYAGE_TOKEN_LIMITS.get(model, 120_000)
        if tokens > limit:
            return error(
                f"Request to model '{model}' failed. The max allowed tokens per submitted "
                f"batch is {limit}. Your batch has {tokens} tokens after truncation.",
                400,
            )
        input_type = body.get("input_type")
        if input_type not in (None, "query", "document"):
            return error("input_type must be one of query, document or null", 400)
        dimension = VOYAGE_MODELS[model]
        if body.get("output_dimension") is not None:
            if model not in VOYAGE_FLEXIBLE and model != "tiny-voyage":
                return error(f"Model {model} does not support output_dimension.", 400)
            dimension = body["output_dimension"]
        vectors = reference_vectors(texts, server.width(dimension), input_type or "")
        data = [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)]
        data.reverse()  # the index, not the position, says which input a vector belongs to
        return JSONResponse(
            {"object": "list", "data": data, "model": model, "usage": {"total_tokens": tokens}}
        )

    server = FakeServer("voyage", [Route("/v1/embeddings", embed, methods=["POST"])], api_key)
    return server
