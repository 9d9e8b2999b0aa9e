"""``semcache tune``: fit the default verifier's levels on labelled pairs, cross-validated.

Every pair is reduced once to what the levels act on (similarity, a hard rule or not,
differing words, question kinds: :meth:`DefaultVerifier.shape`), so the fit and its
cross-validation run on arrays, not through a cache. The reported numbers are always
out-of-fold: each fold is scored with levels fitted on the other folds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from semcache import plugins
from semcache.embedder import resolve_dimension
from semcache.errors import EvaluationError
from semcache.evaluation._pairs import Pair
from semcache.protocols import Embedder
from semcache.settings import Settings
from semcache.text import normalize_query
from semcache.thresholds import default_threshold
from semcache.verify import DefaultVerifier
from semcache.verify.levels import Levels, ShapeTable, fit_levels, rates, served

__all__ = ["SetScore", "TuneResult", "shape_table", "tune"]

_BATCH = 256


@dataclass(frozen=True, slots=True)
class SetScore:
    """Out-of-fold numbers on one labelled set, for the current and the fitted levels."""

    name: str
    pairs: int
    skipped: int
    current: tuple[float, float, float]
    """(recall, false-hit rate, precision) at the levels in use before the fit."""
    fitted: tuple[float, float, float]
    bound: float
    """The false-hit rate the fit was allowed on this set."""


@dataclass(frozen=True, slots=True)
class TuneResult:
    levels: Levels
    """Fitted on all the pairs (what the file holds)."""
    current: Levels
    scores: list[SetScore]
    folds: int
    fold_levels: list[Levels]

    def format(self) -> str:
        lv, cur = self.levels, self.current
        lines = [
            f"model: {lv.model_id}",
            "levels            current  fitted",
            f"  threshold       {cur.threshold:7.3f}  {lv.threshold:6.3f}",
            f"  top             {cur.top:7.3f}  {lv.top:6.3f}",
            f"  step            {cur.step:7.3f}  {lv.step:6.3f}",
            f"  question_gap    {cur.question_gap:7.3f}  {lv.question_gap:6.3f}",
            "",
            f"{self.folds}-fold cross-validation (each fold scored with levels fitted on the others):",
            "set                pairs  recall now -> fitted  false hits now -> fitted  "
            "precision now -> fitted",
        ]
        for s in self.scores:
            lines.append(
                f"{s.name[:18]:18} {s.pairs:5d}  {s.current[0]:10.3f} -> {s.fitted[0]:6.3f}  "
                f"{s.current[1]:14.3f} -> {s.fitted[1]:6.3f}  "
                f"{s.current[2]:13.3f} -> {s.fitted[2]:6.3f}"
            )
        spread = {
            name: (
                min(getattr(f, name) for f in self.fold_levels),
                max(getattr(f, name) for f in self.fold_levels),
            )
            for name in ("threshold", "top", "step", "question_gap")
        }
        lines.append(
            "levels across folds: "
            + ", ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in spread.items())
        )
        return "\n".join(lines)

    def notes(self) -> dict[str, Any]:
        return {
            "cross_validation": {
                "folds": self.folds,
                "sets": [
                    {
                        "name": s.name,
                        "pairs": s.pairs,
                        "max_false_hit_rate": round(s.bound, 4),
                        "current": dict(
                            zip(
                                ("recall", "false_hit_rate", "precision"),
                                (round(x, 4) for x in s.current),
                                strict=True,
                            )
                        ),
                        "fitted": dict(
                            zip(
                                ("recall", "false_hit_rate", "precision"),
                                (round(x, 4) for x in s.fitted),
                                strict=True,
                            )
                        ),
                    }
                    for s in self.scores
                ],
            }
        }


async def shape_table(
    pairs: Sequence[Pair],
    embedder: Embedder,
    verifier: DefaultVerifier,
    progress: Callable[[str], None] | None = None,
) -> tuple[ShapeTable, int]:
    """The pairs as a :class:`ShapeTable`, and how many were skipped (an empty question,
    or earlier turns: the levels are fitted on questions, contexts match on their own)."""
    usable = [
        p
        for p in pairs
        if p.a.context is None
        and p.b.context is None
        and normalize_query(p.a.query)
        and normalize_query(p.b.query)
    ]
    texts = sorted({normalize_query(t) for p in usable for t in (p.a.query, p.b.query)})
    index = {t: i for i, t in enumerate(texts)}
    rows = []
    for start in range(0, len(texts), _BATCH):
        rows.append(np.asarray(await embedder.embed(texts[start : start + _BATCH]), np.float64))
        if progress and (start // _BATCH) % 40 == 39:
            progress(f"embedded {start + _BATCH}/{len(texts)} texts")
    matrix = np.concatenate(rows) if rows else np.zeros((0, 1))
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    sims, hard, edits, other, labels = [], [], [], [], []
    for p in usable:
        query, cached = normalize_query(p.b.query), normalize_query(p.a.query)
        shape = verifier.shape(query, cached)
        sims.append(float(matrix[index[query]] @ matrix[index[cached]]))
        hard.append(shape.rule is not None)
        edits.append(shape.edits)
        other.append(shape.other_question)
        labels.append(p.same_answer)
    table = ShapeTable(
        np.array(sims, dtype=np.float64),
        np.array(hard, dtype=bool),
        np.array(edits, dtype=np.float64),
        np.array(other, dtype=bool),
        np.array(labels, dtype=bool),
    )
    return table, len(pairs) - len(usable)


def _folds(table: ShapeTable, k: int, seed: int) -> list[np.ndarray[Any, Any]]:
    """``k`` folds with both labels spread evenly (stratified)."""
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    for label in (True, False):
        rows = np.flatnonzero(table.same_answer == label)
        rng.shuffle(rows)
        for i, row in enumerate(rows):
            out[i % k].append(int(row))
    return [np.array(sorted(f), dtype=np.intp) for f in out]


async def tune(
    named_pairs: Mapping[str, Sequence[Pair]],
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    max_false_hit_rate: float | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Fit the levels on every set, and cross-validate the fit.

    Each set's false-hit rate may not exceed ``max_false_hit_rate``, or, when that is
    ``None``, what the current levels serve on it (the fit may then only serve more right
    answers at the same safety). The objective is the mean recall over the sets, so a
    small trap set weighs as much as a big set of everyday pairs.
    """
    if folds < 2:
        raise EvaluationError("cross-validation needs at least 2 folds")
    base = settings if settings is not None else Settings.from_env()
    inner = embedder
    if inner is None:
        inner = await asyncio.to_thread(plugins.create_embedder, base)
    try:
        await resolve_dimension(inner)
        model_id = inner.model_id
        threshold = base.threshold if base.threshold is not None else default_threshold(model_id)
        current = Levels(threshold=threshold, model_id=model_id)
        verifier = DefaultVerifier(**current.verifier_options())
        tables: dict[str, ShapeTable] = {}
        skipped: dict[str, int] = {}
        for name, pairs in named_pairs.items():
            if progress:
                progress(f"{name}: {len(pairs)} pairs")
            tables[name], skipped[name] = await shape_table(pairs, inner, verifier, progress)
    finally:
        if embedder is None:
            await inner.aclose()
    for name, table in tables.items():
        if not table.same_answer.any() or table.same_answer.all():
            raise EvaluationError(f"{name}: needs pairs of both labels to fit and score on")
        if len(table) < folds:
            raise EvaluationError(f"{name}: fewer pairs ({len(table)}) than folds ({folds})")

    def bounds_for(sets: Mapping[str, ShapeTable]) -> dict[str, float]:
        if max_false_hit_rate is not None:
            return {name: max_false_hit_rate for name in sets}
        return {name: rates(t.same_answer, served(t, current))[1] for name, t in sets.items()}

    split = {name: _folds(t, folds, seed) for name, t in tables.items()}
    oof = {name: np.zeros(len(t), dtype=bool) for name, t in tables.items()}
    fold_levels = []
    for k in range(folds):
        train = {
            name: t.take(np.concatenate([f for i, f in enumerate(split[name]) if i != k]))
            for name, t in tables.items()
        }
        fitted = fit_levels(train, bounds_for(train), start=current)
        fold_levels.append(fitted)
        for name, t in tables.items():
            test = split[name][k]
            oof[name][test] = served(t.take(test), fitted)
        if progress:
            progress(
                f"fold {k + 1}/{folds}: threshold {fitted.threshold:.2f}, top {fitted.top:.2f}"
            )
    whole_bounds = bounds_for(tables)
    levels = fit_levels(tables, whole_bounds, start=current)
    scores = [
        SetScore(
            name,
            len(t),
            skipped[name],
            rates(t.same_answer, served(t, current)),
            rates(t.same_answer, oof[name]),
            whole_bounds[name],
        )
        for name, t in tables.items()
    ]
    result = TuneResult(levels, current, scores, folds, fold_levels)
    return replace(result, levels=replace(levels, model_id=model_id, notes=result.notes()))
