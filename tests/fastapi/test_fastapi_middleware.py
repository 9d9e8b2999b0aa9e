"""FastAPI/ASGI specifics: options, extractors, fail-open, ASGI message handling."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

import semcache_fastapi
from fastapi import FastAPI, Request, Response
from semcache_fastapi import SemanticCacheMiddleware, default_extract_query
from tests.support.broken_caches import BrokenCache, GarbageCache
from tests.support.scenarios.backend import Backend
from tests.support.scenarios.harness import build_cache, settings_for_tests
from tests.support.servers import serve_asgi

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "packages" / "semcache-fastapi" / "README.md"
# The package README (PyPI) and the documentation page carry the same examples; both run.
EXAMPLE_PAGES = [README, ROOT / "docs" / "adapters" / "asgi.md"]
# The 30-second example of the repository README and of Getting started is the first one.
FIRST_EXAMPLE_PAGES = [*EXAMPLE_PAGES, ROOT / "README.md", ROOT / "docs" / "getting-started.md"]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def counting_app(**options: Any) -> tuple[FastAPI, Any, list[dict[str, Any]]]:
    """A FastAPI app whose POST routes echo a call counter; returns (app, cache, calls)."""
    cache = options.pop("cache", None) or build_cache()
    calls: list[dict[str, Any]] = []
    app = FastAPI()
    app.add_middleware(SemanticCacheMiddleware, cache=cache, **options)

    @app.api_route("/{path:path}", methods=["POST", "PUT", "GET"])
    async def echo(request: Request, path: str) -> dict[str, Any]:
        raw = await request.body()
        calls.append({"path": path, "body": raw, "headers": dict(request.headers)})
        return {"n": len(calls), "path": path}

    return app, cache, calls


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


Q = {"query": "What is the capital of France?"}
PARAPHRASE = {"query": "tell me what is the capital of France"}


# -- the README ---------------------------------------------------------------------------


def readme_snippets(page: Path = README) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


@pytest.fixture
def env_test_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a plain ``SemanticCache()`` (as in the README) use the test embedder and memory."""
    monkeypatch.setenv("SEMANTIC_CACHE_EMBEDDER_TYPE", "testing-hash")
    monkeypatch.setenv("SEMANTIC_CACHE_THRESHOLD", "0.8")
    monkeypatch.setenv("SEMANTIC_CACHE_VECTOR_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_RESPONSE_STORE", "memory")


@pytest.mark.parametrize("page", FIRST_EXAMPLE_PAGES, ids=page_id)
def test_readme_example_over_http(env_test_cache: None, page: Path) -> None:
    code = readme_snippets(page)[0]
    assert "app.add_middleware(SemanticCacheMiddleware, cache=cache)" in code
    namespace: dict[str, Any] = {}
    exec(compile(code, str(page), "exec"), namespace)
    app: FastAPI = namespace["app"]
    cache = namespace["cache"]
    answers: list[str] = []

    @app.post("/ask")
    async def ask(body: dict[str, Any]) -> dict[str, Any]:
        answers.append(body["query"])
        return {"answer": f"answer #{len(answers)}"}

    backend = Backend()
    with serve_asgi(app) as base, httpx.Client(trust_env=False, timeout=30) as http:
        first = http.post(base + "/ask", json=Q)
        assert first.headers["x-semcache"] == "miss"
        assert backend.wait_for(lambda: cache.counters["stores"] == 1)
        second = http.post(base + "/ask", json=PARAPHRASE)
        assert second.headers["x-semcache"] == "hit"
        assert second.json() == first.json() == {"answer": "answer #1"}
    assert answers == [Q["query"]]


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
async def test_readme_custom_extract_query_example(env_test_cache: None, page: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(readme_snippets(page)[1], str(page), "exec"), namespace)
    app: FastAPI = namespace["app"]

    @app.post("/v1/ask")
    async def ask(body: dict[str, Any]) -> dict[str, Any]:
        return {"text": body["question"]["text"]}

    class Org:
        def __init__(self, org_id: str) -> None:
            self.org_id = org_id

    @app.middleware("http")  # stands in for the authentication middleware
    async def authenticate(request: Request, call_next: Any) -> Any:
        request.state.user = Org(request.headers["x-org"])
        return await call_next(request)

    async with client(app) as c:
        ask_body = {"question": {"text": "How do I reset my password?"}, "lang": "en"}
        acme = {"x-org": "acme"}
        assert (await c.post("/v1/ask", json=ask_body, headers=acme)).headers[
            "x-semcache"
        ] == "miss"
        assert (await c.post("/v1/ask", json=ask_body, headers=acme)).headers["x-semcache"] == "hit"
        assert (await c.post("/v1/ask", json=ask_body, headers={"x-org": "globex"})).headers[
            "x-semcache"
        ] == "miss"


