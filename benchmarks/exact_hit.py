"""Python work of an exact hit outside the model, and Redis round trips per exact hit.

    python -m benchmarks.exact_hit [--redis redis://localhost:6379/0] [--n 1000]

Times ``SemanticCache.lookup`` on an exact repeat (no embedding) against the embedded
stores and, with ``--redis``, against Redis; counts the commands sent to Redis per hit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from semcache import SemanticCache
from semcache.testing.embedders import HashingTestEmbedder


async def _measure(cache: SemanticCache, n: int) -> tuple[float, float]:
    await cache.store("how do I reset my password", b'{"answer": 42}')
    await cache.store("how do I reset my password?", b'{"answer": 42}')  # a second text
    for _ in range(50):  # warm-up (scripts loaded, connections open)
        assert await cache.lookup("how do I reset my password") is not None
    times = []
    for _ in range(n):
        started = time.perf_counter()
        hit = await cache.lookup("how do I reset my password")
        times.append(time.perf_counter() - started)
        assert hit is not None and hit.source == "exact"
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


async def _paraphrase_repeats(cache: SemanticCache, embedder: HashingTestEmbedder) -> str:
    """The same paraphrase asked 100 times: how many embeddings, how many exact hits."""
    await cache.store("how do I reset my password on the website", b"answer")
    paraphrase = "how do I reset my password on the web site please"
    before, exact = embedder.calls, 0
    for _ in range(100):
        hit = await cache.lookup(paraphrase)
        assert hit is not None
        exact += hit.source == "exact"
        while cache._background:  # the alias is written in the background
            await asyncio.gather(*cache._background)
    return f"100 repeats of a paraphrase: {embedder.calls - before} embeddings, {exact} exact hits"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default=None)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()

    embedder = HashingTestEmbedder(dimension=64)
    async with SemanticCache(embedder=embedder, threshold=0.8, verifier=None) as cache:
        p50, p99 = await _measure(cache, args.n)
        print(f"embedded: exact hit p50 {p50:.0f} us, p99 {p99:.0f} us (n={args.n})")
        print(f"embedded: {await _paraphrase_repeats(cache, embedder)}")

    if args.redis:
        from semcache.stores import MemoryVectorStore
        from semcache_store_redis import RedisResponseStore

        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        store = RedisResponseStore(args.redis, prefix=prefix, model_id="bench", dimension=64)
        embedder = HashingTestEmbedder(dimension=64)
        cache = SemanticCache(
            threshold=0.8,
            verifier=None,
            embedder=embedder,
            response_store=store,
            vector_store=MemoryVectorStore(dimension=64),
        )
        async with cache:
            client = await store._connect()
            sent = 0
            original = client.execute_command

            async def counting(*a: Any, **kw: Any) -> Any:
                nonlocal sent
                sent += 1
                return await original(*a, **kw)

            client.execute_command = counting  # type: ignore[method-assign]
            p50, p99 = await _measure(cache, args.n)
            sent = 0
            for _ in range(100):
                await cache.lookup("how do I reset my password")
            print(
                f"redis: exact hit p50 {p50:.0f} us, p99 {p99:.0f} us (n={args.n}); "
                f"{sent / 100:.1f} commands per hit"
            )
            print(f"redis: {await _paraphrase_repeats(cache, embedder)}")
            await store.flush()


if __name__ == "__main__":
    asyncio.run(main())
