"""`BaseEmbedder` for users who prefer subclassing, and the micro-batching wrapper."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence

import numpy as np

from semcache.budget import CallBudget, current_call
from semcache.errors import EmbeddingStalledError
from semcache.protocols import Embedder
from semcache.types import Matrix

__all__ = [
    "BaseEmbedder",
    "MicroBatchingEmbedder",
    "choose_batch_size",
    "embedder_fits",
    "normalize_rows",
    "resolve_dimension",
]


def embedder_fits(embedder: object, text: str) -> bool:
    """Does ``embedder`` read all of ``text``, within its input window?

    An embedder that knows its window defines ``fits(text) -> bool`` (optional, like
    ``probe_dimension``); one that does not is taken to read everything.
    """
    fits = getattr(embedder, "fits", None)
    return True if fits is None else bool(fits(text))


def normalize_rows(matrix: Matrix) -> Matrix:
    """L2-normalise each row (zero rows stay zero), as float32."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalized: Matrix = (m / norms).astype(np.float32, copy=False)
    return normalized


async def resolve_dimension(embedder: Embedder) -> int:
    """The embedder's vector size, learning it first where the embedder must ask.

    Awaits the embedder's ``probe_dimension()`` when it has one (an HTTP embedder for a
    model of unknown size makes one API call there, once), else reads ``dimension``.
    """
    probe: Callable[[], Awaitable[int]] | None = getattr(embedder, "probe_dimension", None)
    if probe is not None:
        return int(await probe())
    return int(embedder.dimension)


class BaseEmbedder(ABC):
    """Subclass and implement :meth:`embed`; set ``model_id`` and ``dimension``.

    >>> class MyEmbedder(BaseEmbedder):
    ...     model_id = "my-model-v1"
    ...     dimension = 3
    ...     async def embed(self, texts):
    ...         return np.ones((len(texts), 3), dtype=np.float32)
    """

    model_id: str
    dimension: int

    @abstractmethod
    async def embed(self, texts: Sequence[str]) -> Matrix:
        """One row per text."""

    async def probe_dimension(self) -> int:
        """The vector size; a subclass that must ask its model or API overrides this."""
        return self.dimension

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources; nothing by default."""

    async def __aenter__(self) -> BaseEmbedder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def choose_batch_size(seconds_per_text: Mapping[int, float], *, tolerance: float = 0.1) -> int:
    """The batch size to send a model, from its measured seconds per text at a few sizes.

    The largest size whose cost per text is within ``tolerance`` of the cheapest: as
    big as batching helps (or costs nothing), and no bigger, since a bigger batch holds
    each of its callers until the whole batch is done. On some CPUs one text alone is
    the cheapest per text, on others (and on GPUs) batches of 16 or more are.
    """
    if not seconds_per_text:
        raise ValueError("no measurements")
    best = min(seconds_per_text.values())
    return max(size for size, cost in seconds_per_text.items() if cost <= best * (1 + tolerance))


class _Pending:
    __slots__ = ("call", "future", "texts")

    def __init__(
        self, texts: Sequence[str], future: asyncio.Future[Matrix], call: CallBudget | None
    ) -> None:
        self.texts = texts
        self.future = future
        self.call = call
        """The caller's budget: its own time starts when its batch goes to the model."""


