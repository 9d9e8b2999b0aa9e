"""A small OpenAI-compatible upstream for tests, demos and benchmarks.

    python -m semcache_proxy.testing --port 9100 --latency 0.3

Answers ``POST /v1/chat/completions`` (JSON, or SSE when ``"stream": true``; the usage
in a last chunk when ``stream_options.include_usage``),
``POST /v1/completions`` and Anthropic's ``POST /v1/messages`` with a deterministic reply that names the question, after
``latency`` seconds. Attributes switch on the failures a proxy must survive.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["FakeLLM"]


class FakeLLM:
    """The fake upstream; ``app`` is its ASGI application.

    - ``latency``: seconds before the response starts;
    - ``chunk_delay``: seconds between streamed chunks;
    - ``gzip``: compress responses when the client accepts gzip;
    - ``status``: answer every request with this status instead (e.g. 429, 500);
    - ``rate_limited``: ``{authorization: retry_after}``: answer 429 to requests with
      that ``Authorization`` header, with that ``Retry-After`` (``None``: none);
    - ``reset_mid_stream``: drop the connection after the first streamed chunk (or after
      half the body, not streamed);
    - ``calls``: requests answered, ``requests``: their parsed JSON bodies and headers.
    """

    def __init__(
        self, *, latency: float = 0.0, chunk_delay: float = 0.0, gzip: bool = False
    ) -> None:
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.gzip = gzip
        self.status: int | None = None
        self.rate_limited: dict[str, str | None] = {}
        self.reset_mid_stream = False
        self.extra_headers: dict[str, str] = {}
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.stream_release: asyncio.Event | None = None
        """When set, a stream waits for this event before its second chunk."""
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._chat, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route(
                    "/echo/{path:path}",
                    self._echo,
                    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                ),
                Route("/healthz", lambda r: Response("ok")),
            ]
        )

    async def _echo(self, request: Request) -> Response:
        """Reflects what arrived: method, path, query, headers, body (for forwarding tests)."""
        self.calls += 1
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": {k: v for k, v in request.headers.items()},
                "body": body.decode("latin-1"),
            },
            headers=self.extra_headers,
        )

    async def _chat(self, request: Request) -> Response:
        self.calls += 1
        credential = request.headers.get("authorization")
        if credential is not None and credential in self.rate_limited:
            wait = self.rate_limited[credential]
            return JSONResponse(
                {"error": {"message": "rate limited", "type": "rate_limit_exceeded"}},
                status_code=429,
                headers={"retry-after": wait} if wait is not None else None,
            )
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "invalid JSON"}}, status_code=400)
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.status is not None:
            return JSONResponse(
                {"error": {"message": f"status {self.status}"}}, status_code=self.status
            )
        question = _last_user_text(body)
        answer = f"Answer #{self.calls} to: {question}"
        wants_gzip = self.gzip and "gzip" in request.headers.get("accept-encoding", "")
        if body.get("stream"):
            return StreamingResponse(
                self._sse(body, answer, wants_gzip),
                media_type="text/event-stream",
                headers={
                    **self.extra_headers,
                    **({"content-encoding": "gzip"} if wants_gzip else {}),
                },
            )
        payload = json.dumps(_completion(body, answer)).encode()
        headers = dict(self.extra_headers)
        if wants_gzip:
            payload = gzip.compress(payload)
            headers["content-encoding"] = "gzip"
        if self.reset_mid_stream:
            return StreamingResponse(
                self._broken(payload), media_type="application/json", headers=headers
            )
        return Response(payload, media_type="application/json", headers=headers)

    async def _messages(self, request: Request) -> Response:
        """Anthropic Messages: the reply as a message, or its event stream."""
        self.calls += 1
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.latency:
            await asyncio.sleep(self.latency)
        answer = f"Answer #{self.calls} to: {_last_user_text(body)}"
        message = _message(body, answer)
        if not body.get("stream"):
            return JSONResponse(message, headers=self.extra_headers)
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"message": {**message, "content": [], "stop_reason": None}}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ]
        words = answer.split(" ")
        for i, word in enumerate(words):
            text = word + (" " if i < len(words) - 1 else "")
            events.append(
                ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
            )
        events += [
            ("content_block_stop", {"index": 0}),
            (
                "message_delta",
                {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": len(words)}},
            ),
            ("message_stop", {}),
        ]

        async def sse() -> AsyncIterator[bytes]:
            for i, (name, data) in enumerate(events):
                if i and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                yield f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        return StreamingResponse(sse(), media_type="text/event-stream", headers=self.extra_headers)

    async def _broken(self, payload: bytes) -> AsyncIterator[bytes]:
        yield payload[: len(payload) // 2]
        raise ConnectionResetError("upstream dropped the connection")

    async def _sse(self, body: dict[str, Any], answer: str, compress: bool) -> AsyncIterator[bytes]:
        compressor = gzip_stream() if compress else None
        words = answer.split(" ")
        for i, word in enumerate(words):
            if i == 1 and self.stream_release is not None:
                await self.stream_release.wait()
            if i and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": word + (" " if i < len(words) - 1 else "")},
                        "finish_reason": None,
                    }
                ],
            }
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            yield compressor.send(data) if compressor else data
            if i == 0 and self.reset_mid_stream:
                raise ConnectionResetError("upstream dropped the connection")
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            # OpenAI's last chunk when asked for: no choices, the usage of the whole answer.
            last = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [],
                "usage": _usage(answer),
            }
            data = f"data: {json.dumps(last)}\n\n".encode()
            yield compressor.send(data) if compressor else data
        tail = b"data: [DONE]\n\n"
        if compressor:
            yield compressor.send(tail) + compressor.send(None)
        else:
            yield tail


def gzip_stream() -> Any:
    """A generator: ``send(bytes)`` returns compressed bytes flushed so far; ``send(None)`` ends."""
    import zlib

    def run() -> Any:
        z = zlib.compressobj(wbits=31)
        out = b""
        while True:
            data = yield out
            if data is None:
                yield z.flush()
                return
            out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)

    gen = run()
    next(gen)
    return gen


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _completion(body: dict[str, Any], answer: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
    }


def _usage(answer: str) -> dict[str, int]:
    """OpenAI's usage for ``answer``: 12 prompt tokens, a completion token per word."""
    words = len(answer.split())
    return {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words}


def _message(body: dict[str, Any], answer: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": [{"type": "text", "text": answer}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": len(answer.split())},
    }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m semcache_proxy.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between SSE chunks")
    parser.add_argument(
        "--gzip", action="store_true", help="gzip answers when the client accepts it"
    )
    args = parser.parse_args()
    fake = FakeLLM(latency=args.latency, chunk_delay=args.chunk_delay, gzip=args.gzip)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
