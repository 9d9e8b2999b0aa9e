"""What each context mode costs a follow-up lookup, on long conversations.

    python -m benchmarks.context_modes [--rounds 3]

For each pair of ``tests/data/conversations.jsonl`` the cached conversation is stored and
the new one looked up, once with texts the cache has never seen (every turn embedded)
and then ``--rounds`` more times (turn vectors remembered). Prints, per mode, the lookup
time p50 and the texts sent to the model per lookup, with all-MiniLM-L6-v2 (the default
embedder); the ratios to exact mode are what to read, the absolute times depend on the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from semcache import SemanticCache, Settings, plugins
from semcache.embedder import BaseEmbedder
from semcache.evaluation import load_pairs
from semcache.types import Matrix

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "conversations.jsonl"


class _Counting(BaseEmbedder):
    """Counts the texts that reach the model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.texts = 0

    async def embed(self, texts: Any) -> Matrix:
        self.texts += len(texts)
        return await self.inner.embed(texts)

    async def aclose(self) -> None:
        """The real model is closed once, by the caller."""


async def measure(mode: str, inner: Any, rounds: int) -> dict[str, float]:
    pairs = load_pairs(PAIRS)
    embedder = _Counting(inner)
    settings = Settings.from_env({}, context_mode=mode, batch_max_size=1)
    cold: list[float] = []
    warm: list[float] = []
    async with SemanticCache(settings, embedder=embedder) as cache:
        for i, p in enumerate(pairs):
            stored, context = p.a.keys(mode)
            asked, asked_context = p.b.keys(mode)
            await cache.store(p.a.query, b"x", partition=f"{i}{stored}", context=context)
            for n in range(rounds + 1):
                started = time.perf_counter()
                await cache.lookup(p.b.query, partition=f"{i}{asked}", context=asked_context)
                (cold if n == 0 else warm).append((time.perf_counter() - started) * 1000)
        texts_per_lookup = embedder.texts / (len(pairs) * (rounds + 2))
    return {
        "cold_ms": statistics.median(cold),
        "warm_ms": statistics.median(warm),
        "texts_per_call": texts_per_lookup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    inner = plugins.create_embedder(Settings.from_env({}))

    async def run() -> dict[str, dict[str, float]]:
        try:
            return {m: await measure(m, inner, args.rounds) for m in ("exact", "semantic", "turns")}
        finally:
            await inner.aclose()

    results = asyncio.run(run())
    base = results["exact"]
    print("mode       lookup p50, new texts   repeated   model texts per store or lookup")
    for mode, r in results.items():
        print(
            f"{mode:9}  {r['cold_ms']:7.1f} ms ({r['cold_ms'] / base['cold_ms']:4.1f}x)"
            f"  {r['warm_ms']:6.1f} ms ({r['warm_ms'] / base['warm_ms']:4.1f}x)"
            f"  {r['texts_per_call']:5.1f}"
        )


if __name__ == "__main__":
    main()