def test_exports() -> None:
    assert set(semcache_fastapi.__all__) >= {"SemanticCacheMiddleware", "default_extract_query"}


# -- options --------------------------------------------------------------------------------


async def test_disabled_middleware_is_invisible() -> None:
    for options in ({"enabled": False}, {"cache_settings": settings_for_tests(enabled=False)}):
        app, cache, calls = counting_app(**options)
        async with client(app) as c:
            for _ in range(2):
                response = await c.post("/ask", json=Q)
                assert "x-semcache" not in response.headers
        assert len(calls) == 2
        await cache.close()


async def test_methods_and_path_prefix() -> None:
    app, cache, _calls = counting_app(methods=["POST", "PUT"], path_prefix="/v1")
    async with client(app) as c:
        assert (await c.put("/v1/ask", json=Q)).headers["x-semcache"] == "miss"
        assert (await c.put("/v1/ask", json=Q)).headers["x-semcache"] == "hit"
        for method, path in (("POST", "/v10/ask"), ("POST", "/other"), ("GET", "/v1/ask")):
            response = await c.request(method, path)
            assert "x-semcache" not in response.headers, (method, path)
    await cache.close()


async def test_custom_extract_query_wrapping_the_default() -> None:
    def extract_query(request: Request, body: Any) -> str | None:
        if isinstance(body, dict) and "question" in body:
            return str(body["question"]["text"])
        return default_extract_query(request, body)

    app, cache, _calls = counting_app(extract_query=extract_query)
    async with client(app) as c:
        first = await c.post(
            "/ask", json={"question": {"text": "How do magnets work?"}, "lang": "en"}
        )
        assert first.headers["x-semcache"] == "miss"
        hit = await c.post("/ask", json={"question": {"text": "how do magnets work"}, "lang": "en"})
        assert hit.headers["x-semcache"] == "hit"
        other_lang = await c.post(
            "/ask", json={"question": {"text": "How do magnets work?"}, "lang": "fr"}
        )
        assert other_lang.headers["x-semcache"] == "miss"
        assert (await c.post("/ask", json=Q)).headers["x-semcache"] == "miss"  # default still works
        assert (await c.post("/ask", json={"nothing": 1})).headers["x-semcache"] == "bypass"
    await cache.close()


async def test_extract_partition_and_model_from_the_request() -> None:
    async def tenant(request: Request, body: Any) -> str | None:
        return request.headers.get("x-verified-user")  # set by a trusted auth layer

    def model(request: Request, body: Any) -> str | None:
        return request.query_params.get("deployment")

    app, cache, _calls = counting_app(extract_partition=tenant, extract_model=model)
    async with client(app) as c:
        alice = {"x-verified-user": "alice"}
        assert (await c.post("/ask", json=Q, headers=alice)).headers["x-semcache"] == "miss"
        assert (await c.post("/ask", json=PARAPHRASE, headers=alice)).headers["x-semcache"] == "hit"
        bob = {"x-verified-user": "bob"}
        assert (await c.post("/ask", json=Q, headers=bob)).headers["x-semcache"] == "miss"
        assert (await c.post("/ask?deployment=b", json=Q, headers=alice)).headers[
            "x-semcache"
        ] == "miss"
    await cache.close()


async def test_failing_extractor_bypasses_without_error(caplog: pytest.LogCaptureFixture) -> None:
    def broken(request: Request, body: Any) -> str | None:
        raise KeyError("tenant")

    app, cache, _calls = counting_app(extract_partition=broken)
    async with client(app) as c:
        response = await c.post("/ask", json=Q)
    assert response.status_code == 200 and response.headers["x-semcache"] == "bypass"
    assert "extract_partition raised" in caplog.text
    await cache.close()


