"""Shared pieces of the fault tests: answers that name their question and tenant."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder

CHAT = "/v1/chat/completions"


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": question}], **extra}


def fault_settings(**overrides: Any) -> Settings:
    """No environment; in-memory stores; the hashing embedder's threshold."""
    base: dict[str, Any] = {
        "threshold": 0.8,
        "vector_store": "memory",
        "response_store": "memory",
        "embedder_type": "testing-hash",
        "upstream_429_threshold": 0,
    }
    base.update(overrides)
    return Settings.from_env({}, **base)


def hashing_cache(**overrides: Any) -> SemanticCache:
    return SemanticCache(fault_settings(**overrides), embedder=HashingTestEmbedder(), verifier=None)


class TenantEcho:
    """An upstream that names the tenant (from ``Authorization`` or ``X-Tenant``) and the
    question in every answer, and counts its calls."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        self.calls += 1
        raw = await request.body()
        tenant = request.headers.get("x-tenant") or request.headers.get("authorization", "")
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            question = json.loads(raw)["messages"][-1]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            question = None
        return JSONResponse(
            {
                "tenant": tenant,
                "question": question,
                "sha": hashlib.sha256(raw).hexdigest(),
                "n": self.calls,
            }
        )
