from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from semcache import SemanticCache, Settings
from semcache.plugins import create_response_store
from semcache.stores import MemoryVectorStore
from semcache.testing import HashingTestEmbedder
from semcache.testing.contracts import ResponseStoreContract
from semcache.types import Entry
from semcache_store_redis import RedisResponseStore, key_prefix
from tests.support.redis_clients import keys_of
from tests.support.redis_servers import delete_prefix, random_prefix

pytestmark = pytest.mark.redis


def entry(partition: str = "p", query: str = "what is the refund policy", **kw: object) -> Entry:
    defaults: dict[str, object] = {
        "entry_id": uuid.uuid4().hex,
        "payload": b"answer",
        "metadata": {"status": 200},
        "created_at": time.time(),
    }
    defaults.update(kw)
    return Entry(partition=partition, query=query, **defaults)  # type: ignore[arg-type]


class TestRedisContract(ResponseStoreContract):
    @pytest.fixture
    async def response_store(self, redis_store):
        yield redis_store


class TestRedisClusterContract(ResponseStoreContract):
    @pytest.fixture
    async def response_store(self, cluster_store):
        yield cluster_store


async def test_detects_single_server_and_cluster(redis_store, cluster_store):
    assert redis_store.is_cluster is None  # nothing connects before the first call
    await redis_store.ping()
    await cluster_store.ping()
    assert redis_store.is_cluster is False
    assert cluster_store.is_cluster is True


async def test_uri_option_skips_detection(shared_redis, redis_prefix):
    store = RedisResponseStore(shared_redis + "?cluster=false", prefix=redis_prefix)
    await store.set(entry(), None)
    assert store.is_cluster is False and await store.count() == 1
    await store.aclose()
    with pytest.raises(ValueError, match="cluster"):
        RedisResponseStore(shared_redis + "?cluster=maybe")
    with pytest.raises(ValueError, match="Redis URI"):
        RedisResponseStore("http://127.0.0.1:6379")


async def test_every_key_of_an_entry_expires_at_the_same_instant(redis_store):
    e = entry(expires_at=time.time() + 60)
    await redis_store.set(e, 60)
    client = await redis_store._connect()
    keys = await keys_of(redis_store)
    assert len(keys) == 3  # payload, exact key, partition members
    deadlines = {await client.pexpiretime(k) for k in keys}
    assert deadlines == {int(e.expires_at * 1000)}


async def test_no_ttl_means_no_expiry(redis_store):
    await redis_store.set(entry(), None)
    client = await redis_store._connect()
    assert {await client.pttl(k) for k in await keys_of(redis_store)} == {-1}


async def test_flush_partition_leaves_nothing_behind(redis_store):
    for i in range(3):
        await redis_store.set(entry("gone", f"question {i}"), 60)
    keep = entry("kept")
    await redis_store.set(keep, 60)
    assert await redis_store.flush("gone") == 3
    assert await redis_store.get_exact("gone", "question 1") is None
    assert all("gone" not in k for k in await keys_of(redis_store))
    assert await redis_store.get_exact("kept", keep.query) == keep.entry_id


async def test_delete_keeps_a_newer_exact_key(redis_store):
    old, new = entry(entry_id="old"), entry(entry_id="new")  # same question, same partition
    await redis_store.set(old, None)
    await redis_store.set(new, None)
    assert await redis_store.get_exact("p", old.query) == "new"
    assert await redis_store.delete("old") is True
    assert await redis_store.get_exact("p", old.query) == "new"


async def test_reusing_an_id_for_another_question_drops_the_old_exact_key(redis_store):
    await redis_store.set(entry(entry_id="x", query="first question"), None)
    await redis_store.set(entry(entry_id="x", query="second question"), None)
    assert await redis_store.get_exact("p", "first question") is None
    assert await redis_store.get_exact("p", "second question") == "x"
    assert len(await keys_of(redis_store)) == 3


async def test_partition_members_drop_expired_entries(redis_store):
    await redis_store.set(entry(entry_id="short", expires_at=time.time() + 0.05), 1)
    await asyncio.sleep(0.1)  # let the first entry's deadline pass
    await redis_store.set(entry(entry_id="long", query="another"), None)
    client = await redis_store._connect()
    members = await client.zrange(redis_store._members_key("p"), 0, -1)
    assert [m.decode()[32:] for m in members] == ["long"]


