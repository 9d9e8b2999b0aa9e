"""Failure doubles: an embedder that never answers, a store that can be switched off."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from semcache.testing.embedders import HashingTestEmbedder
from semcache.types import Matrix

__all__ = ["FlakyStore", "SlowEmbedder", "StalledEmbedder"]


class StalledEmbedder(HashingTestEmbedder):
    """Never answers: a model stuck on an overloaded machine."""

    async def embed(self, texts: Sequence[str]) -> Matrix:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class SlowEmbedder(HashingTestEmbedder):
    """Takes :attr:`seconds_per_call` for every model call, however many texts: a
    model on a busy machine. :attr:`calls` counts the calls."""

    def __init__(self, seconds_per_call: float, dimension: int = 256) -> None:
        super().__init__(dimension)
        self.seconds_per_call = seconds_per_call
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        await asyncio.sleep(self.seconds_per_call)
        return await super().embed(texts)


class FlakyStore:
    """Wraps any store; every call raises ``ConnectionError`` while :attr:`down` is set,
    and sleeps :attr:`delay` seconds first when set. :attr:`calls` counts calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.delay = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr) or name == "aclose":
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.down:
                raise ConnectionError("store unreachable")
            return await attr(*args, **kwargs)

        return call
