"""Recent request counts per time slot, kept in memory for the dashboard's charts.

Prometheus keeps history for those who run it; the dashboard must show the last hour
on its own, so each proxy process keeps a small ring of fixed slots (by default 360
slots of 10 s). Memory is bounded by the slot count, whatever the traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RequestHistory"]

RESULTS = ("hit", "miss", "bypass")


@dataclass(slots=True)
class _Slot:
    start: int
    """Seconds since the epoch at the slot's start (a multiple of the slot length)."""
    counts: dict[str, int]
    seconds: dict[str, float]
    """Summed response times, per result: a slot's mean latency is ``seconds / counts``."""


class RequestHistory:
    """Requests per result and their summed latency, per ``slot_seconds`` slot."""

    def __init__(
        self,
        slot_seconds: int = 10,
        slots: int = 360,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slot_seconds = slot_seconds
        self.slots = slots
        self._clock = clock
        self._ring: list[_Slot | None] = [None] * slots
        self._lock = threading.Lock()  # one process may serve from several threads

    def observe(self, result: str, seconds: float) -> None:
        start = self._slot_start(self._clock())
        with self._lock:
            slot = self._slot(start)
            slot.counts[result] = slot.counts.get(result, 0) + 1
            slot.seconds[result] = slot.seconds.get(result, 0.0) + seconds

    def series(self) -> dict[str, Any]:
        """Every slot of the window, oldest first; slots with no traffic are zeros."""
        now = self._slot_start(self._clock())
        first = now - (self.slots - 1) * self.slot_seconds
        out = []
        with self._lock:
            for start in range(first, now + 1, self.slot_seconds):
                slot = self._ring[(start // self.slot_seconds) % self.slots]
                live = slot is not None and slot.start == start
                row: dict[str, Any] = {"start": start}
                for result in RESULTS:
                    count = slot.counts.get(result, 0) if live and slot else 0
                    total = slot.seconds.get(result, 0.0) if live and slot else 0.0
                    row[result] = count
                    row[f"{result}_seconds"] = round(total, 6)
                out.append(row)
        return {"slot_seconds": self.slot_seconds, "slots": out}

    def _slot_start(self, now: float) -> int:
        return int(now // self.slot_seconds) * self.slot_seconds

    def _slot(self, start: int) -> _Slot:
        index = (start // self.slot_seconds) % self.slots
        slot = self._ring[index]
        if slot is None or slot.start != start:  # a slot a full window old is reused
            slot = self._ring[index] = _Slot(start, {}, {})
        return slot
