"""Which semantic hits are audited: a sampling rate, a path and model filter, and an
hourly budget of calls (and optionally of dollars) that no burst of hits can exceed."""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from semcache.audit.settings import AuditSettings

__all__ = ["AuditSampler"]

_HOUR = 3600.0


class AuditSampler:
    """:meth:`wants` decides whether a hit is a candidate (rate and filters, free);
    :meth:`acquire` takes one call (and its price) from the hourly budget, or says why
    not. Budgets are per process: N replicas audit at most N times the budget."""

    def __init__(
        self,
        settings: AuditSettings,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = settings.audit_rate
        self.budget = settings.audit_budget if settings.enabled else 0
        self.max_usd = settings.audit_max_usd
        self.paths = tuple(p.strip() for p in settings.audit_paths.split(",") if p.strip())
        self.models = frozenset(m.strip() for m in settings.audit_models.split(",") if m.strip())
        self._rng = rng
        self._clock = clock
        self._calls: deque[float] = deque()
        self._spent: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def wants(self, path: str, model: str | None) -> bool:
        """Is a hit on ``path`` for ``model`` sampled for an audit?"""
        if not self.enabled:
            return False
        if self.paths and not any(fnmatch.fnmatchcase(path, p) for p in self.paths):
            return False
        if self.models and model not in self.models:
            return False
        return self.rate >= 1.0 or self._rng() < self.rate

    def acquire(self, usd: float | None) -> str | None:
        """Take one call from the budget: ``None`` when taken, else why not
        (``"budget"`` or ``"spend"``)."""
        now = self._clock()
        with self._lock:
            while self._calls and self._calls[0] <= now - _HOUR:
                self._calls.popleft()
            while self._spent and self._spent[0][0] <= now - _HOUR:
                self._spent.popleft()
            if len(self._calls) >= self.budget:
                return "budget"
            cost = usd or 0.0
            if self.max_usd is not None and sum(c for _, c in self._spent) + cost > self.max_usd:
                return "spend"
            self._calls.append(now)
            if cost:
                self._spent.append((now, cost))
            return None
