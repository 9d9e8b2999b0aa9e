"""Lookup latency of the production stores (PostgreSQL + pgvector, Redis) at 10k and 100k entries.

    python -m benchmarks.stores [--sizes 10000 100000] [--queries 1000] [--partitions 20]
        [--pg-uri postgresql://postgres@127.0.0.1:5432/test] [--redis-uri redis://127.0.0.1:6379/0]

Each size gets a database of its own on the PostgreSQL server (created, then dropped)
and a key prefix of its own on Redis (deleted after). Entries are 384-dimension
clustered vectors (like embeddings of related questions) spread over ``--partitions``
partitions; they are loaded in bulk, then the HNSW index is built and the table analysed,
as after a day of traffic. Measured, one lookup at a time through ``SemanticCache``:

- semantic lookups: exact-match miss in Redis, vector search in PostgreSQL, answers
  fetched from Redis (queries are perturbed copies of stored vectors; the embedder is
  a table look-up, so no model time is included);
- exact lookups: the Redis fast path alone;
- the pgvector search and the Redis calls alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import redis.asyncio as aioredis

from semcache import SemanticCache, Settings
from semcache.embedder import normalize_rows
from semcache.text import hash_text
from semcache.types import Entry, Matrix
from semcache_store_pgvector import PgVectorStore
from semcache_store_pgvector._engines import asyncpg_dsn
from semcache_store_redis import RedisResponseStore

DIM = 384
MODEL_ID = "bench/clustered"


class TableEmbedder:
    """Returns the vector prepared for each text: the benchmark times stores, not a model."""

    model_id = MODEL_ID
    dimension = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    async def embed(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self.table[t] for t in texts])

    async def aclose(self) -> None:
        return None


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 50, 1), DIM)).astype(np.float32)
    picks = rng.integers(0, len(centres), n)
    return normalize_rows(centres[picks] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32))


def summary(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times_ms), 3),
        "p99_ms": round(float(np.percentile(times_ms, 99)), 3),
        "mean_ms": round(statistics.fmean(times_ms), 3),
    }


async def server_setting(uri: str, name: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(uri))
    try:
        return str(await conn.fetchval(f"SHOW {name}"))
    finally:
        await conn.close()


async def index_sizes(uri: str, table: str) -> dict[str, float]:
    conn = await asyncpg.connect(asyncpg_dsn(uri))
    try:
        hnsw = await conn.fetchval("SELECT pg_relation_size($1)", f'"{table}_hnsw"')
        heap = await conn.fetchval("SELECT pg_total_relation_size($1)", f'"{table}"')
        return {"hnsw_index_mb": round(hnsw / 2**20, 1), "table_total_mb": round(heap / 2**20, 1)}
    finally:
        await conn.close()


async def admin(uri: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(uri))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def load(
    pg: PgVectorStore,
    responses: RedisResponseStore,
    db_uri: str,
    data: np.ndarray,
    partitions: list[str],
) -> dict[str, float]:
    texts = [f"stored question {i}" for i in range(len(data))]
    parts = [partitions[i % len(partitions)] for i in range(len(data))]
    ids = [hash_text(p + "\x00" + t) for p, t in zip(parts, texts, strict=True)]
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with sem:
            entry = Entry(
                ids[i],
                parts[i],
                texts[i],
                b'{"answer": "%d"}' % i,
                {"status": 200},
                time.time(),
                None,
            )
            await responses.set(entry, None)

    await asyncio.gather(*(put(i) for i in range(len(data))))
    redis_s = time.perf_counter() - t0

    # Bulk load without the index, then build it once: minutes faster than inserting
    # into the graph row by row, and the same index in the end.
    await pg.ensure_schema()
    await admin(db_uri, f'DROP INDEX "{pg.table}_hnsw"')
    t0 = time.perf_counter()
    await pg.add_many(zip(ids, parts, data, [None] * len(data), strict=True))
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await admin(
        db_uri,
        "SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 1;"
        + pg._sql.create_indexes[-1]
        + f"; ANALYZE {pg.table}",
    )
    build_s = time.perf_counter() - t0
    return {
        "redis_load_s": round(redis_s, 1),
        "pg_insert_s": round(insert_s, 1),
        "hnsw_build_s": round(build_s, 1),
    }


async def measure(
    n: int, queries: int, n_partitions: int, pg_uri: str, redis_uri: str, ef_search: int
) -> dict[str, Any]:
    database = f"semcache_bench_{uuid.uuid4().hex[:8]}"
    db_uri = urlunsplit(urlsplit(pg_uri)._replace(path="/" + database))
    prefix = database
    await admin(pg_uri, f"CREATE DATABASE {database}")
    try:
        data = clustered(n)
        partitions = [f"partition-{p}" for p in range(n_partitions)]
        hashed = [hash_text(p) for p in partitions]
        loader = PgVectorStore(db_uri, DIM, model_id=MODEL_ID, prefix=prefix, command_timeout=600)
        loader_responses = RedisResponseStore(
            redis_uri, model_id=MODEL_ID, dimension=DIM, prefix=prefix
        )
        timings = await load(loader, loader_responses, db_uri, data, hashed)
        await loader.aclose()
        await loader_responses.aclose()

        rng = np.random.default_rng(1)
        picks = rng.integers(0, n, queries)
        noisy = normalize_rows(
            data[picks] + 0.02 * rng.normal(size=(queries, DIM)).astype(np.float32)
        )
        # The direct search gets queries of its own: reusing the lookup's would find the
        # index pages the lookup just read already in memory.
        picks2 = rng.integers(0, n, queries)
        noisy2 = normalize_rows(
            data[picks2] + 0.02 * rng.normal(size=(queries, DIM)).astype(np.float32)
        )
        table = {f"stored question {i}": data[i] for i in range(n)}
        table.update({f"asked question {k}": noisy[k] for k in range(queries)})
        settings = Settings.from_env(
            {},
            pg_uri=db_uri,
            redis_uri=redis_uri,
            prefix=prefix,
            threshold=0.9,
            hnsw_ef_search=ef_search,
            store_timeout_ms=5000,
            lookup_timeout_ms=10_000,
            batch_max_size=1,
        )
        cache = SemanticCache(settings, embedder=TableEmbedder(table), verifier=None)
        await cache.start()
        pg = cache.vector_store
        responses = cache.response_store
        assert isinstance(pg, PgVectorStore) and isinstance(responses, RedisResponseStore)

        def part_of(i: int) -> str:
            return partitions[int(i) % n_partitions]

        ids = [
            hash_text(hashed[int(i) % n_partitions] + "\x00" + f"stored question {i}")
            for i in picks
        ]
        ids2 = [
            hash_text(hashed[int(i) % n_partitions] + "\x00" + f"stored question {i}")
            for i in picks2
        ]
        operations: dict[str, Callable[[int], Awaitable[Any]]] = {
            "semantic_lookup": lambda k: cache.lookup(
                f"asked question {k}", partition=part_of(picks[k])
            ),
            "exact_lookup": lambda k: cache.lookup(
                f"stored question {picks[k]}", partition=part_of(picks[k])
            ),
            "pgvector_search": lambda k: pg.search(
                hashed[int(picks2[k]) % n_partitions], noisy2[k], 4, 0.9
            ),
            "redis_get_exact_miss": lambda k: responses.get_exact(hashed[0], f"never {k}"),
            "redis_get_many_1": lambda k: responses.get_many([ids[k]]),
        }
        # Warm-up: connections, prepared statements, the index pages in shared buffers.
        for k in range(min(200, queries)):
            for op in operations.values():
                await op(k)
        # Interleaved, so a burst of load on a shared machine hits every operation alike.
        times: dict[str, list[float]] = {label: [] for label in operations}
        results: dict[str, list[Any]] = {label: [] for label in operations}
        for k in range(queries):
            for label, op in operations.items():
                start = time.perf_counter()
                results[label].append(await op(k))
                times[label].append((time.perf_counter() - start) * 1000)
        correct = sum(
            1
            for k, hit in enumerate(results["semantic_lookup"])
            if hit is not None and hit.payload == b'{"answer": "%d"}' % picks[k]
        )
        exact_hits = sum(hit is not None for hit in results["exact_lookup"])
        found = sum(
            bool(m) and m[0].entry_id == ids2[k] for k, m in enumerate(results["pgvector_search"])
        )
        await cache.close()
        sizes = await index_sizes(db_uri, pg.table)
        return {
            "entries": n,
            "partitions": n_partitions,
            "queries": queries,
            "hnsw_ef_search": ef_search,
            **{label: summary(ms) for label, ms in times.items()},
            "semantic_hit_rate": round(correct / queries, 4),
            "exact_hit_rate": round(exact_hits / queries, 4),
            "pgvector_recall_at_1": round(found / queries, 4),
            **sizes,
            **timings,
        }
    finally:
        await admin(pg_uri, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        client = aioredis.Redis.from_url(redis_uri)
        try:
            async for key in client.scan_iter(match=prefix + "*", count=1000):
                await client.unlink(key)
        finally:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--ef-search", type=int, default=40)
    parser.add_argument("--pg-uri", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-uri", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    async def run() -> tuple[list[dict[str, Any]], str]:
        buffers = await server_setting(args.pg_uri, "shared_buffers")
        results = [
            await measure(
                n, args.queries, args.partitions, args.pg_uri, args.redis_uri, args.ef_search
            )
            for n in args.sizes
        ]
        return results, buffers

    results, buffers = asyncio.run(run())
    print(f"PostgreSQL shared_buffers={buffers}; one lookup at a time; milliseconds")
    print(f"{'entries':>8} {'lookup':>9} {'p50':>7} {'p99':>7}  {'hits':>6}")
    for r in results:
        rows = [
            ("semantic", r["semantic_lookup"], r["semantic_hit_rate"]),
            ("exact", r["exact_lookup"], r["exact_hit_rate"]),
            ("pg search", r["pgvector_search"], r["pgvector_recall_at_1"]),
            ("redis miss", r["redis_get_exact_miss"], None),
            ("redis get", r["redis_get_many_1"], None),
        ]
        for label, s, rate in rows:
            shown = "" if rate is None else f"{rate:.3f}"
            print(
                f"{r['entries']:>8} {label:>10} {s['p50_ms']:>7.2f} {s['p99_ms']:>7.2f}  {shown:>6}"
            )
    print(json.dumps({"shared_buffers": buffers, "results": results}, indent=2))


if __name__ == "__main__":
    main()
