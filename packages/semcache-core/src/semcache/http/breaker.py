"""The upstream 429 breaker: after N rate-limited answers in a row, stop calling upstream."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable

__all__ = ["UpstreamBreaker"]

log = logging.getLogger("semcache")


class UpstreamBreaker:
    """Counts consecutive upstream 429s; past ``threshold`` it opens for ``cooldown`` seconds.

    While open, cache hits are still served and misses are answered with
    :meth:`rejection` (503) instead of reaching the rate-limited upstream. When the
    cooldown is over the next response decides: another 429 reopens at once, anything
    else closes it. ``threshold`` 0 disables the breaker.
    """

    def __init__(
        self, threshold: int, cooldown: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.consecutive_429 = 0
        self._open_until = 0.0

    def record(self, status: int) -> None:
        """Note the status of a response that came from the upstream (not from the cache)."""
        if self.threshold <= 0:
            return
        if status != 429:
            if self._open_until:
                log.warning("semcache: upstream answered %d; 429 breaker closed", status)
            self.consecutive_429 = 0
            self._open_until = 0.0
            return
        self.consecutive_429 += 1
        if self.consecutive_429 >= self.threshold and not self.is_open():
            self._open_until = self._clock() + self.cooldown
            log.warning(
                "semcache: %d upstream 429s in a row; answering misses with 503 for %.1fs",
                self.consecutive_429,
                self.cooldown,
            )

    def retry_after(self) -> float:
        """Seconds left before the upstream is tried again (0 when closed)."""
        if not self._open_until:
            return 0.0
        return max(0.0, self._open_until - self._clock())

    def is_open(self) -> bool:
        return self.retry_after() > 0

    def rejection(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and JSON body of the answer given to a miss while open."""
        wait = max(1, math.ceil(self.retry_after()))
        body = json.dumps(
            {
                "error": {
                    "type": "upstream_rate_limited",
                    "message": "The upstream is rate limiting; retry after the indicated delay.",
                    "retry_after": wait,
                }
            }
        ).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("retry-after", str(wait)),
            ("x-semcache", "miss"),
        ]
        return 503, headers, body
