"""PostgreSQL + pgvector vector store for semcache.

Set ``SEMANTIC_CACHE_PG_URI=postgresql://user:pass@host:5432/db`` and the cache keeps its
vectors in PostgreSQL, shared by every replica; or build one yourself::

    from semcache_store_pgvector import PgVectorStore

    store = PgVectorStore("postgresql://localhost/app", dimension=384, model_id="my-model")
"""

from semcache_store_pgvector._store import PgvectorSetupError, PgVectorStore, table_name

__all__ = ["PgVectorStore", "PgvectorSetupError", "table_name"]
