"""OpenTelemetry through the real proxy: one request, one span tree, with the decision
in its attributes; metrics mirror the Prometheus ones. The SDK's in-memory exporter and
reader stand in for a collector."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from semcache import SemanticCache
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.polling import wait_until
from tests.support.servers import serve_asgi

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

CHAT = "/v1/chat/completions"

_SDK: dict[str, Any] = {}


class Switched(SimpleSpanProcessor):
    """Exports only while :attr:`on`: the provider outlives this module (OpenTelemetry
    allows one per process), and the tests after it keep no spans in memory."""

    on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            super().on_end(span)


def _sdk() -> tuple[InMemorySpanExporter, InMemoryMetricReader, Switched]:
    """The process's SDK providers, set once (OpenTelemetry allows one of each)."""
    if not _SDK:
        exporter = InMemorySpanExporter()
        processor = Switched(exporter)
        provider = TracerProvider()
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _SDK.update(exporter=exporter, reader=reader, processor=processor)
    return _SDK["exporter"], _SDK["reader"], _SDK["processor"]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans, _, processor = _sdk()
    spans.clear()
    processor.on = True
    yield spans
    processor.on = False
    spans.clear()


@pytest.fixture
def client(real_embedder: object) -> Iterator[httpx.Client]:
    fake = FakeLLM()
    cache = SemanticCache(embedder=real_embedder)  # type: ignore[arg-type]
    with serve_asgi(fake.app) as upstream:
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as c:
            yield c


