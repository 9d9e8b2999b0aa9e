"""Stores that let another writer in where another process's write can land: between
the read and the write of a response store's conditional writes (``replace_metadata``,
``delete_if_current``), or right after the cache read an entry to decide on it (a
vector delete that pauses is :class:`tests.support.pausing.PausingVectorStore`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from semcache.stores import MemoryResponseStore
from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.pausing import Pausing

__all__ = [
    "Interleaved",
    "ReadThenInterleaved",
    "RedisReadThenInterleaved",
]

# The scripts that write only over what was read (see RedisResponseStore).
_CONDITIONAL = frozenset({"swap", "drop"})


class Interleaved(Pausing, RedisResponseStore):
    """Runs :attr:`between` once, after its next conditional write (``replace_metadata``
    or ``delete_if_current``) has read the entry and before the script writes it."""

    def _script(self, name: str) -> Any:
        script = super()._script(name)
        between = self.take_between() if name in _CONDITIONAL else None
        if between is None:
            return script

        async def run(**kwargs: Any) -> Any:
            await between()
            return await script(**kwargs)

        return run


class _AfterRead:
    """Runs :attr:`after_read` once, right after the next ``get`` has read the entry
    and before its caller sees it (what the cache decides on is then out of date)."""

    after_read: Callable[[], Awaitable[Any]] | None = None

    async def get(self, entry_id: str) -> Entry | None:
        entry = await super().get(entry_id)  # type: ignore[misc]
        after_read, self.after_read = self.after_read, None
        if after_read is not None:
            await after_read()
        return entry


class ReadThenInterleaved(_AfterRead, MemoryResponseStore):
    """The embedded store, with :attr:`after_read`."""


class RedisReadThenInterleaved(_AfterRead, Interleaved):
    """The Redis store, with :attr:`after_read` and :attr:`Interleaved.between`."""
