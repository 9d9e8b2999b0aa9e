"""The operator's dashboard: a static page, and the admin JSON it draws.

The page (HTML, script, style; shipped in the package, no secrets in them) is served
without the token, because a browser cannot send a header on navigation. Its data,
:meth:`Dashboard.overview`, is an admin endpoint like any other: the page reads the
token from the URL fragment (never sent to a server) or a form, and sends it as
``Authorization: Bearer``. Figures are read from the same registry ``/metrics`` exports,
so the page and a Prometheus scrape cannot disagree.
"""

from __future__ import annotations

import html
import math
from importlib import resources
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.responses import Response

from semcache import SemanticCache
from semcache_proxy._metrics import ProxyMetrics

__all__ = ["ASSETS", "Dashboard"]

ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

TOP_PARTITIONS = 10

# Script and style from this origin only, nothing inline, no framing; the fragment
# carrying the token is never sent, and no Referer leaks the page's address.
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _read(name: str) -> str:
    return resources.files("semcache_proxy").joinpath("dashboard", name).read_text("utf-8")


class Dashboard:
    """Serves the page under ``admin_path`` and builds its figures."""

    def __init__(self, cache: SemanticCache, metrics: ProxyMetrics, admin_path: str) -> None:
        self.cache = cache
        self.metrics = metrics
        # The admin path is the operator's setting; escaped all the same.
        self._page = _read("index.html").replace("{{ADMIN}}", html.escape(admin_path))
        self._assets = {name: _read(name) for name in ASSETS}

    def page(self) -> Response:
        return Response(self._page, media_type="text/html; charset=utf-8", headers=_HEADERS)

    def asset(self, name: str) -> Response | None:
        body = self._assets.get(name)
        if body is None:
            return None
        return Response(body, media_type=ASSETS[name], headers=_HEADERS)

    async def overview(self) -> dict[str, Any]:
        """Everything the page shows, in one answer."""
        samples = _samples(self.metrics.registry)
        requests = {r: 0.0 for r in ("hit", "miss", "bypass")}
        for labels, value in samples.get("semcache_requests_total", []):
            requests[labels["result"]] = value
        stats = await self.cache.stats()
        return {
            "requests": requests,
            "latency": _latency(samples),
            "saved": _saved(samples),
            "rejections": {
                labels["rule"]: value
                for labels, value in samples.get("semcache_verifier_rejections_total", [])
            },
            "breakers": dict(stats["breakers"]),
            "upstream_breakers_open": _one(samples, "semcache_upstream_breakers_open"),
            "stores": {
                key: stats.get(key)
                for key in ("vectors", "vectors_bytes", "entries", "entries_bytes")
            },
            "model_id": stats.get("model_id"),
            "threshold": stats.get("threshold"),
            "false_hit_rate": None,  # measured only by an audit of served hits
            "history": self.metrics.history.series(),
        }


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _samples(registry: CollectorRegistry) -> Samples:
    out: Samples = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _one(samples: Samples, name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


def _latency(samples: Samples) -> dict[str, dict[str, float | None]]:
    """Per result: count, mean and the 50th and 95th percentile's bucket bound."""
    out: dict[str, dict[str, float | None]] = {}
    for result in ("hit", "miss"):
        count = total = 0.0
        buckets: list[tuple[float, float]] = []
        for labels, value in samples.get("semcache_request_seconds_count", []):
            count += value if labels.get("result") == result else 0
        for labels, value in samples.get("semcache_request_seconds_sum", []):
            total += value if labels.get("result") == result else 0
        for labels, value in samples.get("semcache_request_seconds_bucket", []):
            if labels.get("result") == result:
                buckets.append((float(labels["le"]), value))
        buckets.sort()
        out[result] = {
            "count": count,
            "mean": total / count if count else None,
            "p50": _quantile(buckets, count, 0.5),
            "p95": _quantile(buckets, count, 0.95),
        }
    return out


def _quantile(buckets: list[tuple[float, float]], count: float, q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (``None``: no data, or
    past the last finite bound)."""
    if not count:
        return None
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return None if math.isinf(bound) else bound
    return None


def _saved(samples: Samples) -> dict[str, Any]:
    """Totals, and the top (model, route, tenant) partitions by hits."""
    rows: dict[tuple[str, str, str], dict[str, float]] = {}

    def row(labels: dict[str, str]) -> dict[str, float]:
        key = (labels["model"], labels["route"], labels["tenant"])
        return rows.setdefault(key, {"hits": 0.0, "tokens": 0.0, "usd": 0.0, "seconds": 0.0})

    for labels, value in samples.get("semcache_saved_hits_total", []):
        row(labels)["hits"] += value
    for labels, value in samples.get("semcache_saved_tokens_total", []):
        row(labels)["tokens"] += value
    for labels, value in samples.get("semcache_saved_usd_total", []):
        row(labels)["usd"] += value
    for labels, value in samples.get("semcache_saved_seconds_total", []):
        row(labels)["seconds"] += value
    top = sorted(rows.items(), key=lambda kv: (-kv[1]["hits"], -kv[1]["usd"], kv[0]))
    return {
        "tokens": sum(r["tokens"] for r in rows.values()),
        "usd": sum(r["usd"] for r in rows.values()),
        "seconds": sum(r["seconds"] for r in rows.values()),
        "hits": sum(r["hits"] for r in rows.values()),
        "bytes": _one(samples, "semcache_bytes_saved_total"),
        "top": [
            {"model": m, "route": r, "tenant": t, **values}
            for (m, r, t), values in top[:TOP_PARTITIONS]
        ],
    }
