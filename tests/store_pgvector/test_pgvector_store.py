from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator

import asyncpg
import numpy as np
import pytest

from semcache import Settings
from semcache.embedder import normalize_rows
from semcache.errors import SettingsError
from semcache.plugins import create_vector_store
from semcache.testing.contracts import VectorStoreContract
from semcache_store_pgvector import PgvectorSetupError, PgVectorStore, table_name
from semcache_store_pgvector._engines import asyncpg_dsn, shared_engines
from tests.support.pg_servers import create_database, drop_database, psql

pytestmark = pytest.mark.postgres


def unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32))


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """A database without the extension, for set-up tests."""
    uri = create_database()
    yield uri
    drop_database(uri)


class TestPgVectorContract(VectorStoreContract):
    @pytest.fixture
    async def vector_store(self, pg_store):
        yield pg_store


def test_table_names_are_readable_unique_and_short():
    name = table_name("semcache", "sentence-transformers/all-MiniLM-L6-v2", 384)
    assert name.startswith("semcache_sentence_transformers_all_minilm")
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
    long = table_name("p" * 200, "m" * 500, 1536)
    assert len(long) + len("_hnsw") <= 63
    assert table_name("x", "a/b", 8) != table_name("x", "a_b", 8)
    assert table_name("x", "m", 8) != table_name("x", "m", 16)
    assert table_name("1st", "m", 8)[0].isalpha()


def test_uri_spellings():
    assert asyncpg_dsn("postgres://u@h/db") == "postgresql://u@h/db"
    assert asyncpg_dsn("postgresql+asyncpg://u@h/db?sslmode=require") == (
        "postgresql://u@h/db?sslmode=require"
    )
    assert asyncpg_dsn("postgresql+psycopg://h/db") == "postgresql://h/db"
    with pytest.raises(ValueError, match="PostgreSQL URI"):
        asyncpg_dsn("mysql://h/db")


async def test_first_use_creates_extension_table_and_indexes(fresh_db):
    store = PgVectorStore(
        fresh_db, 8, prefix="semcache", model_id="m", hnsw_m=12, hnsw_ef_construction=48
    )
    await store.add("e", "p", unit(1, 8)[0], None)
    await store.aclose()
    assert psql(fresh_db, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    indexes = psql(fresh_db, f"SELECT indexdef FROM pg_indexes WHERE tablename = '{store.table}'")
    assert "USING hnsw (embedding vector_cosine_ops) WITH (m='12', ef_construction='48')" in indexes
    assert "(part)" in indexes and "(expires_at)" in indexes
    unique = [line for line in indexes.splitlines() if "UNIQUE" in line]
    assert len(unique) == 1 and "(id_hash)" in unique[0]  # no unique index on raw text


async def test_clear_error_when_the_role_may_not_create_the_extension(fresh_db):
    role = f"semcache_test_role_{uuid.uuid4().hex[:8]}"
    psql(fresh_db, f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    try:
        uri = fresh_db.replace("postgres@", f"{role}@")
        store = PgVectorStore(uri, 8)
        with pytest.raises(PgvectorSetupError) as raised:
            await store.search("p", unit(1, 8)[0], 4, 0.5)
        assert "CREATE EXTENSION vector;" in str(raised.value)
        assert role in str(raised.value)
        await store.ping()  # the server itself is fine
        await store.aclose()
    finally:
        psql(fresh_db, f"DROP OWNED BY {role}; DROP ROLE {role}")


async def test_tables_per_embedder_configuration_never_mix(pg_uri, pg_prefix):
    a = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="model-a")
    b = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="model-b")
    v = unit(1, 8)[0]
    await a.add("e", "p", v, None)
    assert await b.search("p", v, 4, 0.0) == []
    assert a.table != b.table
    await a.aclose()
    await b.aclose()


async def test_wrong_dimension_is_refused(pg_store):
    with pytest.raises(ValueError, match="dimensions"):
        await pg_store.add("e", "p", np.ones(9, dtype=np.float32), None)


async def test_long_ids_and_partitions_store_fine(pg_store):
    v = unit(1, 8)[0]
    partition, entry_id = "tenant-" + "x" * 20_000, "id-" + "y" * 20_000
    await pg_store.add(entry_id, partition, v, None)
    assert [m.entry_id for m in await pg_store.search(partition, v, 4, 0.5)] == [entry_id]
    assert await pg_store.search(partition[:-1], v, 4, 0.5) == []
    await pg_store.delete([entry_id])
    assert await pg_store.count() == 0


