"""Redis stores that let another writer in where another process's write can land:
between the read and the write of the conditional writes (``replace_metadata``,
``delete_if_current``), between a delete's two steps (the payload, then the entry's keys
in its partition's slot), or right after the cache read an entry to decide on it (the
embedded store's is :class:`tests.support.pausing.PausingResponseStore`)."""

from __future__ import annotations

from typing import Any

from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.pausing import Pausing, PausingReads, Step

__all__ = ["Interleaved", "RedisReadThenInterleaved", "RedisUnindexInterleaved"]

# The scripts that write only over what was read (see RedisResponseStore).
_CONDITIONAL = frozenset({"swap", "drop"})


class Interleaved(Pausing, RedisResponseStore):
    """Runs :attr:`between` once, after its next conditional write (``replace_metadata``
    or ``delete_if_current``) has read the entry and before the script writes it."""

    between: Step | None = None

    def _script(self, name: str) -> Any:
        script = super()._script(name)
        between = self.take_step("between") if name in _CONDITIONAL else None
        if between is None:
            return script

        async def run(**kwargs: Any) -> Any:
            await between()
            return await script(**kwargs)

        return run


class RedisReadThenInterleaved(PausingReads, Interleaved):
    """The Redis store, with :attr:`PausingReads.after_read` and :attr:`Interleaved.between`."""


class RedisUnindexInterleaved(Pausing, RedisResponseStore):
    """The Redis store, which runs :attr:`between` once, at its next step on an entry's
    keys in the partition's slot: after a delete (``delete``, ``delete_if_current``)
    has removed the payload and before it removes the entry's exact key, membership
    and aliases; or before it writes an entry's exact key and membership back (the
    answer it found stored again under that id once it had removed them)."""

    between: Step | None = None

    async def _unindex(self, entry: Entry, *, own: bool = True) -> None:
        await self.run_step("between")
        await super()._unindex(entry, own=own)

    async def _index(self, entry: Entry, *args: Any, **kwargs: Any) -> None:
        await self.run_step("between")
        await super()._index(entry, *args, **kwargs)