class MicroBatchingEmbedder(BaseEmbedder):
    """Feeds concurrent ``embed`` calls to the wrapped embedder as batches.

    A call that arrives while the model has a free slot goes straight to the model: a
    lone request never waits for company. The model may run several calls at once: as
    many as the wrapped embedder's ``max_concurrency`` (1 when it does not say; a local
    model on CPU runs one per core). Calls that arrive while every slot is busy queue
    up; when a slot frees they are sent together, after waiting at most ``window_ms``
    for stragglers, up to :attr:`batch_limit` texts: ``max_batch``, or less where the
    wrapped embedder measured that bigger batches cost more per text
    (``preferred_batch_size``, see :func:`choose_batch_size`). A backlog is shared out
    evenly between the free slots rather than all sent to the first one.

    Time in the queue is not the model's: a caller's budget (:mod:`semcache.budget`)
    starts when its batch goes to the model. :meth:`expected_latency` estimates when a new
    text's vector would be ready, from the measured seconds per text, for load shedding.
    """

    _EWMA = 0.2
    """Weight of the newest model call in the seconds-per-text average."""

    def __init__(
        self,
        inner: Embedder,
        *,
        max_batch: int = 32,
        window_ms: float = 2.0,
        stall_after: float | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.inner = inner
        self.stall_after = stall_after
        """Seconds after which a running model call counts as stalled. When every slot
        holds a stalled call, the queued calls fail with
        :class:`~semcache.errors.EmbeddingStalledError`, and so do new ones until one
        returns (their wait would be the stuck model's, not a backlog's)."""
        self.max_batch = max_batch
        self.window = window_ms / 1000.0
        if concurrency is None:
            concurrency = int(getattr(inner, "max_concurrency", 1) or 1)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        """Model calls run at once (the wrapped embedder's ``max_concurrency`` by default)."""
        preferred = getattr(inner, "preferred_batch_size", None)
        self.batch_limit = max(1, min(max_batch, int(preferred) if preferred else max_batch))
        """Most texts in one model call: ``max_batch``, capped by the wrapped embedder's
        measured ``preferred_batch_size`` when it has one."""
        self._queue: list[_Pending] = []
        self._active = 0
        self._stalled_runs = 0
        self.model_calls = 0
        """How many times the wrapped model was called (for tests and metrics)."""
        self.seconds_per_text = 0.0
        """Moving average of one model call's time per text (0.0 until the first call)."""
        self._running_texts = 0
        self.most_concurrent = 0
        """The most model calls seen running at once (for tests and metrics)."""
        self._running_calls = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def _stalled(self) -> bool:
        return self._stalled_runs >= self.concurrency

    @property
    def model_id(self) -> str:  # type: ignore[override]
        return self.inner.model_id

    @property
    def dimension(self) -> int:  # type: ignore[override]
        return self.inner.dimension

    async def probe_dimension(self) -> int:
        return await resolve_dimension(self.inner)

    def fits(self, text: str) -> bool:
        """Does the wrapped model read all of ``text``? (True when it does not say.)"""
        return embedder_fits(self.inner, text)

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._stalled:
            raise EmbeddingStalledError("the model's current call is past its budget")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Matrix] = loop.create_future()
        call = current_call()
        if call is not None:
            call.queued()
        self._queue.append(_Pending(list(texts), future, call))
        if self._active < self.concurrency:
            self._active += 1
            task = loop.create_task(self._drain(first=True))
            self._tasks.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, *, first: bool) -> None:
        # One slot: runs batches one after another while there is work queued.
        try:
            while self._queue:
                if not first and self.window > 0 and self._queued_texts() < self.batch_limit:
                    await asyncio.sleep(self.window)
                    if not self._queue:
                        break
                first = False
                batch = self._take_batch()
                await self._run(batch)
        finally:
            self._active -= 1

    def _queued_texts(self) -> int:
        return sum(len(p.texts) for p in self._queue)

    def expected_latency(self) -> float:
        """Seconds until the vector of a text sent now is ready: the texts queued and
        running ahead of it, shared between the slots, and itself, at the measured
        seconds per text."""
        ahead = self._queued_texts() + self._running_texts
        return (ahead / self.concurrency + 1) * self.seconds_per_text

    def _take_batch(self) -> list[_Pending]:
        # With a backlog and several free slots, each takes its share: not the whole
        # queue for the first slot while the others idle.
        free = max(1, self.concurrency - self._running_calls)
        share = -(-self._queued_texts() // free)
        limit = max(1, min(self.batch_limit, share))
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= limit):
            pending = self._queue.pop(0)
            batch.append(pending)
            size += len(pending.texts)
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]
        if not live:
            return
        texts = [t for p in live for t in p.texts]
        self.model_calls += 1
        for p in live:
            if p.call is not None:
                p.call.started()
        self._running_texts += len(texts)
        self._running_calls += 1
        self.most_concurrent = max(self.most_concurrent, self._running_calls)
        stalled = [False]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        watchdog = (
            loop.call_later(self.stall_after, self._stall, stalled) if self.stall_after else None
        )
        try:
            matrix = await self.inner.embed(texts)
        except BaseException as exc:  # every waiter gets the failure, none hangs
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._running_texts -= len(texts)
            self._running_calls -= 1
            if stalled[0]:
                self._stalled_runs -= 1
            if watchdog is not None:
                watchdog.cancel()
        per_text = (time.perf_counter() - started) / len(texts)
        average = self.seconds_per_text
        self.seconds_per_text = (
            per_text if average == 0.0 else average + self._EWMA * (per_text - average)
        )
        start = 0
        for p in live:
            end = start + len(p.texts)
            if not p.future.done():
                p.future.set_result(matrix[start:end])
            start = end

    def _stall(self, flag: list[bool]) -> None:
        flag[0] = True
        self._stalled_runs += 1
        if not self._stalled:
            return  # another slot still serves the queue
        queued, self._queue = self._queue, []
        for pending in queued:
            if not pending.future.done():
                pending.future.set_exception(
                    EmbeddingStalledError("queued behind a model call that is past its budget")
                )

    async def aclose(self) -> None:
        await self.inner.aclose()
