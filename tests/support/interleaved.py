"""A Redis response store that lets another writer in between the read and the write of
its conditional metadata write (``replace_metadata``), where another process's write
can land."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from semcache_store_redis import RedisResponseStore

__all__ = ["Interleaved"]


class Interleaved(RedisResponseStore):
    """Runs :attr:`between` once, after its next ``replace_metadata`` has read the entry
    and before the script writes it."""

    between: Callable[[], Awaitable[Any]] | None = None

    def _script(self, name: str) -> Any:
        script = super()._script(name)
        between = self.between
        if name != "swap" or between is None:
            return script
        self.between = None

        async def run(**kwargs: Any) -> Any:
            await between()
            return await script(**kwargs)

        return run
