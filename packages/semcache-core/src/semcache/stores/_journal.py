"""Write-behind SQLite copy of an embedded store, so a restart keeps the cache.

Writes are queued in memory and written by one writer thread per file, at most
``interval`` seconds after they were queued, and on close. The writer thread is the only
user of the SQLite connection once the file is loaded, so batches never overlap and
close waits for the batch in flight before the connection is closed.

What survives:

- a close (``aclose``, ``SemanticCache.close``, the end of ``async with``): everything;
- a normal interpreter exit without a close, and a SIGTERM in a process that left SIGTERM
  at its default: everything queued (the queue is written at exit);
- ``kill -9`` or a power cut: everything but the last ``interval`` seconds (SQLite's
  write-ahead log keeps the file consistent: it always opens).

A file that SQLite cannot read at start-up (truncated, corrupt, not a database) is moved
aside (``NAME.corrupt-TIMESTAMP``) with a warning and the store starts empty. A batch
that cannot be written is kept and retried with a back-off; failures are counted in
:meth:`Journal.stats` and logged, and what is still unwritten when the store closes is
logged as an error and counted as ``dropped``.

One process owns a file: a second process (or a second store in the same process)
opening it gets a :class:`~semcache.errors.StoreSetupError` naming the folder.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from semcache.errors import StoreSetupError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal", "flush_all"]

log = logging.getLogger("semcache")

Row = tuple[str, bytes, float | None]

# Retries of a failed batch: back-off doubles from ``interval`` up to this.
_RETRY_MAX = 30.0
# Attempts at the last batch when closing, before what is left is reported as dropped.
_CLOSE_ATTEMPTS = 3
# How long an exit (atexit, SIGTERM) waits for the journals to be written.
_EXIT_BUDGET = 10.0

_open: weakref.WeakSet[Journal] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_hooks_installed = False


class Journal:
    """Key -> (partition, blob, expires_at) rows in one SQLite table."""

    def __init__(self, path: Path, *, interval: float = 0.5) -> None:
        # The cached answers are the users': the folder we create is ours alone (0700),
        # the files are created 0600 (SQLite gives its -wal and -shm files the same mode).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.interval = interval
        self.recovered_from: str | None = None
        self._lock_fd = _lock(path)
        try:
            self._db, self._loaded = self._open()
        except BaseException:
            _unlock(self._lock_fd)
            raise
        self._cond = threading.Condition(threading.RLock())
        self._pending: dict[str, Row | None] = {}
        self._clear_all = False
        self._queued = 0  # changes queued so far (a sequence number)
        self._written = 0  # changes durable so far
        self._flush_now = False
        self._stopping = False
        self._closed = False
        self._counts = {"batches": 0, "rows": 0, "write_failures": 0, "dropped": 0}
        self._last_error: str | None = None
        self._thread = threading.Thread(
            target=_run,
            args=(weakref.ref(self),),
            name=f"semcache-journal-{path.name}",
            daemon=True,
        )
        self._thread.start()
        _open.add(self)
        _install_exit_hooks()

    # -- opening ----------------------------------------------------------------

    def _open(self) -> tuple[sqlite3.Connection, list[tuple[str, str, bytes, float | None]]]:
        try:
            return _connect(self.path)
        except sqlite3.DatabaseError as exc:
            aside = _move_aside(self.path)
            self.recovered_from = str(aside)
            log.warning(
                "semcache: %s could not be read (%s); moved it to %s, the store starts empty",
                self.path,
                exc,
                aside,
            )
            return _connect(self.path)

    def rows(self) -> list[tuple[str, str, bytes, float | None]]:
        """Every stored row, oldest first (read once at start-up)."""
        rows, self._loaded = self._loaded, []
        return rows

    # -- queueing (event loop side) ---------------------------------------------

    def put(self, key: str, part: str, blob: bytes, expires_at: float | None) -> None:
        self._queue(key, (part, blob, expires_at))

    def delete(self, key: str) -> None:
        self._queue(key, None)

    def clear(self) -> None:
        with self._cond:
            self._check_open()
            self._pending.clear()
            self._clear_all = True
            self._queued += 1
            self._cond.notify_all()

    def _queue(self, key: str, row: Row | None) -> None:
        with self._cond:
            self._check_open()
            self._pending[key] = row
            self._queued += 1
            if len(self._pending) == 1:
                self._cond.notify_all()

    def _check_open(self) -> None:
        if self._stopping:
            self._counts["dropped"] += 1
            log.error("semcache: a write to %s came after it was closed; not saved", self.path)
            raise RuntimeError(f"the journal {self.path} is closed")

    # -- waiting ----------------------------------------------------------------

    def flush_sync(self, timeout: float | None = None) -> bool:
        """Write what is queued now; True once it is on disk (False on a timeout)."""
        with self._cond:
            target = self._queued
            if self._written >= target or self._closed:
                return self._written >= target
            self._flush_now = True
            self._cond.notify_all()
            return (
                self._cond.wait_for(lambda: self._written >= target or self._closed, timeout)
                and self._written >= target
            )

    async def flush(self, within: float | None = None) -> bool:
        """Write what is queued now; True once it is on disk (False after ``within`` s)."""
        return await asyncio.to_thread(self.flush_sync, within)

    def close_sync(self, timeout: float | None = None) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    async def aclose(self) -> None:
        """Write what is queued, then close the file (waits for the batch in flight).

        Cancelling this wait does not stop the writer: it still writes and closes."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        await asyncio.shield(asyncio.to_thread(self._thread.join))

    def stats(self) -> dict[str, Any]:
        """Rows waiting, batches and rows written, failures, dropped rows, last error."""
        with self._cond:
            return {
                **self._counts,
                "pending": len(self._pending) + int(self._clear_all),
                "last_error": self._last_error,
                "recovered_from": self.recovered_from,
            }

    # -- the writer thread ----------------------------------------------------

    def _next_batch(self, delay: float) -> tuple[dict[str, Row | None], bool, int] | None:
        """Wait for something to write (at most ``delay`` after it was queued, sooner on a
        flush or close); None once stopped with nothing left."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._clear_all or self._stopping)
            if not (self._pending or self._clear_all):
                return None
            if not self._stopping and not self._flush_now:
                self._cond.wait_for(lambda: self._stopping or self._flush_now, delay)
            self._flush_now = False
            batch, self._pending = self._pending, {}
            clear, self._clear_all = self._clear_all, False
            return batch, clear, self._queued

    def _done(
        self, batch: dict[str, Row | None], clear: bool, seq: int, error: Exception | None
    ) -> None:
        with self._cond:
            if error is None:
                self._written = seq
                self._counts["batches"] += 1
                self._counts["rows"] += len(batch)
            else:
                self._counts["write_failures"] += 1
                self._last_error = f"{type(error).__name__}: {error}"
                if not self._clear_all:  # put back under what came since (newer wins)
                    batch.update(self._pending)
                    self._pending = batch
                    self._clear_all = clear
            self._cond.notify_all()

    def _write(self, batch: dict[str, Row | None], clear: bool) -> Exception | None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if clear:
                    db.execute("DELETE FROM entries")
                db.executemany(
                    "DELETE FROM entries WHERE key = ?",
                    [(key,) for key, row in batch.items() if row is None],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                    [(key, *row) for key, row in batch.items() if row is not None],
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            return exc
        return None

    def _finish(self) -> None:
        with self._cond:
            left = len(self._pending) + int(self._clear_all)
            if left:
                self._counts["dropped"] += left
                log.error(
                    "semcache: %d change(s) to %s could not be written (%s); they are lost",
                    left,
                    self.path,
                    self._last_error,
                )
                self._pending.clear()
                self._clear_all = False
            self._closed = True
            self._cond.notify_all()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        _unlock(self._lock_fd)
        _open.discard(self)


def _run(ref: weakref.ref[Journal]) -> None:
    """The writer thread: the only user of the connection after loading."""
    journal = ref()
    if journal is None:
        return
    delay: float | None = None  # the interval; a back-off after a failure
    failures = 0
    try:
        while True:
            got = journal._next_batch(journal.interval if delay is None else delay)
            if got is None:
                break
            batch, clear, seq = got
            error = journal._write(batch, clear)
            journal._done(batch, clear, seq, error)
            if error is None:
                if failures:
                    log.warning("semcache: %s is written again", journal.path)
                failures, delay = 0, None
                continue
            failures += 1
            log.warning(
                "semcache: could not write %s (%s); %d change(s) kept, retrying",
                journal.path,
                error,
                len(batch),
                exc_info=failures == 1,
            )
            if journal._stopping:
                if failures >= _CLOSE_ATTEMPTS:
                    break
                time.sleep(0.1 * failures)
            else:
                delay = min(_RETRY_MAX, journal.interval * 2**failures)
    except BaseException:  # pragma: no cover - a bug: report, never hang close
        log.exception("semcache: the writer of %s stopped", journal.path)
    finally:
        journal._finish()


# -- the file ----------------------------------------------------------------------


def _connect(path: Path) -> tuple[sqlite3.Connection, list[tuple[str, str, bytes, float | None]]]:
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS entries ("
            " key TEXT PRIMARY KEY, part TEXT NOT NULL, blob BLOB NOT NULL, expires_at REAL)"
        )
        rows = db.execute(
            "SELECT key, part, blob, expires_at FROM entries ORDER BY rowid"
        ).fetchall()
    except BaseException:
        db.close()
        raise
    return db, rows


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    return aside


def _lock(path: Path) -> int | None:
    """Hold ``PATH.lock`` for this process; a second holder gets a clear error."""
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)
        who = "this process" if holder == str(os.getpid()) else f"process {holder}"
        raise StoreSetupError(
            f"the data folder {path.parent} is in use by {who} ({path.name} is locked):"
            " the embedded store belongs to one process. Give each process its own"
            " SEMANTIC_CACHE_DATA_PATH, or share a redis or pgvector store between them"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing releases the lock


# -- exits -------------------------------------------------------------------------


def flush_all(timeout: float = _EXIT_BUDGET) -> None:
    """Write what every open journal of this process has queued (waits ``timeout``)."""
    deadline = time.monotonic() + timeout
    for journal in list(_open):
        left = deadline - time.monotonic()
        if left <= 0 or not journal.flush_sync(left):
            log.error("semcache: %s could not be written before exit", journal.path)


def _on_sigterm(signum: int, frame: Any) -> None:
    # Only installed where SIGTERM was left at its default (die): write the journals,
    # then die by the same signal as before.
    flush_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_exit_hooks() -> None:
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(flush_all)
    install_sigterm_flush()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_disown_after_fork)


def _disown_after_fork() -> None:
    """In a forked child: the journals are the parent's. Their writer threads were not
    copied and their locks may have been held at the fork, so the child neither waits for
    them nor writes through them; the files stay the parent's alone."""
    global _hooks_lock
    _hooks_lock = threading.Lock()
    for journal in list(_open):
        journal._cond = threading.Condition(threading.RLock())  # a copy held by no one
        journal._pending = {}
        journal._clear_all = False
        journal._stopping = journal._closed = True  # writes here fail loudly, none wait
        # Its SQLite connection is never used here (SQLite forbids carrying one across a
        # fork); the parent's locks on the file stay visible, so the file stays its.
    _open.clear()


def install_sigterm_flush() -> bool:
    """Write the journals on SIGTERM, where SIGTERM is still at its default.

    A server that handles SIGTERM itself (uvicorn, gunicorn) keeps its handler and
    closes the cache on shutdown. Only possible from the main thread; True if installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            return True
    return False
