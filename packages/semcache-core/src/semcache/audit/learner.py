"""Per-entry thresholds learned from audit outcomes, under an error bound (vCache-style).

Each entry keeps the similarities of its audited hits with their outcomes. Its
threshold is the lowest similarity ``t`` at which the upper confidence bound of the
error rate of the audited hits at ``t`` or above stays within the operator's bound; a
failed audit at ``s`` therefore lifts the threshold above ``s`` unless enough agreeing
audits at or below ``s`` outweigh it. Where no ``t`` qualifies (few audits: the bound
is conservative) the entry is quarantined: no longer served semantically.

The state travels in the entry's metadata (:data:`STATE_KEY`), so every replica that
shares the stores applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SAMPLES",
    "STATE_KEY",
    "Z_95",
    "AuditState",
    "learn",
    "upper_bound",
]

STATE_KEY = "semcache.audit"
"""The entry metadata key that holds its audit state."""

MAX_SAMPLES = 64
"""Audit outcomes one entry keeps (the latest)."""

Z_95 = 1.6448536269514722
"""One-sided 95% normal quantile of the Wilson bound."""


def upper_bound(failures: int, n: int, z: float = Z_95) -> float:
    """Upper Wilson score bound of an error rate seen as ``failures`` out of ``n``
    (1.0 without observations): conservative for few samples."""
    if n <= 0:
        return 1.0
    p = failures / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z2 / n))


@dataclass(frozen=True, slots=True)
class AuditState:
    """What the audits of one entry found: ``samples`` are ``(similarity, agreed)``;
    ``threshold`` the entry's own bar (``None``: the cache's); ``quarantined``: never
    served semantically again (exact repeats of its own text still are)."""

    samples: tuple[tuple[float, bool], ...] = ()
    threshold: float | None = None
    quarantined: bool = False

    @property
    def failed(self) -> bool:
        """Did any audit of the entry fail (its aliases are then not served as exact hits)?"""
        return self.quarantined or self.threshold is not None

    def allows(self, similarity: float) -> bool:
        """May the entry answer a question this similar?"""
        if self.quarantined:
            return False
        return self.threshold is None or similarity >= self.threshold

    def add(self, similarity: float, agreed: bool, max_rate: float) -> AuditState:
        """This state with one more outcome, its threshold learned again."""
        # Rounded down: a learned bar never exceeds the similarity it was learned from.
        kept = math.floor(float(similarity) * 1e6) / 1e6
        samples = (*self.samples, (kept, bool(agreed)))[-MAX_SAMPLES:]
        threshold, quarantined = learn(samples, max_rate)
        # Quarantine is final for the entry's life: no semantic hit brings new evidence.
        return AuditState(samples, threshold, quarantined or self.quarantined)

    def quarantine(self) -> AuditState:
        return AuditState(self.samples, self.threshold, True)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "s": [[s, 1 if ok else 0] for s, ok in self.samples],
            "t": self.threshold,
            "q": self.quarantined,
        }

    @classmethod
    def of(cls, metadata: Mapping[str, Any] | None) -> AuditState | None:
        """The state an entry's metadata holds, ``None`` for none (or unreadable)."""
        raw = metadata.get(STATE_KEY) if metadata else None
        if not isinstance(raw, Mapping):
            return None
        try:
            samples = tuple((float(s), bool(ok)) for s, ok in raw.get("s", ()))
            threshold = raw.get("t")
            return cls(
                samples,
                None if threshold is None else float(threshold),
                bool(raw.get("q", False)),
            )
        except (TypeError, ValueError):
            return cls(quarantined=True)  # damaged: the safe reading


def learn(samples: Sequence[tuple[float, bool]], max_rate: float) -> tuple[float | None, bool]:
    """``(threshold, quarantined)`` for an entry's audited ``(similarity, agreed)`` pairs.

    ``threshold`` is ``None`` when the cache's own bar already keeps the bound (no
    failure, or enough agreement around the failures); otherwise the lowest audited
    similarity above a failure from which the bound holds. ``quarantined`` when none does.
    """
    if not any(not ok for _, ok in samples):
        return None, False
    if upper_bound(sum(not ok for _, ok in samples), len(samples)) <= max_rate:
        return None, False
    for cut in sorted({s for s, ok in samples if not ok}):
        above = [(s, ok) for s, ok in samples if s > cut]
        wrong = sum(not ok for _, ok in above)
        if above and upper_bound(wrong, len(above)) <= max_rate:
            return min(s for s, _ in above), False
    return None, True
