"""The production pair behind `SemanticCache`: vectors in PostgreSQL, answers in Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semcache import SemanticCache, Settings
from semcache.testing import HashingTestEmbedder
from semcache_store_pgvector import PgVectorStore
from semcache_store_redis import RedisResponseStore
from tests.support.interleaved import Interleaved

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


def settings(pg_uri: str, redis_uri: str, prefix: str, **overrides: Any) -> Settings:
    return Settings.from_env(
        {},
        pg_uri=pg_uri,
        redis_uri=redis_uri,
        prefix=prefix,
        threshold=0.8,
        batch_max_size=1,
        **overrides,
    )


@pytest.fixture
async def cache(pg_uri, shared_redis, redis_prefix) -> AsyncIterator[SemanticCache]:
    c = SemanticCache(
        settings(pg_uri, shared_redis, redis_prefix), embedder=HashingTestEmbedder(), verifier=None
    )
    await c.start()
    yield c
    await c.close()


async def test_settings_select_both_stores(cache):
    assert isinstance(cache.vector_store, PgVectorStore)
    assert isinstance(cache.response_store, RedisResponseStore)
    assert await cache.ping() == {"vector_store": True, "response_store": True}


async def test_round_trip(cache):
    entry_id = await cache.store(
        "How do I reset my password?",
        b"Settings > Reset",
        partition="tenant-1",
        metadata={"status": 200},
    )
    assert entry_id
    exact = await cache.lookup("How do I reset my password?", partition="tenant-1")
    assert exact is not None and exact.source == "exact" and exact.payload == b"Settings > Reset"
    # Another spelling of the same text is no exact repeat, but still the same question.
    folded = await cache.lookup("how do i reset my password", partition="tenant-1")
    assert folded is not None and folded.source == "semantic" and folded.similarity > 0.99
    assert exact.metadata == {"status": 200}
    semantic = await cache.lookup("how can I reset my password", partition="tenant-1")
    assert semantic is not None and semantic.source == "semantic"
    assert semantic.entry_id == entry_id and semantic.similarity >= 0.8
    assert await cache.lookup("how can I reset my password", partition="tenant-2") is None
    assert await cache.delete(entry_id) is True
    assert await cache.lookup("how can I reset my password", partition="tenant-1") is None
    assert await cache.vector_store.count() == 0


async def test_ttl_expires_payload_and_vector(cache):
    entry_id = await cache.store("what is the capital of france", b"Paris", partition="t", ttl=1)
    stored_by = time.time()
    assert await cache.lookup("what is the capital city of france", partition="t")
    # Wait on the stores themselves (a lookup that met the vector would delete it): the
    # answer expires in Redis, and the vector's own expiry passes.
    deadline = time.monotonic() + 5
    while await cache.response_store.get(entry_id) is not None or time.time() <= stored_by + 1:
        assert time.monotonic() < deadline, "entry outlived its TTL"
        await asyncio.sleep(0.05)
    assert await cache.vector_store.count() == 1  # expired, but no one has deleted it yet
    assert await cache.sweep() == 1
    assert await cache.vector_store.count() == 0
    assert await cache.lookup("what is the capital city of france", partition="t") is None


async def test_partitions_keep_their_own_answers(cache):
    for t in range(30):
        await cache.store(
            "what is the refund policy", f"policy {t}".encode(), partition=f"tenant-{t}"
        )
    for t in range(30):
        hit = await cache.lookup("what's the refund policy", partition=f"tenant-{t}")
        assert hit is not None and hit.payload == f"policy {t}".encode()
    assert await cache.flush("tenant-3") == 1
    assert await cache.lookup("what is the refund policy", partition="tenant-3") is None
    assert await cache.lookup("what is the refund policy", partition="tenant-4")


async def test_20kb_prompt_round_trips_exact_only(cache):
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(5000)]
    prompt = " ".join(rng.choice(words, 2600)) + " so what should we do next"
    assert len(prompt.encode()) > 20_000
    assert await cache.store(prompt, b"long answer", partition="t")
    exact = await cache.lookup(prompt, partition="t")
    assert exact is not None and exact.source == "exact" and exact.payload == b"long answer"
    # Past MAX_SEMANTIC_CHARS a prompt is matched exactly: the model would read only its
    # start, so a prompt that differs at the end must not be served the stored answer.
    nearly = prompt.replace("so what should we do next", "so what shall we do next")
    assert await cache.lookup(nearly, partition="t") is None
    assert await cache.vector_store.count() == 0  # nothing was embedded for it


async def test_vector_without_its_answer_is_a_miss_and_is_removed(cache, shared_redis):
    entry_id = await cache.store("how do I export my data", b"Use the export page", partition="t")
    assert entry_id and await cache.response_store.delete(entry_id)  # e.g. evicted by Redis
    assert await cache.lookup("how can I export my data", partition="t") is None
    deadline = time.monotonic() + 5
    while await cache.vector_store.count():
        assert time.monotonic() < deadline, "the orphan vector was not removed"
        await asyncio.sleep(0.05)


async def test_concurrent_writers(pg_uri, shared_redis, redis_prefix):
    # Two caches (like two replicas) write 120 entries at once through their own pools.
    s = settings(
        pg_uri, shared_redis, redis_prefix, store_timeout_ms=5000, lookup_timeout_ms=10_000
    )
    caches = [SemanticCache(s, embedder=HashingTestEmbedder(), verifier=None) for _ in range(2)]
    try:
        ids = await asyncio.gather(
            *(
                caches[i % 2].store(
                    f"question number {i} about subject {i * 7}",
                    f"a{i}".encode(),
                    partition=f"p{i % 6}",
                )
                for i in range(120)
            )
        )
        assert all(ids) and len(set(ids)) == 120
        for i in range(0, 120, 7):
            hit = await caches[(i + 1) % 2].lookup(
                f"question number {i} about subject {i * 7}", partition=f"p{i % 6}"
            )
            assert hit is not None and hit.payload == f"a{i}".encode()
        assert await caches[0].vector_store.count() == 120
        assert await caches[1].response_store.count() == 120
    finally:
        for c in caches:
            await c.close()


class Worker:
    """A cache in a process of its own (tests/store_pgvector/worker.py)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store_pgvector.worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, **cmd: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if cmd:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "worker died"
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def test_two_processes_share_one_cache(pg_uri, shared_redis, redis_prefix):
    env = {
        **os.environ,
        "SEMANTIC_CACHE_PG_URI": pg_uri,
        "SEMANTIC_CACHE_REDIS_URI": shared_redis,
        "SEMANTIC_CACHE_PREFIX": redis_prefix,
        "SEMANTIC_CACHE_EMBEDDER_TYPE": "testing-hash",
        "SEMANTIC_CACHE_THRESHOLD": "0.8",
        # Generous budgets: the first call of each process connects and, in one of
        # them, creates the table, on a machine busy with other tests.
        "SEMANTIC_CACHE_STORE_TIMEOUT_MS": "5000",
        "SEMANTIC_CACHE_LOOKUP_TIMEOUT_MS": "10000",
    }
    a, b = Worker(env), Worker(env)
    try:
        assert a.call() == {"ready": True} and b.call() == {"ready": True}
        assert a.call(op="store", q="what is the capital of france", a="Paris", p="t")["entry_id"]
        hit = b.call(op="lookup", q="what is the capital of france", p="t")
        assert hit == {"payload": "Paris", "source": "exact"}
        hit = b.call(op="lookup", q="what is the capital city of france", p="t")
        assert hit == {"payload": "Paris", "source": "semantic"}
        assert b.call(op="lookup", q="what is the capital of france", p="other") is None
        assert b.call(op="store", q="how do I reset my password", a="Settings", p="t")["entry_id"]
        hit = a.call(op="lookup", q="how can I reset my password", p="t")
        assert hit == {"payload": "Settings", "source": "semantic"}
    finally:
        a.close()
        b.close()


