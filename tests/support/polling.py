"""Polling instead of fixed sleeps: wait for a server to answer, or a cache to heal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["until", "wait_stores", "wait_until"]


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds.

    An exception from ``check`` counts as "not yet" (a server still starting refuses
    connections).
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        time.sleep(interval)


def wait_stores(cache: Any, count: int, *, timeout: float = 10.0) -> None:
    """Wait until ``cache`` (a :class:`semcache.SemanticCache`) has stored ``count``
    answers: an adapter writes after the response is sent."""
    try:
        wait_until(
            lambda: cache.counters["stores"] >= count,
            timeout=timeout,
            what=f"{count} stores",
            interval=0.005,
        )
    except TimeoutError:
        have = cache.counters["stores"]
        raise AssertionError(f"expected {count} stores, have {have}") from None


async def until(action: Callable[[], Awaitable[Any]], *, within: float) -> Any:
    """Repeat ``action`` until it returns something truthy (the cache heals itself).

    Unlike :func:`wait_until`, an exception from ``action`` fails the test at once.
    """
    deadline = time.monotonic() + within
    while True:
        result = await action()
        if result:
            return result
        assert time.monotonic() < deadline, "the cache did not recover"
        await asyncio.sleep(0.05)
