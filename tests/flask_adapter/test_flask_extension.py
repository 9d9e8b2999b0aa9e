"""Flask specifics: the extension pattern, configuration, extractors, WSGI details, fail-open."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask, Response

import semcache
import semcache_flask
from semcache import SemanticCache, sync
from semcache.http import BridgedEngine
from semcache.testing import SlowEmbedder
from semcache_flask import FlaskSemanticCache, SemanticCacheWSGIMiddleware
from tests.support.broken_caches import BrokenCache, GarbageCache
from tests.support.polling import wait_stores
from tests.support.scenarios.harness import build_cache, settings_for_tests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "packages" / "semcache-flask" / "README.md"
# The package README (PyPI) and the documentation page carry the same examples; both run.
EXAMPLE_PAGES = [README, ROOT / "docs" / "adapters" / "flask.md"]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


Q = {"query": "What is the capital of France?"}


LOOKUP_MS = 300
STALL_S = 12.0
"""A stalled model: far past the lookup budget, so only the budget explains a fast miss."""
STALLED_CEILING_S = min(LOOKUP_MS / 1000 + 2.0, STALL_S / 4)
"""The lookup budget plus slack for a busy two-core machine, well under the stall."""


def echo_app(**options: Any) -> tuple[Flask, list[dict[str, Any]]]:
    """A Flask app whose routes count calls, behind the extension."""
    calls: list[dict[str, Any]] = []
    app = Flask(__name__)
    if "config" in options:
        app.config["SEMCACHE"] = options.pop("config")
    FlaskSemanticCache(app, **options)

    @app.route("/<path:path>", methods=["POST", "PUT", "GET"])
    def echo(path: str) -> Any:
        calls.append({"path": path, "body": flask.request.get_data()})
        if path == "marked":
            return Response("{}", headers={"X-Semcache": "hit", "X-Semcache-Similarity": "0.5"})
        if path == "broken-stream":
            attempt = len(calls)

            def events() -> Iterator[bytes]:
                yield b"data: 1\n\n"
                if attempt == 1:
                    raise RuntimeError("upstream reset mid-stream")
                yield b"data: [DONE]\n\n"

            return Response(events(), mimetype="text/event-stream")
        return {"n": len(calls), "path": path}

    return app, calls


def post(
    app: Flask, path: str = "/ask", body: Any = Q, method: str = "POST", **headers: str
) -> Any:
    """POST and read the whole answer (an answer is stored once it was all sent)."""
    response = app.test_client().open(path, method=method, data=json.dumps(body), headers=headers)
    response.get_data()
    response.close()
    return response


def close(cache: SemanticCache) -> None:
    sync.run(cache.close(), 10)


@pytest.fixture
def env_test_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the cache built from settings use the test embedder and memory."""
    monkeypatch.setenv("SEMANTIC_CACHE_EMBEDDER_TYPE", "testing-hash")
    monkeypatch.setenv("SEMANTIC_CACHE_THRESHOLD", "0.8")
    monkeypatch.setenv("SEMANTIC_CACHE_VECTOR_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_RESPONSE_STORE", "memory")
    monkeypatch.setenv("SEMANTIC_CACHE_VERIFIER", "none")
    # Shared caches are kept per settings: a prefix of its own gives each test an empty one.
    monkeypatch.setenv("SEMANTIC_CACHE_PREFIX", f"test-{uuid.uuid4().hex[:12]}")


# -- package and README -------------------------------------------------------------------


def test_exports() -> None:
    assert semcache_flask.__all__ == sorted(semcache_flask.__all__)
    for name in semcache_flask.__all__:
        assert getattr(semcache_flask, name) is not None
    assert semcache_flask.SemanticCache is FlaskSemanticCache
    assert semcache_flask.SemanticCache is not semcache.SemanticCache


