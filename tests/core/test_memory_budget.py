"""The embedded stores' memory is bounded in bytes, not only in entries."""

import time

import numpy as np

from semcache.embedder import normalize_rows
from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.types import Entry

MiB = 1 << 20


def _matrix_bytes(store: MemoryVectorStore) -> int:
    return sum(p.matrix.nbytes + p.expires.nbytes for p in store._parts.values())


async def test_one_entry_partitions_cost_about_one_vector_each():
    dim = 384
    store = MemoryVectorStore(dim)
    vectors = normalize_rows(np.random.default_rng(0).normal(size=(64, dim)).astype(np.float32))
    n = 20_000
    for i in range(n):
        await store.add(f"e{i}", f"seed-{i}", vectors[i % 64], None)
    assert await store.count() == n
    # At most 8 rows of capacity per partition (today's code preallocates 16).
    bound = n * 8 * (4 * dim + 8)
    assert _matrix_bytes(store) <= bound
    assert _matrix_bytes(store) <= n * 2 * (4 * dim + 8)  # one row stored, at most 2 kept
    assert store.bytes_used() <= n * (4 * dim + 256)


async def test_partition_storage_grows_by_doubling():
    store = MemoryVectorStore(8)
    vectors = normalize_rows(np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32))
    for i in range(100):
        await store.add(f"e{i}", "p", vectors[i], None)
    part = store._parts["p"]
    assert 100 <= len(part.matrix) <= 200
    hits = await store.search("p", vectors[42], 1, 0.99)
    assert [m.entry_id for m in hits] == ["e42"]


async def test_vector_store_byte_budget_evicts_least_recently_used():
    dim = 16
    per = MemoryVectorStore(dim).entry_bytes
    store = MemoryVectorStore(dim, max_bytes=3 * per)
    vectors = normalize_rows(np.random.default_rng(2).normal(size=(4, dim)).astype(np.float32))
    for i in range(3):
        await store.add(f"e{i}", "p", vectors[i], None)
    await store.search("p", vectors[0], 1, 0.99)  # touch e0: e1 is now the oldest
    await store.add("e3", "p", vectors[3], None)
    assert await store.count() == 3
    assert store.bytes_used() <= 3 * per
    assert await store.search("p", vectors[1], 1, 0.99) == []


def _entry(i: int, size: int, expires_at: float | None = None) -> Entry:
    return Entry(f"e{i}", "p", f"q{i}", bytes(size), expires_at=expires_at)


async def test_response_store_keeps_at_most_max_bytes_least_recently_used_first():
    store = MemoryResponseStore(max_bytes=MiB)
    for i in range(100):
        await store.set(_entry(i, 64 * 1024), None)
        if i >= 3:
            await store.get("e0")  # keep e0 the most recently used
        assert store.bytes_used() <= MiB
    kept = [i for i in range(100) if await store.get(f"e{i}") is not None]
    assert 10 <= len(kept) <= 16
    assert 0 in kept
    assert kept[1:] == list(range(100 - len(kept) + 1, 100))  # the newest, the oldest went
    assert sum(64 * 1024 for _ in kept) <= MiB


async def test_an_entry_larger_than_the_budget_is_not_stored():
    store = MemoryResponseStore(max_bytes=MiB)
    await store.set(_entry(1, 1024), None)
    await store.set(_entry(2, 2 * MiB), None)
    assert await store.get("e2") is None
    assert await store.get("e1") is not None  # nothing was evicted for it
    await store.set(_entry(1, 2 * MiB), None)  # replacing with too large drops the old one
    assert await store.get("e1") is None
    assert store.bytes_used() == 0
    assert await store.count() == 0


async def test_expired_payloads_are_swept():
    store = MemoryResponseStore()
    now = time.time()
    await store.set(_entry(1, 1000, expires_at=now + 0.05), 1)
    await store.set(_entry(2, 1000), None)
    used = store.bytes_used()
    assert await store.expire(now + 1) == 1
    assert await store.count() == 1
    assert store.bytes_used() < used
    assert await store.get("e2") is not None


async def test_the_cache_sweep_sweeps_expired_payloads():
    from semcache import SemanticCache

    responses = MemoryResponseStore()
    cache = SemanticCache(response_store=responses, vector_store=MemoryVectorStore(8))
    await responses.set(_entry(1, 10, expires_at=time.time() - 1), None)
    await cache.sweep()
    assert await responses.count() == 0
