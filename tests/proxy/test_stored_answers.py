"""Through the proxy: errors sent with a 200 reach the client but are never replayed,
and a replay carries only the allowlisted headers."""

import json
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.servers import serve_asgi

PROVIDER_HEADERS = {
    "openai-organization": "org-alice",
    "openai-project": "proj_alice",
    "openai-version": "2020-10-01",
    "x-request-id": "req-alice",
    "x-ratelimit-remaining-requests": "41",
    "anthropic-organization-id": "a1b2",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}


def _sse(*events):
    return [f"{event}\n\n".encode() for event in events]


OPENAI_CHUNK = 'data: {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}'
BODIES = {
    # A 200 whose JSON body is an error (OpenAI shape).
    "json_error": (
        "application/json",
        [b'{"error": {"message": "The server is overloaded", "type": "server_error"}}'],
    ),
    # Anthropic: an error event inside a 200 stream.
    "anthropic_error_event": (
        "text/event-stream",
        _sse(
            'event: message_start\ndata: {"type": "message_start", "message": {}}',
            'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}',
        ),
    ),
    # OpenAI-compatible servers (vLLM): an error data line, then [DONE].
    "openai_error_data": (
        "text/event-stream",
        _sse(OPENAI_CHUNK, 'data: {"error": {"message": "boom"}}', "data: [DONE]"),
    ),
    # A stream cut short: no [DONE].
    "unfinished_stream": ("text/event-stream", _sse(OPENAI_CHUNK)),
    # A gateway's HTML page with a 200.
    "html": ("text/html; charset=utf-8", [b"<html><body>Bad gateway</body></html>"]),
    # Nothing at all.
    "empty": ("application/json", [b""]),
    # Good answers, stored.
    "ok_json": ("application/json", [b'{"choices": [{"message": {"content": "Hello"}}]}']),
    "ok_stream": ("text/event-stream", _sse(OPENAI_CHUNK, "data: [DONE]")),
    "ok_anthropic": (
        "text/event-stream",
        _sse(
            'event: message_start\ndata: {"type": "message_start", "message": {}}',
            'event: content_block_delta\ndata: {"type": "content_block_delta"}',
            'event: message_stop\ndata: {"type": "message_stop"}',
        ),
    ),
    "ok_ollama": (
        "application/x-ndjson",
        [b'{"message": {"content": "Hel"}, "done": false}\n', b'{"done": true}\n'],
    ),
}


class Upstream:
    def __init__(self):
        self.mode = "ok_json"
        self.calls = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        await request.body()
        self.calls += 1
        content_type, chunks = BODIES[self.mode]
        headers = {**PROVIDER_HEADERS, "x-request-id": f"req-{self.calls}"}

        async def body():
            for chunk in chunks:
                yield chunk

        return StreamingResponse(body(), media_type=content_type, headers=headers)


@pytest.fixture
def stack():
    upstream = Upstream()
    cache = SemanticCache(embedder=HashingTestEmbedder(), threshold=0.8, verifier=None)
    with serve_asgi(upstream.app) as upstream_url:
        app = create_semantic_cache_proxy_app(upstream_url, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            yield upstream, cache, client


def _ask(client, path, question):
    return client.post(
        path,
        json={"model": "m", "messages": [{"role": "user", "content": question}]},
        headers={"authorization": "Bearer sk-test"},
    )


def _wait_stores(cache, count):
    deadline = time.monotonic() + 10
    while cache.counters["stores"] < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return cache.counters["stores"]


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("json_error", "/v1/chat/completions"),
        ("anthropic_error_event", "/v1/messages"),
        ("openai_error_data", "/v1/chat/completions"),
        ("unfinished_stream", "/v1/chat/completions"),
        ("html", "/v1/chat/completions"),
        ("empty", "/v1/chat/completions"),
    ],
)
def test_error_in_a_200_is_passed_on_but_never_replayed(stack, mode, path):
    upstream, cache, client = stack
    upstream.mode = mode
    question = f"Tell me something about {mode.replace('_', ' ')}"
    sent = b"".join(BODIES[mode][1])
    for attempt in (1, 2):
        answer = _ask(client, path, question)
        assert answer.status_code == 200
        assert answer.headers["x-semcache"] == "miss", attempt
        assert answer.content == sent  # the client gets the error as it came
    assert upstream.calls == 2

    # A good answer to the same question is then stored, and replayed.
    upstream.mode = "ok_json"
    _ask(client, path, question)
    assert _wait_stores(cache, 1) == 1
    hit = _ask(client, path, question)
    assert hit.headers["x-semcache"] == "hit"
    assert json.loads(hit.content)["choices"][0]["message"]["content"] == "Hello"
    assert upstream.calls == 3
    assert cache.counters["stores"] == 1


@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("ok_stream", "/v1/chat/completions"),
        ("ok_anthropic", "/v1/messages"),
        ("ok_ollama", "/api/chat"),
    ],
)
def test_finished_streams_are_stored_and_replayed(stack, mode, path):
    upstream, cache, client = stack
    upstream.mode = mode
    miss = _ask(client, path, "Stream me a greeting")
    assert miss.headers["x-semcache"] == "miss"
    assert _wait_stores(cache, 1) == 1
    hit = _ask(client, path, "Stream me a greeting")
    assert hit.headers["x-semcache"] == "hit"
    assert hit.content == miss.content == b"".join(BODIES[mode][1])
    assert upstream.calls == 1


@pytest.mark.parametrize("mode", ["ok_json", "ok_stream"])
def test_replay_carries_only_allowlisted_headers(stack, mode):
    upstream, cache, client = stack
    upstream.mode = mode
    miss = _ask(client, "/v1/chat/completions", "Which headers come back?")
    assert miss.headers["openai-organization"] == "org-alice"  # passed on to its caller
    assert _wait_stores(cache, 1) == 1
    hit = _ask(client, "/v1/chat/completions", "Which headers come back?")
    assert hit.headers["x-semcache"] == "hit"
    assert hit.content == miss.content
    assert hit.headers["content-type"] == miss.headers["content-type"]
    assert hit.headers["openai-version"] == "2020-10-01"
    for name in PROVIDER_HEADERS:
        if name != "openai-version":
            assert name not in hit.headers, name
