"""Random and malformed requests through the middleware and the proxy (hypothesis).

Bodies: random bytes, JSON of every shape in several encodings, chat requests with
odd text (lone surrogates, control characters, RTL marks...), huge fields, deeply
nested documents, lying ``Content-Encoding`` and ``Content-Type`` headers. The
upstream answers 200 with the SHA-256 of the exact body it received, so for every
request one of two things must hold, within a time bound:

- the upstream's own answer to these very bytes (passed through untouched), or
- a hit: an answer the upstream gave earlier to a request of the same partition
  (computed here with the same :class:`HttpCachePolicy`).

Never a 500 (nor any non-200: the upstream only answers 200), never a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any, cast

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from semcache import SemanticCache
from semcache.http import Bypass, HttpCachePolicy, HttpRequest
from semcache.testing import HashingTestEmbedder
from semcache.types import Matrix
from semcache_fastapi import SemanticCacheMiddleware
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.scenarios.harness import settings_for_tests

from .conftest import CHAT

REQUEST_BUDGET_S = 20.0
"""No request may take longer than this (the slowest here take tens of milliseconds)."""

POOL = [
    "how do I reset my password",
    "how do I reset my password please",
    "what payment methods do you accept",
    "where can I download my invoices",
]
EXAMPLES = int(os.environ.get("SEMCACHE_FAULT_EXAMPLES", "300"))


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The upstream: 200 with the hash of the exact bytes it was sent, for any request."""
    if scope["type"] != "http":
        return
    request = Request(scope, receive)
    raw = await request.body()
    # The request line and headers too, so equal bodies sent differently get distinct answers.
    seen = repr((scope["method"], scope["path"], sorted(scope["headers"]))).encode()
    response: Response = JSONResponse(
        {"sha": hashlib.sha256(raw).hexdigest(), "request": hashlib.sha256(seen).hexdigest()}
    )
    await response(scope, receive, send)


# -- strategies -----------------------------------------------------------------------

_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
_json_docs = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
_odd_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(POOL),
    st.sampled_from(["", " ", "\u200f\u202e", "\x00\x01\x1f", "é" * 50, "🙂" * 30, "\ufeff"]),
)
_content = st.one_of(
    _odd_text,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _odd_text}), max_size=3),
    _json_leaf,
)


@st.composite
def _chat(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": draw(st.one_of(st.just("m"), st.text(max_size=10), st.integers())),
        "messages": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system", "assistant", "tool", 7]),
                        "content": _content,
                    }
                ),
                max_size=4,
            )
        ),
    }
    extra = draw(
        st.dictionaries(
            st.sampled_from(["temperature", "stream", "tools", "n", "user"]), _json_leaf, max_size=3
        )
    )
    body.update(extra)
    return body


@st.composite
def _encoded_json(draw: st.DrawFn) -> bytes:
    doc = draw(st.one_of(_json_docs, _chat()))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"]))
    return text.encode(encoding, "replace")


@st.composite
def _lone_surrogate(draw: st.DrawFn) -> bytes:
    # Valid JSON text whose string decodes to a lone surrogate (not valid Unicode).
    question = draw(st.sampled_from(POOL))
    escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udc80x"]))
    return (
        '{"model": "m", "messages": [{"role": "user", "content": "'
        + question
        + " "
        + escape
        + '"}]}'
    ).encode()


@st.composite
def _huge(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from([10_000, 400_000, 1_200_000]))
    char = draw(st.sampled_from(["a", "é", "🙂", " "]))
    return json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": char * size}]}, ensure_ascii=False
    ).encode()


@st.composite
def _nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([30, 900, 5_000, 100_000]))
    inner = "[" * depth + "]" * depth
    if draw(st.booleans()):
        return inner.encode()
    return (
        '{"model": "m", "messages": [{"role": "user", "content": "q", "x": '
        + inner
        + '}], "tools": '
        + inner
        + "}"
    ).encode()


_plain_chat = st.builds(
    lambda q: json.dumps({"model": "m", "messages": [{"role": "user", "content": q}]}).encode(),
    st.sampled_from(POOL),
)

_bodies = st.one_of(
    st.binary(max_size=300),
    _encoded_json(),
    _lone_surrogate(),
    _huge(),
    _nested(),
    _plain_chat,
    _plain_chat,
)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "POST", "PUT"]))
    path = draw(st.sampled_from([CHAT, CHAT, "/v1/completions", "/other/ü%20x"]))
    headers: dict[str, str] = {}
    content_type = draw(
        st.sampled_from(
            ["application/json", "application/json; charset=utf-16", "text/plain", None]
        )
    )
    if content_type:
        headers["content-type"] = content_type
    for name, values in (
        ("content-encoding", ["gzip", "br", "identity"]),
        ("authorization", ["Bearer a", "Bearer b"]),
        ("accept", ["text/event-stream", "*/*"]),
        ("cache-control", ["no-cache", "no-store", "max-age=0", "private, =,,"]),
        ("x-semcache-ttl", ["0", "60", "-1", "1e9", "٣"]),
    ):
        if draw(st.integers(0, 4)) == 0:
            headers[name] = draw(st.sampled_from(values))
    return method, path, headers, draw(_bodies)


