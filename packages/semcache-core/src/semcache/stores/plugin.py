"""Entry-point plugin for the embedded stores (``memory``)."""

from __future__ import annotations

import re
from pathlib import Path

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache.stores.memory_responses import MemoryResponseStore
from semcache.stores.memory_vectors import MemoryVectorStore
from semcache.stores.settings import EmbeddedStoreSettings

__all__ = ["semcache_create_response_store", "semcache_create_vector_store"]


def _file(own: EmbeddedStoreSettings, stem: str) -> Path | None:
    if not own.data_path:
        return None
    return Path(own.data_path) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}.sqlite3"


@hookimpl
def semcache_create_vector_store(
    name: str, settings: Settings, model_id: str, dimension: int
) -> MemoryVectorStore | None:
    if name != "memory":
        return None
    own = settings.group(EmbeddedStoreSettings)
    return MemoryVectorStore(
        dimension,
        max_entries=own.max_entries,
        max_bytes=own.max_bytes,
        path=_file(own, f"{settings.prefix}-vectors-{model_id}-{dimension}"),
        hnsw_m=own.hnsw_m,
        hnsw_ef_construction=own.hnsw_ef_construction,
        hnsw_ef_search=max(own.hnsw_ef_search, 128),
    )


@hookimpl
def semcache_create_response_store(
    name: str, settings: Settings, model_id: str, dimension: int
) -> MemoryResponseStore | None:
    if name != "memory":
        return None
    own = settings.group(EmbeddedStoreSettings)
    return MemoryResponseStore(
        max_entries=own.max_entries,
        max_bytes=own.max_bytes,
        path=_file(own, f"{settings.prefix}-responses-{model_id}-{dimension}"),
    )
