"""Search time of the embedded vector index at 10k and 100k entries (384 dimensions).

    python -m benchmarks.embedded_index [--sizes 10000 100000] [--queries 500]

Vectors are clustered (like real embeddings of related questions), queries are
perturbed copies of stored vectors; recall@1 checks the HNSW path finds them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import numpy as np

from semcache.embedder import normalize_rows
from semcache.stores import MemoryVectorStore

DIM = 384


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 50, 1), DIM)).astype(np.float32)
    picks = rng.integers(0, len(centres), n)
    return normalize_rows(centres[picks] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32))


async def measure(n: int, queries: int) -> dict[str, float]:
    data = clustered(n)
    store = MemoryVectorStore(DIM, max_entries=n)
    t0 = time.perf_counter()
    for i, row in enumerate(data):
        await store.add(f"e{i}", "p", row, None)
    insert_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n, queries)
    qs = normalize_rows(data[picks] + 0.05 * rng.normal(size=(queries, DIM)).astype(np.float32))

    async def timed() -> tuple[list[float], float]:
        times, found = [], 0
        for i, q in zip(picks, qs, strict=True):
            t = time.perf_counter()
            matches = await store.search("p", q, 4, 0.5)
            times.append((time.perf_counter() - t) * 1000)
            found += bool(matches) and matches[0].entry_id == f"e{i}"
        return times, found / queries

    exact_times, exact_recall = await timed()  # HNSW still building (or partition small)
    part = store._parts["p"]
    t0 = time.perf_counter()
    while part.ann_building:  # noqa: ASYNC110 - a worker thread builds it
        await asyncio.sleep(0.05)
    build_s = time.perf_counter() - t0
    result = {
        "entries": n,
        "insert_per_entry_us": insert_s / n * 1e6,
        "exact_p50_ms": statistics.median(exact_times),
        "exact_p99_ms": float(np.percentile(exact_times, 99)),
        "exact_recall_at_1": exact_recall,
    }
    if part.ann is not None:
        ann_times, ann_recall = await timed()
        result |= {
            "hnsw_build_wait_s": build_s,
            "hnsw_p50_ms": statistics.median(ann_times),
            "hnsw_p99_ms": float(np.percentile(ann_times, 99)),
            "hnsw_recall_at_1": ann_recall,
        }
    await store.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    results = [asyncio.run(measure(n, args.queries)) for n in args.sizes]
    print(f"{'entries':>8} {'search p50':>11} {'p99':>8} {'recall@1':>9}  path")
    for r in results:
        print(
            f"{r['entries']:>8} {r['exact_p50_ms']:>9.3f}ms {r['exact_p99_ms']:>6.3f}ms "
            f"{r['exact_recall_at_1']:>9.3f}  exact"
        )
        if "hnsw_p50_ms" in r:
            print(
                f"{r['entries']:>8} {r['hnsw_p50_ms']:>9.3f}ms {r['hnsw_p99_ms']:>6.3f}ms "
                f"{r['hnsw_recall_at_1']:>9.3f}  hnsw"
            )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
