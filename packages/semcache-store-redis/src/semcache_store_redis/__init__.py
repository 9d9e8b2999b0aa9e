"""Redis response store for semcache: a single server or Redis Cluster.

Set ``SEMANTIC_CACHE_REDIS_URI=redis://host:6379/0`` and the cache keeps its stored
answers and exact-match index in Redis, shared by every replica; or build one yourself::

    from semcache_store_redis import RedisResponseStore

    store = RedisResponseStore("redis://localhost:6379/0", model_id="my-model", dimension=384)
"""

from semcache_store_redis._store import RedisResponseStore, key_prefix

__all__ = ["RedisResponseStore", "key_prefix"]