async def test_expire_deletes_rows(pg_store, pg_uri):
    vs = unit(30, 8)
    past, future = time.time() - 10, time.time() + 3600
    for i, v in enumerate(vs):
        await pg_store.add(f"e{i}", "p", v, past if i % 3 else future)
    assert await pg_store.expire(time.time()) == 20
    assert psql(pg_uri, f"SELECT count(*) FROM {pg_store.table}") == "10"
    assert await pg_store.expire(time.time()) == 0


async def test_large_dimensions_use_halfvec_and_keep_the_index(pg_uri, pg_prefix):
    store = PgVectorStore(pg_uri, 3072, prefix=pg_prefix, model_id="large")
    vs = unit(3, 3072)
    for i, v in enumerate(vs):
        await store.add(f"e{i}", "p", v, None)
    matches = await store.search("p", vs[1], 2, 0.5)
    assert [m.entry_id for m in matches] == ["e1"] and matches[0].similarity > 0.999
    indexes = psql(pg_uri, f"SELECT indexdef FROM pg_indexes WHERE tablename = '{store.table}'")
    assert "halfvec_cosine_ops" in indexes
    await store.aclose()


async def test_concurrent_writers_and_replicas_creating_the_table_at_once(pg_uri, pg_prefix):
    # Different pool sizes: three separate pools, like three replicas starting together.
    stores = [
        PgVectorStore(pg_uri, 8, prefix=pg_prefix, pool_size=2 + i, max_overflow=0)
        for i in range(3)
    ]
    vs = unit(150, 8, seed=3)
    await asyncio.gather(
        *(stores[i % 3].add(f"e{i}", f"p{i % 5}", v, None) for i, v in enumerate(vs))
    )
    assert await stores[0].count() == 150
    for i in (0, 77, 149):
        matches = await stores[(i + 1) % 3].search(f"p{i % 5}", vs[i], 1, 0.9)
        assert [m.entry_id for m in matches] == [f"e{i}"]
    for store in stores:
        await store.aclose()


async def test_one_pool_per_process(pg_uri, pg_prefix):
    a = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="a")
    b = PgVectorStore(pg_uri, 8, prefix=pg_prefix, model_id="b")
    await a.ping()
    await b.ping()
    assert a._pools[False][0] is b._pools[False][0]
    engines = {id(s.engine) for s in shared_engines().values()}
    await a.aclose()
    assert id(b._pools[False][0]) in {id(s.engine) for s in shared_engines().values()}
    await b.ping()
    await b.aclose()
    assert len({id(s.engine) for s in shared_engines().values()}) == len(engines) - 1


async def test_searches_can_go_to_a_read_replica(pg_uri, pg_prefix):
    # The "replica" is the same server under another URI spelling: a pool of its own.
    replica = pg_uri + "?application_name=semcache_replica"
    store = PgVectorStore(pg_uri, 8, prefix=pg_prefix, read_uri=replica)
    v = unit(1, 8)[0]
    await store.add("e", "p", v, None)
    assert [m.entry_id for m in await store.search("p", v, 1, 0.5)] == ["e"]
    primary, read = store._pools[False][0], store._pools[True][0]
    assert primary is not read
    dsns = {s.engine: key[2].dsn for key, s in shared_engines().items()}
    assert dsns[read] == asyncpg_dsn(replica) and dsns[primary] == asyncpg_dsn(pg_uri)
    names = psql(
        pg_uri,
        "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database()",
    )
    assert {"semcache", "semcache_replica"} <= set(names.split())
    await store.aclose()


async def test_recovers_at_once_when_the_server_drops_connections(pg_store, pg_uri):
    v = unit(1, 8)[0]
    await pg_store.add("e", "p", v, None)
    dropped = psql(
        pg_uri,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'semcache'",
    )
    assert int(dropped) >= 1
    assert [m.entry_id for m in await pg_store.search("p", v, 1, 0.5)] == ["e"]


async def test_table_dropped_behind_its_back_is_recreated(pg_store, pg_uri):
    await pg_store.add("e", "p", unit(1, 8)[0], None)
    psql(pg_uri, f"DROP TABLE {pg_store.table}")
    await pg_store.add("f", "p", unit(1, 8)[0], None)
    assert await pg_store.count() == 1


async def test_plugin_builds_the_store_from_settings(pg_uri, pg_prefix):
    settings = Settings.from_env(
        {}, pg_uri=pg_uri, prefix=pg_prefix, hnsw_ef_search=80, pg_pool_size=3
    )
    store = create_vector_store(settings, "some/model", 8)
    assert isinstance(store, PgVectorStore)
    assert store.table == table_name(pg_prefix, "some/model", 8)
    assert ("hnsw.ef_search", "80") in store._config.session
    assert store._config.pool_size == 3
    await store.ping()
    await store.aclose()
    with pytest.raises(SettingsError, match="PG_URI"):
        create_vector_store(Settings.from_env({}, vector_store="pgvector"), "m", 8)


