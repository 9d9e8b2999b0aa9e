"""A run: every pair through a real :class:`SemanticCache`, in a partition of its own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from semcache import plugins
from semcache.cache import FROM_SETTINGS, SemanticCache
from semcache.embedder import BaseEmbedder, resolve_dimension
from semcache.errors import EvaluationError
from semcache.evaluation._pairs import Pair
from semcache.evaluation._report import Metrics, Report, SweepPoint, metrics
from semcache.protocols import Embedder
from semcache.settings import Settings
from semcache.text import normalize_query
from semcache.thresholds import default_threshold
from semcache.types import Matrix
from semcache.verify.levels import load_levels
from semcache.verify.settings import JudgeSettings

__all__ = ["evaluate", "sweep_thresholds"]

_BIG_BUDGET_MS = 10 * 60 * 1000  # a loaded machine must not turn slow calls into misses
_CHUNK = 256


def sweep_thresholds(spec: str) -> list[float]:
    """``"0.70:0.99:0.01"`` (start:stop:step, inclusive) or ``"0.8,0.85,0.9"``."""
    try:
        if ":" in spec:
            start, stop, step = (float(x) for x in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = round((stop - start) / step) + 1
            values = [round(start + i * step, 6) for i in range(count)]
        else:
            values = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise EvaluationError(
            f"bad sweep {spec!r}: use start:stop:step (0.7:0.99:0.01) or a list (0.8,0.9)"
        ) from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise EvaluationError(f"bad sweep {spec!r}: thresholds lie between 0 and 1")
    return sorted(set(values))


class _SharedEmbedder(BaseEmbedder):
    """Lends one embedder to several caches (closing a cache leaves it open) and, with
    ``remember``, keeps vectors so a second pass over the same texts costs no model time."""

    def __init__(self, inner: Embedder, *, remember: bool) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.remember = remember
        self._memo: dict[str, np.ndarray[Any, Any]] = {}

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if not self.remember:
            return await self.inner.embed(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if todo:
            rows = np.asarray(await self.inner.embed(todo), dtype=np.float32)
            for text, row in zip(todo, rows, strict=True):
                self._memo[text] = row
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    async def aclose(self) -> None:
        """The evaluation closes the real embedder once, after every pass."""


async def evaluate(
    pairs: Sequence[Pair],
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    sweep: Sequence[float] = (),
    source: str = "pairs",
    progress: Callable[[str], None] | None = None,
    crowded: bool = False,
) -> Report:
    """Run the pairs through a real :class:`SemanticCache` built from ``settings``.

    Each pair: store ``a`` in a partition of its own, look up ``b``, delete the entry.
    ``crowded``: every ``a`` is stored in one partition first, then every ``b`` is looked
    up, as in a cache that holds many conversations ending in the same follow-up; a
    ``b`` served another pair's answer got a wrong answer, whatever its label: a false
    hit in the metrics, listed in :attr:`Report.foreign_hits`.
    With a ``sweep``, one pass runs at the lowest threshold and a hit at threshold
    ``t`` is a hit there whose similarity reaches ``t`` (with one entry per partition
    that is exactly what a run at ``t`` gives, since the verifier does not depend on
    the threshold); a second pass without the verifier gives the raw-similarity curve.
    """
    base = settings if settings is not None else Settings.from_env()
    if not base.enabled:
        raise EvaluationError(
            "the cache is turned off (SEMANTIC_CACHE_ENABLED): nothing to measure"
        )
    # A judge serves hits below the threshold, and where it is asked depends on the
    # threshold: each threshold of a sweep would need judge calls of its own.
    judged = base.group(JudgeSettings).judge != "none"
    if crowded and sweep:
        raise EvaluationError("a threshold sweep cannot run crowded: evaluate one threshold")
    if judged and sweep:
        raise EvaluationError(
            "a threshold sweep cannot run with a judge (SEMANTIC_CACHE_JUDGE); "
            "evaluate one threshold at a time"
        )
    run_settings = base.replace(
        lookup_timeout_ms=_BIG_BUDGET_MS,
        store_timeout_ms=_BIG_BUDGET_MS,
        embedder_timeout_ms=_BIG_BUDGET_MS,
        batch_max_size=max(base.batch_max_size, 64),
        ttl=3600,  # entries left behind by a crashed run expire on their own
    )
    usable = [p for p in pairs if normalize_query(p.a.query) and normalize_query(p.b.query)]
    skipped = len(pairs) - len(usable)
    started = time.perf_counter()
    own_embedder = embedder is None
    inner = embedder
    if inner is None:
        inner = await asyncio.to_thread(plugins.create_embedder, run_settings)
    await resolve_dimension(inner)  # an embedder passed in may not know its size yet
    memo = _SharedEmbedder(inner, remember=bool(sweep))
    try:
        current = base.threshold
        if current is None:  # as the cache does: fitted levels, else the model's default
            current = _fitted_threshold(base, memo.model_id) or default_threshold(memo.model_id)
        floor = min([current, *sweep])
        verifier_name = base.verifier
        foreign: list[str] = []
        if crowded:
            verified, foreign = await _run_crowded(run_settings, memo, usable, floor, progress)
        else:
            verified = await _run_pass(run_settings, memo, usable, floor, FROM_SETTINGS, progress)
        raw: list[float | None] = []
        if sweep:
            if progress:
                progress("second pass without the verifier")
            raw = await _run_pass(run_settings, memo, usable, floor, None, progress)
    finally:
        if own_embedder:
            await inner.aclose()

    labels = [p.same_answer for p in usable]

    def hits_at(sims: list[float | None], t: float) -> list[bool]:
        return [s is not None and s >= t - 1e-9 for s in sims]

    now = [s is not None for s in verified] if judged else hits_at(verified, current)
    wrong = set(foreign)
    overall = _with_foreign(metrics(labels, now), usable, wrong)
    by_category: dict[str, Metrics] = {}
    categories = sorted({p.category for p in usable if p.category is not None})
    for cat in categories:
        idx = [i for i, p in enumerate(usable) if p.category == cat]
        in_cat = [usable[i] for i in idx]
        found = metrics([labels[i] for i in idx], [now[i] for i in idx])
        by_category[cat] = _with_foreign(found, in_cat, wrong)
    points = [
        SweepPoint(t, metrics(labels, hits_at(verified, t)), metrics(labels, hits_at(raw, t)))
        for t in sweep
    ]
    return Report(
        source=source,
        model_id=memo.model_id,
        threshold=current,
        verifier=verifier_name,
        context_mode=base.context_mode,
        context_threshold=base.context_threshold,
        overall=overall,
        by_category=by_category,
        sweep=points,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        crowded=crowded,
        foreign_hits=foreign,
    )


def _with_foreign(found: Metrics, pairs: Sequence[Pair], foreign: set[str]) -> Metrics:
    """``found`` with the answers served from another pair counted as false hits."""
    extra = sum(p.id in foreign for p in pairs)
    return replace(found, false_hits=found.false_hits + extra) if extra else found


def _fitted_threshold(settings: Settings, model_id: str) -> float | None:
    if not settings.verifier_params:
        return None
    levels = load_levels(settings.verifier_params)
    return levels.threshold if levels.model_id in (None, model_id) else None


async def _run_pass(
    settings: Settings,
    embedder: Embedder,
    pairs: Sequence[Pair],
    threshold: float,
    verifier: str | None,
    progress: Callable[[str], None] | None,
) -> list[float | None]:
    """Similarity of each pair's hit, or ``None`` for a miss."""
    run = uuid.uuid4().hex
    mode = settings.context_mode
    out: list[float | None] = []
    cache = SemanticCache(settings, embedder=embedder, verifier=verifier, threshold=threshold)
    async with cache:
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            own = [f"semcache-eval\x00{run}\x00{start + i}\x00" for i in range(len(chunk))]
            stored = [p.a.keys(mode) for p in chunk]
            asked = [p.b.keys(mode) for p in chunk]
            ids = await asyncio.gather(
                *(
                    cache.store(p.a.query, p.id.encode(), partition=o + part, context=context)
                    for p, o, (part, context) in zip(chunk, own, stored, strict=True)
                )
            )
            hits = await asyncio.gather(
                *(
                    cache.lookup(p.b.query, partition=o + part, context=context)
                    for p, o, (part, context) in zip(chunk, own, asked, strict=True)
                )
            )
            await asyncio.gather(*(cache.delete(i) for i in ids if i is not None))
            _fail_on_errors(cache)
            for p, hit in zip(chunk, hits, strict=True):
                if hit is not None and hit.payload != p.id.encode():
                    raise EvaluationError(f"pair {p.id}: served another pair's entry")
                out.append(None if hit is None else float(hit.similarity))
            if progress and (start // _CHUNK) % 20 == 19:
                progress(f"{start + len(chunk)}/{len(pairs)} pairs")
    return out


async def _run_crowded(
    settings: Settings,
    embedder: Embedder,
    pairs: Sequence[Pair],
    threshold: float,
    progress: Callable[[str], None] | None,
) -> tuple[list[float | None], list[str]]:
    """Every ``a`` in one partition, then every ``b`` looked up: the similarity of each
    pair's hit on its own ``a`` (``None`` for a miss, or for another pair's answer), and
    the ids of the pairs served another pair's answer."""
    shared = f"semcache-eval\x00{uuid.uuid4().hex}\x00crowd\x00"
    mode = settings.context_mode
    by_id = {p.id: p for p in pairs}
    out: list[float | None] = []
    foreign: list[str] = []
    ids: list[str | None] = []
    cache = SemanticCache(settings, embedder=embedder, threshold=threshold)
    async with cache:
        try:
            for start in range(0, len(pairs), _CHUNK):
                chunk = pairs[start : start + _CHUNK]
                ids += await asyncio.gather(
                    *(
                        cache.store(p.a.query, p.id.encode(), partition=shared + part, context=ctx)
                        for p in chunk
                        for part, ctx in [p.a.keys(mode)]
                    )
                )
            for start in range(0, len(pairs), _CHUNK):
                chunk = pairs[start : start + _CHUNK]
                hits = await asyncio.gather(
                    *(
                        cache.lookup(p.b.query, partition=shared + part, context=ctx)
                        for p in chunk
                        for part, ctx in [p.b.keys(mode)]
                    )
                )
                for p, hit in zip(chunk, hits, strict=True):
                    served = None if hit is None else by_id.get(hit.payload.decode())
                    if served is not None and served.id != p.id and not _same_request(served, p):
                        foreign.append(p.id)
                        served = None
                    out.append(None if hit is None or served is None else float(hit.similarity))
                if progress and (start // _CHUNK) % 20 == 19:
                    progress(f"{start + len(chunk)}/{len(pairs)} pairs")
        finally:
            await asyncio.gather(*(cache.delete(i) for i in ids if i is not None))
        _fail_on_errors(cache)
    return out, foreign


def _fail_on_errors(cache: SemanticCache) -> None:
    """A run whose cache failed measures nothing: each failure would pass for a miss."""
    if cache.counters["errors"] or cache.counters["store_failures"]:
        raise EvaluationError(
            "the cache failed during the run (see the log); results would be wrong"
        )


def _same_request(stored: Pair, pair: Pair) -> bool:
    """Two pairs whose ``a`` is the same request (one entry holds the answer of both)."""
    return stored.a == pair.a
