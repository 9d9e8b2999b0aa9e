"""The operator's dashboard in a real browser (headless Chromium) against a real proxy:
the figures it shows are those /metrics exports, and a screenshot is kept.

The screenshot goes to ``$SEMCACHE_TEST_ARTIFACTS`` (default: the test's tmp dir);
with ``SEMCACHE_UPDATE_DOCS_IMAGES=1`` it also replaces ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from semcache import SemanticCache
from semcache_proxy import create_semantic_cache_proxy_app
from semcache_proxy.testing import FakeLLM
from tests.support.servers import serve_asgi

CHAT = "/v1/chat/completions"
ADMIN_PATH = "/_semcache/admin"
TOKEN = "s3cret-dashboard-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"


def chat(question: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}


@contextmanager
def served(embedder: object, **settings: Any) -> Iterator[tuple[str, httpx.Client]]:
    """The base URL and a client of a real proxy (uvicorn) in front of a fake upstream."""
    fake = FakeLLM(latency=0.2)
    with serve_asgi(fake.app) as upstream:
        cache = SemanticCache(embedder=embedder, **settings)  # type: ignore[arg-type]
        app = create_semantic_cache_proxy_app(upstream, cache)
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield url, client


def metric_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def total(values: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in values.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Locally a missing browser skips; in CI (the README's test command) it is an error.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is not installed (requirements-dev.txt installs it)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        missing("Chromium is not installed (scripts/setup-dev.sh installs it)")
    with sync_api.sync_playwright() as p:
        # As root (containers, CI) Chromium runs only without its sandbox.
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def artifact_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SEMCACHE_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_the_page_shows_what_metrics_export(
    real_embedder: object, browser: Any, tmp_path: Path
) -> None:
    with served(real_embedder, admin_token=TOKEN) as (url, client):

        def decision(question: str, **headers: str) -> str:
            return client.post(CHAT, json=chat(question), headers=headers).headers["x-semcache"]

        assert decision("How do I reset my password?") == "miss"
        assert decision("How can I reset my password?") == "hit"  # a paraphrase
        assert decision("How do I reset my password?") == "hit"  # an exact repeat
        assert decision("How do I enable dark mode?") == "miss"
        # Turned down by the verifier (polarity): a miss with a rule to show.
        assert decision("How do I disable dark mode?") == "miss"
        assert decision("anything", **{"Cache-Control": "no-store"}) == "bypass"

        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        # A script error or a blocked resource (the page's own security policy) shows here.
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{url}{ADMIN_PATH}/dashboard#token={TOKEN}")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
        shown = {
            el.get_attribute("data-figure"): el.inner_text()
            for el in page.query_selector_all("[data-figure]")
        }
        breakers = dict(
            tuple(row.inner_text().split("\t"))
            for row in page.query_selector_all("#breakers tbody tr")
        )
        rules = dict(
            tuple(row.inner_text().split("\t"))
            for row in page.query_selector_all("#rejections tbody tr")
        )
        partitions = [
            row.inner_text().split("\t") for row in page.query_selector_all("#partitions tbody tr")
        ]
        address = page.url
        screenshot = artifact_dir(tmp_path) / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        page.close()
        metrics = metric_values(client.get("/metrics").text)

    hits = total(metrics, "semcache_requests_total", result="hit")
    misses = total(metrics, "semcache_requests_total", result="miss")
    bypassed = total(metrics, "semcache_requests_total", result="bypass")
    assert (hits, misses, bypassed) == (2, 3, 1)
    assert (shown["hits"], shown["misses"], shown["bypass"]) == ("2", "3", "1")
    assert shown["hit_rate"] == f"{100 * hits / (hits + misses):.1f}%"
    assert shown["served_share"] == f"{100 * hits / (hits + misses + bypassed):.1f}%"

    usd = total(metrics, "semcache_saved_usd_total")
    assert usd > 0  # gpt-4o-mini is priced
    assert shown["usd_saved"] == f"${usd:.6f}"
    assert shown["tokens_saved"] == str(int(total(metrics, "semcache_tokens_saved_total")))
    assert shown["seconds_saved"] == f"{total(metrics, 'semcache_saved_seconds_total'):.2f} s"
    hit_seconds = total(metrics, "semcache_request_seconds_sum", result="hit")
    assert shown["hit_mean"] == f"{1000 * hit_seconds / hits:.1f} ms"
    miss_seconds = total(metrics, "semcache_request_seconds_sum", result="miss")
    assert shown["miss_mean"] == f"{1000 * miss_seconds / misses:.1f} ms"

    # Breaker states: every component /metrics names, closed there and on the page.
    exported = {labels["component"]: v for labels, v in metrics["semcache_breaker_open"]}
    assert set(breakers) == set(exported) and set(exported.values()) == {0.0}
    assert set(breakers.values()) == {"closed"}
    assert shown["upstream_breakers_open"] == "0"

    rejections = {labels["rule"]: v for labels, v in metrics["semcache_verifier_rejections_total"]}
    assert rejections.get("polarity", 0) >= 1
    assert rules == {rule: str(int(n)) for rule, n in rejections.items()}

    # One partition saved: the model and route the hits went to, with both hits.
    assert len(partitions) == 1
    model, route, _tenant, partition_hits, *_ = partitions[0]
    assert (model, route, partition_hits) == ("gpt-4o-mini", CHAT, "2")

    assert problems == []
    # The token left the address bar, and no request carried it in a URL.
    assert TOKEN not in address and not any(TOKEN in u for u in sent)

    assert screenshot.stat().st_size > 10_000
    if os.environ.get("SEMCACHE_UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, DOCS_IMAGE)


def test_a_refused_token_asks_again(real_embedder: object, browser: Any) -> None:
    with served(real_embedder, admin_token=TOKEN) as (url, _client):
        page = browser.new_page()
        page.goto(f"{url}{ADMIN_PATH}/dashboard#token=wrong")
        page.wait_for_selector("#login:not([hidden])", timeout=30_000)
        assert page.is_hidden("#board")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
        assert page.is_visible("#board")
        page.close()
