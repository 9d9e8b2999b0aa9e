"""The default verifier's similarity levels: a file to load, and a fit on labelled pairs.

The hand-set levels (threshold 0.85, topic-rule top 0.92, step 0.025, question gap 0.02)
were measured for all-MiniLM-L6-v2. Another model's similarities run higher or lower, and
one application's traffic differs from another's: ``semcache tune`` fits the levels on
labelled pairs and writes a small JSON file; ``SEMANTIC_CACHE_VERIFIER_PARAMS`` loads it.

The fit never touches the hard rules (negation, numbers, dates, names...): those reject
at any similarity. It only chooses how much similarity the rest needs, maximising the
share of right answers served while each labelled set's false-hit rate stays within a
bound (by default: what the current levels serve on that set, so safety never drops).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from semcache.errors import SettingsError

__all__ = [
    "LEVELS_FORMAT",
    "Levels",
    "ShapeTable",
    "fit_levels",
    "load_levels",
    "rates",
    "served",
]

LEVELS_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Levels:
    """Similarity levels of the default verifier, and the cache threshold they go with."""

    threshold: float = 0.85
    top: float = 0.92
    step: float = 0.025
    question_gap: float = 0.02
    margin: float = 0.01
    model_id: str | None = None
    """The embedder the levels were fitted for; a file for another model is not applied."""
    notes: Mapping[str, Any] = field(default_factory=dict)
    """What the fit saw and how it cross-validated (written by ``semcache tune``)."""

    def verifier_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`semcache.verify.DefaultVerifier`."""
        return {
            "top": self.top,
            "step": self.step,
            "question_gap": self.question_gap,
            "threshold": self.threshold,
            "margin": self.margin,
        }

    def to_json(self) -> str:
        data = {"format": LEVELS_FORMAT, **asdict(self)}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"


_NUMBERS = ("threshold", "top", "step", "question_gap", "margin")


def load_levels(path: str | Path) -> Levels:
    """Read a levels file; a missing, unreadable or implausible file is a SettingsError
    naming the path (a typo must not silently fall back to other levels)."""
    where = Path(path)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"verifier levels file {where}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != LEVELS_FORMAT:
        raise SettingsError(
            f"verifier levels file {where}: not a levels file of format {LEVELS_FORMAT} "
            "(write one with `semcache tune`)"
        )
    values: dict[str, Any] = {}
    for name in _NUMBERS:
        value = data.get(name, getattr(Levels, name))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise SettingsError(f"verifier levels file {where}: {name} must lie in [0, 1]")
        values[name] = float(value)
    model_id = data.get("model_id")
    if model_id is not None and not isinstance(model_id, str):
        raise SettingsError(f"verifier levels file {where}: model_id must be a string")
    notes = data.get("notes", {})
    return Levels(**values, model_id=model_id, notes=notes if isinstance(notes, dict) else {})


@dataclass(frozen=True, slots=True)
class ShapeTable:
    """Labelled pairs reduced to what the levels act on (one row per pair)."""

    similarity: np.ndarray[Any, np.dtype[np.float64]]
    hard: np.ndarray[Any, np.dtype[np.bool_]]
    """A rule that rejects at any similarity fired (no level can serve the pair)."""
    edits: np.ndarray[Any, np.dtype[np.float64]]
    other_question: np.ndarray[Any, np.dtype[np.bool_]]
    same_answer: np.ndarray[Any, np.dtype[np.bool_]]

    def __len__(self) -> int:
        return len(self.similarity)

    def take(self, rows: Sequence[int] | np.ndarray[Any, Any]) -> ShapeTable:
        idx = np.asarray(rows, dtype=np.intp)
        return ShapeTable(
            self.similarity[idx],
            self.hard[idx],
            self.edits[idx],
            self.other_question[idx],
            self.same_answer[idx],
        )


def served(table: ShapeTable, levels: Levels) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which pairs the default verifier serves at ``levels`` (``DefaultVerifier.check``
    with the cache's threshold, vectorised)."""
    e, oq = table.edits, table.other_question
    gap = np.where(oq, levels.question_gap, 0.0)
    floor = levels.threshold + levels.margin
    needed = np.where(
        e <= 0,
        np.where(oq, levels.top + levels.question_gap, 0.0),
        np.maximum(levels.top - levels.step * (e - 1), floor) + gap,
    )
    s = table.similarity
    result: np.ndarray[Any, np.dtype[np.bool_]] = (
        (s >= levels.threshold) & ~table.hard & (s >= needed)
    )
    return result


def rates(
    same_answer: np.ndarray[Any, np.dtype[np.bool_]], hits: np.ndarray[Any, np.dtype[np.bool_]]
) -> tuple[float, float, float]:
    """(recall, false-hit rate, precision) of ``hits``; an empty class counts as 0."""
    right = int((hits & same_answer).sum())
    wrong = int((hits & ~same_answer).sum())
    positives = int(same_answer.sum())
    negatives = len(same_answer) - positives
    return (
        right / positives if positives else 0.0,
        wrong / negatives if negatives else 0.0,
        right / (right + wrong) if right + wrong else 0.0,
    )


_GRID = {
    "threshold": [round(0.60 + 0.01 * i, 2) for i in range(36)],  # 0.60 .. 0.95
    "top": [round(0.84 + 0.01 * i, 2) for i in range(15)],  # 0.84 .. 0.98
    "step": [0.0, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05],
    "question_gap": [0.0, 0.01, 0.02, 0.03, 0.05],
}


def fit_levels(
    sets: Mapping[str, ShapeTable],
    max_false_hit_rate: Mapping[str, float],
    *,
    start: Levels | None = None,
    grid: Mapping[str, Iterable[float]] | None = None,
) -> Levels:
    """The levels that serve the most right answers (mean recall over the sets) while
    each set's false-hit rate stays within its bound; ties keep the higher threshold.
    ``start`` (default: the hand-set levels) is the answer when nothing beats it."""
    base = start if start is not None else Levels()
    axes = {k: list(v) for k, v in (grid or _GRID).items()}
    best, best_recall = base, _mean_recall(sets, base, max_false_hit_rate)
    # The threshold sorts first (descending) so that an equal recall keeps the safer bar.
    names = ("threshold", "top", "step", "question_gap")
    for combo in itertools.product(*(sorted(axes[n], reverse=n == "threshold") for n in names)):
        threshold, top, step, question_gap = combo
        candidate = replace(
            base, threshold=threshold, top=top, step=step, question_gap=question_gap
        )
        recall = _mean_recall(sets, candidate, max_false_hit_rate)
        if recall is not None and (best_recall is None or recall > best_recall + 1e-12):
            best, best_recall = candidate, recall
    return best


def _mean_recall(
    sets: Mapping[str, ShapeTable], levels: Levels, bounds: Mapping[str, float]
) -> float | None:
    """Mean recall over the sets, or ``None`` if one set's false-hit rate is over its bound."""
    recalls = []
    for name, table in sets.items():
        recall, false_hits, _ = rates(table.same_answer, served(table, levels))
        if false_hits > bounds.get(name, 1.0) + 1e-12:
            return None
        recalls.append(recall)
    return sum(recalls) / len(recalls) if recalls else None
