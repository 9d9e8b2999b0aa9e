"""Settings of the operator's view (group ``telemetry``): traces, savings, access log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting

__all__ = [
    "ACCESS_LOG",
    "OTEL",
    "PRICES",
    "SAVINGS_MAX_LABELS",
    "TelemetrySettings",
]

_P = "SEMANTIC_CACHE_"
OTEL = _P + "OTEL"
PRICES = _P + "PRICES"
SAVINGS_MAX_LABELS = _P + "SAVINGS_MAX_LABELS"
ACCESS_LOG = _P + "ACCESS_LOG"


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """OpenTelemetry, the money and time hits save, and the access log."""

    group_name: ClassVar[str] = "telemetry"

    otel: bool = setting(
        OTEL,
        True,
        "Emit OpenTelemetry spans and metrics when `opentelemetry-api` is installed "
        "(exported by whatever SDK the process configures, `OTEL_*` variables included); "
        "without the package nothing is imported.",
    )
    prices: str | None = setting(
        PRICES,
        None,
        "Price table added to the shipped one: a TOML or JSON file, or inline JSON "
        '(`{"models": {"my-model": {"input": 0.5, "output": 1.5}}}`), in dollars per '
        "million tokens.",
    )
    savings_max_labels: int = setting(
        SAVINGS_MAX_LABELS,
        100,
        "Most distinct values of each savings label (model, route, tenant) counted apart; "
        "further values are counted under `other`.",
        low=1,
        high=100_000,
    )
    access_log: bool = setting(
        ACCESS_LOG,
        False,
        "Write one JSON line per cached-path request to the `semcache.access` logger "
        "(decision, similarity, rule, entry, partition, latency, tokens saved).",
    )

    def __post_init__(self) -> None:
        check_declared(self)