def readme_snippets(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_readme_example(env_test_cache: None, page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(readme_snippets(page)[0], namespace)
    app: Flask = namespace["app"]
    client = app.test_client()
    first = client.post("/v1/ask", json=Q)
    assert first.headers["x-semcache"] == "miss"
    assert first.json == {"answer": f"You asked: {Q['query']}"}
    cache = FlaskSemanticCache.cache_for(app)
    wait_stores(cache, 1)
    hit = client.post("/v1/ask", json={"query": "what is the capital of France"})
    assert hit.headers["x-semcache"] == "hit" and hit.json == first.json
    assert "x-semcache" not in client.post("/v2/ask", json=Q).headers


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_readme_factory_and_session_examples(env_test_cache: None, page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(readme_snippets(page)[1], namespace)
    app: Flask = namespace["create_app"]()
    assert app.extensions["semcache"].bridged.settings.threshold == 0.9
    exec(readme_snippets(page)[2], namespace)
    app = namespace["app"]

    @app.post("/ask")
    def ask() -> Any:
        return {"ok": True}

    with app.test_client() as client:
        assert client.post("/ask", json=Q).headers["x-semcache"] == "miss"


# -- the extension pattern and configuration ----------------------------------------------------


def test_init_app_with_config_and_keyword_overrides() -> None:
    cache = build_cache()
    extension = FlaskSemanticCache(cache=cache, path_prefix="/v1")
    apps = []
    for prefix in ("/v2", "/v3"):
        app = Flask(__name__)
        app.config["SEMCACHE"] = {"path_prefix": prefix, "methods": ["POST", "PUT"], "ttl": 60}
        extension.init_app(app)

        @app.route("/<path:path>", methods=["POST", "PUT"])
        def echo(path: str) -> Any:
            return {"path": path}

        apps.append(app)
    for index, app in enumerate(apps):
        assert FlaskSemanticCache.cache_for(app) is cache
        assert app.extensions["semcache"].bridged.settings.ttl == 60
        question = {"query": ("Why is the sky blue?", "How do volcanoes form?")[index]}
        assert post(app, "/v1/ask", question).headers["x-semcache"] == "miss"  # keywords win
        assert "x-semcache" not in post(app, "/v2/ask", question).headers
        put = post(app, "/v1/ask", question, method="PUT")
        assert put.headers["x-semcache"] == "miss"  # PUT is its own partition
    wait_stores(cache, 4)
    shared = post(apps[1], "/v1/ask", {"query": "Why is the sky blue?"})
    assert shared.headers["x-semcache"] == "hit"  # one cache for both apps
    close(cache)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"no_such_option": 1}, "unknown semcache option"),
        ({"threshold": 2.0}, "SEMANTIC_CACHE_THRESHOLD"),
        ({"extract_query": "no.such.module.fn"}, "could not be imported"),
    ],
)
def test_bad_configuration_fails_at_init(config: dict[str, Any], message: str) -> None:
    app = Flask(__name__)
    app.config["SEMCACHE"] = config
    with pytest.raises(ValueError, match=message):
        FlaskSemanticCache(app)


# -- extractors ----------------------------------------------------------------------------------


def test_sync_extractor_gets_the_flask_request_in_the_request_thread() -> None:
    seen: list[tuple[str, bool]] = []

    def tenant(request: flask.Request, body: Any) -> str | None:
        current = flask.request._get_current_object()  # type: ignore[attr-defined]
        seen.append((threading.current_thread().name, request is current))
        return flask.request.headers.get("X-User")

    cache = build_cache()
    app, calls = echo_app(cache=cache, extract_partition=tenant)
    assert post(app, **{"X-User": "alice"}).headers["x-semcache"] == "miss"
    wait_stores(cache, 1)
    assert post(app, **{"X-User": "bob"}).headers["x-semcache"] == "miss"
    assert post(app, **{"X-User": "alice"}).headers["x-semcache"] == "hit"
    assert seen == [(threading.current_thread().name, True)] * 3
    assert [c["body"] for c in calls] == [json.dumps(Q).encode()] * 2  # body intact for the view
    close(cache)


def test_async_extractor_runs_on_the_semcache_loop_with_the_request_context() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def tenant(request: flask.Request, body: Any) -> str | None:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return flask.request.headers.get("X-User")

    cache = build_cache()
    app, _ = echo_app(cache=cache, extract_partition=tenant)
    assert post(app, **{"X-User": "alice"}).headers["x-semcache"] == "miss"
    wait_stores(cache, 1)
    assert post(app, **{"X-User": "bob"}).headers["x-semcache"] == "miss"
    assert post(app, **{"X-User": "alice"}).headers["x-semcache"] == "hit"
    assert loops and all(loop is sync.loop_thread().loop for loop in loops)
    close(cache)


def test_failing_extractor_bypasses() -> None:
    def broken(request: flask.Request, body: Any) -> str:
        raise ValueError("no tenant")

    cache = build_cache()
    app, calls = echo_app(cache=cache, extract_partition=broken)
    response = post(app)
    assert response.status_code == 200 and response.headers["x-semcache"] == "bypass"
    assert calls[0]["body"] == json.dumps(Q).encode()
    close(cache)


# -- failures never become errors --------------------------------------------------------------


@pytest.mark.parametrize("cache_type", [BrokenCache, GarbageCache])
def test_a_failing_cache_never_fails_a_request(cache_type: type) -> None:
    app, calls = echo_app(cache=cache_type())
    for _ in range(2):
        response = post(app)
        assert response.status_code == 200 and response.headers["x-semcache"] == "miss"
    assert len(calls) == 2


