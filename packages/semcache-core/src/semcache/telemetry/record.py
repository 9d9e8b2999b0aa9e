"""What one HTTP request did with the cache, gathered while it runs.

An adapter opens a :class:`RequestRecord` for a request it looks at (:func:`recording`);
the engine and the cache fill in what they decide (similarity, the verifier's rule,
the entry, what a hit saved, the usage of a miss) through :func:`current`, without
any of them passing it along. The record feeds the access log and the request span.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from semcache.http.usage import Usage
    from semcache.telemetry.savings import Saving

__all__ = ["RequestRecord", "current", "recording"]


@dataclass(slots=True)
class RequestRecord:
    """The facts of one request, as far as they are known."""

    method: str
    path: str
    decision: str = "bypass"
    """``hit``, ``miss`` or ``bypass`` (the ``X-Semcache`` header sent)."""
    reason: str | None = None
    """Why a request bypassed the cache."""
    status: int | None = None
    similarity: float | None = None
    """A hit's similarity; on a miss, that of the best candidate the verifier rejected."""
    source: str | None = None
    """``exact`` or ``semantic`` (hits)."""
    rule: str | None = None
    """The verifier rule that rejected a candidate (``negation``, ``number``...)."""
    entry: str | None = None
    partition: str | None = None
    tenant: str | None = None
    model: str | None = None
    saved: Saving | None = None
    usage: Usage | None = None
    """The usage the upstream reported for a miss (when its answer was recorded)."""
    upstream_seconds: float | None = None
    started: float = field(default_factory=time.perf_counter)
    seconds: float | None = None

    def finish(self) -> None:
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.started

    def as_log(self) -> dict[str, Any]:
        """The access log's fields (``None`` ones left out)."""
        out: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "decision": self.decision,
            "reason": self.reason,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "source": self.source,
            "rule": self.rule,
            "entry": self.entry,
            "partition": self.partition,
            "tenant": self.tenant,
            "model": self.model,
            "latency_ms": None if self.seconds is None else round(self.seconds * 1000, 3),
        }
        if self.upstream_seconds is not None:
            out["upstream_ms"] = round(self.upstream_seconds * 1000, 3)
        if self.usage is not None:
            out["input_tokens"] = self.usage.input_tokens
            out["output_tokens"] = self.usage.output_tokens
        if self.saved is not None:
            out["tokens_saved"] = self.saved.tokens
            out["seconds_saved"] = round(self.saved.seconds, 6)
            if self.saved.usd is not None:
                out["usd_saved"] = round(self.saved.usd, 8)
        return {k: v for k, v in out.items() if v is not None}


_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "semcache_request_record", default=None
)


def current() -> RequestRecord | None:
    """The record of the request being served here, or ``None`` (nobody records)."""
    return _current.get()


@contextlib.contextmanager
def recording(record: RequestRecord) -> Iterator[RequestRecord]:
    """Make ``record`` the current one for the code (and the tasks it starts) inside."""
    token = _current.set(record)
    try:
        yield record
    finally:
        _current.reset(token)
