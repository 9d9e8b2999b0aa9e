"""Django specifics: configuration, extractors, sync and async paths, fail-open."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import re_path

import semcache_django
import semcache_django.ordering
from semcache import SemanticCache, Settings, sync
from semcache.testing import SlowEmbedder
from semcache_django import SemanticCacheMiddleware
from tests.support.broken_caches import BrokenCache, GarbageCache
from tests.support.polling import wait_stores
from tests.support.scenarios.harness import build_cache, settings_for_tests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "packages" / "semcache-django" / "README.md"
# The package README (PyPI) and the documentation page carry the same examples; both run.
EXAMPLE_PAGES = [README, ROOT / "docs" / "adapters" / "django.md"]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


Q = {"query": "What is the capital of France?"}


LOOKUP_MS = 300
STALL_S = 12.0
"""A stalled model: far past the lookup budget, so only the budget explains a fast miss."""
STALLED_CEILING_S = min(LOOKUP_MS / 1000 + 2.0, STALL_S / 4)
"""The lookup budget plus slack for a busy two-core machine, well under the stall."""
OTHER = {"query": "How do I bake sourdough bread?"}

calls: list[dict[str, Any]] = []


def _record(request: HttpRequest) -> JsonResponse:
    calls.append({"path": request.path, "body": request.body, "thread": threading.get_ident()})
    return JsonResponse({"n": len(calls), "path": request.path})


def echo(request: HttpRequest, path: str) -> HttpResponse:
    if path == "cookie":
        response = _record(request)
        response.set_cookie("session", "abc")
        return response
    if path == "marked":
        response = _record(request)
        response["X-Semcache"] = "hit"
        response["X-Semcache-Similarity"] = "0.5"
        return response
    if path == "broken-stream":
        attempt = len(calls) + 1
        _record(request)

        def events() -> Iterator[bytes]:
            yield b"data: 1\n\n"
            if attempt == 1:
                raise RuntimeError("upstream reset mid-stream")
            yield b"data: [DONE]\n\n"

        return StreamingHttpResponse(events(), content_type="text/event-stream")
    return _record(request)


async def aecho(request: HttpRequest, path: str) -> HttpResponse:
    return _record(request)


class EchoRoutes:
    urlpatterns = [re_path(r"^(?P<path>.*)$", echo)]


class AsyncEchoRoutes:
    urlpatterns = [re_path(r"^(?P<path>.*)$", aecho)]


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


@contextmanager
def configured(routes: type = EchoRoutes, **semcache: Any) -> Iterator[Any]:
    """The echo app with ``SEMCACHE=semcache``; yields the cache given (if any)."""
    with override_settings(SEMCACHE=semcache, ROOT_URLCONF=routes):
        yield semcache.get("cache")


def post(client: Client, path: str, body: Any = Q, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", headers=headers)


def close(cache: Any) -> None:
    if isinstance(cache, SemanticCache):
        sync.run(cache.close(), 10)


@pytest.fixture
def env_test_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the shared cache built from settings use the test embedder and memory."""
    monkeypatch.setenv("SEMANTIC_CACHE_EMBEDDER_TYPE", "testing-hash")
    monkeypatch.setenv("SEMANTIC_CACHE_THRESHOLD", "0.8")
    monkeypatch.setenv("SEMANTIC_CACHE_VECTOR_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_RESPONSE_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER", "none")
    # Shared caches are kept per settings: a prefix of its own gives each test an empty one.
    monkeypatch.setenv("SEMANTIC_CACHE_PREFIX", f"test-{uuid.uuid4().hex[:12]}")


# -- package and README -------------------------------------------------------------------


