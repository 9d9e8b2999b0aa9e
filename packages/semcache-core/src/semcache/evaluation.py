"""Hit quality: for labelled pairs, store ``a``, look up ``b``, count right and wrong hits.

Input is JSON lines, one pair each::

    {"a": "cached question", "b": "new question", "same_answer": true, "category": "..."}

``a`` and ``b`` may also be conversations (lists of ``{"role", "content"}`` messages):
the last user turn is the question, the earlier turns are the context (passed as
``context=``, so the context mode setting decides how they match) and system messages
go into the partition, as a middleware does it.

Every pair gets its own partition in the configured cache (any embedder, any stores),
so pairs never see each other; the entries are deleted as the run goes.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semcache import plugins
from semcache.cache import FROM_SETTINGS, SemanticCache
from semcache.embedder import BaseEmbedder
from semcache.errors import SemcacheError
from semcache.protocols import Embedder
from semcache.settings import Settings
from semcache.text import normalize_query
from semcache.thresholds import default_threshold
from semcache.types import Matrix

__all__ = [
    "EvaluationError",
    "Metrics",
    "Pair",
    "Report",
    "Side",
    "SweepPoint",
    "evaluate",
    "load_pairs",
    "metrics",
    "parse_pair",
    "plot_report",
    "require_matplotlib",
    "split_conversation",
    "sweep_thresholds",
]

_BIG_BUDGET_MS = 10 * 60 * 1000  # a loaded machine must not turn slow calls into misses
_CHUNK = 256


class EvaluationError(SemcacheError):
    """The input is malformed or the cache failed during a run (results would be wrong)."""


@dataclass(frozen=True, slots=True)
class Side:
    """One request of a pair: the question, the earlier turns, the system prompt."""

    query: str
    context: str | None = None
    system: str = ""


@dataclass(frozen=True, slots=True)
class Pair:
    """A cached request ``a``, a new request ``b``, and whether ``a``'s answer fits ``b``."""

    id: str
    a: Side
    b: Side
    same_answer: bool
    category: str | None = None


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


@dataclass(frozen=True, slots=True)
class SweepPoint:
    threshold: float
    verified: Metrics
    """With the configured verifier (and context matching)."""
    raw: Metrics
    """Similarity alone: no verifier."""


@dataclass(slots=True)
class Report:
    """Results of :func:`evaluate`."""

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
                    f"{p.threshold:9.3f}   {_pct(v.precision):>9}  {_pct(v.recall):>6}  "
                    f"{_pct(v.false_hit_rate):>9} |  {_pct(r.precision):>13}  "
                    f"{_pct(r.recall):>10}  {_pct(r.false_hit_rate):>13}{mark}"
                )
        lines.append("")
        lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


# -- input --------------------------------------------------------------------------


