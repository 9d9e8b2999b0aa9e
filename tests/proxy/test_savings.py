"""Money and time saved, through the real proxy: a miss keeps the usage its upstream
reported and its seconds; a hit counts them, priced, in /metrics and the admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from semcache import SemanticCache
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
SAVINGS = "/_semcache/admin/savings"
ADMIN = {"Authorization": "Bearer s3cret"}
KEY = {"Authorization": "Bearer sk-test-secret-1"}


def chat(question: str, model: str = "gpt-4o-mini", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


def proxy(upstream: str, embedder: object, **settings: object) -> object:
    cache = SemanticCache(embedder=embedder, admin_token="s3cret", **settings)  # type: ignore[arg-type]
    return create_semantic_cache_proxy_app(upstream, cache)


@contextmanager
def served(fake: FakeLLM, embedder: object, **settings: object) -> Iterator[httpx.Client]:
    """A client of a real proxy (uvicorn) in front of ``fake`` (uvicorn too)."""
    with serve_asgi(fake.app) as upstream:
        app = proxy(upstream, embedder, **settings)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric ``name`` (``..._total``), keyed by their sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_a_paraphrase_hit_counts_tokens_seconds_and_dollars(real_embedder: object) -> None:
    with served(FakeLLM(latency=0.3), real_embedder) as client:
        miss = client.post(CHAT, json=chat("How do I reset my password?"), headers=KEY)
        assert miss.headers["x-semcache"] == "miss"
        usage = miss.json()["usage"]
        hit = client.post(CHAT, json=chat("How can I reset my password?"), headers=KEY)
        assert hit.headers["x-semcache"] == "hit", hit.headers
        assert float(hit.headers["x-semcache-similarity"]) < 1.0  # semantic, not exact
        metrics = client.get("/metrics").text
        summary = client.get(SAVINGS, headers=ADMIN).json()

    usd = (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.60) / 1_000_000
    tenants = set(summary["by_tenant"])
    assert len(tenants) == 1
    tenant = tenants.pop()
    # Who asks is a short hash of the credential, never the credential itself.
    assert tenant.startswith("key:") and "sk-test-secret-1" not in metrics + json.dumps(summary)
    labels = (("model", "gpt-4o-mini"), ("route", CHAT), ("tenant", tenant))
    tokens = samples(metrics, "semcache_saved_tokens_total")
    assert tokens[tuple(sorted((*labels, ("kind", "input"))))] == usage["prompt_tokens"]
    assert tokens[tuple(sorted((*labels, ("kind", "output"))))] == usage["completion_tokens"]
    assert samples(metrics, "semcache_saved_usd_total")[labels] == pytest.approx(usd)
    # The upstream took the injected latency and more; the hit saved all of it.
    assert samples(metrics, "semcache_saved_seconds_total")[labels] >= 0.3
    assert samples(metrics, "semcache_saved_hits_total")[labels] == 1
    assert samples(metrics, "semcache_tokens_saved_total")[()] == usage["total_tokens"]

    total = summary["total"]
    assert total["hits"] == 1 and total["tokens"] == usage["total_tokens"]
    assert total["usd"] == pytest.approx(usd) and total["seconds"] >= 0.3
    assert summary["by_model"]["gpt-4o-mini"]["hits"] == 1
    assert summary["by_route"][CHAT]["input_tokens"] == usage["prompt_tokens"]


def test_streamed_answers_report_their_usage_openai_and_anthropic(real_embedder: object) -> None:
    fake = FakeLLM()
    openai = chat(
        "Why is the sky blue?", "gpt-4o", stream=True, stream_options={"include_usage": True}
    )
    anthropic = chat(
        "Why is the sea salty?", "claude-3-5-haiku-20241022", stream=True, max_tokens=64
    )
    with served(fake, real_embedder) as client:
        for path, body in ((CHAT, openai), (MESSAGES, anthropic)):
            assert client.post(path, json=body).headers["x-semcache"] == "miss"
            replay = client.post(path, json=body)
            assert replay.headers["x-semcache"] == "hit"
        summary = client.get(SAVINGS, headers=ADMIN).json()

    # The fake's answers: 12 input tokens, one output token a word of "Answer #N to: QUESTION".
    gpt = summary["by_model"]["gpt-4o"]
    assert (gpt["input_tokens"], gpt["output_tokens"]) == (12, 8)
    assert gpt["usd"] == pytest.approx((12 * 2.5 + 8 * 10.0) / 1_000_000)
    claude = summary["by_model"]["claude-3-5-haiku-20241022"]
    assert (claude["input_tokens"], claude["output_tokens"]) == (12, 8)
    assert claude["usd"] == pytest.approx((12 * 0.8 + 8 * 4.0) / 1_000_000)
    assert summary["by_route"][MESSAGES]["hits"] == 1
    assert summary["by_tenant"] == {"anonymous": summary["total"]}


def test_own_prices_and_the_tenant_cap(real_embedder: object) -> None:
    prices = json.dumps({"models": {"house-model": {"input": 1000, "output": 0}}})
    with served(FakeLLM(), real_embedder, prices=prices, savings_max_labels=1) as client:
        for key in ("sk-tenant-a", "sk-tenant-b", "sk-tenant-c"):
            headers = {"Authorization": f"Bearer {key}"}
            body = chat("What is the capital of France?", "house-model")
            client.post(CHAT, json=body, headers=headers)
            assert client.post(CHAT, json=body, headers=headers).headers["x-semcache"] == "hit"
        summary = client.get(SAVINGS, headers=ADMIN).json()

    assert summary["total"]["hits"] == 3
    assert summary["total"]["usd"] == pytest.approx(3 * 12 * 1000 / 1_000_000)
    # One tenant label kept; the next tenants count under "other".
    by_tenant = summary["by_tenant"]
    assert len(by_tenant) == 2 and by_tenant["other"]["hits"] == 2
    assert summary["max_labels"] == 1
