"""The async core for sync code: one event loop in a daemon thread per process.

WSGI apps and sync views cannot ``await``. Every sync adapter in a process hands its
coroutines to the same long-lived loop (:func:`loop_thread`), so a cache, its stores'
connection pools and its micro-batching embedder live on one loop for the life of the
process, whatever thread a request runs in. The loop starts on first use; a forked
child (a gunicorn worker) starts its own, since a fork copies the loop but not its thread.

```python
from semcache import SemanticCache, sync

cache = SemanticCache()
hit = sync.run(cache.lookup("What is the capital of France?"), timeout=5)
```
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import logging
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from semcache.cache import SemanticCache
    from semcache.settings import Settings

__all__ = ["LoopThread", "close_at_exit", "loop_thread", "run", "shared_cache", "spawn", "submit"]

log = logging.getLogger("semcache")

T = TypeVar("T")

EXIT_BUDGET = 5.0
"""Seconds given at interpreter exit to pending writes, then to closing shared caches."""

_instances: weakref.WeakSet[LoopThread] = weakref.WeakSet()


class LoopThread:
    """An event loop running forever in a daemon thread, started on first use.

    :meth:`run` blocks the calling thread until a coroutine finishes on the loop;
    :meth:`run_async` awaits it from another event loop; :meth:`spawn` starts one in
    the background (writes that must not delay a response), finished at exit.
    Coroutines run in a fresh ``contextvars`` context unless one is passed, so a
    request's context variables never outlive it in a long-lived task.
    """

    def __init__(self, name: str = "semcache-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._pending_lock = threading.Lock()
        self._exit_hook = False
        _instances.add(self)

    # -- the loop --------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started now if it is not)."""
        loop = self._loop
        if loop is not None and self._pid == os.getpid() and not loop.is_closed():
            return loop
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._main, args=(loop,), name=self.name, daemon=True)
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        self._pending = set()
        thread.start()
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(self._at_exit)

    @staticmethod
    def _main(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def in_loop_thread(self) -> bool:
        """Is the caller running on this loop's thread?"""
        return self._thread is not None and threading.current_thread() is self._thread

    @property
    def started(self) -> bool:
        return self._loop is not None and self._pid == os.getpid() and not self._loop.is_closed()

    # -- running coroutines ----------------------------------------------------

    def submit(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        context: contextvars.Context | None = None,
    ) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; its future, usable from any thread."""
        try:
            loop = self.loop
        except BaseException:
            coro.close()
            raise
        ctx = context if context is not None else contextvars.Context()
        # The task copies the context current when it is created: the one given here.
        return ctx.run(asyncio.run_coroutine_threadsafe, coro, loop)

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None = None,
        *,
        context: contextvars.Context | None = None,
    ) -> T:
        """Run ``coro`` on the loop and wait for its result (``TimeoutError`` past ``timeout``).

        On timeout the coroutine is cancelled. Never call this on the loop's own
        thread (it would wait for itself): await the coroutine there instead.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("semcache.sync.run() called on the loop thread; await instead")
        future = self.submit(coro, context=context)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this loop from another event loop, without blocking that loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; errors are logged, pending work is finished at exit."""
        future = self.submit(coro)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: concurrent.futures.Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("semcache: background task failed", exc_info=future.exception())

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop thread, in order with the coroutines submitted."""
        self.loop.call_soon_threadsafe(fn, *args, context=contextvars.Context())

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the background tasks; True when none is left."""
        with self._pending_lock:
            pending = list(self._pending)
        if not self.started or self.in_loop_thread():
            return not pending
        if pending:
            concurrent.futures.wait(pending, timeout)
        with self._pending_lock:
            return not self._pending

    def stop(self, timeout: float = EXIT_BUDGET) -> None:
        """Finish background tasks (within ``timeout``), then stop the loop and its thread."""
        if not self.started:
            return
        self.drain(timeout)
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None
        loop.call_soon_threadsafe(loop.stop)
        if not self.in_loop_thread():
            thread.join(timeout)

    # -- process life cycle ----------------------------------------------------

    def _after_fork(self) -> None:
        # The child has this object but not the thread: forget the loop (never touch
        # it) and a lock another thread may have held at the fork.
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._loop = None
        self._thread = None
        self._pid = 0
        self._pending = set()

    def _at_exit(self) -> None:
        if not self.started:
            return
        try:
            self.drain(EXIT_BUDGET)
            if self is _default:
                _close_shared_caches(self)
        except Exception:
            log.exception("semcache: error while shutting the loop thread down")


def _after_fork_in_child() -> None:
    global _caches_lock
    for instance in list(_instances):
        instance._after_fork()
    # The parent's caches belong to the parent's loop: the child builds its own.
    _caches_lock = threading.Lock()
    _caches.clear()
    _owned.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_default = LoopThread()


def loop_thread() -> LoopThread:
    """The process's shared loop thread."""
    return _default


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """:meth:`LoopThread.submit` on the shared loop thread."""
    return _default.submit(coro)


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """:meth:`LoopThread.run` on the shared loop thread."""
    return _default.run(coro, timeout)


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """:meth:`LoopThread.spawn` on the shared loop thread."""
    _default.spawn(coro)


# -- caches shared by the adapters of a process ------------------------------------

_caches: dict[Settings, SemanticCache] = {}
_caches_lock = threading.Lock()
_owned: list[SemanticCache] = []


def shared_cache(settings: Settings) -> SemanticCache:
    """The process's :class:`~semcache.SemanticCache` for ``settings``, built on first use.

    Every sync adapter configured with the same settings gets the same cache (and so
    the same in-memory stores); it runs on the shared loop thread, is rebuilt in a
    forked child, and is closed at exit (persisting the embedded stores when a
    ``data_path`` is set).
    """
    cache = _caches.get(settings)
    if cache is not None:
        return cache
    with _caches_lock:
        cache = _caches.get(settings)
        if cache is None:
            from semcache.cache import SemanticCache

            cache = _caches[settings] = SemanticCache(settings)
        return cache


def close_at_exit(cache: SemanticCache) -> None:
    """Close ``cache`` on the shared loop thread when the process exits (as shared caches are)."""
    with _caches_lock:
        if all(owned is not cache for owned in _owned):
            _owned.append(cache)


def _close_shared_caches(thread: LoopThread) -> None:
    with _caches_lock:
        caches = [*_caches.values(), *_owned]
        _caches.clear()
        _owned.clear()
    for cache in caches:
        try:
            thread.run(cache.close(), EXIT_BUDGET)
        except Exception:
            log.exception("semcache: could not close the cache at exit")