async def test_ignored_fields_option() -> None:
    app, cache, _calls = counting_app(ignored_fields={"request_id"})
    async with client(app) as c:
        await c.post("/ask", json={**Q, "request_id": "1"})
        assert (await c.post("/ask", json={**Q, "request_id": "2"})).headers["x-semcache"] == "hit"
    await cache.close()


async def test_plain_starlette_app() -> None:
    cache = build_cache()

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse({"echo": (await request.json())["query"]})

    app = Starlette(
        routes=[Route("/ask", endpoint, methods=["POST"])],
        middleware=[Middleware(SemanticCacheMiddleware, cache=cache)],
    )
    async with client(app) as c:
        assert (await c.post("/ask", json=Q)).headers["x-semcache"] == "miss"
        hit = await c.post("/ask", json=PARAPHRASE)
        assert hit.headers["x-semcache"] == "hit" and hit.json() == {"echo": Q["query"]}
    await cache.close()


# -- failures never become errors -------------------------------------------------------------


@pytest.mark.parametrize("cache_type", [BrokenCache, GarbageCache])
async def test_a_failing_cache_never_fails_a_request(cache_type: type) -> None:
    app, _, calls = counting_app(cache=cache_type())
    async with client(app) as c:
        for _ in range(2):
            response = await c.post("/ask", json=Q)
            assert response.status_code == 200
            assert response.headers["x-semcache"] == "miss"
    assert len(calls) == 2


# -- raw ASGI behaviour ----------------------------------------------------------------------------


def scope(
    path: str = "/ask", method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"content-type", b"application/json")],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
    }


class Wire:
    """The server side of one request: scripted receive messages, recorded sends."""

    def __init__(self, *bodies: bytes) -> None:
        self.incoming: list[dict[str, Any]] = [
            {"type": "http.request", "body": b, "more_body": i < len(bodies) - 1}
            for i, b in enumerate(bodies)
        ]
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.incoming:
            return self.incoming.pop(0)
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


async def test_body_is_replayed_and_disconnect_reaches_the_app() -> None:
    seen: list[dict[str, Any]] = []
    first_seen = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            first_seen.set()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        seen.append(await receive())  # a streaming app waiting for the client to leave
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    cache = build_cache()
    middleware = SemanticCacheMiddleware(app, cache=cache)
    body = json.dumps(Q).encode()
    wire = Wire(body[:5], body[5:20], body[20:])
    task = asyncio.create_task(middleware(scope(), wire.receive, wire.send))
    await asyncio.wait_for(first_seen.wait(), 5)
    await asyncio.sleep(0.01)
    assert not task.done()  # the app is waiting on receive, as it should
    wire.gone.set()
    await asyncio.wait_for(task, 5)
    assert seen[0] == {"type": "http.request", "body": body, "more_body": False}
    assert seen[1] == {"type": "http.disconnect"}
    assert wire.headers[b"x-semcache"] == b"miss"
    await cache.close()


async def test_oversize_body_reaches_the_app_message_by_message() -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    cache = build_cache(max_body_bytes=10)
    middleware = SemanticCacheMiddleware(app, cache=cache)
    chunks = [b'{"query": ', b'"a long question that', b' is over the limit"}']
    wire = Wire(*chunks)
    await middleware(scope(), wire.receive, wire.send)
    assert [m["body"] for m in received] == chunks
    assert wire.headers[b"x-semcache"] == b"bypass"
    await cache.close()


async def test_non_http_scopes_pass_through_untouched() -> None:
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    cache = build_cache()
    middleware = SemanticCacheMiddleware(app, cache=cache)
    ws_scope = {"type": "websocket", "path": "/ws", "headers": []}

    async def receive() -> Any:
        return {}

    async def send(message: Any) -> None:
        pass

    await middleware(ws_scope, receive, send)
    assert calls == [(ws_scope, receive, send)]
    await cache.close()


