"""What a component call's time budget measures: the call, not the wait before it.

A component's breaker must count the component's own errors and its own slowness. Time a
call spends queued behind the process's own backlog (waiting for a pooled connection, for
the model while other batches run, for a busy event loop) says nothing about the
component, and counting it would switch the cache off exactly when traffic peaks.

The cache gives each component call a :class:`CallBudget`. A component that may wait for
capacity of its own says so with :func:`waiting_for_capacity`: while it waits, only the
caller's whole budget bounds it; once it has its connection (or its model slot), the
component's own budget starts. A call that never got going when its time ran out leaves
its breaker unchanged, and so does one slowed by event-loop lag (:class:`LoopLagMonitor`).

Store and embedder authors::

    from semcache.budget import waiting_for_capacity

    with waiting_for_capacity():
        connection = await pool.acquire()
    ...  # the component's own budget runs from here
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = [
    "CallBudget",
    "LoopLagMonitor",
    "current_call",
    "deadline",
    "time_left",
    "waiting_for_capacity",
]

deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "semcache_deadline", default=None
)
"""When the lookup or store in progress must be done (``time.monotonic()``); set by the
cache around each one, read by anything inside that waits (components, a judge)."""


def time_left() -> float | None:
    """Seconds left of the lookup or store in progress (``None`` outside one)."""
    end = deadline.get()
    return None if end is None else end - time.monotonic()


_current: contextvars.ContextVar[CallBudget | None] = contextvars.ContextVar(
    "semcache_call_budget", default=None
)


class CallBudget:
    """One component call: ``budget`` seconds of its own, within the caller's ``deadline``.

    The call counts as started when it is made; :meth:`queued` and :meth:`started` move
    the timeout (``asyncio.Timeout``) when the component waits for capacity first.
    """

    def __init__(self, budget: float, deadline: float | None, timeout: asyncio.Timeout) -> None:
        self.budget = budget
        self.deadline = deadline
        """The caller's whole budget ends here (``time.monotonic()``); None: no such end."""
        self._timeout = timeout
        self.started_at: float | None = time.monotonic()
        self.waits = 0

    def queued(self) -> None:
        """The component waits for capacity of ours: only the caller's deadline applies."""
        self.started_at = None
        self.waits += 1
        self._reschedule(None)

    def started(self) -> None:
        """The component's own work begins: its budget runs from now."""
        self.started_at = time.monotonic()
        self._reschedule(self.budget)

    @property
    def cut_by_caller(self) -> bool:
        """Does the caller's deadline come before the component's own budget ends?"""
        if self.deadline is None:
            return False
        own_end = (self.started_at or time.monotonic()) + self.budget
        return self.deadline < own_end

    def _reschedule(self, budget: float | None) -> None:
        if self._timeout.expired():
            return  # its verdict is in; a late batch start changes nothing
        now = time.monotonic()
        ends = [
            t for t in (self.deadline, None if budget is None else now + budget) if t is not None
        ]
        if not ends:
            self._timeout.reschedule(None)
            return
        loop = asyncio.get_running_loop()
        self._timeout.reschedule(loop.time() + max(0.0, min(ends) - now))


def current_call() -> CallBudget | None:
    """The component call in progress in this task, if the cache made one."""
    return _current.get()


@contextlib.contextmanager
def waiting_for_capacity(call: CallBudget | None = None) -> Iterator[None]:
    """Wrap the wait for a connection, a slot or a turn: it is not the component's time.

    ``call`` defaults to :func:`current_call`; outside a cache call this does nothing.
    """
    call = call if call is not None else _current.get()
    if call is None:
        yield
        return
    call.queued()
    try:
        yield
    finally:
        call.started()


@contextlib.contextmanager
def bind_call(call: CallBudget) -> Iterator[CallBudget]:
    """Make ``call`` the current component call for the code inside (the cache's guard)."""
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


class LoopLagMonitor:
    """How late the event loop runs its callbacks, sampled every ``interval`` seconds
    while component calls are in flight (an idle process is never woken for it).

    A sleeping task notes how much later than asked it wakes. :meth:`worst_since` is the
    largest lag seen since a moment, the wake that is overdue now included, so a call
    that timed out while the loop was far behind can be told from a slow component.
    """

    def __init__(self, interval: float = 0.025, keep: float = 30.0) -> None:
        self.interval = interval
        self._samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=max(1, int(keep / interval))
        )
        self._due: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._enabled = False
        self._active = 0

    @property
    def sampling(self) -> bool:
        """Is the sampling task alive now?"""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Allow sampling (it runs only while :meth:`watching` calls are in flight)."""
        self._enabled = True

    async def stop(self) -> None:
        self._enabled = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        self._due = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Sample the loop while the code inside runs (calls may nest and overlap)."""
        self._active += 1
        if self._enabled and not self.sampling:
            # Due from now: a loop that blocks before the task first runs still shows.
            self._due = time.monotonic() + self.interval
            self._task = asyncio.get_running_loop().create_task(self._watch())
        try:
            yield
        finally:
            self._active -= 1

    async def _watch(self) -> None:
        try:
            while self._due is not None:
                await asyncio.sleep(max(0.0, self._due - time.monotonic()))
                now = time.monotonic()
                self._samples.append((now, max(0.0, now - self._due)))
                if not self._active:
                    break
                self._due = now + self.interval
        finally:
            self._due = None

    def worst_since(self, since: float) -> float:
        """The largest lag (seconds) of the wakes due since ``since``, the one overdue now
        included; 0.0 when nothing was sampled."""
        now = time.monotonic()
        worst = max(0.0, now - self._due) if self._due is not None else 0.0
        for at, lag in reversed(self._samples):
            if at < since:  # over before the call began
                break
            worst = max(worst, lag)
        return worst
