"""Under steady load through the proxy, kill and restart Redis, then PostgreSQL.

The proxy runs as a child process on a private ``redis-server`` and a private
PostgreSQL cluster (never the shared servers), with the model-free test embedder.
Eight clients keep asking questions and paraphrases, streamed and not, and check
every answer (see :mod:`benchmarks.load`). Redis is killed with SIGKILL and restarted
empty; PostgreSQL is stopped like a crash (``pg_ctl stop -m immediate``) and
restarted. Expected: no client error at all (the upstream stays up, so any error is
the cache's), ``/readyz`` reports the outage, and the hit rate comes back after
each restart. ``python -m benchmarks --faults`` runs the same with the real model.

An error only shows after the client's 30 s timeout, so every request's latency is
recorded too: during each outage (every request that overlaps it, including those in
flight at the kill) the 99th percentile must stay within the lookup budget plus the
upstream's latency plus slack, and the request rate at least half the baseline's.
Baseline requests are nearly all hits, while in an outage every request is a miss that
waits for the upstream: so the baseline rate compared with is the one the same clients
would reach if each baseline request had also waited for the upstream (the load is a
closed loop: ``workers`` requests in flight at all times). A proxy that stalled every
request on the dead store, or merely retried it for a while, would fail.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchmarks.store_faults
import pytest
from benchmarks.load import Outcome, SteadyLoad
from benchmarks.procs import PG_BINDIR, REDIS_SERVER
from benchmarks.store_faults import (
    HASHING_ENV,
    HASHING_GROUPS,
    StoreFaultConfig,
    run_store_restarts,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

pytest.importorskip("semcache_store_pgvector")
pytest.importorskip("semcache_store_redis")


LOOKUP_BUDGET_MS = 1000
"""The proxy's lookup budget in this run (``SEMANTIC_CACHE_LOOKUP_TIMEOUT_MS``)."""
UPSTREAM_LATENCY_S = 0.05
SLACK_S = 2.0
"""Allowance for a busy two-core machine; a request stalled on a dead store takes the
client's whole 30 s timeout."""


@dataclass(frozen=True, slots=True)
class Timed:
    started: float
    ended: float
    result: str

    @property
    def latency(self) -> float:
        return self.ended - self.started


class TimedLoad(SteadyLoad):
    """The steady load, recording when each request started and ended."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.timed: list[Timed] = []

    async def _one(self, conn: Any, question: str, group: int, stream: bool) -> Outcome:
        started = time.monotonic()
        outcome = await super()._one(conn, question, group, stream)
        self.timed.append(Timed(started, time.monotonic(), outcome.result))
        return outcome


@dataclass
class Window:
    store: str
    entered: float
    killed: float = 0.0
    restarted: float = 0.0


def record_windows(monkeypatch: pytest.MonkeyPatch) -> tuple[list[TimedLoad], list[Window]]:
    """Run the scenario with :class:`TimedLoad`, noting when each store was killed and
    when its restart began."""
    loads: list[TimedLoad] = []
    windows: list[Window] = []
    outage = benchmarks.store_faults._outage

    def load(*args: Any, **kwargs: Any) -> TimedLoad:
        loads.append(TimedLoad(*args, **kwargs))
        return loads[-1]

    async def timed_outage(
        load: SteadyLoad,
        name: str,
        url: str,
        kill: Callable[[], None],
        restart: Callable[[], None],
        *rest: Any,
    ) -> dict[str, Any]:
        window = Window(name, time.monotonic())
        windows.append(window)

        def timed_kill() -> None:
            window.killed = time.monotonic()
            kill()

        def timed_restart() -> None:
            window.restarted = time.monotonic()
            restart()

        return await outage(load, name, url, timed_kill, timed_restart, *rest)

    monkeypatch.setattr(benchmarks.store_faults, "SteadyLoad", load)
    monkeypatch.setattr(benchmarks.store_faults, "_outage", timed_outage)
    return loads, windows


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@pytest.fixture(scope="module")
def servers_available() -> None:
    if not (PG_BINDIR / "initdb").exists() or shutil.which(REDIS_SERVER) is None:
        pytest.fail(f"needs PostgreSQL binaries in {PG_BINDIR} and redis-server")


def test_kill_and_restart_redis_then_postgres_under_load(
    servers_available: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = StoreFaultConfig(
        groups=HASHING_GROUPS,
        embedder_env=dict(HASHING_ENV),
        upstream_latency=UPSTREAM_LATENCY_S,
        workers=8,
        baseline=3.0,
        outage=3.0,
        settle=2.0,
        recover_timeout=30.0,
        extra_env={
            "SEMANTIC_CACHE_BREAKER_COOLDOWN_MS": "1000",
            "SEMANTIC_CACHE_LOOKUP_TIMEOUT_MS": str(LOOKUP_BUDGET_MS),
        },
    )
    loads, windows = record_windows(monkeypatch)
    result = asyncio.run(run_store_restarts(tmp_path, cfg))
    (load,) = loads

    assert result["errors"] == 0, result["first_errors"]
    assert result["proxy_alive"]
    assert result["baseline_hit_rate"] >= 0.9, result
    for outage in result["outages"]:
        assert outage["requests_during_outage"] > 0, outage
        assert not outage["readyz_ok_during_outage"], outage
        assert outage["recovery_seconds_after_restart"] is not None, outage
        assert outage["hit_rate_after_recovery"] >= 0.9, outage
        assert outage["readyz_ok_after"], outage
    redis = result["outages"][0]
    assert redis["hit_rate_during_outage"] < 0.5, redis  # every lookup needs Redis

    # The baseline phase ends where the first outage begins. Its rate, had every
    # request also waited for the upstream (as a miss in an outage must):
    base_end = windows[0].entered
    base_rate = sum(base_end - cfg.baseline <= t.ended < base_end for t in load.timed)
    base_rate /= cfg.baseline
    base_miss_rate = cfg.workers / (cfg.workers / base_rate + UPSTREAM_LATENCY_S)
    ceiling = LOOKUP_BUDGET_MS / 1000 + UPSTREAM_LATENCY_S + SLACK_S
    for window in windows:
        start, end = window.killed, window.restarted
        assert 0 < start < end, window
        overlapping = [t for t in load.timed if t.started < end and t.ended > start]
        latencies = [t.latency for t in overlapping]
        rate = sum(start <= t.ended < end for t in load.timed) / (end - start)
        figures = {
            "store": window.store,
            "requests": len(latencies),
            "p99_s": round(p99(latencies), 3),
            "max_s": round(max(latencies), 3),
            "per_s": round(rate, 1),
            "baseline_per_s": round(base_rate, 1),
            "baseline_as_misses_per_s": round(base_miss_rate, 1),
        }
        print(figures)
        assert figures["p99_s"] < ceiling, figures
        assert rate >= base_miss_rate / 2, figures
