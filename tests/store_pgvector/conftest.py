from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from semcache_store_pgvector import PgVectorStore
from tests.support.pg_servers import PgCluster, create_database, drop_database


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """A database of this test run's own on the shared server, dropped after."""
    uri = create_database()
    yield uri
    drop_database(uri)


@pytest.fixture
def pg_prefix() -> str:
    """A table-name prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pg_store(pg_uri: str, pg_prefix: str) -> AsyncIterator[PgVectorStore]:
    store = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="contract")
    yield store
    await store.aclose()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster that tests may stop, pause and restart."""
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
