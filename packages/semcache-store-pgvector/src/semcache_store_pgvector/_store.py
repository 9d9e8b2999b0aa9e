"""`PgVectorStore`: entry vectors in PostgreSQL with pgvector, one table per embedder."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from pgvector.sqlalchemy import HALFVEC, VECTOR
from sqlalchemy import bindparam, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import TextClause

from semcache.budget import waiting_for_capacity
from semcache.errors import StoreSetupError
from semcache.types import Vector, VectorMatch
from semcache_store_pgvector._engines import (
    EngineConfig,
    acquire_engine,
    asyncpg_dsn,
    pool_exhausted,
    release_engine,
)

__all__ = ["PgVectorStore", "PgvectorSetupError", "table_name"]

log = logging.getLogger("semcache")

T = TypeVar("T")

# PostgreSQL truncates identifiers at 63 bytes; the readable part leaves room for a
# hash and the longest index suffix.
_READABLE_CHARS = 46
_MAX_HNSW_VECTOR = 2000  # pgvector's HNSW limit for `vector`
_MAX_HNSW_HALFVEC = 4000  # and for `halfvec`
_LONG_PARTITION = 200  # btree entries must stay small: longer keys are stored hashed
_DELETE_BATCH = 5000
_INSERT_BATCH = 250
_SCHEMA_LOCK = 0x53454D43  # advisory lock class id ("SEMC")
_DDL_TIMEOUT = 3600.0
_CLOSE_TIMEOUT = 1.0

_ACCESS_DENIED = "42501"
_UNDEFINED_TABLE = "42P01"
_NOT_INSTALLED = {"58P01", "0A000"}  # no control file (PG <= 15) / not available (PG 16+)


class PgvectorSetupError(StoreSetupError):
    """The database cannot hold the cache yet (pgvector missing, no permission to create
    it); the message says what to run. A :class:`~semcache.errors.StoreSetupError`."""


def table_name(prefix: str, model_id: str, dimension: int) -> str:
    """Table for one embedder configuration: readable, unique, within PostgreSQL's limit.

    The readable part is lower-cased with anything but letters, digits and ``_``
    replaced; a hash of the exact inputs keeps names that sanitise alike apart.
    """
    digest = hashlib.blake2b(
        f"{prefix}\x00{model_id}\x00{dimension}".encode(), digest_size=5
    ).hexdigest()
    readable = re.sub(r"[^a-z0-9_]+", "_", f"{prefix}_{model_id}_{dimension}".lower())
    readable = re.sub(r"_+", "_", readable).strip("_")[:_READABLE_CHARS].rstrip("_")
    if not readable or not readable[0].isalpha():
        readable = "t_" + readable
    return f"{readable}_{digest}"


def _id_key(entry_id: str) -> bytes:
    """Fixed-size primary key: entry ids of any length index fine."""
    return hashlib.blake2b(entry_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _part_key(partition: str) -> str:
    if len(partition) <= _LONG_PARTITION:
        return partition
    digest = hashlib.blake2b(partition.encode("utf-8", "surrogatepass"), digest_size=16)
    return "#" + digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _text_format(dimension: int) -> str:
    return "[" + ",".join(["%.9g"] * dimension) + "]"


def _vector_text(value: Any) -> str | None:
    """pgvector's text form of a float32 vector; 9 significant digits round-trip float32
    exactly, and printf formatting is about three times faster than pgvector's own."""
    if value is None:
        return None
    items = np.asarray(value, dtype=np.float32).reshape(-1).tolist()
    return _text_format(len(items)) % tuple(items)


class _Vector(VECTOR):
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Callable[[Any], str | None]:
        return _vector_text


class _HalfVector(HALFVEC):
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Callable[[Any], str | None]:
        return _vector_text


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)


