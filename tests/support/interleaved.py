"""A Redis response store that lets another writer in between the read and the write of
its conditional metadata write (``replace_metadata``), where another process's write
can land."""

from __future__ import annotations

from typing import Any

from semcache_store_redis import RedisResponseStore
from tests.support.pausing import Pausing

__all__ = ["Interleaved"]


class Interleaved(Pausing, RedisResponseStore):
    """Runs :attr:`between` once, after its next ``replace_metadata`` has read the entry
    and before the script writes it."""

    def _script(self, name: str) -> Any:
        script = super()._script(name)
        between = self.take_between() if name == "swap" else None
        if between is None:
            return script

        async def run(**kwargs: Any) -> Any:
            await between()
            return await script(**kwargs)

        return run