# -- recall with many partitions ------------------------------------------------------

DIM = 32
PARTITIONS = 150
QUESTIONS = 20


def recall_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same questions asked in every partition, worded more or less alike.

    Partition ``p`` stores question ``j`` at a partition-specific distance from its
    canonical wording; a query is the canonical wording. The true answer inside a
    partition that worded it loosely ranks far down the global list, behind the
    closer wordings of other partitions: exactly what a post-filter loses.
    """
    rng = np.random.default_rng(7)
    centres = unit(QUESTIONS, DIM, seed=11)
    spread = rng.uniform(0.05, 0.6, PARTITIONS)
    noise = unit(PARTITIONS * QUESTIONS, DIM, seed=12).reshape(PARTITIONS, QUESTIONS, DIM)
    stored = normalize_rows(
        (centres[None, :, :] + spread[:, None, None] * noise).reshape(-1, DIM)
    ).reshape(PARTITIONS, QUESTIONS, DIM)
    picks = rng.choice(PARTITIONS * QUESTIONS, 240, replace=False)
    return stored, centres, picks


async def load_recall_table(store: PgVectorStore, uri: str) -> None:
    stored, _, _ = recall_data()
    await store.add_many(
        (f"p{p}-q{j}", f"p{p}", stored[p, j], None)
        for p in range(PARTITIONS)
        for j in range(QUESTIONS)
    )
    psql(uri, f"ANALYZE {store.table}")


async def measure_recall(store: PgVectorStore) -> float:
    _, centres, picks = recall_data()
    found = 0
    for pick in picks:
        p, j = divmod(int(pick), QUESTIONS)
        matches = await store.search(f"p{p}", centres[j], 4, 0.5)
        found += bool(matches) and matches[0].entry_id == f"p{p}-q{j}"
    return found / len(picks)


async def hnsw_used(store: PgVectorStore, uri: str, session: dict[str, str]) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(uri))
    try:
        for name, value in session.items():
            await conn.execute(f"SET {name} = {value}")
        q = "[" + ",".join(["0.1"] * DIM) + "]"
        plan = await conn.fetch(
            f"EXPLAIN WITH c AS MATERIALIZED (SELECT entry_id, embedding <=> $1 AS d"
            f" FROM {store.table} WHERE part = 'p3' ORDER BY d LIMIT 8) SELECT * FROM c",
            q,
        )
        return any(f"{store.table}_hnsw" in row[0] for row in plan)
    finally:
        await conn.close()


async def test_recall_with_many_partitions(pg_uri, pg_prefix):
    store = PgVectorStore(pg_uri, DIM, prefix=pg_prefix)
    await load_recall_table(store, pg_uri)
    assert await measure_recall(store) >= 0.99
    await store.aclose()


async def test_recall_when_the_hnsw_index_serves_the_partition_filter(pg_uri, pg_prefix):
    # Make the planner walk the HNSW index even for small partitions (normally it picks
    # the partition index for those): the iterative scan must still find the answer.
    forced = {"enable_sort": "off", "enable_bitmapscan": "off"}
    store = PgVectorStore(pg_uri, DIM, prefix=pg_prefix, session=forced)
    await load_recall_table(store, pg_uri)
    assert await hnsw_used(store, pg_uri, {**forced, "plan_cache_mode": "force_custom_plan"})
    with_iterative = await measure_recall(store)
    await store.aclose()

    # The same search without iterative scans: the test data does expose the problem.
    plain = PgVectorStore(
        pg_uri, DIM, prefix=pg_prefix, session={**forced, "hnsw.iterative_scan": "off"}
    )
    without = await measure_recall(plain)
    await plain.aclose()
    print(
        f"recall@1 through the HNSW index: {with_iterative:.3f} with iterative scans, "
        f"{without:.3f} without"
    )
    assert with_iterative >= 0.97
    assert without < 0.6


async def test_expire_and_flush_work_in_batches(pg_store):
    vs = unit(6000, 8, seed=5)
    past = time.time() - 10
    await pg_store.add_many(
        (f"e{i}", "a" if i < 5500 else "b", v, past if i < 5200 else None) for i, v in enumerate(vs)
    )
    assert await pg_store.count() == 6000
    assert await pg_store.expire(time.time()) == 5200
    await pg_store.flush("a")
    assert await pg_store.count() == 500
    await pg_store.flush()
    assert await pg_store.count() == 0