async def test_get_exact_never_names_a_missing_payload(redis_store):
    e = entry()
    await redis_store.set(e, None)
    client = await redis_store._connect()
    await client.delete(redis_store._entry_key(e.entry_id))  # e.g. evicted by maxmemory
    assert await redis_store.get_exact("p", e.query) is None


async def test_long_partitions_queries_and_ids(redis_store):
    partition = "tenant:" + "p" * 10_000
    e = entry(partition, "q" * 20_000, entry_id="i" * 1000, payload=b"\x00" * 100_000)
    await redis_store.set(e, 60)
    assert await redis_store.get_exact(partition, "q" * 20_000) == e.entry_id
    assert (await redis_store.get(e.entry_id)) == e
    assert max(len(k) for k in await keys_of(redis_store)) < 1200  # hashed, not embedded
    assert await redis_store.flush(partition) == 1


async def test_configurations_never_share_keys(shared_redis, redis_prefix):
    a = RedisResponseStore(shared_redis, prefix=redis_prefix, model_id="model-a", dimension=8)
    b = RedisResponseStore(shared_redis, prefix=redis_prefix, model_id="model-b", dimension=8)
    e = entry()
    await a.set(e, None)
    assert await b.get(e.entry_id) is None
    assert await b.get_exact("p", e.query) is None
    assert await b.flush() == 0
    assert await a.count() == 1
    assert a.prefix != b.prefix and a.prefix.startswith(redis_prefix + ":model-a:8:")
    await a.aclose()
    await b.aclose()


def test_key_prefix_is_free_of_hash_tags():
    p = key_prefix("my{app}", "org/model name", 384)
    assert "{" not in p and "}" not in p and " " not in p
    assert key_prefix("x", "m", 1) != key_prefix("x", "m", 2)


async def test_cluster_spreads_entries_and_keeps_partition_keys_together(cluster_store):
    entries = [entry(f"tenant-{i % 6}", f"question {i}") for i in range(60)]
    for e in entries:
        await cluster_store.set(e, 60)
    client = await cluster_store._connect()
    assert isinstance(client, RedisCluster)
    nodes = {client.get_node_from_key(cluster_store._entry_key(e.entry_id)).name for e in entries}
    assert len(nodes) == 3  # entries spread over every primary
    for t in range(6):
        partition = f"tenant-{t}"
        slot = client.keyslot(cluster_store._members_key(partition))
        assert client.keyslot(cluster_store._exact_key(partition, "0" * 32)) == slot
    assert await cluster_store.count() == 60
    assert await cluster_store.flush("tenant-0") == 10
    assert await cluster_store.flush() == 50
    assert await keys_of(cluster_store) == []


# The ACL the README recommends: the cache's own keys, no dangerous commands.
ACL = [
    "on",
    ">secret",
    "~{prefix}:*",
    "+@read",
    "+@write",
    "+@scripting",
    "+@connection",
    "-@dangerous",
    "+info",
    "+cluster|slots",
    "+cluster|shards",
]


async def exercise_with_acl(uri: str, ports: list[int]) -> None:
    prefix = random_prefix()
    for port in ports:
        with redis.Redis(port=port) as admin:
            admin.execute_command(
                "ACL", "SETUSER", "semcache", *(rule.format(prefix=prefix) for rule in ACL)
            )
    limited = uri.replace("redis://", "redis://semcache:secret@")
    store = RedisResponseStore(limited, prefix=prefix)
    e = entry()
    await store.set(e, 60)
    await store.set(e, 60)  # a refresh reads the previous value back
    assert await store.get(e.entry_id) == e
    assert await store.get_many([e.entry_id]) == [e]
    assert await store.get_exact("p", e.query) == e.entry_id
    assert await store.add_alias("p", "a paraphrase", e) is True
    assert await store.get_exact_entry("p", "a paraphrase") == e
    assert await store.replace_metadata(e, {"status": 200, "n": 1}) is True
    e = await store.get(e.entry_id)
    assert e is not None and e.metadata == {"status": 200, "n": 1}
    assert await store.count() == 1
    assert await store.delete(e.entry_id) is True
    await store.set(e, None)
    assert await store.flush("p") == 1
    await store.set(e, None)
    assert await store.flush() == 1
    await store.ping()
    await store.aclose()
    other = RedisResponseStore(limited, prefix=random_prefix())
    with pytest.raises(redis.exceptions.NoPermissionError):
        await other.set(e, None)
    await other.aclose()


