"""Settings of the pgvector store (group ``pgvector``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "PG_MAX_OVERFLOW",
    "PG_POOL_SIZE",
    "PG_URI",
    "PgvectorSettings",
]

PG_URI = "SEMANTIC_CACHE_PG_URI"
PG_POOL_SIZE = "SEMANTIC_CACHE_PG_POOL_SIZE"
PG_MAX_OVERFLOW = "SEMANTIC_CACHE_PG_MAX_OVERFLOW"
HNSW_M = "SEMANTIC_CACHE_HNSW_M"
HNSW_EF_CONSTRUCTION = "SEMANTIC_CACHE_HNSW_EF_CONSTRUCTION"
HNSW_EF_SEARCH = "SEMANTIC_CACHE_HNSW_EF_SEARCH"


@dataclass(frozen=True, slots=True)
class PgvectorSettings:
    """PostgreSQL + pgvector as the vector store; chosen by ``auto`` when a URI is set."""

    group_name: ClassVar[str] = "pgvector"
    auto_store: ClassVar[tuple[str, str]] = ("vector_store", "pgvector")

    pg_uri: str | None = setting(
        PG_URI, None, "PostgreSQL URI (postgresql://...) for the pgvector store.", secret=True
    )
    pg_pool_size: int = setting(PG_POOL_SIZE, 5, "PostgreSQL pool size per process.", low=1)
    pg_max_overflow: int = setting(
        PG_MAX_OVERFLOW, 5, "Extra PostgreSQL connections past the pool size.", low=0
    )
    hnsw_m: int = setting(HNSW_M, 16, "HNSW index: links per node.", low=2, high=100)
    hnsw_ef_construction: int = setting(
        HNSW_EF_CONSTRUCTION, 64, "HNSW index: candidate list while building.", low=4, high=1000
    )
    hnsw_ef_search: int = setting(
        HNSW_EF_SEARCH, 40, "HNSW index: candidate list while searching.", low=1, high=1000
    )

    def __post_init__(self) -> None:
        check_declared(self)

    def configured(self) -> bool:
        return bool(self.pg_uri)
