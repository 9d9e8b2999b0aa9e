"""What hits saved: tokens, upstream seconds and dollars, per model, route and tenant.

A hit serves an answer the upstream once produced; the usage the upstream reported for
it (kept with the entry) and the seconds it took are what the hit did not spend again.
Labels are capped: past ``max_labels`` distinct values of one label, further values
count under :data:`OTHER`, so a flood of tenants or paths cannot grow the metrics
without bound.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from semcache.telemetry import otel

__all__ = ["OTHER", "Saving", "SavingsLedger"]

OTHER = "other"
"""The label value of everything past a label's cap."""

UNKNOWN = "unknown"
"""The model label when neither the request nor the answer names one."""


@dataclass(frozen=True, slots=True)
class Saving:
    """What one hit saved."""

    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    usd: float | None = None
    """``None`` when the model has no price."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class _Totals:
    hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    usd: float = 0.0
    unpriced_hits: int = 0

    def add(self, saving: Saving) -> None:
        self.hits += 1
        self.input_tokens += saving.input_tokens
        self.output_tokens += saving.output_tokens
        self.seconds += saving.seconds
        if saving.usd is None:
            self.unpriced_hits += 1
        else:
            self.usd += saving.usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.input_tokens + self.output_tokens,
            "seconds": round(self.seconds, 6),
            "usd": round(self.usd, 8),
            "unpriced_hits": self.unpriced_hits,
        }


@dataclass(slots=True)
class _Label:
    """The values of one label seen so far, up to its cap."""

    cap: int
    seen: set[str] = field(default_factory=set)

    def of(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.cap:
            return OTHER
        self.seen.add(value)
        return value


class SavingsLedger:
    """Running totals of what hits saved, keyed by ``(model, route, tenant)``."""

    LABELS = ("model", "route", "tenant")

    def __init__(self, max_labels: int = 100) -> None:
        self.max_labels = max_labels
        self._labels = {name: _Label(max_labels) for name in self.LABELS}
        self._rows: dict[tuple[str, str, str], _Totals] = {}
        self._lock = threading.Lock()

    def record(
        self, saving: Saving, *, model: str | None, route: str, tenant: str
    ) -> tuple[str, str, str]:
        """Count one hit's saving; returns the labels it was counted under."""
        with self._lock:
            key = (
                self._labels["model"].of(model or UNKNOWN),
                self._labels["route"].of(route),
                self._labels["tenant"].of(tenant),
            )
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = _Totals()
            row.add(saving)
        otel.record_saving(saving, dict(zip(self.LABELS, key, strict=True)))
        return key

    def rows(self) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        """Every ``(model, route, tenant)`` and its totals (for metrics exports)."""
        with self._lock:
            return [(key, row.as_dict()) for key, row in self._rows.items()]

    def summary(self) -> dict[str, Any]:
        """Totals overall and per model, route and tenant, as JSON-ready data."""
        total = _Totals()
        by: dict[str, dict[str, _Totals]] = {name: {} for name in self.LABELS}
        with self._lock:
            for key, row in self._rows.items():
                _merge(total, row)
                for name, value in zip(self.LABELS, key, strict=True):
                    _merge(by[name].setdefault(value, _Totals()), row)
        return {
            "total": total.as_dict(),
            **{
                f"by_{name}": {value: t.as_dict() for value, t in sorted(groups.items())}
                for name, groups in by.items()
            },
            "max_labels": self.max_labels,
        }


def _merge(into: _Totals, row: _Totals) -> None:
    into.hits += row.hits
    into.input_tokens += row.input_tokens
    into.output_tokens += row.output_tokens
    into.seconds += row.seconds
    into.usd += row.usd
    into.unpriced_hits += row.unpriced_hits
