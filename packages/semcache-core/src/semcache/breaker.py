"""A per-component circuit breaker: after N consecutive failures, skip it for a while."""

from __future__ import annotations

import logging
import time

__all__ = ["CircuitBreaker"]

log = logging.getLogger("semcache")


class CircuitBreaker:
    """Closed -> open after ``failures`` in a row; open -> half-open after ``cooldown``.

    Half-open lets one call through: success closes the breaker, failure reopens it.
    State changes are logged once each, with the reason; repeats are not.
    """

    def __init__(self, name: str, *, failures: int, cooldown: float) -> None:
        self.name = name
        self.threshold = failures
        self.cooldown = cooldown
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May the component be called now?"""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_cancelled(self) -> None:
        """The call was cancelled by its caller: neither success nor failure.

        A half-open trial that is cancelled must not leave the breaker waiting for a
        verdict that never comes (it would refuse every call from then on).
        """
        self._trial_running = False

    def record_success(self) -> None:
        if self.opened_at is not None:
            log.warning("semcache: %s recovered; breaker closed", self.name)
        self.consecutive_failures = 0
        self.opened_at = None
        self._trial_running = False

    def record_failure(self, reason: str) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures == 1 and self.opened_at is None:
            log.warning(
                "semcache: %s failed (%s); the request continues uncached", self.name, reason
            )
        was_open = self.opened_at is not None
        if self._trial_running or self.consecutive_failures >= self.threshold:
            self.opened_at = time.monotonic()
            if not was_open:
                log.warning(
                    "semcache: %s breaker open for %.1fs after %d failures (%s)",
                    self.name,
                    self.cooldown,
                    self.consecutive_failures,
                    reason,
                )
        self._trial_running = False