def test_exports() -> None:
    assert semcache_django.__all__ == sorted(semcache_django.__all__)
    for name in semcache_django.__all__:
        assert getattr(semcache_django, name) is not None
    assert SemanticCacheMiddleware.sync_capable and SemanticCacheMiddleware.async_capable


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_readme_settings_example(
    env_test_cache: None, page: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    assert "semcache_django.SemanticCacheMiddleware" in namespace["MIDDLEWARE"]
    semcache_django.ordering.forget_warnings()
    caplog.set_level(logging.WARNING, logger="semcache")
    with (
        configured(**namespace["SEMCACHE"]),
        override_settings(MIDDLEWARE=namespace["MIDDLEWARE"]),
    ):
        client = Client()
        assert post(client, "/v1/ask").headers["x-semcache"] == "miss"
        assert "x-semcache" not in post(client, "/v2/ask").headers  # outside path_prefix
        cache = sync.shared_cache(Settings.from_env(threshold=namespace["SEMCACHE"]["threshold"]))
        wait_stores(cache, 1)
        hit = post(client, "/v1/ask")
        assert hit.headers["x-semcache"] == "hit" and hit.json()["n"] == 1
        assert hit.headers["x-semcache-similarity"] == "1.0000"
        assert hit.headers["x-semcache-entry"]
    assert not [r for r in caplog.records if "MIDDLEWARE" in r.getMessage()]  # well placed


# -- configuration --------------------------------------------------------------------------


def test_methods_and_path_prefix() -> None:
    with configured(cache=build_cache(), methods=["POST", "PUT"], path_prefix="/v1") as cache:
        client = Client()
        assert "x-semcache" not in post(client, "/v10/ask").headers
        assert "x-semcache" not in client.get("/v1/ask").headers
        assert post(client, "/v1/ask").headers["x-semcache"] == "miss"
        put = client.put("/v1/put", data=json.dumps(OTHER), content_type="application/json")
        assert put.headers["x-semcache"] == "miss"
    close(cache)


def test_settings_from_django_override_the_environment(
    env_test_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMANTIC_CACHE_MAX_BODY_BYTES", "64")
    monkeypatch.setenv("SEMANTIC_CACHE_AUTH_MODE", "partition")
    with configured(auth_mode="bypass", ttl=60):
        client = Client()
        big = {"query": "What is big?", "pad": "x" * 100}
        assert post(client, "/ask", big).headers["x-semcache"] == "bypass"  # from the environment
        auth = post(client, "/ask", Q, Authorization="Bearer k")
        assert auth.headers["x-semcache"] == "bypass"  # SEMCACHE wins over the environment
        assert post(client, "/ask").headers["x-semcache"] == "miss"


@pytest.mark.parametrize(
    ("semcache", "message"),
    [
        ({"no_such_option": 1}, "unknown semcache option"),
        ({"threshold": 2.0}, "SEMANTIC_CACHE_THRESHOLD"),
        ({"extract_partition": "no.such.module.fn"}, "could not be imported"),
        ({"extract_partition": 42}, "must be a callable"),
        ({"cache": 42}, "cache must be"),
    ],
)
def test_bad_configuration_fails_at_startup(semcache: dict[str, Any], message: str) -> None:
    with configured(**semcache), pytest.raises(ImproperlyConfigured, match=message):
        post(Client(), "/ask")


def test_cache_from_a_dotted_path_to_a_factory() -> None:
    with configured(cache="tests.django_adapter.test_django_middleware.make_cache"):
        client = Client()
        assert post(client, "/ask").headers["x-semcache"] == "miss"
        wait_stores(made[-1], 1)
        assert post(client, "/ask").headers["x-semcache"] == "hit"
    assert len(made) == 1  # once per process, not per request
    close(made.pop())


made: list[SemanticCache] = []


def make_cache() -> SemanticCache:
    made.append(build_cache())
    return made[-1]


# -- extractors ----------------------------------------------------------------------------------

seen_threads: list[str] = []


def tenant_from_header(request: HttpRequest, body: Any) -> str | None:
    seen_threads.append(threading.current_thread().name)
    return request.headers.get("X-User")


def test_sync_extractor_runs_in_the_request_thread() -> None:
    seen_threads.clear()
    with configured(
        cache=build_cache(),
        extract_partition="tests.django_adapter.test_django_middleware.tenant_from_header",
    ) as cache:
        client = Client()
        assert post(client, "/ask", **{"X-User": "alice"}).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert post(client, "/ask", **{"X-User": "bob"}).headers["x-semcache"] == "miss"
        assert post(client, "/ask", **{"X-User": "alice"}).headers["x-semcache"] == "hit"
    assert seen_threads == [threading.current_thread().name] * 3
    close(cache)


def test_async_extractor_under_wsgi_runs_on_the_semcache_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def tenant(request: HttpRequest, body: Any) -> str | None:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return request.headers.get("X-User")

    with configured(cache=build_cache(), extract_partition=tenant) as cache:
        client = Client()
        assert post(client, "/ask", **{"X-User": "alice"}).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert post(client, "/ask", **{"X-User": "bob"}).headers["x-semcache"] == "miss"
    assert loops and all(loop is sync.loop_thread().loop for loop in loops)
    close(cache)


def test_failing_extractor_bypasses() -> None:
    def broken(request: HttpRequest, body: Any) -> str:
        raise ValueError("no tenant")

    with configured(cache=build_cache(), extract_partition=broken) as cache:
        response = post(Client(), "/ask")
        assert response.status_code == 200 and response.headers["x-semcache"] == "bypass"
    close(cache)


def test_custom_extract_query_and_model() -> None:
    def question(request: HttpRequest, body: Any) -> str | None:
        return body.get("question", {}).get("text")

    def model(request: HttpRequest, body: Any) -> str | None:
        return request.headers.get("X-Model")

    with configured(cache=build_cache(), extract_query=question, extract_model=model) as cache:
        client = Client()
        body = {"question": {"text": "What is the capital of France?"}}
        assert post(client, "/ask", body, **{"X-Model": "a"}).headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        assert post(client, "/ask", body, **{"X-Model": "b"}).headers["x-semcache"] == "miss"
        assert post(client, "/ask", body, **{"X-Model": "a"}).headers["x-semcache"] == "hit"
        assert post(client, "/ask", Q).headers["x-semcache"] == "bypass"  # no question
    close(cache)


# -- the async path (ASGI) -----------------------------------------------------------------------


async def test_async_path_with_an_async_extractor_on_the_request_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def tenant(request: HttpRequest, body: Any) -> str | None:
        loops.append(asyncio.get_running_loop())
        return request.headers.get("X-User")

    cache = build_cache()
    with configured(AsyncEchoRoutes, cache=cache, extract_partition=tenant):
        client = AsyncClient()
        first = await client.post("/ask", Q, content_type="application/json")
        assert first.headers["x-semcache"] == "miss"
        for _ in range(2000):
            if cache.counters["stores"]:
                break
            await asyncio.sleep(0.005)
        hit = await client.post("/ask", Q, content_type="application/json")
        assert hit.headers["x-semcache"] == "hit" and json.loads(hit.content)["n"] == 1
    assert loops == [asyncio.get_running_loop()] * 2
    await sync.loop_thread().run_async(cache.close())


# -- failures never become errors --------------------------------------------------------------


@pytest.mark.parametrize("cache_type", [BrokenCache, GarbageCache])
def test_a_failing_cache_never_fails_a_request(cache_type: type) -> None:
    with configured(cache=cache_type()):
        for _ in range(2):
            response = post(Client(), "/ask")
            assert response.status_code == 200 and response.headers["x-semcache"] == "miss"
    assert len(calls) == 2


@pytest.mark.parametrize("cache_type", [BrokenCache, GarbageCache])
async def test_a_failing_cache_never_fails_an_async_request(cache_type: type) -> None:
    with configured(AsyncEchoRoutes, cache=cache_type()):
        for _ in range(2):
            response = await AsyncClient().post("/ask", Q, content_type="application/json")
            assert response.status_code == 200 and response.headers["x-semcache"] == "miss"
    assert len(calls) == 2


def test_a_stalled_embedder_is_a_miss_within_the_lookup_budget() -> None:
    # The model takes STALL_S and its own budget is longer still: only the lookup
    # budget can end the wait.
    embedder = SlowEmbedder(STALL_S)
    settings = settings_for_tests(lookup_timeout_ms=LOOKUP_MS, embedder_timeout_ms=60_000)
    cache = SemanticCache(settings, embedder=embedder)
    with configured(cache=cache):
        started = time.monotonic()
        response = post(Client(), "/ask")
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and response.headers["x-semcache"] == "miss"
    assert embedder.calls >= 1  # the lookup did wait on the model
    assert elapsed < STALLED_CEILING_S, f"{elapsed:.2f} s for a {LOOKUP_MS} ms lookup budget"
    close(cache)


def test_stream_that_errors_is_not_stored_and_releases_the_flight() -> None:
    with configured(cache=build_cache()) as cache:
        client = Client(raise_request_exception=False)
        body = {**Q, "stream": True}
        first = post(client, "/broken-stream", body)
        with pytest.raises(RuntimeError):
            b"".join(first.streaming_content)
        second = post(client, "/broken-stream", body)  # not held by a flight
        assert second.headers["x-semcache"] == "miss"
        assert b"".join(second.streaming_content) == b"data: 1\n\ndata: [DONE]\n\n"
        wait_stores(cache, 1)
        third = post(client, "/broken-stream", body)
        assert third.headers["x-semcache"] == "hit"
        assert b"".join(third.streaming_content) == b"data: 1\n\ndata: [DONE]\n\n"
    assert len(calls) == 2
    close(cache)


def test_headers_from_the_view_are_replaced() -> None:
    with configured(cache=build_cache()) as cache:
        response = post(Client(), "/marked")
        assert response.headers["x-semcache"] == "miss"
        assert "x-semcache-similarity" not in response.headers
    close(cache)


def test_django_cookies_prevent_storing() -> None:
    with configured(cache=build_cache()) as cache:
        client = Client()
        first = post(client, "/cookie")
        assert first.headers["x-semcache"] == "miss" and first.cookies["session"].value == "abc"
        second = post(client, "/cookie")
        assert second.headers["x-semcache"] == "miss" and second.json()["n"] == 2
        assert cache.counters["stores"] == 0
    close(cache)


def test_the_partition_uses_the_path_as_sent() -> None:
    # path_info is percent-decoded; the WSGI server's raw URI is what the client asked.
    with configured(cache=build_cache()) as cache:
        client = Client()
        assert post(client, "/ask").headers["x-semcache"] == "miss"
        wait_stores(cache, 1)
        raw = client.post(
            "/ask", data=json.dumps(Q), content_type="application/json", REQUEST_URI="/%61sk"
        )
        assert raw.headers["x-semcache"] == "miss"
        assert post(client, "/ask").headers["x-semcache"] == "hit"
