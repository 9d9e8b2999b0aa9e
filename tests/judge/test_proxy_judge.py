"""End to end through the real proxy (uvicorn): a paraphrase below the threshold is a hit
only with the judge, and the judge's calls, cost and wins are in /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.judge._fake_judges import FakeJudge
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"


def chat(question: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


@contextmanager
def proxy(fake: FakeLLM, **judge: Any) -> Iterator[httpx.Client]:
    with serve_asgi(fake.app) as upstream:
        cache = SemanticCache(embedder=HashingTestEmbedder(), threshold=0.9, **judge)
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client


def metrics(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_paraphrase_below_the_threshold_is_served_only_with_the_judge(
    openai_fake: FakeJudge,
) -> None:
    fake = FakeLLM()
    with proxy(fake) as client:
        assert (
            client.post(CHAT, json=chat("How do I reset my password?")).headers["x-semcache"]
            == "miss"
        )
        again = client.post(CHAT, json=chat("How can I change my password?"))
        assert again.headers["x-semcache"] == "miss"
        assert not any(name.startswith("semcache_judge") for name, _ in metrics(client))

    judge = {
        "judge": "llm",
        "judge_url": openai_fake.url,
        "judge_model": "tiny-judge",
        "judge_price": 2.0,
    }
    fake = FakeLLM()
    with proxy(fake, **judge) as client:
        first = client.post(CHAT, json=chat("How do I reset my password?"))
        assert first.headers["x-semcache"] == "miss"
        hit = client.post(CHAT, json=chat("How can I change my password?"))
        assert hit.headers["x-semcache"] == "hit", hit.headers
        assert float(hit.headers["x-semcache-similarity"]) < 0.9
        assert hit.json() == first.json()
        other = client.post(CHAT, json=chat("How do I reset my router?"))
        assert other.headers["x-semcache"] == "miss"
        seen = metrics(client)
    assert fake.calls == 2  # the first question and the router; the paraphrase was served
    assert seen[("semcache_judge_calls_total", (("outcome", "yes"),))] == 1
    assert seen[("semcache_judge_calls_total", (("outcome", "no"),))] == 1
    assert seen[("semcache_judge_hits_won_total", ())] == 1
    assert seen[("semcache_judge_tokens_total", ())] == 2 * 121
    assert seen[("semcache_judge_usd_total", ())] == pytest.approx(2 * 121 * 2.0 / 1_000_000)
    assert seen[("semcache_verifier_rejections_total", (("rule", "judge"),))] == 1


def test_candidates_past_the_calls_per_lookup_are_counted(openai_fake: FakeJudge) -> None:
    judge = {"judge": "llm", "judge_url": openai_fake.url, "judge_model": "tiny-judge"}
    fake = FakeLLM()
    with proxy(fake, **judge) as client:
        for stored in ("password", "account", "email"):
            client.post(CHAT, json=chat(f"How do I reset my {stored}?"))
        before = metrics(client)
        # Three grey-zone candidates (0.81 to 0.82), one judge call: the best of them.
        miss = client.post(CHAT, json=chat("How do I reset my router?"))
        assert miss.headers["x-semcache"] == "miss"
        after = metrics(client)

    def grew(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(labels))
        return after[key] - before[key]

    assert openai_fake.state.pairs[-1] == ("how do i reset my email", "how do i reset my router")
    assert grew("semcache_judge_calls_total", ("outcome", "no")) == 1
    assert grew("semcache_judge_over_lookup_cap_total") == 2
    assert grew("semcache_judge_over_budget_total") == 0
