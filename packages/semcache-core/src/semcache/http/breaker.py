"""The upstream 429 breaker: after N rate-limited answers in a row, stop calling upstream.

One breaker per requester (:attr:`CachePlan.requester <semcache.http.CachePlan.requester>`:
the hash of the credential and tenant): an upstream rate-limits per key or per tenant,
so one key out of credit must not stop everyone else's misses. The open period is what
the upstream asked for in ``Retry-After``, or the configured cooldown.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from semcache.http.headers import HEADER_STATUS

__all__ = [
    "MAX_REQUESTERS",
    "MAX_RETRY_AFTER",
    "UpstreamBreaker",
    "UpstreamBreakers",
    "parse_retry_after",
]

log = logging.getLogger("semcache")

MAX_REQUESTERS = 10_000
"""Requesters whose recent 429s are remembered; past this the least useful are forgotten."""

MAX_RETRY_AFTER = 600.0
"""Longest open period a ``Retry-After`` can ask for (ten cooldowns, when that is longer)."""

_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta-seconds or an HTTP-date).

    ``None`` when absent or unreadable; a date in the past is 0. ``now`` is the wall
    clock (default :func:`time.time`) that a date is measured from.
    """
    if value is None:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class UpstreamBreaker:
    """One requester's breaker: counts its consecutive upstream 429s; past ``threshold``
    it opens for ``cooldown`` seconds, or for what the last 429's ``Retry-After`` asked.

    While open, cache hits are still served and misses are answered with
    :meth:`rejection` (503) instead of reaching the rate-limited upstream. When the
    open period is over the next response decides: another 429 reopens at once,
    anything else closes it. ``threshold`` 0 disables the breaker.
    """

    def __init__(
        self, threshold: int, cooldown: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.consecutive_429 = 0
        self.last_429 = 0.0
        self._open_until = 0.0

    def record(self, status: int, retry_after: float | None = None) -> None:
        """Note the status of a response that came from the upstream (not from the cache).

        ``retry_after``: the seconds the 429 asked to wait (already capped), if any.
        """
        if self.threshold <= 0:
            return
        if status != 429:
            if self._open_until:
                log.warning("semcache: upstream answered %d; 429 breaker closed", status)
            self.consecutive_429 = 0
            self._open_until = 0.0
            return
        now = self._clock()
        self.consecutive_429 += 1
        self.last_429 = now
        if self.consecutive_429 < self.threshold:
            return
        wait = self.cooldown if retry_after is None else retry_after
        if self.is_open():
            # A 429 that was already in flight: it may only push the end further out.
            self._open_until = max(self._open_until, now + wait)
            return
        self._open_until = now + wait
        if wait > 0:
            log.warning(
                "semcache: %d upstream 429s in a row; answering misses with 503 for %.1fs",
                self.consecutive_429,
                wait,
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
            (HEADER_STATUS, "miss"),
        ]
        return 503, headers, body


class UpstreamBreakers:
    """One :class:`UpstreamBreaker` per requester, at most ``max_requesters`` of them.

    Only requesters with a 429 in their current run are held: a success forgets the
    requester. When room is needed, a breaker whose open period is over goes first,
    then the one still counting with the oldest 429, then the oldest open one. Not
    thread-safe: the engine calls it from its own event loop.
    """

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        *,
        max_requesters: int = MAX_REQUESTERS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_requesters < 1:
            raise ValueError("max_requesters must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_requesters = max_requesters
        self.max_wait = max(MAX_RETRY_AFTER, 10 * cooldown)
        self._clock = clock
        self._wall_clock = wall_clock
        # Oldest 429 first. Below the threshold, and at or past it (open, or open before).
        self._counting: OrderedDict[str, UpstreamBreaker] = OrderedDict()
        self._tripped: OrderedDict[str, UpstreamBreaker] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counting) + len(self._tripped)

    def get(self, requester: str) -> UpstreamBreaker | None:
        """The requester's breaker, if it is held."""
        return self._tripped.get(requester) or self._counting.get(requester)

    def record(self, requester: str, status: int, retry_after: str | None = None) -> None:
        """Note the status (and ``Retry-After`` header value) of an upstream answer."""
        if self.threshold <= 0:
            return
        if status != 429:
            breaker = self._tripped.pop(requester, None) or self._counting.pop(requester, None)
            if breaker is not None:
                breaker.record(status)  # logs the closing of an open one
            return
        breaker = self.get(requester)
        if breaker is None:
            self._make_room()
            breaker = UpstreamBreaker(self.threshold, self.cooldown, clock=self._clock)
        wait = parse_retry_after(retry_after, now=self._wall_clock())
        breaker.record(429, None if wait is None else min(wait, self.max_wait))
        self._counting.pop(requester, None)
        self._tripped.pop(requester, None)
        if breaker.consecutive_429 >= self.threshold:
            self._tripped[requester] = breaker
        else:
            self._counting[requester] = breaker

    def is_open(self, requester: str) -> bool:
        breaker = self._tripped.get(requester)
        return breaker is not None and breaker.is_open()

    def retry_after(self, requester: str) -> float:
        """Seconds left before the requester's misses reach the upstream again."""
        breaker = self._tripped.get(requester)
        return breaker.retry_after() if breaker is not None else 0.0

    def rejection(self, requester: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """The 503 for the requester's miss while its breaker is open."""
        breaker = self._tripped.get(requester)
        if breaker is None:
            breaker = UpstreamBreaker(self.threshold, self.cooldown, clock=self._clock)
        return breaker.rejection()

    def open_count(self) -> int:
        """Requesters whose misses are answered with 503 now."""
        return sum(1 for breaker in self._tripped.values() if breaker.is_open())

    def _make_room(self) -> None:
        while len(self) >= self.max_requesters:
            oldest = next(iter(self._tripped.values()), None)
            if oldest is not None and not oldest.is_open():
                self._tripped.popitem(last=False)
            elif self._counting:
                self._counting.popitem(last=False)
            else:
                self._tripped.popitem(last=False)