class SlowStoreCache:
    """A real cache whose writes wait for a signal, noting what was sent by then."""

    def __init__(self, wire: Wire) -> None:
        self.inner = build_cache()
        self.wire = wire
        self.release = asyncio.Event()
        self.storing = asyncio.Event()
        self.sent_when_storing: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def store(self, *args: Any, **kwargs: Any) -> Any:
        self.sent_when_storing = list(self.wire.sent)
        self.storing.set()
        await self.release.wait()
        return await self.inner.store(*args, **kwargs)


async def test_store_happens_after_the_body_is_sent_and_is_not_lost() -> None:
    background_ran = asyncio.Event()

    app = FastAPI()

    @app.post("/ask")
    async def ask(body: dict[str, Any]) -> Response:
        async def later() -> None:
            background_ran.set()

        return JSONResponse({"answer": 42}, background=BackgroundTask(later))

    wire = Wire(json.dumps(Q).encode())
    cache = SlowStoreCache(wire)
    middleware = SemanticCacheMiddleware(app, cache=cache)  # type: ignore[arg-type]
    task = asyncio.create_task(middleware(scope(), wire.receive, wire.send))
    await asyncio.wait_for(cache.storing.wait(), 5)
    # By the time the write starts, the whole response is with the client.
    last = cache.sent_when_storing[-1]
    assert last["type"] == "http.response.body" and not last.get("more_body", False)
    assert last["body"] == b'{"answer":42}'
    await asyncio.wait_for(background_ran.wait(), 5)  # background tasks do not wait for the store
    assert not task.done()  # the request's task holds on until the write is done
    cache.release.set()
    await asyncio.wait_for(task, 5)
    hit_wire = Wire(json.dumps(PARAPHRASE).encode())
    await middleware(scope(), hit_wire.receive, hit_wire.send)
    assert hit_wire.headers[b"x-semcache"] == b"hit"
    await cache.inner.close()


async def test_lifespan_warms_the_cache_up() -> None:
    started = asyncio.Event()

    class Spy:
        settings = settings_for_tests()

        async def start(self) -> None:
            started.set()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    middleware = SemanticCacheMiddleware(app, cache=Spy())  # type: ignore[arg-type]
    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    await asyncio.wait_for(started.wait(), 5)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_shutdown_drains_a_write_in_flight_then_persists() -> None:
    """A request cancelled mid-write (the server going down) still has its answer stored,
    and the app only hears "shutdown complete" after that write and the persist."""
    events: list[str] = []

    class GatedCache(SlowStoreCache):
        async def store(self, *args: Any, **kwargs: Any) -> Any:
            result = await super().store(*args, **kwargs)
            events.append("stored")
            return result

        async def persist(self) -> None:
            events.append("persisted")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"answer": 42}'})

    wire = Wire(json.dumps(Q).encode())
    cache = GatedCache(wire)
    middleware = SemanticCacheMiddleware(app, cache=cache)  # type: ignore[arg-type]
    request = asyncio.create_task(middleware(scope(), wire.receive, wire.send))
    await asyncio.wait_for(cache.storing.wait(), 5)
    request.cancel()  # the server stops waiting for the request; its write goes on
    with pytest.raises(asyncio.CancelledError):
        await request

    shutdown_asked = asyncio.Event()
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Any:
        message = messages.pop(0)
        if message["type"] == "lifespan.shutdown":
            shutdown_asked.set()
        return message

    async def send(message: Any) -> None:
        events.append(message["type"])

    lifespan = asyncio.create_task(
        middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    )
    await asyncio.wait_for(shutdown_asked.wait(), 5)
    for _ in range(20):  # give a shutdown that does not wait every chance to finish early
        await asyncio.sleep(0)
    assert "lifespan.shutdown.complete" not in events
    cache.release.set()
    await asyncio.wait_for(lifespan, 5)
    assert events == [
        "lifespan.startup.complete",
        "stored",
        "persisted",
        "lifespan.shutdown.complete",
    ]
    hit_wire = Wire(json.dumps(PARAPHRASE).encode())
    await middleware(scope(), hit_wire.receive, hit_wire.send)
    assert hit_wire.headers[b"x-semcache"] == b"hit"
    await cache.inner.close()


