"""Settings of hit auditing (group ``audit``): all off by default, since audits cost money."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from semcache.settings import check_declared, setting

__all__ = [
    "AUDIT_AGREEMENT",
    "AUDIT_BUDGET",
    "AUDIT_MAX_USD",
    "AUDIT_MODELS",
    "AUDIT_PATHS",
    "AUDIT_RATE",
    "AUDIT_TIMEOUT",
    "MAX_FALSE_HIT_RATE",
    "AuditSettings",
]

_P = "SEMANTIC_CACHE_"
AUDIT_RATE = _P + "AUDIT_RATE"
AUDIT_BUDGET = _P + "AUDIT_BUDGET"
AUDIT_MAX_USD = _P + "AUDIT_MAX_USD"
AUDIT_PATHS = _P + "AUDIT_PATHS"
AUDIT_MODELS = _P + "AUDIT_MODELS"
AUDIT_AGREEMENT = _P + "AUDIT_AGREEMENT"
AUDIT_TIMEOUT = _P + "AUDIT_TIMEOUT"
MAX_FALSE_HIT_RATE = _P + "MAX_FALSE_HIT_RATE"


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Which semantic hits are audited (asked of the upstream again, in the background),
    how much that may cost, and the error bound the per-entry thresholds keep."""

    group_name: ClassVar[str] = "audit"

    audit_rate: float = setting(
        AUDIT_RATE,
        0.0,
        "Share of semantic hits audited: the same request is also sent to the upstream "
        "after the client has its answer, and the two answers are compared. 0 turns "
        "auditing off; each audit is a full upstream call.",
        low=0.0,
        high=1.0,
    )
    audit_budget: int = setting(
        AUDIT_BUDGET,
        100,
        "Most audit calls per hour and process; past it audits are skipped (counted as "
        "`skipped_budget`).",
        low=0,
    )
    audit_max_usd: float | None = setting(
        AUDIT_MAX_USD,
        None,
        "Most US dollars audit calls may spend per hour and process, priced like the "
        "savings (the stored answer's usage at the price table); unset: no dollar cap.",
        low=0.0,
    )
    audit_paths: str = setting(
        AUDIT_PATHS,
        "",
        "Comma-separated glob patterns of the request paths audited (`*` matches `/`); "
        "empty: every cached path.",
    )
    audit_models: str = setting(
        AUDIT_MODELS,
        "",
        "Comma-separated model names whose hits are audited; empty: every model.",
    )
    audit_agreement: float = setting(
        AUDIT_AGREEMENT,
        0.65,
        "Similarity of the embeddings of the cached and the fresh answer's text at or above "
        "which they agree; below it the hit was wrong.",
        low=0.0,
        high=1.0,
    )
    audit_timeout: float = setting(
        AUDIT_TIMEOUT,
        120.0,
        "Seconds an audit (upstream call and comparison) may take; past it there is no outcome.",
        low=0.001,
    )
    max_false_hit_rate: float = setting(
        MAX_FALSE_HIT_RATE,
        0.05,
        "Error bound of the per-entry thresholds: an entry whose audits failed is served "
        "semantically only at similarities where the upper 95% confidence bound of its "
        "audited error rate stays at or under this; where no similarity qualifies it is "
        "quarantined.",
        low=0.0,
        high=1.0,
    )

    def __post_init__(self) -> None:
        check_declared(self)

    @property
    def enabled(self) -> bool:
        return self.audit_rate > 0.0 and self.audit_budget > 0