# -- the property ---------------------------------------------------------------------


class _ValidUnicodeOnly(HashingTestEmbedder):
    """Fails on text that is not valid Unicode, as the tokenizers of real models do
    (all-MiniLM-L6-v2's raises ``TypeError: TextEncodeInput must be ...``)."""

    async def embed(self, texts: Sequence[str]) -> Matrix:
        for text in texts:
            text.encode("utf-8")
        return await super().embed(texts)


def _cache() -> SemanticCache:
    return SemanticCache(settings_for_tests(), embedder=_ValidUnicodeOnly(), verifier=None)


class _Checker:
    def __init__(self, cache: SemanticCache, client: httpx.AsyncClient) -> None:
        self.cache = cache
        self.client = client
        self.policy = HttpCachePolicy(cache.settings)
        self.produced: dict[bytes, str | None] = {}
        """Upstream answers -> partition of the request that produced them."""
        self.results: dict[str, int] = {}

    async def partition(
        self, method: str, path: str, headers: dict[bytes, bytes], body: bytes
    ) -> str | None:
        if not self.policy.in_scope(method, path):
            return None
        # As the adapters see them: names lower case, values decoded as latin-1.
        seen = tuple((k.decode().lower(), v.decode("latin-1")) for k, v in headers.items())
        plan = await self.policy.plan(HttpRequest(method, path, "", seen, body))
        return None if isinstance(plan, Bypass) else plan.partition

    async def check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        raw_headers = {k.encode(): v.encode() for k, v in headers.items()}  # UTF-8 on the wire
        partition = await self.partition(method, path, raw_headers, body)
        async with asyncio.timeout(REQUEST_BUDGET_S):
            response = await self.client.request(method, path, headers=raw_headers, content=body)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        status = response.headers.get("x-semcache", "none")
        self.results[status] = self.results.get(status, 0) + 1
        if status == "hit":
            assert partition is not None, "a request the cache must not touch got a stored answer"
            assert response.content in self.produced, "a hit that the upstream never produced"
            assert self.produced[response.content] == partition, "an answer from another partition"
        else:
            answered = response.json()["sha"]
            assert answered == hashlib.sha256(body).hexdigest(), "the body was altered on its way"
            self.produced.setdefault(response.content, partition)


def _run_property(checker_factory: Any) -> dict[str, int]:
    with asyncio.Runner() as runner:
        checker, close = runner.run(checker_factory())
        try:
            for q in POOL:  # answers in the cache, so later requests can hit
                body = json.dumps({"model": "m", "messages": [{"role": "user", "content": q}]})
                runner.run(
                    checker.check("POST", CHAT, {"content-type": "application/json"}, body.encode())
                )

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(request=_requests())
            def property_holds(request: tuple[str, str, dict[str, str], bytes]) -> None:
                runner.run(checker.check(*request))

            property_holds()
        finally:
            runner.run(close())
    results: dict[str, int] = checker.results
    return results


def test_middleware_any_request_passes_through_or_hits_correctly() -> None:
    async def factory() -> tuple[_Checker, Any]:
        cache = _cache()
        app = SemanticCacheMiddleware(_echo, cache=cache)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")

        async def close() -> None:
            await client.aclose()
            await cache.close()

        return _Checker(cache, client), close

    results = _run_property(factory)
    assert results.get("hit", 0) > 0 and results.get("miss", 0) > 0, results


def test_proxy_any_request_passes_through_or_hits_correctly() -> None:
    async def factory() -> tuple[_Checker, Any]:
        cache = _cache()
        proxy = create_semantic_cache_proxy_app(
            "http://upstream.test",
            cache,
            httpx_client_kwargs={"transport": httpx.ASGITransport(app=_echo)},
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(Any, proxy)), base_url="http://proxy"
        )

        async def close() -> None:
            await client.aclose()
            await proxy.shutdown()

        return _Checker(cache, client), close

    results = _run_property(factory)
    assert results.get("hit", 0) > 0 and results.get("miss", 0) > 0, results


def test_invalid_unicode_questions_do_not_switch_the_cache_off_for_others() -> None:
    async def run() -> None:
        cache = _cache()
        app = SemanticCacheMiddleware(_echo, cache=cache)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://app"
        ) as client:
            stored = {"model": "m", "messages": [{"role": "user", "content": POOL[0]}]}
            await client.post(CHAT, json=stored)
            for i in range(cache.settings.breaker_failures + 1):
                bad = '{"model": "m", "messages": [{"role": "user", "content": "x\\ud800 ' + str(i)
                bad += '"}]}'
                response = await client.post(
                    CHAT, content=bad.encode(), headers={"content-type": "application/json"}
                )
                assert response.status_code == 200
            paraphrase = {"model": "m", "messages": [{"role": "user", "content": POOL[1]}]}
            response = await client.post(CHAT, json=paraphrase)
            await cache.close()
        assert response.headers["x-semcache"] == "hit"
        assert all(b.state == "closed" for b in cache.breakers.values())

    asyncio.run(run())
