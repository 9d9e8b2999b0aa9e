"""The Grafana dashboard shipped in the docs queries only metrics the proxy exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from semcache import SemanticCache
from semcache.testing import HashingTestEmbedder
from semcache.verify.judge import GreyZoneVerifier
from semcache_proxy import create_semantic_cache_proxy_app
from tests.proxy.conftest import make_proxy
from tests.support.servers import serve_asgi

GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "semcache.json"

# The series names each family type gives (a counter ``x`` is scraped as ``x_total``).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in expressions(value)]
    if isinstance(node, list):
        return [e for value in node for e in expressions(value)]
    return []


class SilentJudge:
    """A grey-zone judge with no opinion: a proxy with a judge exports its metrics."""

    async def same_answer(self, query: str, candidate: str) -> bool | None:
        return None

    async def aclose(self) -> None:
        pass


def judged_proxy(upstream: str) -> Any:
    verifier = GreyZoneVerifier(None, SilentJudge())
    cache = SemanticCache(embedder=HashingTestEmbedder(), threshold=0.8, verifier=verifier)
    return create_semantic_cache_proxy_app(upstream, cache)


def exported_series(app: Any) -> set[str]:
    with serve_asgi(app) as url:
        text = httpx.get(f"{url}/metrics").text
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_a_panel_queries_is_exported(upstream: str) -> None:
    board = json.loads(GRAFANA.read_text())
    queries = expressions(board["panels"])
    assert len(queries) >= 15
    used = {name for q in queries for name in re.findall(r"\bsemcache_[a-z0-9_]+", q)}
    # A proxy as configured by default, and one with a grey-zone judge (its own metrics).
    exported = exported_series(make_proxy(upstream)) | exported_series(judged_proxy(upstream))
    assert "semcache_judge_over_lookup_cap_total" in exported
    assert used - exported == set()
    # Each panel has a query, and every exported family is on some panel.
    assert all(expressions(panel) for panel in board["panels"])
    families = {
        n.removesuffix("_total")
        for n in exported
        if not n.endswith(("_bucket", "_sum", "_count", "_created"))
    }
    assert {f for f in families if not any(f in u for u in used)} == set()
