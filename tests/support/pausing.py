"""Stores that stop once at a chosen point of their next call, so that a test can run
another operation there: what a network store's late reply, or another process's write
landing in between, lets happen.

A point is an attribute holding the test's step (:data:`Step`): ``after_read`` once a
response store's ``get`` has read the entry, ``between`` in the middle of a call (a vector
delete, a Redis script: :mod:`tests.support.interleaved`). Each runs once, then is cleared."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.tags import Tag
from semcache.types import Entry

__all__ = [
    "Pausing",
    "PausingReads",
    "PausingResponseStore",
    "PausingVectorStore",
    "SilentAt",
    "Step",
]

Step = Callable[[], Awaitable[Any]]
"""What a test runs at the store's point."""


class Pausing:
    """Runs the step at a point once, when its next call reaches that point."""

    point: ClassVar[str] = "between"
    """The point :meth:`pause_next` holds unless told another: the store's own."""

    def pause_next(self, point: str | None = None) -> tuple[asyncio.Event, asyncio.Event]:
        """``(entered, release)``: set when the next call has reached ``point``; set to
        let it go on."""
        entered, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            entered.set()
            await release.wait()

        setattr(self, point or self.point, hold)
        return entered, release

    def take_step(self, point: str) -> Step | None:
        """What the call at ``point`` runs; cleared, so that it runs once."""
        step: Step | None = getattr(self, point)
        setattr(self, point, None)
        return step

    async def run_step(self, point: str) -> None:
        step = self.take_step(point)
        if step is not None:
            await step()


class PausingReads(Pausing):
    """A response store (this class first, the store's after it) whose next ``get`` runs
    :attr:`after_read` once it has read the entry and before its caller sees it (as a
    network store's reply can be late): what the caller decides on is then out of date."""

    point = "after_read"
    after_read: Step | None = None

    async def get(self, entry_id: str) -> Entry | None:
        entry: Entry | None = await super().get(entry_id)  # type: ignore[misc]
        await self.run_step("after_read")
        return entry


class PausingResponseStore(PausingReads, MemoryResponseStore):
    """The embedded store, with :attr:`PausingReads.after_read`."""


class PausingVectorStore(Pausing, MemoryVectorStore):
    """The embedded vector index, whose next ``delete`` runs :attr:`between` before it
    deletes (also as an index that replicas share, as they share pgvector)."""

    between: Step | None = None

    async def delete(self, entry_ids: Sequence[str]) -> None:
        await self.run_step("between")
        await super().delete(entry_ids)


class SilentAt(Pausing, MemoryResponseStore):
    """The embedded store, whose next call of ``method`` (``get``, ``delete``,
    ``delete_if_current``, ``flush`` or ``partitions_where``) runs :attr:`between` before
    it does anything: held, a store that took the call and went silent."""

    between: Step | None = None

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    async def _point(self, method: str) -> None:
        if method == self.method:
            await self.run_step("between")

    async def get(self, entry_id: str) -> Entry | None:
        await self._point("get")
        return await super().get(entry_id)

    async def delete(self, entry_id: str) -> bool:
        await self._point("delete")
        return await super().delete(entry_id)

    async def delete_if_current(self, entry: Entry) -> bool:
        await self._point("delete_if_current")
        return await super().delete_if_current(entry)

    async def flush(self, partition: str | None = None) -> int:
        await self._point("flush")
        return await super().flush(partition)

    async def partitions_where(self, tags: Sequence[Tag]) -> list[str]:
        await self._point("partitions_where")
        return await super().partitions_where(tags)
