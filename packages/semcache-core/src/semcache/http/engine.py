"""The cache calls an HTTP adapter makes, with the failure rules applied once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from semcache.http.breaker import UpstreamBreaker
from semcache.http.policy import CachePlan, HttpCachePolicy
from semcache.http.responses import ResponseRecorder, StoredResponse

if TYPE_CHECKING:
    from semcache.cache import SemanticCache
    from semcache.settings import Settings

__all__ = ["CachedAnswer", "FlightTicket", "HttpCacheEngine"]

log = logging.getLogger("semcache")


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored response found for a request, and how similar its question was."""

    response: StoredResponse
    similarity: float
    entry_id: str


class FlightTicket:
    """A place in the single flight of one key; :meth:`release` lets waiting followers in.

    Release is idempotent and may happen in another task than the one that joined
    (an adapter releases as soon as the answer is stored, not when the app returns).
    """

    def __init__(
        self, leader: bool, exit_cm: contextlib.AbstractAsyncContextManager[Any] | None
    ) -> None:
        self.leader = leader
        self._cm = exit_cm

    async def release(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None:
            await cm.__aexit__(None, None, None)


class HttpCacheEngine:
    """Lookup, store and single flight for HTTP answers, never raising for a cache problem.

    ``policy`` holds the request rules; ``breaker`` the upstream 429 breaker, built
    from ``settings`` (default: the cache's) when not given.
    """

    def __init__(
        self,
        cache: SemanticCache,
        policy: HttpCachePolicy | None = None,
        *,
        settings: Settings | None = None,
        breaker: UpstreamBreaker | None = None,
    ) -> None:
        s = settings if settings is not None else (policy.settings if policy else cache.settings)
        self.cache = cache
        self.policy = policy if policy is not None else HttpCachePolicy(s)
        self.breaker = breaker or UpstreamBreaker(s.upstream_429_threshold, s.upstream_429_cooldown)

    def recorder(self) -> ResponseRecorder:
        return ResponseRecorder(self.policy.max_response_bytes)

    async def lookup(self, plan: CachePlan) -> CachedAnswer | None:
        """The stored answer this request may be given, or ``None``."""
        try:
            hit = await self.cache.lookup(plan.query, partition=plan.partition, **_context(plan))
            if hit is None:
                return None
            stored = StoredResponse.decode(hit.payload)
        except Exception:
            log.exception("semcache: unusable cache entry; treating as a miss")
            return None
        if not plan.can_replay(stored):
            return None
        return CachedAnswer(stored, hit.similarity, hit.entry_id)

    async def store(self, plan: CachePlan, response: StoredResponse) -> str | None:
        """Store ``response`` as the answer to ``plan``'s request; its entry id or ``None``."""
        if not plan.store:
            return None
        metadata = dict(plan.metadata)
        metadata["status"] = response.status
        try:
            return await self.cache.store(
                plan.query,
                response.encode(),
                partition=plan.partition,
                ttl=plan.ttl,
                metadata=metadata,
                **_context(plan),
            )
        except Exception:
            log.exception("semcache: store failed; response not cached")
            return None

    async def join_flight(self, plan: CachePlan) -> FlightTicket:
        """Join the single flight of ``plan``'s key; followers return once the leader released."""
        try:
            cm = self.cache.single_flight(plan.flight_key)
            flight = await cm.__aenter__()
        except Exception:
            log.exception("semcache: single flight unavailable; calling the app directly")
            return FlightTicket(True, None)
        if not flight.leader:
            await cm.__aexit__(None, None, None)
            return FlightTicket(False, None)
        return FlightTicket(True, cm)

    @contextlib.asynccontextmanager
    async def flight(self, plan: CachePlan) -> AsyncIterator[FlightTicket]:
        """:meth:`join_flight` as a context manager that always releases."""
        ticket = await self.join_flight(plan)
        try:
            yield ticket
        finally:
            await ticket.release()


def _context(plan: CachePlan) -> dict[str, Any]:
    # Only when there is one, so caches without the parameter keep working.
    return {"context": plan.context} if plan.context else {}