class _Sql:
    """The statements of one table, built once."""

    def __init__(self, table: str, dimension: int, m: int, ef_construction: int) -> None:
        self.kind = "halfvec" if _MAX_HNSW_VECTOR < dimension <= _MAX_HNSW_HALFVEC else "vector"
        self.indexed = dimension <= _MAX_HNSW_HALFVEC
        vec_type = _HalfVector(dimension) if self.kind == "halfvec" else _Vector(dimension)
        t = f'"{table}"'
        self.regclass = {
            "table": t,
            "hnsw": f'"{table}_hnsw"',
            "part": f'"{table}_part"',
            "expires": f'"{table}_exp"',
        }
        self.create_table = (
            f"CREATE TABLE IF NOT EXISTS {t} ("
            " id_hash bytea PRIMARY KEY,"
            " entry_id text NOT NULL,"
            " part text NOT NULL,"
            f" embedding {self.kind}({dimension}) NOT NULL,"
            " expires_at double precision,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        # Many partitions: let the planner see the large ones (it then picks the HNSW
        # index for them and an exact scan of the partition index for the small ones).
        self.tune_table = f"ALTER TABLE {t} ALTER COLUMN part SET STATISTICS 1000"
        self.create_indexes = [
            f'CREATE INDEX IF NOT EXISTS "{table}_part" ON {t} (part)',
            f'CREATE INDEX IF NOT EXISTS "{table}_exp" ON {t} (expires_at)'
            " WHERE expires_at IS NOT NULL",
        ]
        if self.indexed:
            self.create_indexes.append(
                f'CREATE INDEX IF NOT EXISTS "{table}_hnsw" ON {t}'
                f" USING hnsw (embedding {self.kind}_cosine_ops)"
                f" WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
            )
        else:
            self.regclass["hnsw"] = t  # no index past pgvector's limit: exact search
        self.add = text(
            f"INSERT INTO {t} (id_hash, entry_id, part, embedding, expires_at)"
            " VALUES (:key, :entry_id, :part, :vec, :expires_at)"
            " ON CONFLICT (id_hash) DO UPDATE SET entry_id = EXCLUDED.entry_id,"
            " part = EXCLUDED.part, embedding = EXCLUDED.embedding,"
            " expires_at = EXCLUDED.expires_at, created_at = now()"
        ).bindparams(bindparam("vec", type_=vec_type))
        self.add_many = text(
            f"INSERT INTO {t} (id_hash, entry_id, part, embedding, expires_at)"
            f" SELECT * FROM unnest(CAST(:keys AS bytea[]), CAST(:ids AS text[]),"
            f" CAST(:parts AS text[]), CAST(:vecs AS {self.kind}[]),"
            " CAST(:expires AS double precision[]))"
            " ON CONFLICT (id_hash) DO UPDATE SET entry_id = EXCLUDED.entry_id,"
            " part = EXCLUDED.part, embedding = EXCLUDED.embedding,"
            " expires_at = EXCLUDED.expires_at, created_at = now()"
        )
        # The materialised CTE is the shape pgvector's iterative index scans need: the
        # index keeps scanning until `n` rows of this partition are found, and the
        # relaxed order it returns them in is fixed by the outer sort.
        self.search = text(
            "WITH c AS MATERIALIZED ("
            f" SELECT entry_id, embedding <=> :vec AS d FROM {t}"
            " WHERE part = :part AND (expires_at IS NULL OR expires_at > :now)"
            " ORDER BY d LIMIT :n)"
            " SELECT entry_id, d FROM c WHERE d <= :max_d ORDER BY d LIMIT :k"
        ).bindparams(bindparam("vec", type_=vec_type))
        self.delete = text(f"DELETE FROM {t} WHERE id_hash = ANY(CAST(:keys AS bytea[]))")
        # Deletes go in batches: each statement stays short (well inside the statement
        # timeout, never holding locks for long) however large the table.
        self.expire = self._batched(t, "expires_at <= :now")
        self.flush_all = self._batched(t, "true")
        self.flush_part = self._batched(t, "part = :part")
        self.count = text(f"SELECT count(*) FROM {t}")

    @staticmethod
    def _batched(table: str, condition: str) -> TextClause:
        return text(
            f"DELETE FROM {table} WHERE id_hash IN (SELECT id_hash FROM {table}"
            f" WHERE {condition} LIMIT {_DELETE_BATCH})"
        )


_PING = text("SELECT 1")
_STATE = text(
    "SELECT current_database(), current_user,"
    " (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
    " to_regclass(:table) IS NOT NULL AND to_regclass(:hnsw) IS NOT NULL"
    " AND to_regclass(:part) IS NOT NULL AND to_regclass(:expires) IS NOT NULL"
)


class PgVectorStore:
    """A :class:`~semcache.protocols.VectorStore` in PostgreSQL with pgvector.

    One table per embedder configuration (see :func:`table_name`), created on first use
    with an HNSW cosine index, a partition index and an expiry index. Searches filter
    the partition in the same query; pgvector 0.8's iterative index scans keep the true
    nearest neighbours when many partitions share the table. Entry ids are stored with
    a hash key, so ids and partitions of any length store fine.

    Connections come from a pool shared by every store of the process with the same
    URI and pool settings (``pool_size`` + ``max_overflow``). ``connect_timeout`` and
    ``command_timeout`` (seconds) bound every connect and statement, server-side too,
    so a dead or stalled server fails fast. ``session`` adds ``SET name = value``
    settings to each connection (they override the defaults below).

    ``read_uri`` sends searches to a streaming replica (writes, expiry and DDL stay on
    ``uri``): a search may then trail a write by the replication lag, which costs a
    miss, never a wrong answer, since answers live in the response store.
    """

    def __init__(
        self,
        uri: str,
        dimension: int,
        *,
        model_id: str = "default",
        prefix: str = "semcache",
        table: str | None = None,
        pool_size: int = 5,
        max_overflow: int = 5,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        hnsw_ef_search: int = 40,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        session: Mapping[str, str | int] | None = None,
        read_uri: str | None = None,
    ) -> None:
        if dimension < 1:
            raise ValueError("dimension must be positive")
        self.dimension = dimension
        self.table = table or table_name(prefix, model_id, dimension)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,57}", self.table):
            # Index names append up to five characters; PostgreSQL cuts names at 63.
            raise ValueError(f"table name {self.table!r}: letters, digits, _; at most 58")
        dsn = asyncpg_dsn(uri)
        settings: dict[str, str] = {
            "plan_cache_mode": "force_custom_plan",  # plan per partition, not once for all
            "jit": "off",  # compiling costs 50-200 ms, far more than these queries take
            "statement_timeout": str(max(1, int(command_timeout * 1000))),
            "hnsw.ef_search": str(int(hnsw_ef_search)),
            "hnsw.iterative_scan": "relaxed_order",
        }
        settings.update({k: str(v) for k, v in (session or {}).items()})
        for name in settings:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
                raise ValueError(f"invalid setting name {name!r}")
        self._config = EngineConfig(
            dsn=dsn,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            session=tuple(sorted(settings.items())),
        )
        # Searches may go to a read replica; everything else goes to the primary.
        self._read_config = (
            dataclasses.replace(self._config, dsn=asyncpg_dsn(read_uri)) if read_uri else None
        )
        self._sql = _Sql(self.table, dimension, hnsw_m, hnsw_ef_construction)
        self._pools: dict[bool, tuple[AsyncEngine, AsyncEngine]] = {}
        self._schema_ready = False
        self._schema_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"PgVectorStore(table={self.table!r}, dimension={self.dimension})"

    # -- protocol ---------------------------------------------------------------

    async def add(
        self, entry_id: str, partition: str, vector: Vector, expires_at: float | None
    ) -> None:
        params = {
            "key": _id_key(entry_id),
            "entry_id": entry_id,
            "part": _part_key(partition),
            "vec": self._vector(vector),
            "expires_at": expires_at,
        }
        await self._execute(self._sql.add, params)

    async def add_many(self, rows: Iterable[tuple[str, str, Vector, float | None]]) -> int:
        """Insert or replace many ``(entry_id, partition, vector, expires_at)`` rows, a
        few hundred per statement (bulk loads, benchmarks); return how many."""
        latest: dict[bytes, tuple[str, str, Vector, float | None]] = {}
        for row in rows:
            latest[_id_key(row[0])] = row  # one statement may touch a key only once
        if not latest:
            return 0
        keys, values = list(latest), list(latest.values())
        # Statements of a few hundred rows stay well inside the statement timeout.
        for start in range(0, len(keys), _INSERT_BATCH):
            chunk = values[start : start + _INSERT_BATCH]
            params = {
                "keys": keys[start : start + _INSERT_BATCH],
                "ids": [r[0] for r in chunk],
                "parts": [_part_key(r[1]) for r in chunk],
                "vecs": [_vector_text(self._vector(r[2])) for r in chunk],
                "expires": [r[3] for r in chunk],
            }
            await self._execute(self._sql.add_many, params)
        return len(latest)

    async def search(
        self, partition: str, vector: Vector, k: int, threshold: float
    ) -> list[VectorMatch]:
        if k < 1:
            return []
        params = {
            "vec": self._vector(vector),
            "part": _part_key(partition),
            "now": time.time(),
            "n": 2 * k,  # a little slack for the relaxed order of iterative scans
            "k": k,
            "max_d": 1.0 - threshold,
        }
        result = await self._execute(self._sql.search, params, read=True)
        rows: list[Any] = list(result.all())
        return [VectorMatch(str(row[0]), 1.0 - float(row[1])) for row in rows]

    async def delete(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._execute(self._sql.delete, {"keys": [_id_key(i) for i in entry_ids]})

    async def expire(self, now: float) -> int:
        return await self._delete_batches(self._sql.expire, {"now": now})

    async def flush(self, partition: str | None = None) -> None:
        if partition is None:
            await self._delete_batches(self._sql.flush_all, {})
        else:
            await self._delete_batches(self._sql.flush_part, {"part": _part_key(partition)})

    async def count(self) -> int:
        result = await self._execute(self._sql.count)
        return int(result.scalar_one())

    async def ping(self) -> None:
        await self._detached(self._run(_PING, None))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = [t for t in (self._schema_task, *self._inflight) if t is not None]
        for task in pending:
            task.cancel()
        if pending:  # their connections go back to the pool (or are dropped) first
            await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT)
        pools, self._pools = self._pools, {}
        for engine, _ in pools.values():
            await release_engine(engine)

    # -- set-up -----------------------------------------------------------------

    async def ensure_schema(self) -> None:
        """Create the extension (when allowed), the table and its indexes now.

        Called on first use; call it at deploy time to move the one-off cost (and the
        CREATE privilege) out of the request path.
        """
        if self._schema_ready:
            return
        task = self._schema_task
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._schema_task = asyncio.get_running_loop().create_task(self._create())
            task.add_done_callback(_retrieve)
        # Shielded: a caller whose time budget runs out does not abort the set-up that
        # the next call needs.
        await asyncio.shield(task)

    async def _create(self) -> None:
        auto = self._pool()
        sql = self._sql
        async with auto.connect() as conn:
            state = (await conn.execute(_STATE, sql.regclass)).one()
            database, role, version, complete = state
            if version is not None and complete:
                self._ready(version)
                return
            # DDL goes through the driver directly: an index built over existing rows may
            # take longer than the short statement timeout of the request path.
            raw: Any = (await conn.get_raw_connection()).driver_connection
            async with raw.transaction():
                await raw.execute("SET LOCAL statement_timeout = 0", timeout=_DDL_TIMEOUT)
                # Serialise replicas creating the same things at the same moment.
                await raw.execute(
                    "SELECT pg_advisory_xact_lock($1, 0)", _SCHEMA_LOCK, timeout=_DDL_TIMEOUT
                )
                if version is None:
                    version = await self._create_extension(raw, database, role)
                try:
                    if await raw.fetchval("SELECT to_regclass($1)", sql.regclass["table"]) is None:
                        await raw.execute(sql.create_table, timeout=_DDL_TIMEOUT)
                        await raw.execute(sql.tune_table, timeout=_DDL_TIMEOUT)
                    for statement in sql.create_indexes:
                        await raw.execute(statement, timeout=_DDL_TIMEOUT)
                except Exception as exc:
                    if _sqlstate(exc) == _ACCESS_DENIED:
                        raise PgvectorSetupError(
                            f"role {role!r} may not create table {self.table!r} in database "
                            f"{database!r}: grant it CREATE on the schema, or have an owner "
                            "run PgVectorStore.ensure_schema() once at deploy time"
                        ) from exc
                    raise
        log.info("semcache: pgvector table %s ready", self.table)
        self._ready(version)

    async def _create_extension(self, raw: Any, database: str, role: str) -> str:
        try:
            await raw.execute("CREATE EXTENSION IF NOT EXISTS vector", timeout=_DDL_TIMEOUT)
        except Exception as exc:
            state = _sqlstate(exc)
            if state == _ACCESS_DENIED:
                message = (
                    f"the pgvector extension is not enabled in database {database!r} and role "
                    f"{role!r} may not enable it: as a superuser, run "
                    f"`CREATE EXTENSION vector;` in database {database!r}"
                )
            elif state in _NOT_INSTALLED:
                message = (
                    "the pgvector extension is not installed on the PostgreSQL server: install "
                    "it (package postgresql-<version>-pgvector, or build it from source), then "
                    f"run `CREATE EXTENSION vector;` in database {database!r}"
                )
            else:
                raise
            log.error("semcache: %s", message)
            raise PgvectorSetupError(message) from exc
        version = await raw.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        return str(version)

    def _ready(self, version: str) -> None:
        if _version_tuple(version) < (0, 8):
            log.warning(
                "semcache: pgvector %s has no iterative index scans (0.8.0+): searches in "
                "partitions sharing a large table may miss entries; upgrade the extension",
                version,
            )
        self._schema_ready = True

    # -- internals --------------------------------------------------------------

    def _pool(self, *, read: bool = False) -> AsyncEngine:
        """The autocommit engine of the primary, or of the read replica when asked."""
        if self._closed:
            raise RuntimeError("store is closed")
        config = self._config_for(read=read)
        pool = self._pools.get(config is self._read_config)
        if pool is None:
            engine = acquire_engine(config)
            auto = engine.execution_options(isolation_level="AUTOCOMMIT")
            pool = self._pools[config is self._read_config] = (engine, auto)
        return pool[1]

    def _config_for(self, *, read: bool) -> EngineConfig:
        return self._read_config if read and self._read_config else self._config

    async def _execute(
        self,
        statement: TextClause,
        params: Mapping[str, Any] | None = None,
        *,
        read: bool = False,
    ) -> CursorResult[Any]:
        if not self._schema_ready:
            await self.ensure_schema()
        return await self._detached(self._run(statement, params, read=read))

    async def _run(
        self, statement: TextClause, params: Mapping[str, Any] | None, *, read: bool = False
    ) -> CursorResult[Any]:
        auto = self._pool(read=read)
        for attempt in (1, 2):
            try:
                # The wait for a pooled connection is the process's own backlog, not
                # PostgreSQL's time: the cache's budget for this call starts after it.
                if pool_exhausted(auto, self._config_for(read=read)):
                    with waiting_for_capacity():
                        conn = await auto.connect().start()
                else:
                    conn = await auto.connect().start()
                try:
                    return await conn.execute(statement, params)
                finally:
                    await asyncio.shield(conn.close())  # as ``async with`` closes it
            except DBAPIError as exc:
                if attempt == 2:
                    raise
                if _sqlstate(exc) == _UNDEFINED_TABLE:  # dropped behind our back
                    self._schema_ready, self._schema_task = False, None
                    await self.ensure_schema()
                elif not exc.connection_invalidated:
                    raise
                # Else a pooled connection the server dropped (restart, failover): the
                # pool is invalidated, and one retry on a fresh connection recovers.
        raise AssertionError("unreachable")

    async def _detached(self, work: Coroutine[Any, Any, T]) -> T:
        # A cancelled query makes SQLAlchemy close its connection politely, which waits
        # up to seconds on a stalled server. The work runs in a task of its own, so a
        # caller whose budget runs out leaves at once; the clean-up finishes behind it.
        task = asyncio.get_running_loop().create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(_retrieve)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _delete_batches(self, statement: TextClause, params: Mapping[str, Any]) -> int:
        total = 0
        while True:
            deleted = max((await self._execute(statement, params)).rowcount, 0)
            total += deleted
            if deleted < _DELETE_BATCH:
                return total

    def _vector(self, vector: Vector) -> Vector:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape != (self.dimension,):
            raise ValueError(f"vector has {v.shape[0]} dimensions, expected {self.dimension}")
        return v


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved: callers see it through the shield, or left