def test_a_stalled_embedder_is_a_miss_within_the_lookup_budget() -> None:
    # The model takes STALL_S and its own budget is longer still: only the lookup
    # budget can end the wait.
    embedder = SlowEmbedder(STALL_S)
    settings = settings_for_tests(lookup_timeout_ms=LOOKUP_MS, embedder_timeout_ms=60_000)
    cache = SemanticCache(settings, embedder=embedder)
    app, calls = echo_app(cache=cache)
    started = time.monotonic()
    response = post(app)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.headers["x-semcache"] == "miss"
    assert len(calls) == 1 and embedder.calls >= 1  # the lookup did wait on the model
    assert elapsed < STALLED_CEILING_S, f"{elapsed:.2f} s for a {LOOKUP_MS} ms lookup budget"
    close(cache)


def test_stream_that_errors_is_not_stored_and_releases_the_flight() -> None:
    cache = build_cache()
    app, calls = echo_app(cache=cache)
    body = {**Q, "stream": True}
    first = app.test_client().post("/broken-stream", json=body)
    with pytest.raises(RuntimeError):
        first.get_data()
    first.close()
    second = post(app, "/broken-stream", body)  # not held by a flight
    assert second.headers["x-semcache"] == "miss"
    assert second.data == b"data: 1\n\ndata: [DONE]\n\n"
    wait_stores(cache, 1)
    third = post(app, "/broken-stream", body)
    assert third.headers["x-semcache"] == "hit" and third.data == second.data
    assert len(calls) == 2
    close(cache)


def test_headers_from_the_app_are_replaced() -> None:
    cache = build_cache()
    app, _ = echo_app(cache=cache)
    response = post(app, "/marked")
    assert response.headers.getlist("x-semcache") == ["miss"]
    assert "x-semcache-similarity" not in response.headers
    close(cache)


# -- the WSGI layer on its own --------------------------------------------------------------------


def legacy_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that writes its body with the ``write()`` callable."""
    environ["wsgi.input"].read()
    write = start_response("200 OK", [("Content-Type", "application/json")])
    write(b'{"legacy": ')
    write(b"true}")
    return []


def wsgi_call(app: Any, body: bytes, **environ: Any) -> tuple[str, dict[str, str], bytes]:
    started: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=dict(headers))
        return written.append

    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/ask",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **environ,
    }
    result = app(env, start_response)
    try:
        for chunk in result:
            written.append(chunk)
    finally:
        getattr(result, "close", lambda: None)()
    return started["status"], started["headers"], b"".join(written)


def test_write_callable_answers_are_recorded_and_replayed() -> None:
    cache = build_cache()
    middleware = SemanticCacheWSGIMiddleware(legacy_app, BridgedEngine(cache=cache))
    body = json.dumps(Q).encode()
    status, headers, content = wsgi_call(middleware, body)
    assert (status, headers["x-semcache"], content) == ("200 OK", "miss", b'{"legacy": true}')
    wait_stores(cache, 1)
    status, headers, content = wsgi_call(middleware, body)
    assert (status, headers["x-semcache"], content) == ("200 OK", "hit", b'{"legacy": true}')
    close(cache)


def test_short_body_passes_through_as_sent() -> None:
    cache = build_cache()
    received: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        received.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"ok"]

    middleware = SemanticCacheWSGIMiddleware(app, BridgedEngine(cache=cache))
    body = json.dumps(Q).encode()
    _, headers, _ = wsgi_call(middleware, body, CONTENT_LENGTH=str(len(body) + 10))
    assert headers["x-semcache"] == "bypass" and received == [body]
    close(cache)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_preloaded_app_serves_from_a_forked_worker(env_test_cache: None) -> None:
    # As under gunicorn --preload: the app (and its cache) was used before the fork.
    app, _ = echo_app()
    assert post(app).headers["x-semcache"] == "miss"
    parent_cache = FlaskSemanticCache.cache_for(app)
    wait_stores(parent_cache, 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            statuses = [post(app).headers["x-semcache"]]
            cache = FlaskSemanticCache.cache_for(app)
            wait_stores(cache, 1)
            statuses.append(post(app).headers["x-semcache"])
            # The worker's own cache: the parent's entries stay in the parent.
            code = 0 if cache is not parent_cache and statuses == ["miss", "hit"] else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    try:
        status = os.read(read, 1)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert status == bytes([0])
    assert post(app).headers["x-semcache"] == "hit"


def test_the_partition_uses_the_path_as_sent() -> None:
    # PATH_INFO is percent-decoded; the raw URI the WSGI server gives is what was asked.
    cache = build_cache()
    app, calls = echo_app(cache=cache)
    assert post(app, "/v1/chat/ask").headers["x-semcache"] == "miss"
    wait_stores(cache, 1)
    assert post(app, "/v1/chat%2Fask").headers["x-semcache"] == "miss"
    wait_stores(cache, 2)
    assert post(app, "/v1/chat%2Fask").headers["x-semcache"] == "hit"
    assert post(app, "/v1/chat/ask").headers["x-semcache"] == "hit"
    assert len(calls) == 2
    close(cache)
