"""Small chat servers that judge pairs of requests: OpenAI chat completions and Ollama.

The verdict depends on the two texts: "yes" when both requests end in the same word (their
topic, in these tests), else "no". A test can replace the answer text, make the server
hang until the client leaves, and read every request body and header set it received.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import serve_asgi

_REQUEST = re.compile(r"^Request (\d): (\".*\")$", re.M)


def same_topic(first: str, second: str) -> str:
    """The fake judge's rule: the same last word is the same request."""
    return "yes" if first.split()[-1] == second.split()[-1] else "no"


@dataclass
class JudgeState:
    decide: Callable[[str, str], str] = same_topic
    answer: Any = None
    """When not ``None``: the answer content sent instead of the verdict (malformed tests)."""
    body: Any = None
    """When not ``None``: the whole JSON body sent instead."""
    status: int = 200
    hang: bool = False
    """Never answer: wait until the client gives up."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class FakeJudge:
    url: str
    state: JudgeState


def _pair(body: dict[str, Any]) -> tuple[str, str]:
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = dict(_REQUEST.findall(user))
    return json.loads(found["1"]), json.loads(found["2"])


def _app(state: JudgeState, path: str, reply: Callable[[str], dict[str, Any]]) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        state.headers.append({k.lower(): v for k, v in request.headers.items()})
        if state.hang:
            while True:  # poll until the client has left
                if await request.is_disconnected():
                    return Response(status_code=499)
                await asyncio.sleep(0.02)
        if state.status != 200:
            return JSONResponse({"error": {"message": "overloaded"}}, state.status)
        if state.body is not None:
            return JSONResponse(state.body)
        first, second = _pair(body)
        state.pairs.append((first, second))
        content = state.decide(first, second) if state.answer is None else state.answer
        return JSONResponse(reply(content))

    return Starlette(routes=[Route(path, chat, methods=["POST"])])


def _openai(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny-judge",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 1, "total_tokens": 121},
    }


def _ollama(content: str) -> dict[str, Any]:
    return {
        "model": "tiny-judge",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "prompt_eval_count": 100,
        "eval_count": 2,
    }


@contextmanager
def openai_judge() -> Iterator[FakeJudge]:
    state = JudgeState()
    with serve_asgi(_app(state, "/v1/chat/completions", _openai), lifespan="off") as url:
        yield FakeJudge(url, state)


@contextmanager
def ollama_judge() -> Iterator[FakeJudge]:
    state = JudgeState()
    with serve_asgi(_app(state, "/api/chat", _ollama), lifespan="off") as url:
        yield FakeJudge(url, state)
