"""Caches that fail, for the adapters' "a cache problem never fails a request" tests."""

from __future__ import annotations

from typing import Any

from semcache import Hit
from tests.support.scenarios.harness import settings_for_tests

__all__ = ["BrokenCache", "GarbageCache"]


class BrokenCache:
    """Every cache call fails."""

    settings = settings_for_tests()

    async def lookup(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("lookup down")

    async def store(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store down")

    def single_flight(self, key: str) -> Any:
        raise RuntimeError("flight down")

    async def start(self) -> None:
        raise RuntimeError("start down")


class GarbageCache(BrokenCache):
    """Lookups return entries that are not stored responses."""

    async def lookup(self, *args: Any, **kwargs: Any) -> Any:
        return Hit(b"SCR1{garbage\n", {}, 0.99, "id", "semantic")

    async def store(self, *args: Any, **kwargs: Any) -> Any:
        return None
