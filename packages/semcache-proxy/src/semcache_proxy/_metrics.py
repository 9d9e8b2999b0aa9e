"""Prometheus metrics of one proxy process, observed from the responses it sends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import Message, Send

from semcache import SemanticCache
from semcache.audit import Auditor
from semcache.http.headers import HEADER_SIMILARITY, HEADER_STATUS
from semcache.telemetry import SavingsLedger, otel
from semcache.verify.judge import judge_stats
from semcache_proxy._history import RequestHistory

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SIMILARITY_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0)

_STATUS = HEADER_STATUS.encode()
_SIMILARITY = HEADER_SIMILARITY.encode()


_EVENTS = {
    "lookups_shed_to_exact": "a lookup took the exact path only: the model was too far behind",
    "stores_shed_to_exact": "an answer was stored for exact repeats only, for the same reason",
    "queue_timeouts": "a component call ran out of time waiting for capacity of ours",
    "lag_timeouts": "a component call ran out of time while the event loop lagged",
    "errors": "a lookup failed or ran past its budget (a miss)",
}


class CacheStateCollector(Collector):
    """Read at each scrape: the engine's load-shedding counters, which component
    breakers are open, and how many requesters' upstream 429 breakers are open."""

    def __init__(self, cache: SemanticCache, upstream_open: Callable[[], int]) -> None:
        self.cache = cache
        self.upstream_open = upstream_open

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        events = CounterMetricFamily(
            "semcache_cache_events",
            "Engine events under load: " + "; ".join(f"{k}: {v}" for k, v in _EVENTS.items()),
            labels=["event"],
        )
        for name in _EVENTS:
            events.add_metric([name], self.cache.counters.get(name, 0))
        yield events
        breakers = GaugeMetricFamily(
            "semcache_breaker_open",
            "1 while a component's breaker skips it (embedder, vector store, response store).",
            labels=["component"],
        )
        for name, breaker in self.cache.breakers.items():
            breakers.add_metric([name], 1.0 if breaker.state == "open" else 0.0)
        yield breakers
        rejections = CounterMetricFamily(
            "semcache_verifier_rejections",
            "Candidates turned down before serving, by rule (negation, number, layout, "
            "context...).",
            labels=["rule"],
        )
        for rule, count in sorted(self.cache.rejections.items()):
            rejections.add_metric([rule], count)
        yield rejections
        yield GaugeMetricFamily(
            "semcache_upstream_breakers_open",
            "Requesters whose misses are answered 503 now (their upstream 429 breaker is open).",
            value=self.upstream_open(),
        )
        judge = judge_stats(self.cache.verifier)
        if judge is not None:
            yield from _judge_families(judge)


def _judge_families(judge: dict[str, Any]) -> Iterator[CounterMetricFamily]:
    """The grey-zone judge: its calls by outcome, what they cost, and the hits they won."""
    calls = CounterMetricFamily(
        "semcache_judge_calls",
        "Calls to the grey-zone judge, by outcome (yes, no, no_opinion: a timeout, an error "
        "or an answer that was neither).",
        labels=["outcome"],
    )
    for outcome in ("yes", "no", "no_opinion"):
        calls.add_metric([outcome], judge[outcome])
    yield calls
    yield CounterMetricFamily(
        "semcache_judge_over_budget",
        "Candidates decided without the judge because its budget was spent.",
        value=judge["over_budget"],
    )
    yield CounterMetricFamily(
        "semcache_judge_over_lookup_cap",
        "Candidates decided without the judge because their lookup had made "
        "SEMANTIC_CACHE_JUDGE_MAX_CALLS_PER_LOOKUP judge calls.",
        value=judge["over_lookup_cap"],
    )
    yield CounterMetricFamily(
        "semcache_judge_hits_won",
        "Hits served on the judge's yes that the rules or the threshold would have turned away.",
        value=judge["hits_won"],
    )
    yield CounterMetricFamily(
        "semcache_judge_tokens", "Tokens the judge's calls used.", value=judge["tokens"]
    )
    yield CounterMetricFamily(
        "semcache_judge_usd",
        "US dollars the judge's calls cost at SEMANTIC_CACHE_JUDGE_PRICE (0 when unpriced).",
        value=judge["cost_usd"],
    )


