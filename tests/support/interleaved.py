"""Redis stores that let another writer in where another process's write can land:
between the read and the write of the conditional writes (``replace_metadata``,
``delete_if_current``), between a delete's two steps (the payload, then the entry's keys
in its partition's slot), between the steps of a partition flush, or right after the cache read an entry to decide on it (the
embedded store's is :class:`tests.support.pausing.PausingResponseStore`)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from semcache.types import Entry
from semcache_store_redis import RedisResponseStore
from tests.support.pausing import Pausing, PausingReads, Step

__all__ = [
    "Interleaved",
    "RedisFlushInterleaved",
    "RedisReadThenInterleaved",
    "RedisUnindexInterleaved",
]

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


class RedisFlushInterleaved(Pausing, RedisResponseStore):
    """The Redis store, whose partition flush runs a step once at one of its points:
    ``before_batch`` before its second batch of members (the first one done);
    ``after_forget`` once a batch has removed its entries' exact keys and alias sets,
    before it deletes their payloads; ``after_unlink`` once it has deleted the payloads,
    before it removes the members from the partition. A step that raises, or holds
    while the flush is cancelled, cuts the flush off there."""

    point = "before_batch"
    before_batch: Step | None = None
    after_forget: Step | None = None
    after_unlink: Step | None = None
    _batches = 0

    async def flush(self, partition: str | None = None) -> int:
        self._batches = 0
        return await super().flush(partition)

    async def _flush_batch(
        self, client: Redis | RedisCluster, partition: str, members: list[str]
    ) -> int:
        if self._batches:
            await self.run_step("before_batch")
        self._batches += 1
        return await super()._flush_batch(client, partition, members)

    def _script(self, name: str) -> Any:
        script = super()._script(name)
        if name not in ("forget", "release"):
            return script

        async def run(**kwargs: Any) -> Any:
            if name == "release":
                await self.run_step("after_unlink")
            done = await script(**kwargs)
            if name == "forget":
                await self.run_step("after_forget")
            return done

        return run
