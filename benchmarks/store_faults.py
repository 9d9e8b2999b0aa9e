"""Kill and restart Redis, then PostgreSQL, under steady load through the proxy.

    python -m benchmarks.store_faults [--hashing] [--latency 0.3]

Runs on a private ``redis-server`` and a private PostgreSQL cluster (never the shared
ones), with the fake upstream and the proxy as child processes. Reports every error a
client saw (expected: none, since the upstream stays up) and the hit rate before,
during and after each outage, with the time the hit rate took to recover.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.load import SteadyLoad
from benchmarks.paraphrases import PAIRS
from benchmarks.procs import (
    PgCluster,
    RedisServer,
    Service,
    http_ok,
    psql,
    start_fake_upstream,
    start_proxy,
)

__all__ = ["HASHING_GROUPS", "StoreFaultConfig", "run_store_restarts"]

HASHING_ENV = {"SEMANTIC_CACHE_EMBEDDER_TYPE": "testing-hash", "SEMANTIC_CACHE_THRESHOLD": "0.8"}
"""The model-free test embedder: fast, and lexical paraphrases match it."""

HASHING_GROUPS: tuple[tuple[str, str], ...] = tuple(
    (q, q.rstrip("?") + " please?") for q, _ in PAIRS[:20]
)
"""Question groups the hashing embedder matches (about 0.9) and keeps apart (below 0.8)."""


@dataclass
class StoreFaultConfig:
    groups: Sequence[Sequence[str]] = PAIRS
    embedder_env: dict[str, str] = field(default_factory=dict)
    upstream_latency: float = 0.3
    workers: int = 8
    baseline: float = 5.0
    outage: float = 5.0
    settle: float = 5.0
    recover_timeout: float = 60.0
    recovered_fraction: float = 0.9
    """Recovered: a one-second window at this fraction of the baseline hit rate."""
    extra_env: dict[str, str] = field(default_factory=dict)


async def _phase(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    await asyncio.sleep(seconds)  # a load phase of fixed length: the load runs meanwhile
    return start, time.monotonic()


async def _outage(
    load: SteadyLoad,
    name: str,
    proxy_url: str,
    kill: Any,
    restart: Any,
    cfg: StoreFaultConfig,
    baseline_rate: float,
) -> dict[str, Any]:
    killed_at = time.monotonic()
    await asyncio.to_thread(kill)
    outage_start, _ = await _phase(cfg.outage)
    ready_during = await asyncio.to_thread(http_ok, proxy_url + "/readyz")
    restart_at = time.monotonic()
    await asyncio.to_thread(restart)
    restarted_at = time.monotonic()
    recovery = await load.wait_for_hit_rate(
        cfg.recovered_fraction * baseline_rate, restarted_at, within=cfg.recover_timeout
    )
    settle_start, settle_end = await _phase(cfg.settle)
    return {
        "store": name,
        "hit_rate_during_outage": load.hit_rate(outage_start, restart_at),
        "requests_during_outage": sum(load.counts(killed_at, restart_at).values()),
        "readyz_ok_during_outage": ready_during,
        "restart_seconds": restarted_at - restart_at,
        "recovery_seconds_after_restart": recovery,
        "hit_rate_after_recovery": load.hit_rate(settle_start, settle_end),
        "readyz_ok_after": await asyncio.to_thread(http_ok, proxy_url + "/readyz"),
    }


async def run_store_restarts(workdir: Path, cfg: StoreFaultConfig) -> dict[str, Any]:
    """The whole scenario; returns the figures (``errors`` lists what clients saw)."""
    redis = RedisServer(workdir / "redis")
    pg = PgCluster()
    services: list[Service] = []
    try:
        redis.start()
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        psql(pg.uri, "CREATE EXTENSION IF NOT EXISTS vector")
        upstream, upstream_url = start_fake_upstream(
            workdir, latency=cfg.upstream_latency, chunk_delay=0.0
        )
        services.append(upstream)
        env = {
            "SEMANTIC_CACHE_PG_URI": pg.uri,
            "SEMANTIC_CACHE_REDIS_URI": redis.uri,
            "SEMANTIC_CACHE_ADMIN_TOKEN": "faults",
            **cfg.embedder_env,
            **cfg.extra_env,
        }
        proxy, url = await asyncio.to_thread(
            start_proxy, workdir, upstream_url, env, name="proxy-pg-redis"
        )
        services.append(proxy)

        load = SteadyLoad(url, cfg.groups, workers=cfg.workers)
        started = time.monotonic()
        load.start()
        try:
            warm = await load.wait_for_hit_rate(0.9, started, within=cfg.recover_timeout)
            base_start, base_end = await _phase(cfg.baseline)
            baseline_rate = load.hit_rate(base_start, base_end) or 0.0

            def restart_redis() -> None:
                redis.start()

            outages = [
                await _outage(load, "redis", url, redis.kill, restart_redis, cfg, baseline_rate),
                await _outage(load, "postgresql", url, pg.stop, pg.start, cfg, baseline_rate),
            ]
        finally:
            await load.stop()
        counts = load.counts()
        errors = load.errors()
        return {
            "requests": sum(counts.values()),
            "by_result": dict(counts),
            "errors": len(errors),
            "first_errors": [e.detail for e in errors[:5]],
            "warm_up_seconds": warm,
            "baseline_hit_rate": baseline_rate,
            "outages": outages,
            "workers": cfg.workers,
            "upstream_latency_s": cfg.upstream_latency,
            "proxy_alive": proxy.alive(),
        }
    finally:
        for service in reversed(services):
            service.stop()
        redis.stop()
        await asyncio.to_thread(pg.destroy)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_faults", description=__doc__)
    parser.add_argument("--hashing", action="store_true", help="the model-free test embedder")
    parser.add_argument("--latency", type=float, default=0.3, help="upstream latency, seconds")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    cfg = StoreFaultConfig(upstream_latency=args.latency, workers=args.workers)
    if args.hashing:
        cfg.groups, cfg.embedder_env = HASHING_GROUPS, dict(HASHING_ENV)
    with tempfile.TemporaryDirectory(prefix="semcache-store-faults-") as tmp:
        result = asyncio.run(run_store_restarts(Path(tmp), cfg))
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
