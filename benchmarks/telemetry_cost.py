"""What the operator's view adds to a hit: counting its saving, and the spans' no-op path.

    python -m benchmarks.telemetry_cost [--calls 200000]

Without an OpenTelemetry SDK (installed API or not) no span is started; the span figure
is the cost of asking. Printed in microseconds per call (best of five rounds).
"""

from __future__ import annotations

import argparse
import timeit

from semcache import SemanticCache
from semcache.http import CachedAnswer, CachePlan, HttpCacheEngine, StoredResponse
from semcache.telemetry import otel
from semcache.testing import HashingTestEmbedder


def measure(calls: int) -> tuple[float, float]:
    """Microseconds per call: (counting one hit's saving, one span without an SDK)."""
    engine = HttpCacheEngine(SemanticCache(embedder=HashingTestEmbedder(), verifier=None))
    plan = CachePlan("q", "p", metadata={"model": "gpt-4o-mini", "path": "/v1/chat/completions"})
    usage = {"in": 12, "out": 9, "model": "gpt-4o-mini-2024-07-18"}
    answer = CachedAnswer(
        StoredResponse(200, (), b"{}"), 1.0, "e", {"usage": usage, "upstream_s": 0.5}
    )

    def saving() -> None:
        engine._count_saving(plan, answer)

    def span() -> None:
        with otel.span("semcache.benchmark"):
            pass

    per_call = [min(timeit.repeat(f, number=calls, repeat=5)) / calls * 1e6 for f in (saving, span)]
    return per_call[0], per_call[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    saving, span = measure(args.calls)
    sdk = "live" if otel.live() else ("API, no SDK" if otel.enabled() else "off")
    print(f"telemetry ({sdk}): {saving:.1f} us to count a hit's saving, {span:.2f} us a span")


if __name__ == "__main__":
    main()
