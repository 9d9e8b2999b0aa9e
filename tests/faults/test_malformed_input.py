"""Random and malformed requests through the middleware and the proxy (hypothesis).

Bodies: random bytes, JSON of every shape in several encodings, chat requests with
odd text (lone surrogates, control characters, RTL marks...), huge fields, deeply
nested documents, lying ``Content-Encoding`` and ``Content-Type`` headers. Everything
goes over real sockets (uvicorn serves the middleware, the proxy and its upstream), so
the 1.2 MB and 100,000-deep bodies cross the HTTP parser as in production. The
upstream answers 200 with the SHA-256 of the exact body it received, so for every
request one of two things must hold, within a time bound:

- the upstream's own answer to these very bytes (passed through untouched), or
- a hit: an answer the upstream gave earlier to a request that, by this test's own
  reading of the two requests (not the cache's code), needs the same answer: same
  method, path, credential and content encoding, the same JSON body apart from the
  ``user`` label and the last user question, and that question the same after
  normalisation or similar by the test embedder's own measure (or the same bytes).

Never a 500 (nor any non-200: the upstream only answers 200), never a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache.types import Matrix
from semcache_fastapi import SemanticCacheMiddleware
from semcache_proxy import create_semantic_cache_proxy_app
from tests.support.scenarios.harness import settings_for_tests
from tests.support.servers import serve_asgi

from .conftest import CHAT

REQUEST_BUDGET_S = 20.0
"""No request may take longer than this (the slowest here take tens of milliseconds)."""

POOL = [
    "how do I reset my password",
    "how do I reset my password please",
    "what payment methods do you accept",
    "where can I download my invoices",
    "how do I reset my router to factory settings",  # shares its start with the first
]
EXAMPLES = int(os.environ.get("SEMCACHE_FAULT_EXAMPLES", "300"))


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The upstream: 200 with the hash of the exact bytes it was sent, for any request."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    request = Request(scope, receive)
    raw = await request.body()
    # The request line and headers too, so equal bodies sent differently get distinct answers.
    seen = repr((scope["method"], scope["path"], sorted(scope["headers"]))).encode()
    response: Response = JSONResponse(
        {"sha": hashlib.sha256(raw).hexdigest(), "request": hashlib.sha256(seen).hexdigest()}
    )
    await response(scope, receive, send)


async def _lifespan(receive: Receive, send: Send, on_shutdown: Any = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _echo_closing(cache: SemanticCache) -> Any:
    """The upstream app behind the middleware; it owns the cache and closes it at shutdown."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, cache.close)
            return
        await _echo(scope, receive, send)

    return app


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
    if draw(st.booleans()):  # often: answers must never cross credentials
        headers["authorization"] = draw(st.sampled_from(["Bearer a", "Bearer b"]))
    for name, values in (
        ("content-encoding", ["gzip", "br", "identity"]),
        ("accept", ["text/event-stream", "*/*"]),
        ("cache-control", ["no-cache", "no-store", "max-age=0", "private, =,,"]),
        ("x-semcache-ttl", ["0", "60", "-1", "1e9", "٣"]),
    ):
        if draw(st.integers(0, 4)) == 0:
            headers[name] = draw(st.sampled_from(values))
    return method, path, headers, draw(_bodies)


# -- the oracle: which earlier answer may serve a request, by this test's own reading ----


_NO_STORE = re.compile(r"no-store")
_REFRESH = re.compile(r"no-cache|max-age=0")
"""Honoured from a client with a credential only (``SEMANTIC_CACHE_CLIENT_CACHE_CONTROL``
is ``identified`` by default): an anonymous client cannot empty the cache for others."""
_LABELS = frozenset({"user"})
"""Body fields that label a request without changing its answer."""
_TRAILING_PUNCTUATION = ".?!,;: "


@dataclass(frozen=True)
class _Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _coding(sent: _Sent) -> str:
    return sent.headers.get("content-encoding", "identity")  # identity: no encoding


def _normalised(text: str) -> str:
    folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return folded.rstrip(_TRAILING_PUNCTUATION)


