"""When to send a failed request again, and how long to wait first."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "is_retryable", "parse_retry_after"]


def is_retryable(status: int) -> bool:
    """Worth sending again: timeouts, rate limits, conflicts, server errors (bar 501, 505)."""
    return status in (408, 409, 425, 429) or (status >= 500 and status not in (501, 505))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again."""

    max_retries: int = 2
    """Retries after the first attempt, on 429, 5xx and connection errors."""
    base_delay: float = 0.2
    """First backoff in seconds; doubled on each retry, with jitter."""
    max_delay: float = 5.0
    """Longest single backoff."""
    max_retry_after: float = 30.0
    """A ``Retry-After`` longer than this fails at once instead of holding the caller."""

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (equal jitter)."""
        delay = min(self.max_delay, self.base_delay * 2.0**attempt)
        return delay / 2 + random.random() * delay / 2


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds asked for by ``Retry-After`` (delta seconds or an HTTP date) or
    ``Retry-After-Ms``, else ``None``. Header names are lower-case."""
    raw = headers.get("retry-after-ms")
    if raw is not None:
        try:
            value = float(raw) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return max(0.0, value) if math.isfinite(value) else None
