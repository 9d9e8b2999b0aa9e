from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from semcache_store_redis import RedisResponseStore
from tests.support.interleaved import RedisReadThenInterleaved
from tests.support.redis_clients import two_clients_of
from tests.support.redis_servers import RedisServer, delete_prefix, random_prefix, redis_cluster


@pytest.fixture
async def redis_store(shared_redis: str, redis_prefix: str) -> AsyncIterator[RedisResponseStore]:
    store = RedisResponseStore(shared_redis, prefix=redis_prefix, model_id="test", dimension=8)
    yield store
    await store.aclose()


@pytest.fixture(scope="session")
def cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A private 3-primary Redis Cluster on loopback ports."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as nodes:
        yield nodes


@pytest.fixture
def cluster_uri(cluster_nodes: list[RedisServer]) -> str:
    """The cluster, as a client finds it: through any one node."""
    return cluster_nodes[0].uri


@pytest.fixture
async def cluster_store(cluster_uri: str) -> AsyncIterator[RedisResponseStore]:
    prefix = random_prefix()
    store = RedisResponseStore(cluster_uri, prefix=prefix, model_id="test", dimension=8)
    yield store
    await store.aclose()
    delete_prefix(cluster_uri, prefix)


@pytest.fixture(params=["single", "cluster"])
def redis_uri(request: pytest.FixtureRequest) -> str:
    """The shared Redis, then the private cluster: a test runs on both."""
    name = "shared_redis" if request.param == "single" else "cluster_uri"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def two_clients(
    redis_uri: str,
) -> AsyncIterator[tuple[RedisReadThenInterleaved, RedisResponseStore]]:
    """Two clients of one store (a key prefix of their own), as two processes have: the
    first can be interleaved."""
    async with two_clients_of(RedisReadThenInterleaved, redis_uri) as clients:
        yield clients


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, which it may stop, pause and restart."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
