"""Entry-point plugin ``vector_store.pgvector``: chosen by ``SEMANTIC_CACHE_PG_URI``."""

from __future__ import annotations

from semcache.errors import SettingsError
from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_store_pgvector._store import PgVectorStore
from semcache_store_pgvector.settings import PgvectorSettings

__all__ = ["semcache_create_vector_store"]


@hookimpl
def semcache_create_vector_store(
    name: str, settings: Settings, model_id: str, dimension: int
) -> PgVectorStore | None:
    if name != "pgvector":
        return None
    own = settings.group(PgvectorSettings)
    if not own.pg_uri:
        raise SettingsError("the pgvector store needs SEMANTIC_CACHE_PG_URI (postgresql://...)")
    # The cache cuts each call at store_timeout_ms; these bound the work left behind
    # (a connect or a statement on a dead or stalled server) to a few budgets.
    budget = settings.store_timeout_ms / 1000
    return PgVectorStore(
        own.pg_uri,
        dimension,
        model_id=model_id,
        prefix=settings.prefix,
        pool_size=own.pg_pool_size,
        max_overflow=own.pg_max_overflow,
        hnsw_m=own.hnsw_m,
        hnsw_ef_construction=own.hnsw_ef_construction,
        hnsw_ef_search=own.hnsw_ef_search,
        connect_timeout=max(1.0, 4 * budget),
        command_timeout=max(2.0, 8 * budget),
    )
