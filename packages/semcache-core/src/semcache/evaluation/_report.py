"""Counts and rates of a run, and the report that prints them as tables or JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Metrics", "Report", "SweepPoint", "metrics", "pct"]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Counts of one evaluation; the rates are ``nan`` when undefined."""

    pairs: int
    positives: int
    true_hits: int
    false_hits: int

    @property
    def negatives(self) -> int:
        return self.pairs - self.positives

    @property
    def hits(self) -> int:
        return self.true_hits + self.false_hits

    @property
    def hit_rate(self) -> float:
        return _ratio(self.hits, self.pairs)

    @property
    def precision(self) -> float:
        """Of the requests served from cache, the share that got a right answer."""
        return _ratio(self.true_hits, self.hits)

    @property
    def recall(self) -> float:
        """Of the requests that could have been served, the share that were."""
        return _ratio(self.true_hits, self.positives)

    @property
    def false_hit_rate(self) -> float:
        """Of the requests that needed another answer, the share served a wrong one."""
        return _ratio(self.false_hits, self.negatives)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "positives": self.positives,
            "negatives": self.negatives,
            "hits": self.hits,
            "true_hits": self.true_hits,
            "false_hits": self.false_hits,
            "hit_rate": _json_float(self.hit_rate),
            "precision": _json_float(self.precision),
            "recall": _json_float(self.recall),
            "false_hit_rate": _json_float(self.false_hit_rate),
        }


def metrics(labels: Iterable[bool], hits: Iterable[bool]) -> Metrics:
    """Counts for parallel sequences of ``same_answer`` labels and hit flags."""
    pairs = positives = true_hits = false_hits = 0
    for label, hit in zip(labels, hits, strict=True):
        pairs += 1
        positives += label
        if hit:
            if label:
                true_hits += 1
            else:
                false_hits += 1
    return Metrics(pairs, positives, true_hits, false_hits)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    threshold: float
    verified: Metrics
    """With the configured verifier (and context matching)."""
    raw: Metrics
    """Similarity alone: no verifier."""


@dataclass(slots=True)
class Report:
    """Results of :func:`semcache.evaluation.evaluate`."""

    source: str
    model_id: str
    threshold: float
    verifier: str
    context_mode: str
    context_threshold: float
    overall: Metrics
    by_category: dict[str, Metrics]
    sweep: list[SweepPoint] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0
    crowded: bool = False
    """Every cached request in one partition (``evaluate(crowded=True)``)."""
    foreign_hits: list[str] = field(default_factory=list)
    """Crowded runs: the pairs served another pair's answer (wrong answers, counted as
    false hits in the metrics, whatever the pair's label)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model_id": self.model_id,
            "threshold": self.threshold,
            "verifier": self.verifier,
            "context_mode": self.context_mode,
            "context_threshold": self.context_threshold,
            "overall": self.overall.as_dict(),
            "by_category": {k: m.as_dict() for k, m in self.by_category.items()},
            "sweep": [
                {"threshold": p.threshold, "verified": p.verified.as_dict(), "raw": p.raw.as_dict()}
                for p in self.sweep
            ],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "crowded": self.crowded,
            "foreign_hits": list(self.foreign_hits),
        }

    def format(self) -> str:
        """Plain-text tables for a terminal."""
        lines = [
            f"pairs: {self.overall.pairs} from {self.source}"
            + (f" ({self.skipped} skipped: empty question)" if self.skipped else ""),
            f"model: {self.model_id}  threshold: {self.threshold:.3f}  verifier: {self.verifier}"
            f"  context: {self.context_mode}"
            + (f" ({self.context_threshold:.2f})" if self.context_mode == "semantic" else ""),
            "",
            _metrics_header("", 22),
            _metrics_row("overall", self.overall, 22),
        ]
        if self.by_category:
            lines.append("")
            lines.append(_metrics_header("category", 22))
            for name, m in sorted(self.by_category.items()):
                lines.append(_metrics_row(name, m, 22))
        if self.sweep:
            lines += [
                "",
                "threshold   precision  recall  false-hit |  raw precision  raw recall  raw false-hit",
            ]
            for p in self.sweep:
                v, r = p.verified, p.raw
                mark = " <" if math.isclose(p.threshold, self.threshold, abs_tol=5e-4) else ""
                lines.append(
                    f"{p.threshold:9.3f}   {pct(v.precision):>9}  {pct(v.recall):>6}  "
                    f"{pct(v.false_hit_rate):>9} |  {pct(r.precision):>13}  "
                    f"{pct(r.recall):>10}  {pct(r.false_hit_rate):>13}{mark}"
                )
        if self.crowded:
            lines += [
                "",
                "crowded: every cached request in one partition; served another pair's "
                f"answer: {len(self.foreign_hits)}"
                + (f" ({', '.join(self.foreign_hits)})" if self.foreign_hits else ""),
            ]
        lines.append("")
        lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


def pct(x: float) -> str:
    """A rate with three decimals, ``-`` when undefined."""
    return "-" if math.isnan(x) else f"{x:.3f}"


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _metrics_header(label: str, width: int) -> str:
    return (
        f"{label:<{width}} {'pairs':>6} {'pos':>6} {'hits':>6} {'hit rate':>9} "
        f"{'precision':>9} {'recall':>7} {'false-hit':>9}"
    )


def _metrics_row(label: str, m: Metrics, width: int) -> str:
    return (
        f"{label:<{width}} {m.pairs:>6} {m.positives:>6} {m.hits:>6} {pct(m.hit_rate):>9} "
        f"{pct(m.precision):>9} {pct(m.recall):>7} {pct(m.false_hit_rate):>9}"
    )
