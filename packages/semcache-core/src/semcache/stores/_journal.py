"""Write-behind SQLite copy of an embedded store, so a restart keeps the cache.

Writes are queued in memory and flushed in a worker thread every ``interval`` seconds
and on close; a crash loses at most that interval. One file per store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Journal"]

log = logging.getLogger("semcache")


class Journal:
    """Key -> (partition, blob, expires_at) rows in one SQLite table."""

    def __init__(self, path: Path, *, interval: float = 0.5) -> None:
        # The cached answers are the users': the folder we create is ours alone (0700),
        # the files are created 0600 (SQLite gives its -wal and -shm files the same mode).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self.interval = interval
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries ("
            " key TEXT PRIMARY KEY, part TEXT NOT NULL, blob BLOB NOT NULL, expires_at REAL)"
        )
        self._pending: dict[str, tuple[str, bytes, float | None] | None] = {}
        self._clear_all = False
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def rows(self) -> Iterator[tuple[str, str, bytes, float | None]]:
        """Every stored row, oldest first (read once at start-up)."""
        yield from self._db.execute(
            "SELECT key, part, blob, expires_at FROM entries ORDER BY rowid"
        )

    def put(self, key: str, part: str, blob: bytes, expires_at: float | None) -> None:
        self._pending[key] = (part, blob, expires_at)
        self._schedule()

    def delete(self, key: str) -> None:
        self._pending[key] = None
        self._schedule()

    def clear(self) -> None:
        self._pending.clear()
        self._clear_all = True
        self._schedule()

    def _schedule(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: flushed on close
                self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, {}
            clear, self._clear_all = self._clear_all, False
            if pending or clear:
                await asyncio.to_thread(self._write, pending, clear)

    def _write(
        self, pending: dict[str, tuple[str, bytes, float | None] | None], clear: bool
    ) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN")
                if clear:
                    self._db.execute("DELETE FROM entries")
                for key, row in pending.items():
                    if row is None:
                        self._db.execute("DELETE FROM entries WHERE key = ?", (key,))
                    else:
                        self._db.execute(
                            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", (key, *row)
                        )
        except sqlite3.Error as exc:
            log.warning("semcache: could not write %s (%s)", self.path, exc)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await self.flush()
        self._db.close()