def _question_and_rest(body: bytes) -> tuple[str | None, Any] | None:
    """The last user question and the rest of the document, read with plain ``json``."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None, doc
    rest = {k: v for k, v in doc.items() if k not in _LABELS}
    messages = rest.get("messages")
    if not isinstance(messages, list):
        return None, rest
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                parts = [p.get("text") for p in content if isinstance(p, dict)]
                if not all(isinstance(t, str) for t in parts):
                    return None, rest
                content = " ".join(t for t in parts if isinstance(t, str))
            if not isinstance(content, str):
                return None, rest
            blanked = [*messages[:index], {**message, "content": None}, *messages[index + 1 :]]
            return content, {**rest, "messages": blanked}
    return None, rest


class _Oracle:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.embedder = HashingTestEmbedder()

    def _similar(self, a: str, b: str) -> bool:
        if _normalised(a) == _normalised(b):
            return True
        va, vb = self.embedder._vector(a), self.embedder._vector(b)
        return float(np.dot(va, vb)) >= self.threshold - 0.02

    def may_serve(self, earlier: _Sent, now: _Sent) -> str | None:
        """``None`` when ``earlier``'s answer may serve ``now``; else why not."""
        cache_control = now.headers.get("cache-control", "")
        if _NO_STORE.search(cache_control):
            return "the client said no-store"
        if _REFRESH.search(cache_control) and "authorization" in now.headers:
            return "a client with a credential asked for a fresh answer"
        for field in ("method", "path"):
            if getattr(earlier, field) != getattr(now, field):
                return f"another {field}"
        if earlier.headers.get("authorization") != now.headers.get("authorization"):
            return "another credential"
        if _coding(earlier) != _coding(now):
            return "another content encoding"
        if earlier.body == now.body:
            return None
        a, b = _question_and_rest(earlier.body), _question_and_rest(now.body)
        if a is None or b is None:
            return "a body plain json cannot read"
        (qa, rest_a), (qb, rest_b) = a, b
        if rest_a != rest_b:
            return "another document apart from the question"
        if qa is None or qb is None:
            return "no question to compare"
        if not self._similar(qa, qb):
            return f"another question: {qa[:60]!r} vs {qb[:60]!r}"
        return None


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
    def __init__(self, threshold: float, client: httpx.AsyncClient) -> None:
        self.oracle = _Oracle(threshold)
        self.client = client
        self.produced: dict[bytes, _Sent] = {}
        """Upstream answers -> the request that produced them."""
        self.results: dict[str, int] = {}

    async def check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        raw_headers = {k.encode(): v.encode() for k, v in headers.items()}  # UTF-8 on the wire
        sent = _Sent(method, path, headers, body)
        async with asyncio.timeout(REQUEST_BUDGET_S):
            response = await self.client.request(method, path, headers=raw_headers, content=body)
        assert response.status_code == 200, (response.status_code, response.text[:300])
        status = response.headers.get("x-semcache", "none")
        self.results[status] = self.results.get(status, 0) + 1
        if status == "hit":
            assert response.content in self.produced, "a hit that the upstream never produced"
            why_not = self.oracle.may_serve(self.produced[response.content], sent)
            assert why_not is None, f"served another request's answer: {why_not}"
        else:
            answered = response.json()["sha"]
            assert answered == hashlib.sha256(body).hexdigest(), "the body was altered on its way"
            self.produced.setdefault(response.content, sent)

    async def seed(self, body: bytes) -> None:
        """Store ``body``'s answer for anonymous clients, then ask it with credentials:
        each must get an answer of its own, never the anonymous one."""
        plain = {"content-type": "application/json"}
        await self.check("POST", CHAT, plain, body)
        for _ in range(200):  # the write lands just after the answer: poll until it is in
            before = self.results.get("hit", 0)
            await self.check("POST", CHAT, plain, body)
            if self.results.get("hit", 0) > before:
                break
        else:
            raise AssertionError("a stored answer never became a hit")
        for credential in ("Bearer a", "Bearer b"):
            await self.check("POST", CHAT, {**plain, "authorization": credential}, body)


def _run_property(base_url: str, threshold: float) -> dict[str, int]:
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_BUDGET_S, trust_env=False)
        checker = _Checker(threshold, client)
        try:
            for q in POOL:  # answers in the cache, so later requests can hit
                body = json.dumps({"model": "m", "messages": [{"role": "user", "content": q}]})
                runner.run(checker.seed(body.encode()))

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
            runner.run(client.aclose())
    results: dict[str, int] = checker.results
    return results


@contextmanager
def _middleware_served() -> Iterator[tuple[str, float]]:
    cache = _cache()
    with serve_asgi(SemanticCacheMiddleware(_echo_closing(cache), cache=cache)) as url:
        yield url, cache.settings.threshold


@contextmanager
def _proxy_served() -> Iterator[tuple[str, float]]:
    cache = _cache()
    with serve_asgi(_echo) as upstream:
        proxy = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(proxy) as url:
            yield url, cache.settings.threshold


def test_middleware_any_request_passes_through_or_hits_correctly() -> None:
    with _middleware_served() as (url, threshold):
        results = _run_property(url, threshold)
    assert results.get("hit", 0) > 0 and results.get("miss", 0) > 0, results


def test_proxy_any_request_passes_through_or_hits_correctly() -> None:
    with _proxy_served() as (url, threshold):
        results = _run_property(url, threshold)
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