async def test_least_privilege_acl_is_enough(private_redis):
    await exercise_with_acl(private_redis.uri, [private_redis.port])


async def test_least_privilege_acl_is_enough_on_cluster(cluster_nodes):
    try:
        await exercise_with_acl(cluster_nodes[0].uri, [n.port for n in cluster_nodes])
    finally:
        for node in cluster_nodes:
            with redis.Redis(port=node.port) as admin:
                admin.execute_command("ACL", "DELUSER", "semcache")


async def test_plugin_builds_the_store_from_settings(shared_redis, redis_prefix):
    settings = Settings.from_env({}, redis_uri=shared_redis, prefix=redis_prefix)
    store = create_response_store(settings, "some/model", 384)
    assert isinstance(store, RedisResponseStore)
    assert store.prefix == key_prefix(redis_prefix, "some/model", 384)
    await store.ping()
    await store.aclose()


async def test_semantic_cache_round_trip_on_cluster(cluster_uri):
    prefix = random_prefix()
    embedder = HashingTestEmbedder(64)
    settings = Settings.from_env({}, prefix=prefix, redis_uri=cluster_uri, threshold=0.8)
    cache = SemanticCache(
        settings, embedder=embedder, vector_store=MemoryVectorStore(64), verifier=None
    )
    try:
        async with cache:
            for t in range(5):
                await cache.store(
                    "how do I reset my password",
                    f"a{t}".encode(),
                    partition=f"tenant-{t}",
                    metadata={"status": 200},
                )
            for t in range(5):
                hit = await cache.lookup("how do I reset my password", partition=f"tenant-{t}")
                assert hit is not None and hit.payload == f"a{t}".encode()
                assert hit.source == "exact"
                hit = await cache.lookup("how can I reset my password", partition=f"tenant-{t}")
                assert hit is not None and hit.payload == f"a{t}".encode()
                assert hit.source == "semantic"
            assert await cache.lookup("how do I reset my password", partition="other") is None
            assert await cache.flush("tenant-0") == 1
            assert await cache.lookup("how do I reset my password", partition="tenant-0") is None
    finally:
        delete_prefix(cluster_uri, prefix)


async def test_partitions_where_on_redis(redis_store):
    from semcache.tags import credential_tag

    alice = {"model": "m1", "path": "/v1/chat", "credential": [credential_tag("sk-alice")]}
    for question in ("one", "two", "three"):
        await redis_store.set(entry("p1", question, metadata=alice), None)
    soon = entry("p2", "four", metadata={"model": "m1"}, expires_at=time.time() + 1)
    await redis_store.set(soon, 1)
    assert await redis_store.partitions_where([("model", "m1")]) == ["p1", "p2"]
    # One member per partition, not per entry; tenants' values never stored raw.
    client = await redis_store._connect()
    key = redis_store._tag_key(("credential", credential_tag("Bearer sk-alice")))
    assert await client.zrange(key, 0, -1) == [b"p1"]
    assert not [k for k in await keys_of(redis_store) if "alice" in k]
    # The index forgets a partition when its newest entry expires.
    deadline = time.monotonic() + 5
    while await redis_store.partitions_where([("model", "m1")]) != ["p1"]:
        assert time.monotonic() < deadline, "tag outlived its entries"
        await asyncio.sleep(0.1)

    embedder = HashingTestEmbedder()
    cache = SemanticCache(
        embedder=embedder,
        vector_store=MemoryVectorStore(embedder.dimension),
        response_store=redis_store,
        verifier=None,
    )
    await cache.store("how tall is everest", b"8849 m", partition="a", metadata=alice)
    await cache.store("how tall is everest", b"8849 m", partition="b", metadata={"model": "m2"})
    assert await cache.flush_where(credential="sk-alice", model="m1") == 4
    assert await cache.lookup("how tall is everest", partition="a") is None
    assert await cache.lookup("how tall is everest", partition="b") is not None


async def test_a_peak_of_concurrent_calls_gets_connections(redis_store):
    """Hundreds of requests at once each get a connection: a peak of traffic is not a
    Redis failure (the client's default pool of 100 raised "Too many connections")."""
    await redis_store.set(Entry("e1", "p", "q", b"answer", {}, time.time(), None), None)
    results = await asyncio.gather(*(redis_store.get("e1") for _ in range(300)))
    assert all(r is not None and r.payload == b"answer" for r in results)
