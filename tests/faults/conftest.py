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

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from tests.support.scenarios.harness import settings_for_tests

CHAT = "/v1/chat/completions"


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": question}], **extra}


def hashing_cache(**overrides: Any) -> SemanticCache:
    return SemanticCache(
        settings_for_tests(**overrides), embedder=HashingTestEmbedder(), verifier=None
    )


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