class SavingsCollector(Collector):
    """Read at each scrape: what hits saved, per model, route and tenant (the engine's
    :class:`~semcache.telemetry.SavingsLedger`, whose labels are capped)."""

    def __init__(self, ledger: SavingsLedger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = ["model", "route", "tenant"]
        tokens = CounterMetricFamily(
            "semcache_saved_tokens",
            "Tokens hits did not spend, as the upstream reported them for the stored answer "
            "(kind: input or output).",
            labels=[*labels, "kind"],
        )
        seconds = CounterMetricFamily(
            "semcache_saved_seconds",
            "Upstream seconds hits did not wait (the stored answer's time to its last byte).",
            labels=labels,
        )
        usd = CounterMetricFamily(
            "semcache_saved_usd",
            "US dollars hits did not spend, at the price table (unpriced models count 0).",
            labels=labels,
        )
        hits = CounterMetricFamily(
            "semcache_saved_hits", "Hits counted in the savings.", labels=labels
        )
        total = 0
        for key, row in self.ledger.rows():
            values = list(key)
            tokens.add_metric([*values, "input"], row["input_tokens"])
            tokens.add_metric([*values, "output"], row["output_tokens"])
            seconds.add_metric(values, row["seconds"])
            usd.add_metric(values, row["usd"])
            hits.add_metric(values, row["hits"])
            total += row["tokens"]
        yield from (tokens, seconds, usd, hits)
        yield CounterMetricFamily(
            "semcache_tokens_saved",
            "LLM tokens (input and output) served from the cache.",
            value=total,
        )


class AuditCollector(Collector):
    """Read at each scrape: audits of semantic hits (:mod:`semcache.audit`), the live
    false-hit rate overall, per route and tenant and per verdict path, quarantines and
    feedback reports."""

    def __init__(self, auditor: Auditor, cache: SemanticCache) -> None:
        self.auditor = auditor
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        ledger = self.auditor.ledger
        events = CounterMetricFamily(
            "semcache_audits",
            "Audits of semantic hits by event: sampled, started (a shadow call was made), "
            "agreed, wrong (a false hit), no_outcome (the shadow call or the comparison "
            "failed), skipped_budget / skipped_spend (over the hourly budget), "
            "feedback_wrong / feedback_right (reports of applications; a wrong one counted "
            "once answered, applied or not found), feedback_failed (a wrong one not applied: "
            "a store failed or ran out of time, and the client was told to send it again).",
            labels=["event"],
        )
        for name, count in ledger.events().items():
            events.add_metric([name], count)
        yield events
        outcomes = CounterMetricFamily(
            "semcache_audit_outcomes",
            "Audited hits by route, tenant, verdict path (what let the hit through) and "
            "outcome (agreed, wrong).",
            labels=["route", "tenant", "rule", "outcome"],
        )
        for key, count in ledger.outcomes():
            outcomes.add_metric(list(key), count)
        yield outcomes
        rate = GaugeMetricFamily(
            "semcache_false_hit_rate",
            "Live false-hit rate: wrong audited hits over audited hits, since the start.",
        )
        overall = ledger.false_hit_rates().get(())
        if overall is not None:
            rate.add_metric([], overall)
        yield rate
        for by, labels in ((("route", "tenant"), ["route", "tenant"]), (("rule",), ["rule"])):
            family = GaugeMetricFamily(
                "semcache_false_hit_rate_by_" + "_".join(by),
                f"Live false-hit rate per {' and '.join(by)}.",
                labels=labels,
            )
            for group, value in sorted(ledger.false_hit_rates(by).items()):
                family.add_metric(list(group), value)
            yield family
        yield CounterMetricFamily(
            "semcache_audit_quarantined",
            "Entries quarantined (no longer served semantically) after audits or reports.",
            value=self.cache.counters.get("quarantined", 0),
        )


class ProxyMetrics:
    """Counters and histograms in a registry of their own (several apps per process in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.history = RequestHistory()
        """The last hour per 10 s slot, for the dashboard (Prometheus keeps its own)."""
        r = self.registry
        self.requests = Counter(
            "semcache_requests",
            "Requests by cache result (hit, miss, bypass).",
            ["result"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "semcache_request_seconds",
            "Time to the end of the response, by cache result.",
            ["result"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lookup_seconds = Histogram(
            "semcache_lookup_seconds", "Cache lookup time.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.upstream_seconds = Histogram(
            "semcache_upstream_seconds",
            "Upstream time to response headers.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_responses = Counter(
            "semcache_upstream_responses",
            "Upstream responses by status class.",
            ["status"],
            registry=r,
        )
        self.hit_similarity = Histogram(
            "semcache_hit_similarity",
            "Similarity of served hits (1.0 for exact).",
            buckets=_SIMILARITY_BUCKETS,
            registry=r,
        )
        self.bytes_saved = Counter(
            "semcache_bytes_saved", "Response bytes served from the cache.", registry=r
        )

    def watch(
        self,
        cache: SemanticCache,
        upstream_open: Callable[[], int],
        savings: SavingsLedger | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        """Export the cache's load-shedding counters and breaker states, what hits
        saved (``savings``) and what audits found (``auditor``), as well."""
        self.registry.register(CacheStateCollector(cache, upstream_open))
        if savings is not None:
            self.registry.register(SavingsCollector(savings))
        if auditor is not None:
            self.registry.register(AuditCollector(auditor, cache))

    def export(self) -> bytes:
        return generate_latest(self.registry)

    def observe_lookup(self, hit: object, seconds: float) -> None:
        self.lookup_seconds.observe(seconds)

    def observe_upstream(self, seconds: float, status: int) -> None:
        self.upstream_seconds.observe(seconds)
        self.upstream_responses.labels(status=f"{status // 100}xx").inc()
        otel.record_upstream(seconds, status)

    def wrap_send(self, send: Send) -> Send:
        """A ``send`` that records the result, latency and savings of one response."""
        started = time.perf_counter()
        state: dict[str, Any] = {"result": "bypass", "similarity": None, "size": 0}

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                state["result"] = headers.get(_STATUS, b"bypass").decode("latin-1")
                similarity = headers.get(_SIMILARITY)
                state["similarity"] = float(similarity) if similarity else None
            elif message["type"] == "http.response.body":
                state["size"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    self._finish(state, time.perf_counter() - started)
            await send(message)

        return observed

    def _finish(self, state: dict[str, Any], seconds: float) -> None:
        result = state["result"] if state["result"] in ("hit", "miss", "bypass") else "bypass"
        self.requests.labels(result=result).inc()
        self.request_seconds.labels(result=result).observe(seconds)
        self.history.observe(result, seconds)
        if result != "hit":
            return
        if state["similarity"] is not None:
            self.hit_similarity.observe(state["similarity"])
        self.bytes_saved.inc(state["size"])
