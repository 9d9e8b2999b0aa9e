"""Entry-point plugin ``response_store.redis``: chosen by ``SEMANTIC_CACHE_REDIS_URI``."""

from __future__ import annotations

from semcache.errors import SettingsError
from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_store_redis._store import RedisResponseStore
from semcache_store_redis.settings import RedisSettings

__all__ = ["semcache_create_response_store"]


@hookimpl
def semcache_create_response_store(
    name: str, settings: Settings, model_id: str, dimension: int
) -> RedisResponseStore | None:
    if name != "redis":
        return None
    own = settings.group(RedisSettings)
    if not own.redis_uri:
        raise SettingsError("the redis store needs SEMANTIC_CACHE_REDIS_URI (redis://...)")
    # The cache cuts each call at store_timeout_ms; the socket timeouts bound what a
    # dead or stalled server can hold on to after that.
    budget = settings.store_timeout_ms / 1000
    return RedisResponseStore(
        own.redis_uri,
        model_id=model_id,
        dimension=dimension,
        prefix=settings.prefix,
        socket_timeout=max(0.5, 4 * budget),
        connect_timeout=max(0.25, 2 * budget),
    )
