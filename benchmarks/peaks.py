"""Peaks keep their hits: the share served from the cache at 1, 16, 64 and 256 connections.

    python -m benchmarks.peaks [--duration 10] [--backends embedded pg+redis]

One proxy process per backend (the embedded default, then PostgreSQL + Redis in a
database and key prefix of the run's own, removed afterwards), the fake upstream at
300 ms, and wrk running the hits mix: the 44 benchmark questions (exact repeats) and
their 44 paraphrases alternating, all asked once beforehand so that every request of
the mix can be answered from the cache. Paraphrases carry ``X-Semcache-TTL: 0``, so one
that misses is not stored under its own text (it would become an exact repeat and
change the mix for the rest of the run).

For each connection count the report gives the share of requests served from the
cache (``X-Semcache: hit``), req/s, latency, the cache's own counters over the run
(exact hits, semantic hits, misses, lookups cut by their budget, lookups the embedding
queue turned to the exact path), breaker openings in the proxy's log, and the
difference of each share from the share at one connection. The figures are written
as JSON (``--out``, default ``benchmarks/results/peaks.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.httpclient import post_json
from benchmarks.load import CHAT_PATH, chat_body
from benchmarks.paraphrases import PAIRS
from benchmarks.procs import (
    shared_stores,
    start_fake_upstream,
    start_proxy,
)
from benchmarks.proxy_bench import ADMIN_TOKEN, AUTH, MODEL, ProxyProbe, _conn, _stats_sync
from benchmarks.wrk import WRK, run_wrk, write_script

__all__ = ["PeakConfig", "format_report", "main", "run_peaks"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "peaks.json"
_COUNTERS = (
    "lookups",
    "exact_hits",
    "semantic_hits",
    "misses",
    "errors",
    "queue_timeouts",
    "lag_timeouts",
    "lookups_shed_to_exact",
)


@dataclass
class PeakConfig:
    connections: tuple[int, ...] = (1, 16, 64, 256)
    duration: float = 10.0
    latency: float = 0.3
    backends: tuple[str, ...] = ("embedded", "pg+redis")
    pg_admin_uri: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_uri: str = "redis://127.0.0.1:6379/0"


async def _ask_every_question(url: str) -> None:
    """Each question once (a miss, stored), then wait until every store finished."""
    conn, probe = _conn(url), ProxyProbe(url)
    try:
        before = await probe.stats()
        for question, _ in PAIRS:
            response = await post_json(conn, CHAT_PATH, chat_body(question, model=MODEL), AUTH)
            if response.status != 200:
                raise RuntimeError(f"seeding {question!r}: {response.status}")
        await probe.wait_stores(before["stores"] + before["store_failures"] + len(PAIRS))
    finally:
        await conn.close()
        await probe.close()


def _hit_mix_script(workdir: Path) -> Path:
    bodies: list[tuple[bytes, bool]] = []
    for question, paraphrase in PAIRS:
        bodies.append((json.dumps(chat_body(question, model=MODEL)).encode(), False))
        bodies.append((json.dumps(chat_body(paraphrase, model=MODEL)).encode(), True))
    return write_script(
        workdir / "peaks.lua",
        bodies,
        request_path=CHAT_PATH,
        headers={"Content-Type": "application/json", **AUTH},
        extra_headers={"X-Semcache-TTL": "0"},
        model=MODEL,
    )


def _run_at(
    url: str, proxy: Any, script: Path, connections: int, cfg: PeakConfig
) -> dict[str, Any]:
    before = _stats_sync(url)
    log_before = len(proxy.tail(1_000_000).splitlines())
    result = run_wrk(
        url, script, connections=connections, duration=cfg.duration, proxy_cpu=proxy.cpu_seconds
    )
    after = _stats_sync(url)
    result["cache"] = {k: after.get(k, 0) - before.get(k, 0) for k in _COUNTERS}
    result["breakers_after"] = after["breakers"]
    openings = [
        line for line in proxy.tail(1_000_000).splitlines()[log_before:] if "breaker open" in line
    ]
    result["breaker_openings"] = len(openings)
    result["breaker_log"] = openings[:10]
    return result


async def _bench_backend(
    backend: str, upstream_url: str, cfg: PeakConfig, workdir: Path
) -> dict[str, Any]:
    env = {"SEMANTIC_CACHE_ADMIN_TOKEN": ADMIN_TOKEN}
    cleanup: list[Callable[[], None]] = []
    if backend == "pg+redis":
        stores, drop = shared_stores(cfg.pg_admin_uri, cfg.redis_uri, "semcache_peaks")
        cleanup.append(drop)
        env.update(stores)
    try:
        proxy, url = await asyncio.to_thread(
            start_proxy, workdir, upstream_url, env, name=f"peaks-{backend.replace('+', '-')}"
        )
        try:
            await _ask_every_question(url)
            script = _hit_mix_script(workdir)
            runs = []
            for connections in cfg.connections:
                runs.append(await asyncio.to_thread(_run_at, url, proxy, script, connections, cfg))
            return {"runs": runs, "proxy_alive": proxy.alive()}
        finally:
            proxy.stop()
    finally:
        for step in reversed(cleanup):
            step()


async def run_peaks(
    cfg: PeakConfig, workdir: Path, *, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    if WRK is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
        },
        "config": asdict(cfg),
        "backends": {},
    }
    upstream, upstream_url = await asyncio.to_thread(
        start_fake_upstream, workdir, latency=cfg.latency
    )
    try:
        for backend in cfg.backends:
            progress(
                f"{backend}: the hits mix at {', '.join(map(str, cfg.connections))} connections"
            )
            results["backends"][backend] = await _bench_backend(backend, upstream_url, cfg, workdir)
    finally:
        upstream.stop()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def format_report(results: dict[str, Any]) -> str:
    header = (
        "| backend | connections | req/s | served from cache | vs 1 connection | "
        "exact / semantic hits | misses | over budget | shed to exact | breaker openings "
        "| p50 ms | p99 ms | non-200 |"
    )
    lines = [header, "| " + " | ".join(["---"] * 13) + " |"]
    for backend, section in results["backends"].items():
        runs = section["runs"]
        base = runs[0]["hit_ratio"] if runs else 0.0
        for run in runs:
            c = run["cache"]
            lines.append(
                f"| {backend} | {run['connections']} | {run['rps']:.0f} | "
                f"{run['hit_ratio']:.1%} | {(run['hit_ratio'] - base) * 100:+.1f} pts | "
                f"{c['exact_hits']} / {c['semantic_hits']} | {c['misses']} | {c['errors']} | "
                f"{c['lookups_shed_to_exact']} | {run['breaker_openings']} | "
                f"{run['p50_us'] / 1000:.1f} | {run['p99_us'] / 1000:.1f} | {run['non_200']} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peaks", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--backends", nargs="+", default=["embedded", "pg+redis"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    cfg = PeakConfig(
        connections=tuple(args.connections), duration=args.duration, backends=tuple(args.backends)
    )
    with tempfile.TemporaryDirectory(prefix="semcache-peaks-") as tmp:
        results = asyncio.run(run_peaks(cfg, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