def split_conversation(messages: Sequence[Any]) -> Side:
    """Question, context and system prompt of a chat: the last user turn is the question."""
    turns: list[tuple[str, str]] = []
    system: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise EvaluationError(f"a chat message needs a role and content: {message!r}")
        role, text = str(message["role"]), _content_text(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append((role, text))
    last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
    if last_user is None:
        raise EvaluationError("a conversation needs at least one user message")
    earlier = turns[:last_user]
    context = "\n".join(f"{role}: {text}" for role, text in earlier) or None
    return Side(turns[last_user][1], context, "\n".join(system))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return "" if content is None else str(content)


def _side(value: Any, where: str) -> Side:
    if isinstance(value, str):
        return Side(value)
    if isinstance(value, list):
        return split_conversation(value)
    raise EvaluationError(f"{where}: expected a string or a list of chat messages")


def parse_pair(obj: Any, index: int = 0) -> Pair:
    """One input line (already decoded) as a :class:`Pair`."""
    if not isinstance(obj, dict):
        raise EvaluationError(f"pair {index}: expected a JSON object")
    missing = [k for k in ("a", "b", "same_answer") if k not in obj]
    if missing:
        raise EvaluationError(f"pair {index}: missing {', '.join(missing)}")
    label = obj["same_answer"]
    if not isinstance(label, bool):
        raise EvaluationError(f"pair {index}: same_answer must be true or false")
    category = obj.get("category")
    return Pair(
        id=str(obj.get("id", index)),
        a=_side(obj["a"], f"pair {index} a"),
        b=_side(obj["b"], f"pair {index} b"),
        same_answer=label,
        category=None if category is None else str(category),
    )


def load_pairs(
    path: str | Path,
    *,
    limit: int | None = None,
    sample: bool = False,
    seed: int = 0,
) -> list[Pair]:
    """Read a JSON-lines file; ``limit`` keeps the first N pairs, or N at random with
    ``sample`` (reproducible through ``seed``)."""
    pairs = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvaluationError(f"{path}:{n}: not JSON ({exc.msg})") from None
                pairs.append(parse_pair(obj, n))
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if limit is not None and limit < len(pairs):
        pairs = random.Random(seed).sample(pairs, limit) if sample else pairs[:limit]
    return pairs


# -- metrics ------------------------------------------------------------------------


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


# -- running ------------------------------------------------------------------------


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
) -> Report:
    """Run the pairs through a real :class:`SemanticCache` built from ``settings``.

    Each pair: store ``a`` in a partition of its own, look up ``b``, delete the entry.
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
    memo = _SharedEmbedder(inner, remember=bool(sweep))
    try:
        current = base.threshold
        if current is None:  # as the cache does: the model's measured default
            current = default_threshold(memo.model_id)
        floor = min([current, *sweep])
        verifier_name = base.verifier
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

    now = hits_at(verified, current)
    overall = metrics(labels, now)
    by_category: dict[str, Metrics] = {}
    categories = sorted({p.category for p in usable if p.category is not None})
    for cat in categories:
        idx = [i for i, p in enumerate(usable) if p.category == cat]
        by_category[cat] = metrics([labels[i] for i in idx], [now[i] for i in idx])
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
    )


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
    out: list[float | None] = []
    cache = SemanticCache(settings, embedder=embedder, verifier=verifier, threshold=threshold)
    async with cache:
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            parts = [f"semcache-eval\x00{run}\x00{start + i}" for i in range(len(chunk))]
            ids = await asyncio.gather(
                *(
                    cache.store(
                        p.a.query,
                        p.id.encode(),
                        partition=part + "\x00" + p.a.system,
                        context=p.a.context,
                    )
                    for p, part in zip(chunk, parts, strict=True)
                )
            )
            hits = await asyncio.gather(
                *(
                    cache.lookup(
                        p.b.query, partition=part + "\x00" + p.b.system, context=p.b.context
                    )
                    for p, part in zip(chunk, parts, strict=True)
                )
            )
            await asyncio.gather(*(cache.delete(i) for i in ids if i is not None))
            if cache.counters["errors"] or cache.counters["store_failures"]:
                raise EvaluationError(
                    "the cache failed during the run (see the log); results would be wrong"
                )
            for p, hit in zip(chunk, hits, strict=True):
                if hit is not None and hit.payload != p.id.encode():
                    raise EvaluationError(f"pair {p.id}: served another pair's entry")
                out.append(None if hit is None else float(hit.similarity))
            if progress and (start // _CHUNK) % 20 == 19:
                progress(f"{start + len(chunk)}/{len(pairs)} pairs")
    return out


# -- chart --------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Raise a clear error when the chart's optional dependency is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EvaluationError(
            "--plot needs matplotlib: pip install 'semcache-core[plot]'"
        ) from None


def plot_report(report: Report, path: str | Path) -> None:
    """Precision, recall and false-hit rate against the threshold, with and without the
    verifier (needs matplotlib: ``pip install 'semcache-core[plot]'``)."""
    if not report.sweep:
        raise EvaluationError("a chart needs a threshold sweep")
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.threshold for p in report.sweep]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    series = [
        (
            "precision",
            "#1f77b4",
            [p.verified.precision for p in report.sweep],
            [p.raw.precision for p in report.sweep],
        ),
        (
            "recall",
            "#2ca02c",
            [p.verified.recall for p in report.sweep],
            [p.raw.recall for p in report.sweep],
        ),
        (
            "false-hit rate",
            "#d62728",
            [p.verified.false_hit_rate for p in report.sweep],
            [p.raw.false_hit_rate for p in report.sweep],
        ),
    ]
    for name, color, with_verifier, raw in series:
        ax.plot(xs, with_verifier, color=color, linewidth=2.2, label=f"{name} (verifier)")
        ax.plot(
            xs,
            raw,
            color=color,
            linewidth=1.4,
            linestyle="--",
            alpha=0.8,
            label=f"{name} (similarity only)",
        )
    ax.axvline(report.threshold, color="0.35", linewidth=1, linestyle=":")
    ax.annotate(
        f"threshold {report.threshold:.2f}\nprecision {_pct(report.overall.precision)}\n"
        f"recall {_pct(report.overall.recall)}",
        xy=(report.threshold, 0.5),
        xytext=(6, 0),
        textcoords="offset points",
        fontsize=9,
        color="0.2",
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8"},
    )
    ax.set_xlim(min(xs), max(xs))
    ax.set_ylim(-0.02, 1.03)  # keep a rate of exactly 0 or 1 visible
    ax.set_xlabel("similarity threshold")
    ax.set_ylabel("rate")
    ax.grid(True, alpha=0.3)
    ax.set_title(
        f"Hit quality on {Path(report.source).name} ({report.overall.pairs} pairs)\n"
        f"{report.model_id}, verifier: {report.verifier}",
        fontsize=11,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- formatting helpers ---------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


def _metrics_header(label: str, width: int) -> str:
    return (
        f"{label:<{width}} {'pairs':>6} {'pos':>6} {'hits':>6} {'hit rate':>9} "
        f"{'precision':>9} {'recall':>7} {'false-hit':>9}"
    )


def _metrics_row(label: str, m: Metrics, width: int) -> str:
    return (
        f"{label:<{width}} {m.pairs:>6} {m.positives:>6} {m.hits:>6} {_pct(m.hit_rate):>9} "
        f"{_pct(m.precision):>9} {_pct(m.recall):>7} {_pct(m.false_hit_rate):>9}"
    )
