"""Redis stores that let another writer in where another process's write can land:
between the read and the write of the conditional writes (``replace_metadata``,
``delete_if_current``), or right after the cache read an entry to decide on it (the
embedded store's is :class:`tests.support.pausing.PausingResponseStore`)."""

from __future__ import annotations

from typing import Any

from semcache_store_redis import RedisResponseStore
from tests.support.pausing import Pausing, PausingReads, Step

__all__ = ["Interleaved", "RedisReadThenInterleaved"]

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
