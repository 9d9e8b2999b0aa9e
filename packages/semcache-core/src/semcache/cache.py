"""`SemanticCache`: the engine that composes an embedder, a vector store and a response store."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from semcache import plugins
from semcache.audit.learner import STATE_KEY, AuditState
from semcache.audit.settings import AuditSettings
from semcache.breaker import CircuitBreaker
from semcache.budget import CallBudget, LoopLagMonitor, bind_call
from semcache.budget import deadline as budget_deadline
from semcache.crowd import CROWD_FACTOR, CROWD_MAX, closest_contexts
from semcache.embedder import (
    MicroBatchingEmbedder,
    embedder_fits,
    normalize_rows,
    resolve_dimension,
)
from semcache.errors import CacheUnavailableError, UnsupportedOperationError
from semcache.protocols import (
    ConditionalDelete,
    ConditionalMetadata,
    Embedder,
    PartitionIndex,
    ResponseStore,
    VectorStore,
    Verifier,
)
from semcache.settings import Settings
from semcache.singleflight import SingleFlight
from semcache.tags import query_tags
from semcache.telemetry import otel
from semcache.telemetry.record import current as current_record
from semcache.telemetry.settings import TelemetrySettings
from semcache.text import MAX_SEMANTIC_CHARS, exact_text, fold_layout, hash_text, normalize_query
from semcache.thresholds import default_threshold
from semcache.turns import MAX_TURNS, TurnMatcher, split_turns
from semcache.types import Entry, Hit, Matrix, Vector, VectorMatch
from semcache.verify import DefaultVerifier
from semcache.verify.judge import GreyZoneVerifier, LookupJudging, judge_stats, judging
from semcache.verify.levels import Levels, load_levels

__all__ = ["FROM_SETTINGS", "SemanticCache"]

log = logging.getLogger("semcache")

T = TypeVar("T")

FROM_SETTINGS = "<from settings>"
"""Default of ``SemanticCache(verifier=...)``: the verifier the ``verifier`` setting names."""

_JANITOR_INTERVAL = 60.0
_START_BACKOFF_MAX = 60.0
"""Longest wait before building a failed store again (1 s, 2 s, 4 s... up to this)."""
_RECENT_VECTORS = 2048
# Alias writes (after semantic hits) in flight at most; past it a hit writes none.
_ALIASING_MAX = 1024
_SHED_SHARE = 0.75
"""By default a lookup sheds its embedding when the vector is expected later than this
share of what is left of its budget (the rest is for the search and the estimate's error)."""
_AUDIT_STUCK = 3
"""Conditional audit writes (or evictions) refused in a row while the entry did not
change (a store that cannot write it) before the outcome (or report) is dropped.
Refusals because other outcomes landed first are retried."""
_LAG_SHARE = 0.25
"""A call that ran out of time while the event loop lagged by this share of the call's
budget or more is not held against its component: the delay was the process's own."""


_deadline = budget_deadline  # when the lookup or store in progress must be done

_bar: contextvars.ContextVar[float | None] = contextvars.ContextVar("semcache_bar", default=None)
"""The similarity the lookup in progress needs, while a verifier with a ``search_floor``
(a judge for the grey zone) checks candidates found below it."""


def _entry_id(part: str, raw: str, stored_ctx: str | None) -> str:
    """Same question, same partition (and earlier turns) -> same id: a refresh replaces it."""
    key = part + "\x00" + raw
    return hash_text(key if stored_ctx is None else key + "\x00" + stored_ctx)


def _audit_failed(entry: Entry) -> bool:
    state = AuditState.of(entry.metadata)
    return state is not None and state.failed


def _same_answer(a: Entry, b: Entry) -> bool:
    """Is ``a`` the very answer ``b`` is, whatever audits wrote to it since?"""

    def unaudited(e: Entry) -> Entry:
        return replace(e, metadata={k: v for k, v in e.metadata.items() if k != STATE_KEY})

    return unaudited(a) == unaudited(b)


class _Skipped(Exception):
    """A component is behind an open breaker; the operation becomes a miss."""


class SemanticCache:
    """A semantic cache: ``await lookup(query)`` returns a :class:`Hit` or ``None``.

    With no arguments everything comes from :class:`Settings` (``SEMANTIC_CACHE_*``):
    the embedder plugin (default ``huggingface``) and the embedded in-memory stores, or
    PostgreSQL + Redis when their URIs are set. Instances passed in are used as given.

    A cache problem never raises into the caller: lookups become misses and stores give
    up, each within its time budget, and a breaker skips a failing component for a while.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        vector_store: VectorStore | None = None,
        response_store: ResponseStore | None = None,
        verifier: Verifier | str | None = FROM_SETTINGS,
        **overrides: Any,
    ) -> None:
        base = settings if settings is not None else Settings.from_env()
        self.settings = base.replace(**overrides) if overrides else base
        otel_wanted = self.settings.group(TelemetrySettings).otel
        if otel_wanted != otel.enabled_by_setting():
            otel.set_enabled(otel_wanted)
        self._given_embedder = embedder
        self.embedder: Embedder | None = None
        self.vector_store = vector_store
        self.response_store = response_store
        # A name selects that verifier ("none": none at all); None means none too.
        self.verifier: Verifier | None = (
            plugins.create_verifier(self.settings, None if verifier == FROM_SETTINGS else verifier)
            if isinstance(verifier, str)
            else verifier
        )
        # Fitted levels (`semcache tune`): the threshold here, the verifier's above; a
        # broken file fails here, loudly, rather than serve with levels nobody chose.
        self._levels: Levels | None = (
            load_levels(self.settings.verifier_params) if self.settings.verifier_params else None
        )
        self._verifier_from_settings = isinstance(verifier, str)
        self._turns = TurnMatcher(self._embed_many)
        # Audit outcomes are read, changed and written back conditionally: one at a time
        # per process, so they do not refuse each other (see _update_audit).
        self._audit_lock = asyncio.Lock()
        self.single_flight = SingleFlight(wait=self.settings.single_flight_timeout)
        s = self.settings
        cooldown = s.breaker_cooldown_ms / 1000
        self.breakers = {
            name: CircuitBreaker(name, failures=s.breaker_failures, cooldown=cooldown)
            for name in ("embedder", "vector store", "response store")
        }
        self.lookup_observers: list[Callable[[Hit | None, float], None]] = []
        """Called after every lookup with its result and duration in seconds (metrics)."""
        self.counters: dict[str, int] = {
            "lookups": 0,
            "exact_hits": 0,
            "semantic_hits": 0,
            "misses": 0,
            "rejected_by_verifier": 0,
            "rejected_by_context": 0,
            "rejected_by_audit": 0,
            "quarantined": 0,
            "wrong_hit_reports": 0,
            "wrong_hit_reports_failed": 0,
            "errors": 0,
            "stores": 0,
            "store_failures": 0,
            "lookups_shed_to_exact": 0,
            "stores_shed_to_exact": 0,
            "queue_timeouts": 0,
            "lag_timeouts": 0,
        }
        """``*_shed_to_exact``: the model was too far behind (``batch_queue_max_ms``) and
        the lookup or store took the exact path only. ``queue_timeouts`` and ``lag_timeouts``:
        component calls whose time ran out while they waited for capacity of ours or the
        event loop lagged; neither counts against the component's breaker.
        ``rejected_by_audit``: candidates below their entry's learned threshold or
        quarantined; ``quarantined``: entries this process quarantined after audits;
        ``wrong_hit_reports``: :meth:`report_wrong_hit` calls that got an answer (applied,
        or no such entry or answer), ``wrong_hit_reports_failed``: those not applied (a
        store failed or the budget ran out; ``None``): a report sent again after a failure
        counts once in ``wrong_hit_reports``."""
        self.rejections: dict[str, int] = {}
        """Candidates turned down, by the rule that did it (``negation``, ``number``,
        ``layout``, ``context``...): the sum of ``rejected_by_*`` split per rule."""
        self.loop_lag = LoopLagMonitor()
        self._recent: OrderedDict[tuple[str, str, str], Matrix] = OrderedDict()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._start_task: asyncio.Task[None] | None = None
        self._start_failures = 0
        self._start_retry_at = 0.0
        self._background: set[asyncio.Task[Any]] = set()
        self._aliasing: set[tuple[str, str]] = set()  # alias writes in flight
        self._janitor: asyncio.Task[None] | None = None
        self._closed = False
        self._storing = 0  # store() calls running: close waits for them
        self._no_stores_running = asyncio.Event()
        self._no_stores_running.set()

    # -- life cycle -------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Are the embedder and the stores ready (lookups no longer wait for start-up)?"""
        return self._started

    async def start(self) -> None:
        """Load the embedder and open the stores (done on first use when not called)."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            s = self.settings
            inner = self.embedder or self._given_embedder
            if inner is None:
                inner = await asyncio.to_thread(plugins.create_embedder, s)
            if not isinstance(inner, MicroBatchingEmbedder) and s.batch_max_size > 1:
                inner = MicroBatchingEmbedder(
                    inner,
                    max_batch=s.batch_max_size,
                    window_ms=s.batch_window_ms,
                    stall_after=s.embedder_timeout_ms / 1000,
                )
            # Kept even if a store fails below: a retry must not load the model again.
            self.embedder = inner
            # Learn the size first (an HTTP model of unknown size asks its API once):
            # model_id may name it.
            dimension = await resolve_dimension(inner)
            model_id = inner.model_id
            try:
                if self.vector_store is None:
                    self.vector_store = plugins.create_vector_store(s, model_id, dimension)
                if self.response_store is None:
                    self.response_store = plugins.create_response_store(s, model_id, dimension)
            except Exception:
                self._start_failures += 1
                backoff = min(_START_BACKOFF_MAX, 2.0 ** (self._start_failures - 1))
                self._start_retry_at = time.monotonic() + backoff
                log.exception("semcache: a store could not be built; retrying in %.0fs", backoff)
                raise
            self._check_levels(model_id)
            # A verifier whose bar depends on the threshold learns it (optional method).
            use_threshold: Callable[[float], None] | None = getattr(
                self.verifier, "use_threshold", None
            )
            if use_threshold is not None:
                use_threshold(self.threshold)
            self._janitor = asyncio.get_running_loop().create_task(self._sweep_forever())
            self.loop_lag.start()
            self._started = True

    async def ready(self, wait: float | None = None) -> bool:
        """Start the cache if needed and wait until it is ready, at most ``wait`` seconds.

        True when ready. The loading goes on after the wait (it runs in a task of its
        own), and a start that failed is reported in the log, not raised.
        """
        try:
            async with asyncio.timeout(wait):
                await self._ready()
        except (TimeoutError, _Skipped):
            return False
        except Exception:
            log.exception("semcache: the cache could not start; requests pass through uncached")
            return False
        return True

    async def _ready(self) -> None:
        # Start once in a task of its own, so a caller whose budget runs out does not
        # cancel a model load that the next request will want.
        if self._started:
            return
        task = self._start_task
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            if time.monotonic() < self._start_retry_at:
                raise _Skipped("start")  # backing off after a failed start: a miss
            task = self._start_task = asyncio.get_running_loop().create_task(self.start())
        await asyncio.shield(task)

    def _check_levels(self, model_id: str) -> None:
        """Levels fitted for another model would be wrong here: warn, use the defaults."""
        levels = self._levels
        if levels is None or levels.model_id in (None, model_id):
            return
        log.warning(
            "semcache: %s was fitted for %s, not %s; using the default levels",
            self.settings.verifier_params,
            levels.model_id,
            model_id,
        )
        self._levels = None
        if not self._verifier_from_settings:
            return
        if isinstance(self.verifier, DefaultVerifier):
            self.verifier = DefaultVerifier()
        elif isinstance(self.verifier, GreyZoneVerifier) and isinstance(
            self.verifier.inner, DefaultVerifier
        ):
            self.verifier.inner = DefaultVerifier()  # the rules under a judge

    @property
    def threshold(self) -> float:
        """The similarity a semantic hit needs (setting, else fitted levels for this
        model, else the model's measured default)."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        if self._levels is not None:
            return self._levels.threshold
        model_id = self.embedder.model_id if self.embedder is not None else ""
        return default_threshold(model_id)

    async def close(self) -> None:
        """Wait for pending writes, then close the embedder and stores."""
        if self._closed:
            return
        self._closed = True
        # Stores already running finish first (within their budget): what they
        # acknowledge reaches the stores before these close.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.lookup_timeout_ms / 1000):
                await self._no_stores_running.wait()
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(BaseException):
                await self._janitor
        await self.loop_lag.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        for part in (self.embedder, self.vector_store, self.response_store, self.verifier):
            # A verifier closes when it has anything to close (a judge's connections).
            if part is not None and hasattr(part, "aclose"):
                with contextlib.suppress(Exception):
                    await part.aclose()

    async def persist(self, within: float = 5.0) -> bool:
        """Write what the embedded stores keep queued for their files now (a server's
        shutdown, before the process exits); True when everything is on disk. Stores
        without an on-disk copy have nothing to write."""
        written = True
        for store in (self.vector_store, self.response_store):
            persist = getattr(store, "persist", None)
            if persist is not None:
                try:
                    written = bool(await persist(within)) and written
                except Exception:
                    log.exception("semcache: the on-disk copy could not be written")
                    written = False
        return written

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> SemanticCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lookup -----------------------------------------------------------------

    async def lookup(
        self,
        query: str,
        *,
        partition: str = "",
        context: str | None = None,
        exact: bool = False,
        threshold: float | None = None,
    ) -> Hit | None:
        """The stored answer for ``query`` within ``partition``, or ``None``.

        ``partition`` is matched exactly (hashed), never embedded. ``context`` is the
        earlier conversation: with ``context_mode="turns"`` (the default) its turns are
        paired with the stored conversation's (:mod:`semcache.turns`); with ``"exact"``
        it must match exactly (it is part of the partition); with ``"semantic"`` it is
        embedded and must reach ``context_threshold`` (and pass the verifier). ``exact``
        asks for the same text only (never embedded). ``threshold`` replaces the cache's similarity bar for this
        lookup (a route's own). Never raises for a cache problem: any failure or a blown
        time budget is a miss.
        """
        if not self.settings.enabled or self._closed:
            return None
        self.counters["lookups"] += 1
        started = time.perf_counter()
        with otel.span("semcache.lookup") as span:
            try:
                async with self._whole_budget():
                    hit = await self._lookup(query, partition, context, exact, threshold)
            except _Skipped as skipped:
                otel.set_attributes(span, {"semcache.skipped": str(skipped)})
                hit = None
            except TimeoutError:
                self.counters["errors"] += 1
                log.debug("semcache: lookup over its %d ms budget", self.settings.lookup_timeout_ms)
                otel.set_attributes(span, {"semcache.error": "timeout"})
                hit = None
            except Exception:
                self.counters["errors"] += 1
                log.exception("semcache: lookup failed; treating as a miss")
                otel.set_attributes(span, {"semcache.error": "exception"})
                hit = None
            if hit is None:
                self.counters["misses"] += 1
                otel.set_attributes(span, {"semcache.decision": "miss"})
            else:
                self.counters["exact_hits" if hit.source == "exact" else "semantic_hits"] += 1
                otel.set_attributes(
                    span,
                    {
                        "semcache.decision": "hit",
                        "semcache.source": hit.source,
                        "semcache.similarity": hit.similarity,
                        "semcache.entry_id": hit.entry_id,
                    },
                )
        elapsed = time.perf_counter() - started
        otel.record_lookup(elapsed)
        for observe in self.lookup_observers:
            observe(hit, elapsed)
        return hit

    async def _lookup(
        self,
        query: str,
        partition: str,
        context: str | None,
        exact: bool = False,
        threshold: float | None = None,
    ) -> Hit | None:
        raw = exact_text(query)
        text = normalize_query(raw)
        if not text:
            return None
        await self._ready()
        ctx, stored_ctx = self._context(context)
        part = self._partition(partition, ctx)
        responses, vectors = self._stores()

        with otel.span("semcache.exact_lookup"):
            get_exact_entry = getattr(responses, "get_exact_entry", None)
            if get_exact_entry is not None:  # index and payload in one call
                entry = await self._guard("response store", get_exact_entry(part, raw))
            else:
                entry_id = await self._guard("response store", responses.get_exact(part, raw))
                entry = (
                    None
                    if entry_id is None
                    else await self._guard("response store", responses.get(entry_id))
                )
        if stored_ctx is not None and entry is not None and entry.context != stored_ctx:
            # The semantic and turns modes keep every conversation in one partition, where
            # the exact index names a common follow-up's last conversation only: the same
            # conversation is found by its own entry id (one more read, only then).
            entry = await self._guard(
                "response store", responses.get(_entry_id(part, raw, stored_ctx))
            )
        # The exact index holds one entry per text; another context is no exact hit. An
        # alias (a paraphrase that hit before) is no answer to a request for this text only,
        # nor once an audit failed: its similarity is unknown, so the semantic path decides.
        if (
            entry is not None
            and entry.partition == part
            and entry.context == stored_ctx
            and (entry.query == raw or not (exact or _audit_failed(entry)))
        ):
            return Hit(
                entry.payload, entry.metadata, 1.0, entry.entry_id, "exact", version=entry.version
            )
        if exact or self._exact_only(text, stored_ctx):
            return None  # never embedded nor analysed: see _exact_only
        if self._embedding_queue_full():
            self.counters["lookups_shed_to_exact"] += 1
            return None  # the exact index was asked above; the model is too far behind

        rows = await self._embed_many(self._embedded(text, stored_ctx))
        self._remember((part, text, stored_ctx or ""), rows)
        vector = rows[0]
        context_vector = rows[1] if len(rows) > 1 else None
        bar = self.threshold if threshold is None else threshold
        # A verifier with a judge for the grey zone asks for candidates down to its floor,
        # and is told the bar they fall short of.
        floor: float | None = getattr(self.verifier, "search_floor", None)
        _bar.set(None if floor is None else bar)
        top_k = self.settings.top_k
        # A follow-up may have been stored after many conversations: fetch more, compare
        # the closest (semcache.crowd).
        fetched = top_k if stored_ctx is None else min(CROWD_MAX, top_k * CROWD_FACTOR)
        with otel.span("semcache.vector_search") as span:
            matches = await self._guard(
                "vector store",
                vectors.search(part, vector, fetched, bar if floor is None else min(bar, floor)),
            )
            otel.set_attributes(span, {"semcache.candidates": len(matches)})
        if not matches:
            return None
        with otel.span("semcache.fetch"):
            entries = await self._guard(
                "response store", responses.get_many([m.entry_id for m in matches])
            )
        if stored_ctx is not None and len(matches) > top_k:
            live = [(m, e) for m, e in zip(matches, entries, strict=True) if e is not None]
            stale = [m for m, e in zip(matches, entries, strict=True) if e is None]
            # Off the event loop: up to a hundred conversations are read.
            chosen = await asyncio.to_thread(closest_contexts, stored_ctx, live, top_k)
            matches = [m for m, _ in chosen] + stale
            entries = [e for _, e in chosen] + [None] * len(stale)
        # This lookup's judge calls (capped per lookup) and the hits its yes won.
        with otel.span("semcache.verify") as span, judging() as judge:
            hit = await self._verified(
                part, raw, text, stored_ctx, context_vector, matches, entries, judge
            )
            otel.set_attributes(span, {"semcache.verified": hit is not None})
        return hit

    async def _verified(
        self,
        part: str,
        raw: str,
        text: str,
        stored_ctx: str | None,
        context_vector: Vector | None,
        matches: list[VectorMatch],
        entries: list[Entry | None],
        judge: LookupJudging,
    ) -> Hit | None:
        """The first candidate that passes the checks, in order of similarity; the rule
        that turned down the best one goes to the request's record and the span."""
        responses, vectors = self._stores()
        record = current_record()
        stale = []
        hit = None
        rejected: tuple[float, str] | None = None
        for match, entry in zip(matches, entries, strict=True):
            if entry is None:
                stale.append(match.entry_id)
                continue
            if entry.partition != part:  # a store bug must never leak across partitions
                continue
            won = judge.won
            why = await self._turned_down(
                raw, text, entry, stored_ctx, context_vector, match.similarity
            )
            if why is not None:
                counter, rule = why
                self.counters[counter] += 1
                self.rejections[rule] = self.rejections.get(rule, 0) + 1
                rejected = rejected or (match.similarity, rule)
                continue
            hit = Hit(
                entry.payload,
                entry.metadata,
                match.similarity,
                entry.entry_id,
                "semantic",
                # Served on the judge's yes: a path of its own, so that the audits tell
                # the judge's false hits from the rules'.
                "judge" if judge.won > won else self._verdict_path(text, entry, rejected),
                entry.version,
            )
            if entry.context == stored_ctx and entry.query != raw:
                # The same paraphrase next time is an exact hit: no embedding. Only where
                # an exact hit would be served (same context), and it dies with the entry.
                self._add_alias(responses, part, raw, entry)
            break
        if stale:  # the payload expired or was evicted: drop its vector too
            self._in_background(vectors.delete(stale))
        if rejected is not None:
            span = otel.current_span()
            otel.set_attributes(
                span,
                {
                    "semcache.verifier.rule": rejected[1],
                    "semcache.rejected_similarity": rejected[0],
                },
            )
            if record is not None:
                record.rule = rejected[1]
                if hit is None:
                    record.similarity = rejected[0]
        return hit

    async def _turned_down(
        self,
        raw: str,
        text: str,
        entry: Entry,
        stored_ctx: str | None,
        context_vector: Vector | None,
        similarity: float,
    ) -> tuple[str, str] | None:
        """Why ``entry`` may not answer: the counter and the rule, or ``None``."""
        audit = AuditState.of(entry.metadata)
        if audit is not None and not audit.allows(similarity):
            return "rejected_by_audit", "audit"  # quarantined, or under its learned bar
        candidate = normalize_query(entry.query)
        if candidate == text and fold_layout(entry.query) != fold_layout(raw):
            # Equal once normalised, yet not the same text: the difference (x² vs
            # x2, indentation) is one neither the model nor the verifier can see.
            return "rejected_by_verifier", "layout"
        if not await self._context_matches(stored_ctx, context_vector, entry):
            return "rejected_by_context", "context"
        rule = await self._rule(text, candidate, similarity)
        return None if rule is None else ("rejected_by_verifier", rule)

    def _verdict_path(self, text: str, entry: Entry, rejected: tuple[float, str] | None) -> str:
        """What let a semantic hit through (:attr:`Hit.verdict`)."""
        if rejected is not None:
            return "after_" + rejected[1]
        if normalize_query(entry.query) == text:
            return "same_text"
        return "unverified" if self.verifier is None else "verifier"

    async def _rule(self, text: str, candidate: str, similarity: float) -> str | None:
        """The verifier's verdict: ``None`` to serve, else the rule that rejected it
        (``"verifier"`` for a verifier that does not name its rules)."""
        if self.verifier is None:
            return None
        verdict: Callable[..., Awaitable[Any]] | None = getattr(self.verifier, "verdict", None)
        if verdict is not None:
            bar = _bar.get()  # set when the verifier searched below the lookup's threshold
            found = await (
                verdict(text, candidate, similarity)
                if bar is None
                else verdict(text, candidate, similarity, threshold=bar)
            )
            rule: str | None = found.rule
            return rule
        return None if await self.verifier.verify(text, candidate, similarity) else "verifier"

    # -- store ------------------------------------------------------------------

    async def store(
        self,
        query: str,
        payload: bytes,
        *,
        partition: str = "",
        ttl: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        context: str | None = None,
        exact: bool = False,
    ) -> str | None:
        """Store ``payload`` as the answer to ``query`` in ``partition``; return its entry id.

        ``ttl`` in seconds (default: the ``ttl`` setting; 0 means no expiry). The same
        query in the same partition (and context) replaces the earlier entry. ``context``
        is the earlier conversation, as for :meth:`lookup`. ``exact`` keeps the answer
        for exact repeats only (no vector). Returns ``None`` when the cache is off or a
        store failed (never raises for that).
        """
        if not self.settings.enabled or self._closed:
            return None
        self._storing += 1
        self._no_stores_running.clear()
        try:
            with otel.span("semcache.store") as span:
                async with self._whole_budget():
                    entry_id = await self._store(
                        query, payload, partition, ttl, metadata, context, exact
                    )
                otel.set_attributes(span, {"semcache.entry_id": entry_id})
        except _Skipped:
            entry_id = None
        except TimeoutError:
            log.debug("semcache: store over its budget; not cached")
            entry_id = None
        except Exception:
            log.exception("semcache: store failed; response not cached")
            entry_id = None
        finally:
            self._storing -= 1
            if not self._storing:
                self._no_stores_running.set()
        self.counters["stores" if entry_id else "store_failures"] += 1
        return entry_id

    async def _store(
        self,
        query: str,
        payload: bytes,
        partition: str,
        ttl: int | None,
        metadata: Mapping[str, Any] | None,
        context: str | None,
        exact: bool = False,
    ) -> str | None:
        raw = exact_text(query)
        text = normalize_query(raw)
        if not text:
            return None
        await self._ready()
        ctx, stored_ctx = self._context(context)
        part = self._partition(partition, ctx)
        responses, vectors = self._stores()
        ttl = self.settings.ttl if ttl is None else ttl
        now = time.time()
        expires_at = now + ttl if ttl > 0 else None
        meta = dict(metadata or {})
        entry_id = _entry_id(part, raw, stored_ctx)
        rows = self._recent.pop((part, text, stored_ctx or ""), None)
        exact_only = exact or self._exact_only(text, stored_ctx)
        if rows is None and not exact_only and self._embedding_queue_full():
            self.counters["stores_shed_to_exact"] += 1
            exact_only = True
        if exact_only:  # the answer, no vector: exact repeats still hit
            entry = Entry(entry_id, part, raw, bytes(payload), meta, now, expires_at, stored_ctx)
            await self._guard("response store", responses.set(entry, ttl if ttl > 0 else None))
            return entry_id
        if rows is None:
            rows = await self._embed_many(self._embedded(text, stored_ctx))
        vector = rows[0]
        context_vector = rows[1] if len(rows) > 1 else None
        entry = Entry(
            entry_id, part, raw, bytes(payload), meta, now, expires_at, stored_ctx, context_vector
        )
        # Payload first, vector second: a reader never finds a vector without its payload.
        await self._guard("response store", responses.set(entry, ttl if ttl > 0 else None))
        await self._guard("vector store", vectors.add(entry_id, part, vector, expires_at))
        return entry_id

    # -- admin ------------------------------------------------------------------

    # Admin operations (delete, audit_state; flush, flush_where within the flush budget)
    # run within one lookup's time budget, the cache's start included: a store that hangs
    # never holds an operator's request. They raise CacheUnavailableError rather than
    # return a result that could be taken for "no such entry" or "nothing to flush".

    async def delete(self, entry_id: str) -> bool:
        """Remove one entry (payload, exact key and vector); True when there was one.

        Within one lookup's time budget (``lookup_timeout_ms``), the cache's start
        included. Raises :class:`~semcache.errors.CacheUnavailableError` when the response
        store fails (or its breaker is open), the cache has not started, or the budget
        runs out before the payload is deleted: it may be gone or not, send it again (a
        start that fails raises its own error once). Once the payload is deleted it is
        True, also when its vector's delete fails (a vector left without its payload is a
        miss, dropped when met).
        """
        try:
            return await self._evict(entry_id)
        except (_Skipped, TimeoutError) as exc:
            raise self._unavailable("the delete", exc) from exc

    # -- audits -----------------------------------------------------------------

    async def audit_state(self, entry_id: str) -> AuditState | None:
        """What the audits of an entry found (``None``: no entry, or never audited).

        Within one lookup's time budget, the cache's start included. Raises
        :class:`~semcache.errors.CacheUnavailableError` when the response store fails, the
        cache has not started, or the budget runs out first (never ``None`` for that).
        """
        async with self._operation("the audit state's read"):
            responses, _ = self._stores()
            entry = await self._guard("response store", responses.get(entry_id))
        return None if entry is None else AuditState.of(entry.metadata)

    async def record_audit(
        self, entry_id: str, similarity: float, agreed: bool, *, version: str | None = None
    ) -> AuditState | None:
        """Add one audit outcome of a semantic hit on ``entry_id`` at ``similarity``:
        the entry's threshold is learned again (:mod:`semcache.audit.learner`) and, where
        no similarity keeps the ``max_false_hit_rate`` bound, the entry is quarantined.

        ``version`` is the answer the hit served (:attr:`Hit.version`): when the entry
        holds another answer by now (stored again while the audit ran), the outcome is
        dropped, since it says nothing about that one. ``None``: whatever the entry holds.

        The state is written into the entry's metadata, so replicas sharing the stores
        agree. The write applies only to the entry as it was read: outcomes that other
        processes wrote meanwhile are kept (this one is added to them), and an entry
        deleted or stored again with a new answer meanwhile is left as it is (the outcome
        says nothing about the new answer). ``None`` when the entry is gone or replaced,
        or the cache's start or a store failed or did not finish within one lookup's time
        budget (never raises for that).
        """
        bound = self.settings.group(AuditSettings).max_false_hit_rate
        try:
            return await self._update_audit(
                entry_id, lambda state: state.add(similarity, agreed, bound), version
            )
        except Exception as exc:
            log.debug("semcache: audit outcome of %s not recorded (%s)", entry_id, exc)
            return None

    async def report_wrong_hit(
        self,
        entry_id: str,
        *,
        similarity: float | None = None,
        evict: bool = True,
        version: str | None = None,
    ) -> bool | None:
        """An application says the answer served from ``entry_id`` was wrong.

        ``evict`` (default): the entry is deleted; the question is asked upstream again
        next time. Otherwise the report counts as a failed audit at ``similarity`` (the
        entry's threshold is learned again) or, without one, quarantines the entry.

        ``version`` is the answer that was served (:attr:`Hit.version`, the
        ``X-Semcache-Entry-Version`` header): when the entry holds another answer by now,
        the report is about an answer no longer served and the entry is left as it is,
        also when that answer is stored while the eviction runs (the store deletes only
        the entry it read: :class:`~semcache.protocols.ConditionalDelete`). Without it
        the report applies to whatever the entry holds. True when the entry existed (with
        ``version``: and still held that answer); False when it did not.

        Within one lookup's time budget (``lookup_timeout_ms``), the cache's start
        included (a model still loading or a start that hangs holds it up no longer).
        ``None`` (false too) when the start or a store failed or the budget ran out first:
        the report may not have been applied, and may be sent again (never raises for
        that).

        Counted in ``wrong_hit_reports`` once it has an answer (True or False), in
        ``wrong_hit_reports_failed`` when ``None``: a report sent again after a failure
        is a report counted once.
        """
        applied = await self._report_wrong_hit(entry_id, similarity, evict, version)
        failed = applied is None
        self.counters["wrong_hit_reports_failed" if failed else "wrong_hit_reports"] += 1
        return applied

    async def _report_wrong_hit(
        self, entry_id: str, similarity: float | None, evict: bool, version: str | None
    ) -> bool | None:
        try:
            if evict:
                if version is not None:
                    return await self._evict_answer(entry_id, version)
                return await self._evict(entry_id)
            if similarity is None:
                taught = await self._update_audit(entry_id, AuditState.quarantine, version)
            else:
                bound = self.settings.group(AuditSettings).max_false_hit_rate
                taught = await self._update_audit(
                    entry_id, lambda state: state.add(similarity, False, bound), version
                )
            return taught is not None
        except (_Skipped, TimeoutError) as exc:
            log.debug("semcache: report on %s not applied (%s)", entry_id, exc or "out of time")
        except Exception:
            log.exception("semcache: report on %s failed; not applied", entry_id)
        return None

    async def _evict(self, entry_id: str) -> bool:
        """Delete ``entry_id`` whatever it holds (payload, exact keys, vector) within one
        lookup's time budget, the cache's start included. Raises when the start or the
        payload's delete fails or runs out of it."""
        removed: bool | None = None
        try:
            async with self._whole_budget():
                await self._ready()
                responses, vectors = self._stores()
                removed = await self._guard("response store", responses.delete(entry_id))
                await self._guard("vector store", vectors.delete([entry_id]))
        except (_Skipped, TimeoutError):
            if removed is None:
                raise
            # A vector left without its payload is a miss, dropped when met.
            log.debug("semcache: vector of the evicted entry %s left", entry_id)
        return removed

    async def _evict_answer(self, entry_id: str, version: str) -> bool:
        """Delete ``entry_id`` only while it holds the answer ``version``: a new answer
        stored at any moment of the eviction, by any process, is kept whole. Within one
        lookup's time budget, the cache's start included; raises when the start or a store
        fails or it runs out before the answer is deleted."""
        evicted: Entry | None = None
        try:
            async with self._whole_budget():
                await self._ready()
                responses, vectors = self._stores()
                read = await self._guard("response store", responses.get(entry_id))

                async def delete(entry: Entry) -> Entry | None:
                    return entry if await self._delete_if_current(responses, entry) else None

                evicted = await self._retry_refused(
                    responses,
                    entry_id,
                    read,
                    lambda entry: entry.version == version,
                    delete,
                    "semcache: answer of %s not evicted by the store",
                )
                if evicted is None:
                    return False  # gone, or a new answer this report says nothing about
                # Only now that the payload is gone: its vector, unless a new answer took
                # its place meanwhile (vectors are keyed by entry id).
                await self._drop_vector(responses, vectors, evicted)
        except (_Skipped, TimeoutError):
            if evicted is None:
                raise
            # A vector left without its payload is a miss, dropped when met.
            log.debug("semcache: vector of the evicted answer of %s left", entry_id)
        return True

    async def _delete_if_current(self, responses: ResponseStore, entry: Entry) -> bool:
        """Delete ``entry`` only if the store still holds ``entry``."""
        if isinstance(responses, ConditionalDelete):
            return await self._guard("response store", responses.delete_if_current(entry))
        # A store without the conditional delete (ConditionalDelete): read again, and
        # delete only what was read. A new answer landing between the two calls is evicted.
        current = await self._guard("response store", responses.get(entry.entry_id))
        if current is None or current != entry:
            return False
        return await self._guard("response store", responses.delete(entry.entry_id))

    async def _retry_refused(
        self,
        responses: ResponseStore,
        entry_id: str,
        read: Entry | None,
        same: Callable[[Entry], bool],
        attempt: Callable[[Entry], Awaitable[T | None]],
        stuck_message: str,
    ) -> T | None:
        """Run ``attempt`` (a conditional write or delete, ``None`` when the store refused
        it) on the entry as last read until the store takes it; what it returned then.
        ``None`` when the entry is gone or no longer holds the ``same`` answer, or when
        the store refused it ``_AUDIT_STUCK`` times in a row with nothing changed (logged
        as ``stuck_message``, with the entry id). Store calls are guarded: a store that
        fails or runs out of time raises."""
        entry = read
        stuck = 0
        while True:  # until taken, or the entry is gone or replaced, or the budget ends
            if entry is None or not same(entry):
                return None  # gone, or a new answer this change says nothing about
            taken = await attempt(entry)
            if taken is not None:
                return taken
            # Refused: the entry changed since it was read. Another audit outcome of the
            # same answer landed first, and the attempt is made again on the entry as it
            # is now (an outcome is added to it; an eviction still deletes it). Refused
            # with nothing changed is a store that cannot write or delete it, which no
            # retry mends.
            fresh = await self._guard("response store", responses.get(entry_id))
            stuck = stuck + 1 if fresh == entry else 0
            if stuck >= _AUDIT_STUCK:
                log.debug(stuck_message, entry_id)
                return None
            entry = fresh

    async def _update_audit(
        self,
        entry_id: str,
        change: Callable[[AuditState], AuditState],
        version: str | None = None,
    ) -> AuditState | None:
        # The lock only spares this process's own outcomes from refusing each other: the
        # conditional write is what keeps deletes, refreshes and other processes' outcomes.
        # The cache's start is within the budget, as a lookup's is: one that hangs does
        # not hold the outcome (or a report) up.
        async with self._audit_lock, self._whole_budget():
            await self._ready()
            responses, vectors = self._stores()
            read = await self._guard("response store", responses.get(entry_id))
            if read is None:
                return None
            if version is not None and read.version != version:
                log.debug("semcache: audit outcome of an earlier answer of %s dropped", entry_id)
                return None  # stored again since that answer was served

            async def write(entry: Entry) -> tuple[AuditState, AuditState] | None:
                before = AuditState.of(entry.metadata) or AuditState()
                after = change(before)
                metadata = {**entry.metadata, STATE_KEY: after.to_metadata()}
                written = await self._replace_metadata(responses, entry, metadata)
                return (before, after) if written else None

            changed = await self._retry_refused(
                responses,
                entry_id,
                read,
                lambda entry: _same_answer(entry, read),
                write,
                "semcache: audit outcome of %s not written by the store",
            )
            if changed is None:
                return None  # gone, or a new answer this outcome says nothing about
            before, after = changed
            if after.quarantined and not before.quarantined:
                self.counters["quarantined"] += 1
                await self._drop_vector(responses, vectors, read)
        return after

    async def _drop_vector(
        self, responses: ResponseStore, vectors: VectorStore, quarantined: Entry
    ) -> None:
        """Delete a quarantined or evicted answer's vector (no vector, no semantic hit:
        what a lookup never finds costs nothing), but not that of a new answer stored
        meanwhile.

        Vectors are keyed by entry id, so the delete cannot tell the two apart. A store
        writes the payload before the vector; so a new answer whose vector this delete
        removed is already in the response store when it is read after the delete, and
        its vector is put back (embedded again, as its store did). A new answer whose
        vector comes later keeps it anyway.
        """
        entry_id = quarantined.entry_id
        await self._guard("vector store", vectors.delete([entry_id]))
        now = await self._guard("response store", responses.get(entry_id))
        if now is None or _same_answer(now, quarantined):
            return  # gone, or still the quarantined answer
        state = AuditState.of(now.metadata)
        text = normalize_query(now.query)
        if (state is not None and state.quarantined) or self._exact_only(text, now.context):
            return  # a new answer that has no vector to keep
        rows = await self._embed_many([text])
        await self._guard(
            "vector store", vectors.add(entry_id, now.partition, rows[0], now.expires_at)
        )
        log.debug("semcache: vector of the new answer of %s kept after a quarantine", entry_id)

    async def _replace_metadata(
        self, responses: ResponseStore, entry: Entry, metadata: dict[str, Any]
    ) -> bool:
        """Write ``metadata`` into ``entry`` only if the store still holds ``entry``."""
        if isinstance(responses, ConditionalMetadata):
            return await self._guard("response store", responses.replace_metadata(entry, metadata))
        # A store without the conditional write (ConditionalMetadata): read again, and
        # write only over what was read. A change landing between the two calls is lost.
        current = await self._guard("response store", responses.get(entry.entry_id))
        if current is None or current != entry:
            return False
        ttl: int | None = None
        if entry.expires_at is not None:
            ttl = int(entry.expires_at - time.time())
            if ttl <= 0:
                return False  # expired meanwhile: never written back
        await self._guard("response store", responses.set(replace(entry, metadata=metadata), ttl))
        return True

    async def flush(self, partition: str | None = None, *, hashed: bool = False) -> int:
        """Remove every entry, or those of one partition (raw, or already ``hashed``);
        return how many.

        Within the flush budget (``flush_timeout_ms``: a flush walks every entry it
        removes, so it gets more than a lookup), the cache's start included; each store's
        flush may take all of what is left of it (it is not held
        to ``store_timeout_ms``, and running out of time does not count against the
        store's breaker). Raises :class:`~semcache.errors.CacheUnavailableError` when a
        store fails, the cache has not started, or the budget runs out before both stores
        are flushed: what was deleted stays deleted; send it again.
        """
        part = None if partition is None else (partition if hashed else hash_text(partition))
        async with self._operation("the flush", flush=True):
            count = await self._flush_partition(part)
        self._recent.clear()
        return count

    async def flush_where(self, **criteria: str) -> int:
        """Remove the entries stored for a ``path``, ``model``, ``tenant`` and/or
        ``credential`` (every one given must match); return how many.

        Values are what an operator knows: the path as the client sent it, the model
        name, a tenant value, a credential header value (``Bearer sk-...`` or the bare
        key). Entries carry these as partition tags (:mod:`semcache.tags`; the HTTP
        adapters record them), and the response store's
        :class:`~semcache.protocols.PartitionIndex` names their partitions, which are
        flushed whole. Raises :class:`ValueError` for bad criteria and
        :class:`~semcache.errors.UnsupportedOperationError` when the response store
        keeps no such index.

        Within the flush budget, as :meth:`flush` is, and raises
        :class:`~semcache.errors.CacheUnavailableError` as it does: what was deleted stays
        deleted; send it again.
        """
        tags = query_tags(criteria)
        count = 0
        async with self._operation("the flush", flush=True):
            responses, _ = self._stores()
            if not isinstance(responses, PartitionIndex):
                raise UnsupportedOperationError(
                    f"{type(responses).__name__} cannot find entries by path, model, "
                    "tenant or credential; flush one partition or everything instead"
                )
            parts = await self._guard("response store", responses.partitions_where(tags), bulk=True)
            for part in parts:
                count += await self._flush_partition(part)
        self._recent.clear()
        return count

    async def ping(self) -> dict[str, bool]:
        """Reachability of each store (for readiness checks)."""
        try:
            await self._ready()
        except _Skipped:  # a failed start is backing off: nothing is reachable yet
            return {"vector_store": False, "response_store": False}
        result = {}
        for name, store in (
            ("vector_store", self.vector_store),
            ("response_store", self.response_store),
        ):
            try:
                async with asyncio.timeout(self.settings.store_timeout_ms / 1000):
                    await store.ping()  # type: ignore[union-attr]
                result[name] = True
            except Exception:
                result[name] = False
        return result

    async def stats(self) -> dict[str, Any]:
        """Counters, entry counts and breaker states."""
        out: dict[str, Any] = dict(self.counters)
        out["threshold"] = self.threshold
        out["model_id"] = self.embedder.model_id if self.embedder else None
        out["breakers"] = {name: b.state for name, b in self.breakers.items()}
        out["rejections"] = dict(self.rejections)
        if (judge := judge_stats(self.verifier)) is not None:
            out["judge"] = judge
        if self._started:
            for name, store in (("vectors", self.vector_store), ("entries", self.response_store)):
                try:
                    async with asyncio.timeout(self.settings.store_timeout_ms / 1000):
                        out[name] = await store.count()  # type: ignore[union-attr]
                    if callable(used := getattr(store, "bytes_used", None)):
                        out[f"{name}_bytes"] = used()
                    journal = getattr(store, "journal_stats", None)
                    if callable(journal) and (written := journal()) is not None:
                        out[f"{name}_journal"] = written  # the on-disk copy's writer
                except Exception:
                    out[name] = None
        return out

    # -- internals --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _whole_budget(self, budget_ms: int | None = None) -> AsyncIterator[None]:
        """One lookup's or store's time budget (or ``budget_ms``); the component calls
        inside read what is left of it (:meth:`_guard`)."""
        budget = (self.settings.lookup_timeout_ms if budget_ms is None else budget_ms) / 1000
        token = _deadline.set(time.monotonic() + budget)
        try:
            async with asyncio.timeout(budget):
                yield
        finally:
            _deadline.reset(token)

    async def _flush_partition(self, part: str | None) -> int:
        """Flush one partition (``None``: everything) from both stores: the answers first,
        so that no vector is left to find them; how many answers were removed."""
        responses, vectors = self._stores()
        count = await self._guard("response store", responses.flush(part), bulk=True)
        await self._guard("vector store", vectors.flush(part), bulk=True)
        return count

    @contextlib.asynccontextmanager
    async def _operation(self, what: str, *, flush: bool = False) -> AsyncIterator[None]:
        """An admin operation: within its budget (the lookup's, or with ``flush`` the
        flush budget), the cache's start included; a store that fails, a start that does
        not finish or a budget that runs out raises :class:`CacheUnavailableError`."""
        try:
            async with self._whole_budget(self.settings.flush_timeout_ms if flush else None):
                await self._ready()
                yield
        except (_Skipped, TimeoutError) as exc:
            raise self._unavailable(what, exc, flush=flush) from exc

    def _unavailable(
        self, what: str, cause: BaseException, *, flush: bool = False
    ) -> CacheUnavailableError:
        """The error of an admin operation that did not finish (``cause``: a
        :class:`_Skipped` component or start, or the whole budget's ``TimeoutError``)."""
        if isinstance(cause, TimeoutError):
            budget = (
                f"{self.settings.flush_timeout_ms} ms flush budget"
                if flush
                else f"{self.settings.lookup_timeout_ms} ms lookup budget"
            )
            why = f"did not finish within the {budget}"
        elif str(cause) == "start":
            why = "did not run: the cache could not start, and retries later"
        else:
            why = f"did not finish: the {cause} failed or did not answer in time"
        log.debug("semcache: %s %s (%r)", what, why, cause.__cause__ or cause)
        return CacheUnavailableError(f"{what} {why}; it may be partly done, send it again")

    def _stores(self) -> tuple[ResponseStore, VectorStore]:
        assert self.response_store is not None and self.vector_store is not None
        return self.response_store, self.vector_store

    def _embedding_queue_full(self) -> bool:
        """Would a new text's vector come too late (load shedding)? Past the bound the
        lookup could not finish within its budget anyway: the exact path stays."""
        expected: Callable[[], float] | None = getattr(self.embedder, "expected_latency", None)
        if expected is None:
            return False
        if self.settings.batch_queue_max_ms is not None:
            bound = self.settings.batch_queue_max_ms / 1000
        else:
            deadline = _deadline.get()
            left = (
                self.settings.lookup_timeout_ms / 1000
                if deadline is None
                else deadline - time.monotonic()
            )
            bound = _SHED_SHARE * left
        return expected() > bound

    async def _embed_many(self, texts: list[str]) -> Matrix:
        # Query and context go to the model in one call.
        assert self.embedder is not None
        with otel.span("semcache.embed", {"semcache.texts": len(texts)}):
            matrix = await self._guard("embedder", self.embedder.embed(texts))
        return normalize_rows(np.asarray(matrix))

    def _exact_only(self, text: str, context: str | None) -> bool:
        """Is this question matched exactly only, never embedded nor analysed?

        Over :data:`MAX_SEMANTIC_CHARS`, and when the model would not read all of the
        question or of the earlier turns (its input window; in turns mode, of any one
        turn, and no more than :data:`MAX_TURNS` turns): two texts that differ only in the
        part it cuts off would embed alike, so only the same text is served.
        """
        if len(text) > MAX_SEMANTIC_CHARS:
            return True
        # An embedder that does not tell its window is taken to have none.
        if not embedder_fits(self.embedder, text):
            return True
        if context is None:
            return False
        if self.settings.context_mode == "turns":  # each turn is embedded on its own
            turns = split_turns(context)
            return len(turns) > MAX_TURNS or not all(
                embedder_fits(self.embedder, t.text) for t in turns
            )
        return not embedder_fits(self.embedder, normalize_query(context))

    def _embedded(self, text: str, context: str | None) -> list[str]:
        """What goes to the model: the normalised question, and the earlier turns as one
        text in semantic mode (turns mode embeds each turn when it compares them)."""
        if context is None or self.settings.context_mode != "semantic":
            return [text]
        return [text, normalize_query(context)]

    def _context(self, context: str | None) -> tuple[str, str | None]:
        """The context as sent ("" for none; only its ends stripped), and what an entry
        keeps of it: the text in the turns and semantic modes, nothing in exact mode (the
        partition holds it)."""
        ctx = exact_text(context) if context else ""
        if context and not ctx:
            # Earlier turns that are not valid text: caching would risk matching the
            # question as if it opened the conversation, so the request goes uncached.
            raise _Skipped("context")
        return ctx, (ctx or None) if self.settings.context_mode != "exact" else None

    def _partition(self, partition: str, ctx: str) -> str:
        # Exact context mode: the earlier turns are part of the partition key.
        if ctx and self.settings.context_mode == "exact":
            return hash_text(partition + "\x00context\x00" + ctx)
        return hash_text(partition)

    async def _context_matches(
        self, ctx: str | None, ctx_vector: Vector | None, entry: Entry
    ) -> bool:
        stored = entry.context
        if stored == ctx:
            return True
        if ctx is None or stored is None:
            return False  # a follow-up never matches a first question
        if self.settings.context_mode == "turns":
            return await self._turns.compare(ctx, stored) is None
        if ctx_vector is None:
            return False
        other = entry.context_vector
        if other is None or other.shape != ctx_vector.shape:
            return False
        similarity = float(ctx_vector @ other)
        if similarity < self.settings.context_threshold:
            return False
        # The same checks as for the question: a context that differs in a number, a
        # negation or a name is a different conversation.
        ours, theirs = normalize_query(ctx), normalize_query(stored)
        if ours == theirs and fold_layout(ctx) != fold_layout(stored):
            return False  # a difference the model cannot see (see _lookup)
        return self.verifier is None or await self.verifier.verify(ours, theirs, similarity)

    def _remember(self, key: tuple[str, str, str], rows: Matrix) -> None:
        # A miss is usually followed by a store of the same text: keep its vectors so
        # the request is embedded once, not twice.
        self._recent[key] = rows
        if len(self._recent) > _RECENT_VECTORS:
            self._recent.popitem(last=False)

    async def _guard(self, component: str, call: Awaitable[T], *, bulk: bool = False) -> T:
        """``call`` to ``component`` within its own budget and what is left of the
        caller's, through its breaker; raises :class:`_Skipped` when it fails, runs out
        of time or is skipped. ``bulk``: many round trips in one call (a flush), held
        only to the caller's budget, and running out of it is no failure of the
        component."""
        breaker = self.breakers[component]
        if not breaker.allow():
            if asyncio.iscoroutine(call):
                call.close()
            raise _Skipped(component)
        budget = (
            self.settings.embedder_timeout_ms
            if component == "embedder"
            else self.settings.store_timeout_ms
        ) / 1000
        # Within what is left of the caller's whole budget, so this call's own timeout
        # fires first and its outcome is recorded, rather than the call being cancelled.
        deadline = _deadline.get()
        left = budget if deadline is None else deadline - time.monotonic()
        if bulk:
            budget = left
        if left <= 0:
            breaker.record_cancelled()
            if asyncio.iscoroutine(call):
                call.close()
            raise _Skipped(component)
        timeout = asyncio.timeout(min(budget, left))
        measured = CallBudget(budget, deadline, timeout)
        try:
            async with timeout:
                with bind_call(measured), self.loop_lag.watching():
                    result = await call
        except TimeoutError:
            if bulk:
                breaker.record_cancelled()
            else:
                self._timed_out(breaker, measured)
            raise _Skipped(component) from None
        except asyncio.CancelledError:
            breaker.record_cancelled()
            raise
        except Exception as exc:
            breaker.record_failure(f"{type(exc).__name__}: {exc}")
            raise _Skipped(component) from exc
        breaker.record_success()
        return result

    def _timed_out(self, breaker: CircuitBreaker, call: CallBudget) -> None:
        """A verdict on a call that ran out of time: the component's fault only when its
        own work took its whole budget on a loop that kept up."""
        if call.started_at is None:  # still waiting for a connection or the model
            self.counters["queue_timeouts"] += 1
            breaker.record_cancelled()
        elif call.cut_by_caller:  # the caller's whole budget ran out first
            breaker.record_cancelled()
        elif self.loop_lag.worst_since(call.started_at) >= _LAG_SHARE * call.budget:
            self.counters["lag_timeouts"] += 1
            breaker.record_cancelled()
        else:
            breaker.record_failure(f"no answer within {call.budget * 1000:.0f} ms")

    def _add_alias(self, responses: ResponseStore, part: str, raw: str, entry: Entry) -> None:
        add_alias = getattr(responses, "add_alias", None)
        key = (part, raw)
        if add_alias is None or key in self._aliasing or len(self._aliasing) >= _ALIASING_MAX:
            return  # a peak of the same paraphrase writes its alias once

        async def write() -> None:
            try:
                await add_alias(part, raw, entry)
            finally:
                self._aliasing.discard(key)

        self._aliasing.add(key)
        self._in_background(write())

    def _in_background(self, call: Awaitable[Any]) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.store_timeout_ms / 1000):
                    await call

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(_JANITOR_INTERVAL)
            await self.sweep()

    async def sweep(self) -> int:
        """Delete expired vectors now (runs every minute in the background); return how
        many. A response store with an ``expire`` method (the embedded one) sweeps too."""
        responses, vectors = self._stores()
        try:
            async with asyncio.timeout(max(self.settings.store_timeout_ms / 1000, 5.0)):
                sweep_responses = getattr(responses, "expire", None)
                if sweep_responses is not None:
                    await sweep_responses(time.time())
                return await vectors.expire(time.time())
        except Exception as exc:
            log.debug("semcache: expiry sweep failed (%s)", exc)
            return 0
