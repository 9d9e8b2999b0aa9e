"""Stores that stop once at a chosen point of their next call, so that a test can run
another operation there: what a network store's late reply, or another process's write
landing in between, lets happen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from semcache.stores import MemoryResponseStore, MemoryVectorStore
from semcache.types import Entry

__all__ = ["Pausing", "PausingResponseStore", "PausingVectorStore", "Step"]

Step = Callable[[], Awaitable[Any]]
"""What a test runs at the store's point."""


class Pausing:
    """Runs :attr:`between` once, at the point of its next call that the store names."""

    between: Step | None = None

    def pause_next(self) -> tuple[asyncio.Event, asyncio.Event]:
        """``(entered, release)``: set when the next call has reached its point; set to
        let it go on."""
        entered, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            entered.set()
            await release.wait()

        self.between = hold
        return entered, release

    def take_between(self) -> Step | None:
        """What the call at its point runs; cleared, so that it runs once."""
        step, self.between = self.between, None
        return step

    async def run_between(self) -> None:
        step = self.take_between()
        if step is not None:
            await step()


class PausingResponseStore(Pausing, MemoryResponseStore):
    """The embedded store, whose next ``get`` runs :attr:`between` once it has read (as a
    network store's reply can be late)."""

    async def get(self, entry_id: str) -> Entry | None:
        entry = await super().get(entry_id)
        await self.run_between()
        return entry


class PausingVectorStore(Pausing, MemoryVectorStore):
    """The embedded vector index, whose next ``delete`` runs :attr:`between` before it
    deletes (also as an index that replicas share, as they share pgvector)."""

    async def delete(self, entry_ids: Sequence[str]) -> None:
        await self.run_between()
        await super().delete(entry_ids)
