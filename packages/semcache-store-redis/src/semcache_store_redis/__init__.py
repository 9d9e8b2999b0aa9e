"""Redis response store for semcache: a single server or Redis Cluster.

Set ``SEMANTIC_CACHE_REDIS_URI=redis://host:6379/0`` and the cache keeps its stored
answers and exact-match index in Redis, shared by every replica; or build one yourself::

    from semcache_store_redis import RedisResponseStore

    store = RedisResponseStore("redis://localhost:6379/0", model_id="my-model", dimension=384)
"""

from typing import TYPE_CHECKING, Any

from semcache_store_redis.settings import RedisSettings

if TYPE_CHECKING:
    from semcache_store_redis._store import RedisResponseStore, key_prefix

__all__ = ["RedisResponseStore", "RedisSettings", "key_prefix"]


def __getattr__(name: str) -> Any:
    # The driver loads on first use: discovering the settings group stays cheap.
    if name in __all__:
        from semcache_store_redis import _store

        return getattr(_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
