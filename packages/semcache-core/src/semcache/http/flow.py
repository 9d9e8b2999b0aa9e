"""The two outcomes of :meth:`HttpCacheEngine.begin <semcache.http.HttpCacheEngine.begin>`.

- :class:`Replay`: a response the adapter sends as it is (a stored answer, or the
  upstream breaker's 503);
- :class:`Forward`: the app (or the upstream) answers; the adapter passes that answer
  on and hands each part of it here, and the engine stores it when it may.

A :class:`Forward` may be driven from any thread or event loop: its methods never
block and never raise, and the work they cause (the store, the single-flight release)
runs on the engine's own loop. :class:`RecordedBody` and :func:`recorded_async` wrap a
framework's response body so that each chunk reaches the :class:`Forward` as it goes
out.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from semcache.http.responses import ResponseRecorder, StoredResponse

if TYPE_CHECKING:
    from semcache.audit.auditor import AuditJob
    from semcache.http.engine import FlightTicket, HttpCacheEngine
    from semcache.http.policy import CachePlan

__all__ = ["Forward", "RecordedBody", "Replay", "recorded_async"]

log = logging.getLogger("semcache")


@dataclass(frozen=True, slots=True)
class Replay:
    """A response the adapter sends as it is: a stored answer, or the breaker's 503.

    ``headers`` are complete (``X-Semcache`` included, ``Content-Length`` unless
    ``streamed``); ``streamed`` answers are sent chunk by chunk. ``audit``: this hit was
    sampled for an audit; an adapter that can call the upstream again hands it to
    :meth:`HttpCacheEngine.audit <semcache.http.HttpCacheEngine.audit>` once the answer
    is sent (others ignore it).
    """

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    streamed: bool = False
    audit: AuditJob | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Forward:
    """The app answers this request: pass its answer on and hand each part here.

    :meth:`start` with the status and headers, :meth:`add` per body chunk, then
    :meth:`finish` once all of it was passed on (a cacheable answer is then stored, in
    the background) or :meth:`abort` when it was not; :meth:`discard` keeps passing the
    answer on but stores nothing (the client left, trailers followed...). Finishing or
    aborting lets the requests waiting on this one's single flight in; so does
    dropping the object unfinished.
    """

    def __init__(
        self, engine: HttpCacheEngine | None, plan: CachePlan, ticket: FlightTicket | None
    ) -> None:
        self.plan = plan
        self._engine = engine
        self._ticket = ticket
        self._recorder: ResponseRecorder | None = (
            engine.recorder() if engine is not None and plan.store else None
        )
        self._done = False
        self._settling: asyncio.Future[None] | None = None
        # The upstream's time to the whole answer, and the request's context (its span
        # and record) for the store that follows.
        self._started = time.perf_counter()
        self._seconds: float | None = None
        self._context = contextvars.copy_context()
        self._release: weakref.finalize[Any, Any] | None = None
        if engine is not None and ticket is not None:
            self._release = weakref.finalize(self, engine.release_later, ticket)
            self._release.atexit = False

    @property
    def leader(self) -> bool:
        """Do other requests wait for this answer?"""
        return self._ticket is not None

    def start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """The app's status and headers (names in any case)."""
        try:
            lowered = [(k.lower(), v) for k, v in headers]
        except Exception:
            log.exception("semcache: unreadable response headers; the response is not stored")
            lowered, self._recorder = [], None
        if self._engine is not None:
            retry_after = next((v for k, v in lowered if k == "retry-after"), None)
            self._engine.record_upstream(self.plan.requester, status, retry_after)
        if self._recorder is None:
            return
        try:
            self._recorder.start(int(status), lowered)
        except Exception:
            log.exception("semcache: could not record the response; it will not be stored")
            self._recorder = None

    def add(self, chunk: bytes) -> None:
        if self._recorder is not None:
            self._recorder.add(chunk)

    def discard(self, reason: str) -> None:
        """Keep passing the answer on, but do not store it."""
        if self._recorder is not None:
            self._recorder.abort(reason)

    def finish(self) -> None:
        """The whole answer was passed on: store it if it may be, then release the flight."""
        if self._done:
            return
        self._done = True
        self._seconds = time.perf_counter() - self._started
        stored: StoredResponse | None = None
        if self._recorder is not None:
            try:
                stored = self._recorder.finish()
            except Exception:
                log.exception("semcache: could not record the response; it will not be stored")
            else:
                if stored is None:
                    log.debug("semcache: response not stored: %s", self._recorder.reason)
        self._recorder = None
        self._settle(stored)

    def abort(self) -> None:
        """The answer was not passed on completely: store nothing, release the flight."""
        if self._done:
            return
        self._done = True
        self._recorder = None
        self._settle(None)

    async def settled(self) -> None:
        """Wait (on the engine's loop) until the store and the release are done.

        Shielded: a request cancelled after its answer was sent still keeps its write.
        """
        if self._settling is not None:
            await asyncio.shield(self._settling)

    def _settle(self, stored: StoredResponse | None) -> None:
        ticket, self._ticket = self._ticket, None
        if self._release is not None:
            self._release.detach()
        if self._engine is None or (stored is None and ticket is None):
            return
        self._settling = self._engine.spawn(
            self._engine.settle(self.plan, stored, ticket, self._seconds), self._context
        )


class RecordedBody:
    """A sync response body passed on chunk by chunk while a copy goes to ``forward``.

    A class rather than a generator: ``close()`` must settle the flight even when the
    body was never iterated. The source is iterated lazily (WSGI apps may do their
    work on the first ``next``).
    """

    def __init__(self, source: Iterable[bytes], forward: Forward) -> None:
        self._source = source
        self._iterator: Iterator[bytes] | None = None
        self._forward = forward

    def __iter__(self) -> RecordedBody:
        return self

    def __next__(self) -> bytes:
        try:
            if self._iterator is None:
                self._iterator = iter(self._source)
            chunk = next(self._iterator)
        except StopIteration:
            # The server asks for more only after sending the last chunk: complete.
            self._forward.finish()
            raise
        except BaseException:
            self._forward.abort()
            raise
        self._forward.add(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        finally:
            self._forward.abort()  # nothing when the body already finished


async def recorded_async(source: AsyncIterator[bytes], forward: Forward) -> AsyncIterator[bytes]:
    """An async response body passed on chunk by chunk while a copy goes to ``forward``."""
    try:
        async for chunk in source:
            forward.add(chunk)
            yield chunk
    except BaseException:
        forward.abort()
        raise
    else:
        forward.finish()
    finally:
        forward.abort()  # nothing when the body already finished
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
