"""PostgreSQL + pgvector vector store for semcache.

Set ``SEMANTIC_CACHE_PG_URI=postgresql://user:pass@host:5432/db`` and the cache keeps its
vectors in PostgreSQL, shared by every replica; or build one yourself::

    from semcache_store_pgvector import PgVectorStore

    store = PgVectorStore("postgresql://localhost/app", dimension=384, model_id="my-model")
"""

from typing import TYPE_CHECKING, Any

from semcache_store_pgvector.settings import PgvectorSettings

if TYPE_CHECKING:
    from semcache_store_pgvector._store import PgvectorSetupError, PgVectorStore, table_name

__all__ = ["PgVectorStore", "PgvectorSettings", "PgvectorSetupError", "table_name"]


def __getattr__(name: str) -> Any:
    # The driver loads on first use: discovering the settings group stays cheap.
    if name in __all__:
        from semcache_store_pgvector import _store

        return getattr(_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
