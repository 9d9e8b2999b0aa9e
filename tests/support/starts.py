"""A cache start held until the test lets it go on: an embedder that asks its API for its
vector size when the cache starts (an HTTP model of unknown size), and gets no answer."""

from __future__ import annotations

import asyncio

from semcache.testing import HashingTestEmbedder

__all__ = ["HeldStart"]


class HeldStart(HashingTestEmbedder):
    """The hashing embedder, whose ``probe_dimension`` (awaited by the cache's start) sets
    :attr:`probed` and waits for :attr:`release`: never set, a start that hangs."""

    def __init__(self, dimension: int = 256) -> None:
        super().__init__(dimension)
        self.probed = asyncio.Event()
        self.release = asyncio.Event()

    async def probe_dimension(self) -> int:
        self.probed.set()
        await self.release.wait()
        return self.dimension