def chat(question: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


def tree(spans: list[ReadableSpan], root: ReadableSpan) -> dict[str, Any]:
    """``{name: {child name: ...}}`` below ``root``, children in start order."""
    children = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    return {root.name: [tree(spans, child) for child in children]}


def request_spans(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The first ``count`` requests' spans, in the order they started. A miss's span ends
    after its store, which follows the answer: waited for."""

    def roots() -> list[ReadableSpan]:
        found = (s for s in exporter.get_finished_spans() if s.name == "semcache.request")
        return sorted(found, key=lambda s: s.start_time or 0)

    wait_until(lambda: len(roots()) >= count, timeout=10, what=f"{count} request spans ended")
    return roots()[:count]


def request_span(
    exporter: InMemorySpanExporter, index: int, count: int
) -> tuple[ReadableSpan, dict[str, Any]]:
    """The ``index``-th of ``count`` requests' span, and its tree."""
    root = request_spans(exporter, count)[index]
    spans = list(exporter.get_finished_spans())
    return root, tree([s for s in spans if s.context.trace_id == root.context.trace_id], root)


def leaf(name: str) -> dict[str, list[Any]]:
    return {name: []}


def test_a_miss_then_a_hit_give_the_expected_span_trees(
    exporter: InMemorySpanExporter, client: httpx.Client
) -> None:
    miss = client.post(CHAT, json=chat("How do I reset my password?"))
    hit = client.post(CHAT, json=chat("How can I reset my password?"))
    assert (miss.headers["x-semcache"], hit.headers["x-semcache"]) == ("miss", "hit")

    root, shape = request_span(exporter, 0, 2)
    assert shape == {
        "semcache.request": [
            leaf("semcache.plan"),
            {
                "semcache.lookup": [
                    leaf("semcache.exact_lookup"),
                    leaf("semcache.embed"),
                    leaf("semcache.vector_search"),
                ]
            },
            leaf("semcache.forward"),
            # The store runs after the answer went out, still inside the request's trace;
            # the vector of the lookup is reused, so it embeds nothing.
            leaf("semcache.store"),
        ]
    }
    usage = miss.json()["usage"]
    attributes = dict(root.attributes or {})
    assert attributes["semcache.decision"] == "miss"
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert len(str(attributes["semcache.partition"])) == 32

    root, shape = request_span(exporter, 1, 2)
    assert shape == {
        "semcache.request": [
            leaf("semcache.plan"),
            {
                "semcache.lookup": [
                    leaf("semcache.exact_lookup"),
                    leaf("semcache.embed"),
                    leaf("semcache.vector_search"),
                    leaf("semcache.fetch"),
                    leaf("semcache.verify"),
                ]
            },
        ]
    }
    attributes = dict(root.attributes or {})
    assert attributes["semcache.decision"] == "hit"
    assert attributes["semcache.source"] == "semantic"
    assert attributes["semcache.entry_id"] == hit.headers["x-semcache-entry"]
    assert attributes["semcache.similarity"] == pytest.approx(
        float(hit.headers["x-semcache-similarity"]), abs=1e-4
    )
    assert attributes["semcache.saved.tokens"] == usage["total_tokens"]
    assert attributes["semcache.saved.usd"] > 0


def test_an_exact_repeat_skips_the_model_and_a_rejection_names_its_rule(
    exporter: InMemorySpanExporter, client: httpx.Client
) -> None:
    client.post(CHAT, json=chat("How do I enable dark mode?"))
    again = client.post(CHAT, json=chat("How do I enable dark mode?"))
    other = client.post(CHAT, json=chat("How do I disable dark mode?"))
    assert (again.headers["x-semcache"], other.headers["x-semcache"]) == ("hit", "miss")

    root, shape = request_span(exporter, 1, 3)
    assert shape == {
        "semcache.request": [
            leaf("semcache.plan"),
            {"semcache.lookup": [leaf("semcache.exact_lookup")]},
        ]
    }
    assert dict(root.attributes or {})["semcache.source"] == "exact"

    root, _ = request_span(exporter, 2, 3)
    attributes = dict(root.attributes or {})
    assert attributes["semcache.decision"] == "miss"
    assert attributes["semcache.verifier.rule"] == "polarity"
    verify = next(
        s
        for s in exporter.get_finished_spans()
        if s.name == "semcache.verify" and s.context.trace_id == root.context.trace_id
    )
    assert dict(verify.attributes or {})["semcache.verifier.rule"] == "polarity"


def test_metrics_mirror_the_prometheus_ones(client: httpx.Client) -> None:
    _, reader, _ = _sdk()
    reader.get_metrics_data()  # start from here: cumulative sums below include this test
    client.post(CHAT, json=chat("What is the boiling point of water?"))
    client.post(CHAT, json=chat("What is the boiling point of water?"))
    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    assert {
        "semcache.requests",
        "semcache.request.duration",
        "semcache.lookup.duration",
        "semcache.upstream.duration",
        "semcache.hit.similarity",
        "semcache.saved.tokens",
        "semcache.saved.seconds",
        "semcache.saved.usd",
    } <= set(points)
    results = {p.attributes["semcache.result"] for p in points["semcache.requests"]}
    assert {"hit", "miss"} <= results
    saved = points["semcache.saved.tokens"]
    assert {p.attributes["gen_ai.token.type"] for p in saved} == {"input", "output"}
    assert {p.attributes["semcache.model"] for p in saved} == {"gpt-4o-mini"}
    assert all(p.value > 0 for p in saved)


def test_without_the_package_or_with_the_setting_off_nothing_is_imported() -> None:
    script = textwrap.dedent(
        """
        import asyncio, importlib.abc, os, sys

        if sys.argv[1] == "hidden":
            class Hide(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] == "opentelemetry":
                        raise ModuleNotFoundError(name)
                    return None
            sys.meta_path.insert(0, Hide())
        else:
            os.environ["SEMANTIC_CACHE_OTEL"] = "false"

        import httpx
        from semcache import SemanticCache
        from semcache.testing import HashingTestEmbedder
        from semcache_proxy import create_semantic_cache_proxy_app

        async def upstream(scope, receive, send):
            await receive()
            body = b'{"usage": {"prompt_tokens": 1, "completion_tokens": 1}}'
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})

        async def main():
            cache = SemanticCache(embedder=HashingTestEmbedder(), verifier=None)
            app = create_semantic_cache_proxy_app("http://upstream", cache)
            app.forwarder._client_factory = lambda: httpx.AsyncClient(
                transport=httpx.ASGITransport(upstream))
            await app.startup()
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as c:
                body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
                for _ in range(2):
                    r = await c.post("/v1/chat/completions", json=body)
            await app.shutdown()
            return r.headers["x-semcache"]

        print(asyncio.run(main()), any(m.startswith("opentelemetry") for m in sys.modules))
        """
    )
    for mode in ("hidden", "off"):
        out = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["hit", "False"], (mode, out.stdout, out.stderr)


def test_without_an_sdk_no_span_is_started_and_one_set_later_is_seen_at_once() -> None:
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from semcache.telemetry import otel

        before = otel.span("semcache.test") is otel.NO_SPAN
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        with otel.span("semcache.test"):
            pass
        print(before, [s.name for s in exporter.get_finished_spans()])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True ['semcache.test']"


def test_a_callers_traceparent_is_the_parent_and_requests_on_one_connection_stay_apart(
    exporter: InMemorySpanExporter, client: httpx.Client
) -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client.post(CHAT, json=chat("How far is the moon?"), headers={"traceparent": caller})
    # The next request on the same keep-alive connection starts a trace of its own.
    client.post(CHAT, json=chat("How far is the moon?"))
    first, second = request_spans(exporter, 2)
    assert first.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert first.parent is not None and first.parent.span_id == 0xB7AD6B7169203331
    assert second.parent is None and second.context.trace_id != first.context.trace_id


def test_a_request_span_is_the_child_of_an_outer_servers_span_never_of_one_of_ours(
    exporter: InMemorySpanExporter,
) -> None:
    from semcache.telemetry import otel

    tracer = trace.get_tracer("an instrumented server")
    server_span = tracer.start_as_current_span("POST /v1/chat/completions")
    with server_span as server, otel.request_span("semcache.request", {}) as ours:
        assert ours.parent.span_id == server.get_span_context().span_id
    # The context a previous request's response was sent in, still open (uvloop hands it
    # to the next request of the connection): not a parent.
    with otel.span("semcache.forward"), otel.request_span("semcache.request", {}) as ours:
        assert ours.parent is None
