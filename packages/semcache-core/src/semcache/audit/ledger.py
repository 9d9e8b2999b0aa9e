"""Audit outcomes counted for metrics: the live false-hit rate overall, per route and
tenant, and per verdict path; audits started, skipped, without outcome; feedback
reports. Labels are capped as the savings' are (:class:`~semcache.telemetry.savings.SavingsLedger`)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from semcache.telemetry.savings import OTHER

__all__ = ["EVENTS", "AuditLedger", "Audited"]

EVENTS = (
    "sampled",
    "started",
    "agreed",
    "wrong",
    "no_outcome",
    "skipped_budget",
    "skipped_spend",
    "feedback_wrong",
    "feedback_failed",
    "feedback_right",
)
"""What the ledger counts, in :meth:`AuditLedger.events`."""

_RECENT_HITS = 4096


@dataclass(frozen=True, slots=True)
class Audited:
    """A served semantic hit as the audit sees it."""

    entry_id: str
    similarity: float
    route: str
    tenant: str
    rule: str
    """The verdict path that let it through (see :attr:`semcache.Hit.verdict`)."""
    version: str | None = None
    """The answer of the entry that was served (:attr:`semcache.Hit.version`): its
    outcome is taught to that answer only, not to one stored since."""


class AuditLedger:
    """Thread-safe counters of audit outcomes; ``max_labels`` caps each label's values."""

    def __init__(self, max_labels: int = 100) -> None:
        self.max_labels = max_labels
        self._seen: dict[str, set[str]] = {"route": set(), "tenant": set(), "rule": set()}
        self._events: Counter[str] = Counter()
        # (route, tenant, rule, outcome) -> audits; outcome "agreed" or "wrong".
        self._outcomes: Counter[tuple[str, str, str, str]] = Counter()
        self._recent: OrderedDict[str, Audited] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, event: str, n: int = 1) -> None:
        with self._lock:
            self._events[event] += n

    def served(self, hit: Audited) -> None:
        """Remember a served semantic hit: feedback on its entry finds its labels."""
        with self._lock:
            self._recent[hit.entry_id] = hit
            self._recent.move_to_end(hit.entry_id)
            if len(self._recent) > _RECENT_HITS:
                self._recent.popitem(last=False)

    def last_served(self, entry_id: str) -> Audited | None:
        with self._lock:
            return self._recent.get(entry_id)

    def outcome(self, hit: Audited, agreed: bool) -> None:
        with self._lock:
            key = (
                self._label("route", hit.route),
                self._label("tenant", hit.tenant),
                self._label("rule", hit.rule),
                "agreed" if agreed else "wrong",
            )
            self._outcomes[key] += 1
            self._events["agreed" if agreed else "wrong"] += 1

    def _label(self, name: str, value: str) -> str:
        seen = self._seen[name]
        if value in seen:
            return value
        if len(seen) >= self.max_labels:
            return OTHER
        seen.add(value)
        return value

    def events(self) -> dict[str, int]:
        with self._lock:
            return {name: self._events.get(name, 0) for name in EVENTS}

    def outcomes(self) -> list[tuple[tuple[str, str, str, str], int]]:
        """``((route, tenant, rule, outcome), audits)`` rows."""
        with self._lock:
            return sorted(self._outcomes.items())

    def false_hit_rates(self, by: tuple[str, ...] = ()) -> dict[tuple[str, ...], float]:
        """Wrong audited hits over audited hits, grouped by the labels named in ``by``
        (``route``, ``tenant``, ``rule``; none: one overall rate, key ``()``)."""
        index = {"route": 0, "tenant": 1, "rule": 2}
        totals: dict[tuple[str, ...], list[int]] = {}
        for key, n in self.outcomes():
            group = tuple(key[index[name]] for name in by)
            row = totals.setdefault(group, [0, 0])
            row[0] += n if key[3] == "wrong" else 0
            row[1] += n
        return {group: wrong / total for group, (wrong, total) in totals.items() if total}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the events and the false-hit rates overall, per route, tenant, rule."""
        return {
            "events": self.events(),
            "false_hit_rate": self.false_hit_rates().get(()),
            **{
                f"false_hit_rate_by_{name}": {
                    k[0]: round(v, 6) for k, v in self.false_hit_rates((name,)).items()
                }
                for name in ("route", "tenant", "rule")
            },
        }
