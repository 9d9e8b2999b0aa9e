"""The HTTP cache flow, written once: every adapter awaits :meth:`HttpCacheEngine.begin`.

One request: the adapter plans it (:meth:`HttpCachePolicy.plan`), then
:meth:`~HttpCacheEngine.begin` decides, in this order: a stored answer
(:class:`~semcache.http.flow.Replay`); the 503 of the requester's upstream breaker
when it is open; a
refresh goes to the app uncollapsed; otherwise the single flight of the request's
key: its leader, or a follower whose leader's answer was not stored, gets a
:class:`~semcache.http.flow.Forward`, a follower whose leader's answer was stored gets
that answer. The adapter sends a Replay as it is and passes the app's answer through
a Forward, which stores it. Adapters only translate their framework's request and
response; sync frameworks reach this engine through :mod:`semcache.http.bridge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from semcache.audit.auditor import AuditJob, Auditor, Shadow
from semcache.http.breaker import UpstreamBreakers
from semcache.http.flow import Forward, Replay
from semcache.http.partition import ANSWER_HEADERS
from semcache.http.policy import CachePlan, HttpCachePolicy
from semcache.http.responses import ResponseRecorder, StoredResponse
from semcache.http.usage import Usage, usage_of
from semcache.telemetry import otel
from semcache.telemetry.prices import load_prices
from semcache.telemetry.record import current as current_record
from semcache.telemetry.savings import Saving, SavingsLedger
from semcache.telemetry.settings import TelemetrySettings

if TYPE_CHECKING:
    from semcache.cache import SemanticCache
    from semcache.settings import Settings

__all__ = ["CachedAnswer", "FlightTicket", "Forward", "HttpCacheEngine", "Replay"]

log = logging.getLogger("semcache")


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored response found for a request, and how similar its question was."""

    response: StoredResponse
    similarity: float
    entry_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The entry's metadata: the usage and upstream seconds of the answer (what a hit saves)."""
    source: str = "semantic"
    verdict: str | None = None
    """What let a semantic hit through (:attr:`semcache.Hit.verdict`)."""
    version: str | None = None
    """Which answer of the entry this is (:attr:`semcache.Hit.version`)."""


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
    """The HTTP decision flow: lookup, breaker, single flight, store; never raising for
    a cache problem.

    ``policy`` holds the request rules; ``breakers`` the upstream 429 breakers, one
    per requester, built from ``settings`` (default: the cache's) when not given. The engine belongs to the
    event loop it is first used on; :class:`~semcache.http.flow.Forward` objects it
    hands out may be driven from other threads.

    ``savings`` counts what hits saved (tokens, upstream seconds, dollars at the
    ``prices`` table) per model, route and tenant; a stored answer keeps the usage its
    upstream reported and the seconds it took, so a later hit knows what it saved.
    """

    def __init__(
        self,
        cache: SemanticCache,
        policy: HttpCachePolicy | None = None,
        *,
        settings: Settings | None = None,
        breakers: UpstreamBreakers | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        s = settings if settings is not None else (policy.settings if policy else cache.settings)
        self.cache = cache
        self.policy = policy if policy is not None else HttpCachePolicy(s)
        self.breakers = breakers or UpstreamBreakers(
            s.upstream_429_threshold, s.upstream_429_cooldown
        )
        self.settings = s
        telemetry = s.group(TelemetrySettings)
        self.prices = load_prices(telemetry.prices)
        self.savings = SavingsLedger(telemetry.savings_max_labels)
        self.auditor = Auditor(cache, s, max_labels=telemetry.savings_max_labels)
        """Audits of semantic hits (off unless ``audit_rate`` is set); its ``comparer``
        may be replaced (a judge)."""
        self.shadows = False
        """Can the adapter send a request to the upstream again (:meth:`audit`)? Hits
        are sampled for audits only then."""
        self._loop = loop
        # Strong references: a store outlives the request that scheduled it.
        self._pending: set[asyncio.Task[None]] = set()

    # -- one decision per request --------------------------------------------------

    async def begin(self, plan: CachePlan) -> Replay | Forward:
        """A stored answer to send as it is, or a :class:`Forward` for the app's answer."""
        self._loop = asyncio.get_running_loop()
        try:
            return await self._begin(plan)
        except Exception:
            log.exception("semcache: cache unavailable; calling the app directly")
            return Forward(self, plan, None)

    async def _begin(self, plan: CachePlan) -> Replay | Forward:
        if plan.lookup:
            replay = await self._replay(plan)
            if replay is not None:
                return replay
        if self.breakers.is_open(plan.requester):
            return self.rejection(plan.requester)
        if not plan.lookup or not plan.store:
            # A refresh is the client's explicit wish: never collapsed. An answer that
            # will not be stored (X-Semcache-TTL: 0) would only keep the others waiting.
            return Forward(self, plan, None)
        ticket = await self.join_flight(plan)
        if ticket.leader:
            return Forward(self, plan, ticket)
        replay = await self._replay(plan)
        if replay is not None:
            return replay
        if self.breakers.is_open(plan.requester):
            return self.rejection(plan.requester)
        return Forward(self, plan, None)  # the leader's answer was not stored: ask the app

    async def _replay(self, plan: CachePlan) -> Replay | None:
        answer = await self.lookup(plan)
        if answer is None:
            return None
        stored = answer.response
        try:
            headers = stored.replay_headers(
                similarity=answer.similarity, entry_id=answer.entry_id, version=answer.version
            )
            chunks = stored.chunks()
        except Exception:
            log.exception("semcache: unusable cache entry; treating as a miss")
            return None
        saving: Saving | None = None
        try:
            saving = self._count_saving(plan, answer)
        except Exception:
            log.exception("semcache: could not count what a hit saved")
        job = self._audit_job(plan, answer, saving) if answer.source == "semantic" else None
        return Replay(stored.status, headers, chunks, stored.streamed, job)

    def _audit_job(
        self, plan: CachePlan, answer: CachedAnswer, saving: Saving | None
    ) -> AuditJob | None:
        try:
            model = plan.metadata.get("model")
            return self.auditor.consider(
                entry_id=answer.entry_id,
                similarity=answer.similarity,
                verdict=answer.verdict,
                route=str(plan.metadata.get("path", "")),
                tenant=plan.tenant,
                model=model if isinstance(model, str) else None,
                question=plan.query,
                cached=answer.response,
                usd=saving.usd if saving is not None else None,
                sample=self.shadows,
                version=answer.version,
            )
        except Exception:
            log.exception("semcache: could not sample a hit for an audit")
            return None

    def audit(self, job: AuditJob, shadow: Shadow) -> None:
        """Run ``job`` in the background (call it once the client has its answer):
        ``shadow`` asks the upstream again. Outside the request's context, so the shadow
        call counts in no request record or span of the client's."""

        async def run() -> None:
            await self.auditor.run(job, shadow)

        self.spawn(run(), contextvars.Context())

    def _count_saving(self, plan: CachePlan, answer: CachedAnswer) -> Saving:
        """What this hit saved, counted in :attr:`savings` and told to the request's record."""
        meta = answer.metadata
        usage = Usage.from_metadata(meta.get("usage"))
        if usage is None and "usage" not in meta:  # stored before usage was kept
            usage = usage_of(answer.response)
        seconds = meta.get("upstream_s")
        request_model = plan.metadata.get("model")
        model = request_model if isinstance(request_model, str) and request_model else None
        answered_by = usage.model if usage is not None else None
        input_tokens = usage.input_tokens if usage is not None else 0
        output_tokens = usage.output_tokens if usage is not None else 0
        saving = Saving(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            # Priced by the model that answered (a dated version), else the one asked for.
            usd=None
            if usage is None
            else self.prices.cost(answered_by or model, input_tokens, output_tokens),
        )
        model = model or answered_by
        self.savings.record(
            saving, model=model, route=str(plan.metadata.get("path", "")), tenant=plan.tenant
        )
        record = current_record()
        if record is not None:
            record.saved = saving
            record.similarity = answer.similarity
            record.source = answer.source
            record.entry = answer.entry_id
            record.rule = None  # a candidate turned down before the one served
        return saving

    def rejection(self, requester: str) -> Replay:
        """The answer to ``requester``'s miss while its upstream breaker is open."""
        status, headers, body = self.breakers.rejection(requester)
        return Replay(status, headers, [body])

    @property
    def begin_budget(self) -> float:
        """Seconds :meth:`begin` may take: two lookups and a follower's wait for its leader."""
        lookup = self.cache.settings.lookup_timeout_ms / 1000
        return 2 * lookup + self.cache.settings.single_flight_timeout + 1.0

    # -- what a Forward causes, on the engine's loop ----------------------------------

    def record_upstream(self, requester: str, status: int, retry_after: str | None = None) -> None:
        """Note the status (and ``Retry-After``) of the app's answer to a miss of
        ``requester``: its 429 breaker. Bypassed requests are not counted.

        From another thread it is handed to the engine's loop, so it is ordered with
        the lookups that read the breakers.
        """
        try:
            if self._on_own_loop():
                self.breakers.record(requester, int(status), retry_after)
            else:
                self._require_loop().call_soon_threadsafe(
                    self.breakers.record, requester, int(status), retry_after
                )
        except Exception:
            log.exception("semcache: 429 breaker failed")

    async def settle(
        self,
        plan: CachePlan,
        stored: StoredResponse | None,
        ticket: FlightTicket | None,
        upstream_seconds: float | None = None,
    ) -> None:
        """Store an answer (when there is one), then let the waiting requests in."""
        try:
            if stored is not None:
                await self.store(plan, stored, upstream_seconds=upstream_seconds)
        finally:
            if ticket is not None:
                await ticket.release()

    def spawn(
        self, coro: Coroutine[Any, Any, None], context: contextvars.Context | None = None
    ) -> asyncio.Future[None] | None:
        """Run ``coro`` on the engine's loop in the background; its task when called there.

        ``context``: the context variables it runs with (the request's, so its span and
        record are the parents of what the store does); default a copy of the caller's.
        """
        try:
            if self._on_own_loop():
                task = asyncio.get_running_loop().create_task(coro, context=context)
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
                return task
            self._require_loop().call_soon_threadsafe(self.spawn, coro, context)
        except Exception:
            coro.close()
            log.exception("semcache: could not schedule a store; the response is not cached")
        return None

    def release_later(self, ticket: FlightTicket) -> None:
        """Release a single flight from anywhere (a :class:`Forward` dropped unfinished)."""
        try:
            self.spawn(ticket.release())
        except Exception:
            log.debug("semcache: could not release a single flight", exc_info=True)

    async def drain(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the stores in flight (at shutdown)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=seconds)

    def _on_own_loop(self) -> bool:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._loop is None:
            self._loop = running
        return running is self._loop

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the engine has not run on an event loop yet")
        return self._loop

    # -- the cache calls, with the failure rules ----------------------------------------

    def recorder(self) -> ResponseRecorder:
        # A Vary on a header whose value is in every partition is already honoured.
        return ResponseRecorder(self.policy.max_response_bytes, vary_partitioned=ANSWER_HEADERS)

    async def lookup(self, plan: CachePlan) -> CachedAnswer | None:
        """The stored answer this request may be given, or ``None``."""
        try:
            hit = await self.cache.lookup(
                plan.query, partition=plan.partition, **_lookup_options(plan)
            )
            if hit is None:
                return None
            stored = StoredResponse.decode(hit.payload)
        except Exception:
            log.exception("semcache: unusable cache entry; treating as a miss")
            return None
        if not plan.can_replay(stored):
            return None
        return CachedAnswer(
            stored, hit.similarity, hit.entry_id, hit.metadata, hit.source, hit.verdict, hit.version
        )

    async def store(
        self, plan: CachePlan, response: StoredResponse, *, upstream_seconds: float | None = None
    ) -> str | None:
        """Store ``response`` as the answer to ``plan``'s request; its entry id or ``None``.

        The usage the upstream reported in it and ``upstream_seconds`` (how long the
        answer took) are kept with the entry: what a hit on it saves.
        """
        if not plan.store:
            return None
        metadata = dict(plan.metadata)
        metadata["status"] = response.status
        try:
            usage = usage_of(response)
        except Exception:
            log.exception("semcache: could not read the usage of an answer")
            usage = None
        metadata["usage"] = usage.as_metadata() if usage is not None else None
        if upstream_seconds is not None:
            metadata["upstream_s"] = round(upstream_seconds, 6)
        _tell_usage(plan, usage, upstream_seconds)
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


def _tell_usage(plan: CachePlan, usage: Usage | None, upstream_seconds: float | None) -> None:
    """A miss's usage to the request's record and span (GenAI semantic conventions)."""
    record = current_record()
    if record is not None:
        record.usage = usage
        if upstream_seconds is not None:
            record.upstream_seconds = upstream_seconds
    if usage is None:
        return
    otel.set_attributes(
        otel.current_span(),
        {
            "gen_ai.request.model": plan.metadata.get("model"),
            "gen_ai.response.model": usage.model,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
        },
    )


def _context(plan: CachePlan) -> dict[str, Any]:
    # Only when set, so caches without these parameters keep working.
    extra: dict[str, Any] = {"context": plan.context} if plan.context else {}
    if plan.exact:
        extra["exact"] = True
    return extra


def _lookup_options(plan: CachePlan) -> dict[str, Any]:
    extra = _context(plan)
    if plan.threshold is not None:
        extra["threshold"] = plan.threshold  # a route's own bar
    return extra
