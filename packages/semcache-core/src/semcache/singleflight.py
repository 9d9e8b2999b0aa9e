"""Collapse concurrent identical misses into one upstream call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Flight", "SingleFlight"]

T = TypeVar("T")


@dataclass(slots=True)
class Flight:
    """``leader`` is True for the one caller that should do the work.

    Followers are let in once the leader is done (or after ``wait`` seconds); they
    should look in the cache again, and call the upstream only if it is still a miss.
    """

    key: str
    leader: bool


class SingleFlight:
    """Per-key leader election among concurrent callers in one process."""

    def __init__(self, *, wait: float = 60.0) -> None:
        self.wait = wait
        self._inflight: dict[str, asyncio.Event] = {}
        self._calls: dict[str, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    @asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[Flight]:
        done = self._inflight.get(key)
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.wait)
            yield Flight(key, leader=False)
            return
        done = asyncio.Event()
        self._inflight[key] = done
        try:
            yield Flight(key, leader=True)
        finally:
            del self._inflight[key]
            done.set()

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` once for all concurrent callers with ``key``; all get its outcome."""
        shared = self._calls.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        shared = asyncio.get_running_loop().create_future()
        self._calls[key] = shared
        try:
            result = await fn()
        except BaseException as exc:
            shared.set_exception(exc)
            shared.exception()  # marks it retrieved when nobody else was waiting
            raise
        else:
            shared.set_result(result)
            return result
        finally:
            del self._calls[key]