async def test_concurrent_audit_outcomes_of_two_replicas_are_all_kept(
    pg_uri, shared_redis, redis_prefix
):
    # Two caches (like two replicas) record outcomes of one entry at once, so writes are
    # refused for outcomes the other landed first: each is read again and added to them.
    s = settings(
        pg_uri,
        shared_redis,
        redis_prefix,
        store_timeout_ms=5000,
        lookup_timeout_ms=10_000,
        max_false_hit_rate=0.75,
    )
    caches = [SemanticCache(s, embedder=HashingTestEmbedder(), verifier=None) for _ in range(2)]
    try:
        question = "how do I reset my password on the website"
        entry_id = await caches[0].store(question, b"answer", partition="t")
        assert entry_id
        outcomes = await asyncio.gather(
            *(caches[i % 2].record_audit(entry_id, 0.99 - i / 100, True) for i in range(24))
        )
        assert all(outcome is not None for outcome in outcomes)
        state = await caches[1].audit_state(entry_id)
        assert state is not None and len(state.samples) == 24
        assert not state.quarantined
        hit = await caches[0].lookup("how can I reset my password on the website", partition="t")
        assert hit is not None and hit.source == "semantic" and hit.payload == b"answer"
    finally:
        for c in caches:
            await c.close()


async def test_a_replica_s_outcome_of_a_replaced_answer_leaves_the_new_one_served(
    pg_uri, shared_redis, redis_prefix
):
    # Replica a audits the old answer: a failure, which would quarantine it and remove its
    # vector from PostgreSQL. Replica b stores a new answer in between.
    s = settings(pg_uri, shared_redis, redis_prefix)
    stores = {"prefix": redis_prefix, "model_id": "replicas", "dimension": 256}
    first = Interleaved(shared_redis, **stores)
    a, b = (
        SemanticCache(s, embedder=HashingTestEmbedder(), verifier=None, response_store=store)
        for store in (first, RedisResponseStore(shared_redis, **stores))
    )
    try:
        entry_id = await b.store("How do I reset my password?", b"old answer", partition="t")
        assert entry_id

        async def refreshed() -> None:
            new = await b.store("How do I reset my password?", b"new answer", partition="t")
            assert new == entry_id

        first.between = refreshed
        assert await a.record_audit(entry_id, 0.9, False) is None
        assert await a.audit_state(entry_id) is None
        assert await a.vector_store.count() == 1
        for replica in (a, b):
            hit = await replica.lookup("how can I reset my password", partition="t")
            assert hit is not None and hit.source == "semantic"
            assert hit.payload == b"new answer"
    finally:
        await a.close()
        await b.close()
