"""Clients of one Redis response store, as processes sharing it have, and what it holds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from semcache_store_redis import RedisResponseStore
from tests.support.redis_servers import delete_prefix, random_prefix

__all__ = ["keys_of", "two_clients_of"]

S = TypeVar("S", bound=RedisResponseStore)


@contextlib.asynccontextmanager
async def two_clients_of(first: type[S], uri: str) -> AsyncIterator[tuple[S, RedisResponseStore]]:
    """Two clients of one store (a key prefix of their own), as two processes have: the
    first of class ``first`` (one that can be interleaved); every key is deleted after."""
    prefix = random_prefix()
    mine = first(uri, prefix=prefix, model_id="test", dimension=8)
    theirs = RedisResponseStore(uri, prefix=prefix, model_id="test", dimension=8)
    try:
        yield mine, theirs
    finally:
        await mine.aclose()
        await theirs.aclose()
        delete_prefix(uri, prefix)


async def keys_of(store: RedisResponseStore) -> list[str]:
    """Every key under the store's prefix, sorted."""
    client = await store._connect()
    return sorted([k.decode() async for k in client.scan_iter(match=store.prefix + "*")])