async def test_stream_that_errors_is_not_stored_and_releases_the_flight() -> None:
    attempts: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        attempts.append(1)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        if len(attempts) == 1:
            raise RuntimeError("upstream reset mid-stream")
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    cache = build_cache()
    middleware = SemanticCacheMiddleware(app, cache=cache)
    body = json.dumps({**Q, "stream": True}).encode()
    first = Wire(body)
    with pytest.raises(RuntimeError):
        await middleware(scope(), first.receive, first.send)
    second = Wire(body)
    await asyncio.wait_for(
        middleware(scope(), second.receive, second.send), 5
    )  # not blocked by a flight
    assert second.headers[b"x-semcache"] == b"miss" and len(attempts) == 2
    third = Wire(body)
    await middleware(scope(), third.receive, third.send)
    assert third.headers[b"x-semcache"] == b"hit"
    assert third.body == b"data: 1\n\ndata: [DONE]\n\n"
    assert [m.get("more_body") for m in third.sent[1:]] == [True, False]
    await cache.close()


async def test_headers_from_further_in_are_replaced() -> None:
    app = FastAPI()

    @app.post("/ask")
    async def ask() -> Response:
        return JSONResponse({"a": 1}, headers={"X-Semcache": "hit", "X-Semcache-Similarity": "0.5"})

    cache = build_cache()
    app.add_middleware(SemanticCacheMiddleware, cache=cache)
    async with client(app) as c:
        response = await c.post("/ask", json=Q)
    assert response.headers.get_list("x-semcache") == ["miss"]
    assert "x-semcache-similarity" not in response.headers
    await cache.close()


async def test_concurrent_requests_do_not_mix() -> None:
    cache = build_cache()
    app = FastAPI()
    app.add_middleware(SemanticCacheMiddleware, cache=cache)
    questions = [
        "How far away is the Moon?",
        "Which instrument has 88 keys?",
        "What do bees make?",
        "Who painted the Mona Lisa?",
        "Where do penguins live?",
        "When did the Berlin Wall fall?",
    ]

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"q": body["query"]}

    async with client(app) as c:
        responses = await asyncio.gather(
            *(c.post("/echo", json={"query": q}) for q in questions * 3)
        )
    for question, response in zip(questions * 3, responses, strict=True):
        assert response.json() == {"q": question}
    await cache.close()


async def test_compressed_answers_only_go_to_clients_that_accept_them() -> None:
    app = FastAPI()
    payload = gzip.compress(b'{"answer": 1}')

    @app.post("/ask")
    async def ask(request: Request) -> Response:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                payload, media_type="application/json", headers={"content-encoding": "gzip"}
            )
        return Response(b'{"answer": 1}', media_type="application/json")

    cache = build_cache()
    app.add_middleware(SemanticCacheMiddleware, cache=cache)
    async with client(app) as c:
        assert (await c.post("/ask", json=Q, headers={"accept-encoding": "gzip"})).headers[
            "x-semcache"
        ] == "miss"
        plain = await c.post("/ask", json=Q, headers={"accept-encoding": "identity"})
        assert plain.headers["x-semcache"] == "miss" and plain.json() == {"answer": 1}
        # The identity answer replaced the gzip one, and suits every client.
        gz = await c.post("/ask", json=Q, headers={"accept-encoding": "gzip"})
        assert gz.headers["x-semcache"] == "hit"
        assert gz.json() == {"answer": 1}
    await cache.close()


async def test_sync_generator_stream_is_cached() -> None:
    app = FastAPI()

    @app.post("/stream")
    async def stream() -> StreamingResponse:
        def events() -> Any:
            yield b"data: a\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    cache = build_cache()
    app.add_middleware(SemanticCacheMiddleware, cache=cache)
    async with client(app) as c:
        first = await c.post("/stream", json={**Q, "stream": True})
        second = await c.post("/stream", json={**PARAPHRASE, "stream": True})
    assert (first.headers["x-semcache"], second.headers["x-semcache"]) == ("miss", "hit")
    assert second.content == first.content == b"data: a\n\ndata: [DONE]\n\n"
    await cache.close()
