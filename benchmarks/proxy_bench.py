"""The proxy benchmark: hit and miss latency, throughput, streaming, memory, profile.

Run with ``python -m benchmarks`` (see :mod:`benchmarks.__main__` for the options).
Everything runs on 127.0.0.1 as child processes: the fake upstream
(``semcache_proxy.testing``), the proxy on the embedded default, and the proxy on
PostgreSQL + Redis in a database and key prefix of the run's own, removed afterwards.
Latency is measured one request at a time with :mod:`benchmarks.httpclient`;
throughput with wrk. Proxy-side and bare timings are interleaved request by request,
so load from other processes on the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from benchmarks import profile_hit
from benchmarks.httpclient import HttpConnection, TimedResponse, post_json
from benchmarks.load import CHAT_PATH, chat_body
from benchmarks.paraphrases import PAIRS
from benchmarks.populate import populate
from benchmarks.procs import (
    Service,
    shared_stores,
    start_fake_upstream,
    start_proxy,
)
from benchmarks.proxy_server import EMBED_PATH, EMBEDDINGS_PATH
from benchmarks.wrk import WRK, run_wrk, write_script
from semcache import Settings, plugins
from semcache.protocols import Embedder
from semcache.text import normalize_query

__all__ = ["BenchConfig", "run_benchmark"]

AUTH = {"Authorization": "Bearer semcache-bench"}
ADMIN_TOKEN = "semcache-bench-admin"
MODEL = "bench"


@dataclass
class BenchConfig:
    latency: float = 0.3
    chunk_delay: float = 0.05
    hit_rounds: int = 5
    miss_rounds: int = 2
    stream_samples: int = 20
    duration: float = 10.0
    concurrency: tuple[int, ...] = (1, 16, 64)
    fresh_share: float = 0.1
    entries: int = 100_000
    backends: tuple[str, ...] = ("embedded", "pg+redis")
    pg_admin_uri: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_uri: str = "redis://127.0.0.1:6379/0"
    profile_seconds: float = 10.0
    embedder_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path("/tmp/semcache-bench")


# -- small helpers ----------------------------------------------------------------------


def summary_ms(values: Sequence[float]) -> dict[str, Any]:
    """n, p50, p99, mean and max of durations in seconds, as milliseconds."""
    if not values:
        return {"n": 0}
    a = np.asarray(values) * 1000
    return {
        "n": len(a),
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "max": float(a.max()),
    }


def _conn(url: str) -> HttpConnection:
    parts = urlsplit(url)
    return HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)


async def _get_json(conn: HttpConnection, path: str, headers: dict[str, str] | None = None) -> Any:
    response = await conn.request("GET", path, b"", headers)
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {response.body[:200]!r}")
    return response.json()


class ProxyProbe:
    """Reads the proxy's embedding counter and cache counters."""

    def __init__(self, url: str) -> None:
        self.conn = _conn(url)

    async def embedded_texts(self) -> int:
        return int((await _get_json(self.conn, EMBEDDINGS_PATH))["texts"])

    async def index_building(self) -> bool | None:
        building = (await _get_json(self.conn, EMBEDDINGS_PATH))["index_building"]
        return None if building is None else bool(building)

    async def embed_seconds(self, text: str) -> float:
        """Seconds the proxy's own embedder took for ``text`` (timed in the proxy)."""
        response = await self.conn.request("POST", EMBED_PATH, text.encode())
        if response.status != 200:
            raise RuntimeError(f"{EMBED_PATH}: {response.status}")
        return float(response.json()["seconds"])

    async def metrics(self) -> dict[str, float]:
        """Sums and counts of the proxy's lookup and upstream histograms."""
        response = await self.conn.request("GET", "/metrics")
        wanted = {
            "semcache_lookup_seconds_sum": "lookup_sum",
            "semcache_lookup_seconds_count": "lookup_count",
            "semcache_upstream_seconds_sum": "upstream_sum",
            "semcache_upstream_seconds_count": "upstream_count",
        }
        found = dict.fromkeys(wanted.values(), 0.0)
        for line in response.body.decode().splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                found[wanted[name]] = float(value)
        return found

    async def stats(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        result: dict[str, Any] = await _get_json(self.conn, "/_semcache/admin/stats", headers)
        return result

    async def wait_stores(self, at_least: int, within: float = 30.0) -> dict[str, Any]:
        """Poll until ``at_least`` stores finished (stored or given up)."""
        deadline = time.monotonic() + within
        while True:
            stats = await self.stats()
            if stats["stores"] + stats["store_failures"] >= at_least:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"stores did not finish: {stats}")
            await asyncio.sleep(0.05)  # poll interval

    async def close(self) -> None:
        await self.conn.close()


def _check(response: TimedResponse, expected: str | None, what: str) -> None:
    if response.status != 200:
        raise RuntimeError(f"{what}: status {response.status}: {response.body[:300]!r}")
    if expected is not None and response.cache != expected:
        raise RuntimeError(f"{what}: expected {expected}, got {response.cache!r}")


def _request_for(question: str) -> tuple[tuple[tuple[str, str], ...], dict[str, Any]]:
    """The headers (as the proxy sees them) and body the benchmark client sends."""
    headers = (("content-type", "application/json"), ("authorization", AUTH["Authorization"]))
    return headers, chat_body(question, model=MODEL)


# -- phases -----------------------------------------------------------------------------


async def measure_latency(proxy_url: str, upstream_url: str, cfg: BenchConfig) -> dict[str, Any]:
    """Misses vs direct, exact and paraphrase hits vs bare embedding, streaming TTFB."""
    proxy, upstream, probe = _conn(proxy_url), _conn(upstream_url), ProxyProbe(proxy_url)
    questions = [q for q, _ in PAIRS]
    paraphrases = [p for _, p in PAIRS]
    out: dict[str, Any] = {}
    try:
        base = await probe.stats()
        stores_before = base["stores"] + base["store_failures"]

        # Each miss right after the same request sent straight to the upstream, and
        # the proxy's model embedding the same text on its own.
        direct, miss, miss_minus_direct, miss_bare, miss_overhead = [], [], [], [], []
        texts_before = await probe.embedded_texts()
        metrics_before = await probe.metrics()
        for r in range(cfg.miss_rounds):
            model = MODEL if r == 0 else f"{MODEL}-miss-{r}"
            for q in questions:
                d = await post_json(upstream, CHAT_PATH, chat_body(q, model=model), AUTH)
                _check(d, None, "direct")
                bare = await probe.embed_seconds(q)
                m = await post_json(proxy, CHAT_PATH, chat_body(q, model=model), AUTH)
                _check(m, "miss", f"miss {q!r}")
                direct.append(d.latency)
                miss.append(m.latency)
                miss_bare.append(bare)
                miss_minus_direct.append(m.latency - d.latency)
                miss_overhead.append(m.latency - d.latency - bare)
        n_miss = len(miss)
        miss_metrics = _delta(await probe.metrics(), metrics_before)
        await probe.wait_stores(stores_before + n_miss)
        miss_texts = await probe.embedded_texts() - texts_before

        # Exact repeats: no embedding at all.
        exact = []
        texts_before = await probe.embedded_texts()
        metrics_before = await probe.metrics()
        for _ in range(cfg.hit_rounds):
            for q in questions:
                h = await post_json(proxy, CHAT_PATH, chat_body(q, model=MODEL), AUTH)
                _check(h, "hit", f"exact {q!r}")
                exact.append(h.latency)
        exact_metrics = _delta(await probe.metrics(), metrics_before)
        exact_texts = await probe.embedded_texts() - texts_before

        # Each paraphrase right after the proxy's model embedded the same text on its own.
        bare_para, para, para_minus_bare, similarities = [], [], [], []
        para_misses = 0
        texts_before = await probe.embedded_texts()
        metrics_before = await probe.metrics()
        sent = 0
        for _ in range(cfg.hit_rounds):
            for p in paraphrases:
                bare = await probe.embed_seconds(p)
                h = await post_json(proxy, CHAT_PATH, chat_body(p, model=MODEL), AUTH)
                sent += 1
                _check(h, None, f"paraphrase {p!r}")
                bare_para.append(bare)
                similarity = float(h.headers.get("x-semcache-similarity", "nan"))
                if h.cache == "hit" and similarity < 1.0:
                    para.append(h.latency)
                    para_minus_bare.append(h.latency - bare)
                    similarities.append(similarity)
                elif h.cache != "hit":
                    para_misses += 1
        para_metrics = _delta(await probe.metrics(), metrics_before)
        para_texts = await probe.embedded_texts() - texts_before

        out["direct"] = summary_ms(direct)
        out["miss"] = summary_ms(miss)
        out["miss_minus_direct"] = summary_ms(miss_minus_direct)
        out["miss_bare_embedding"] = summary_ms(miss_bare)
        out["miss_minus_direct_minus_embedding"] = summary_ms(miss_overhead)
        out["exact_hit"] = summary_ms(exact)
        out["paraphrase_hit"] = summary_ms(para)
        out["bare_embedding"] = summary_ms(bare_para)
        out["paraphrase_hit_minus_bare_embedding"] = summary_ms(para_minus_bare)
        out["paraphrase_misses"] = para_misses
        out["paraphrase_similarity_min"] = min(similarities) if similarities else None
        out["proxy_side_mean_ms"] = {
            "miss": miss_metrics,
            "exact_hit": exact_metrics,
            "paraphrase_hit": para_metrics,
        }
        out["embeddings_per_request"] = {
            "miss": miss_texts / n_miss,
            "exact_hit": exact_texts / len(exact),
            "paraphrase_hit": para_texts / sent,
        }
        out["streaming"] = await _measure_streaming(proxy, upstream, probe, cfg)
    finally:
        for conn in (proxy, upstream):
            await conn.close()
        await probe.close()
    return out


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float | None]:
    """Mean milliseconds of each proxy histogram over a phase."""
    out: dict[str, float | None] = {}
    for name in ("lookup", "upstream"):
        count = after[f"{name}_count"] - before[f"{name}_count"]
        total = after[f"{name}_sum"] - before[f"{name}_sum"]
        out[name] = total / count * 1000 if count else None
    return out


async def _measure_streaming(
    proxy: HttpConnection, upstream: HttpConnection, probe: ProxyProbe, cfg: BenchConfig
) -> dict[str, Any]:
    """Time to the first SSE event: direct, a miss through the proxy, hits replayed."""
    picks = [PAIRS[i % len(PAIRS)] for i in range(cfg.stream_samples)]
    model = f"{MODEL}-stream"
    direct, miss, exact, para = [], [], [], []
    direct_total, miss_total = [], []
    base = await probe.stats()
    for q, _ in picks:
        body = chat_body(q, model=model, stream=True)
        d = await post_json(upstream, CHAT_PATH, body, AUTH)
        _check(d, None, "direct stream")
        m = await post_json(proxy, CHAT_PATH, body, AUTH)
        _check(m, "miss", f"stream miss {q!r}")
        direct.append(d.ttfb)
        miss.append(m.ttfb)
        direct_total.append(d.latency)
        miss_total.append(m.latency)
    await probe.wait_stores(base["stores"] + base["store_failures"] + len(picks))
    for q, p in picks:
        h = await post_json(proxy, CHAT_PATH, chat_body(q, model=model, stream=True), AUTH)
        _check(h, "hit", f"stream exact {q!r}")
        exact.append(h.ttfb)
        h = await post_json(proxy, CHAT_PATH, chat_body(p, model=model, stream=True), AUTH)
        _check(h, "hit", f"stream paraphrase {p!r}")
        para.append(h.ttfb)
    return {
        "ttfb_direct": summary_ms(direct),
        "ttfb_miss": summary_ms(miss),
        "ttfb_exact_hit": summary_ms(exact),
        "ttfb_paraphrase_hit": summary_ms(para),
        "complete_direct": summary_ms(direct_total),
        "complete_miss": summary_ms(miss_total),
    }


def _stats_sync(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/_semcache/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def measure_throughput(
    proxy_url: str, proxy: Service, cfg: BenchConfig, workdir: Path
) -> list[dict[str, Any]]:
    """wrk at each concurrency: all hits (exact and paraphrase alternating), then a
    hit-heavy mix with ``fresh_share`` new questions (misses, stored as usual).

    Paraphrases carry ``X-Semcache-TTL: 0``: one that misses (a lookup cut by its
    budget under overload) is then not stored under its own text, which would turn
    it into an exact repeat for the rest of the run and change the mix."""
    bodies: list[tuple[bytes, bool]] = []
    for q, p in PAIRS:
        bodies.append((json.dumps(chat_body(q, model=MODEL)).encode(), False))
        bodies.append((json.dumps(chat_body(p, model=MODEL)).encode(), True))
    headers = {"Content-Type": "application/json", **AUTH}
    runs = []
    mixes = [("hits: 50% exact, 50% paraphrase", 0.0)]
    if cfg.fresh_share > 0:
        share = cfg.fresh_share
        mixes.append((f"hit-heavy: {1 - share:.0%} hits, {share:.0%} new", share))
    for name, fresh in mixes:
        script = write_script(
            workdir / f"wrk-{fresh:g}.lua",
            bodies,
            request_path=CHAT_PATH,
            headers=headers,
            extra_headers={"X-Semcache-TTL": "0"},
            fresh=fresh,
            model=MODEL,
        )
        for connections in cfg.concurrency:
            before = _stats_sync(proxy_url)
            result = run_wrk(
                proxy_url,
                script,
                connections=connections,
                duration=cfg.duration,
                proxy_cpu=proxy.cpu_seconds,
            )
            after = _stats_sync(proxy_url)
            result["mix"] = name
            result["cache"] = {
                key: after[key] - before[key]
                for key in (
                    "exact_hits",
                    "semantic_hits",
                    "misses",
                    "errors",
                    "stores",
                    "store_failures",
                    "rejected_by_verifier",
                )
            }
            result["breakers_after"] = after["breakers"]
            runs.append(result)
    return runs


async def _hit_loop(url: str, texts: Sequence[str], seconds: float) -> int:
    conn = _conn(url)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            text = texts[sent % len(texts)]
            response = await post_json(conn, CHAT_PATH, chat_body(text, model=MODEL), AUTH)
            _check(response, "hit", f"profile {text!r}")
            sent += 1
    finally:
        await conn.close()
    return sent


async def profile_hits(proxy_url: str, proxy: Service, cfg: BenchConfig) -> dict[str, Any]:
    """py-spy over one-at-a-time paraphrase hits (all threads, then the GIL holder only),
    then exact hits."""
    out: dict[str, Any] = {}
    rate = 250
    paraphrases = [p for _, p in PAIRS]
    for name, texts, gil in (
        ("paraphrase_hit", paraphrases, False),
        ("paraphrase_hit_gil_only", paraphrases, True),
        ("exact_hit", [q for q, _ in PAIRS], False),
    ):
        recording = asyncio.create_task(
            asyncio.to_thread(
                profile_hit.record, proxy.pid, cfg.profile_seconds, rate=rate, gil=gil
            )
        )
        await asyncio.sleep(0.5)  # py-spy attaches before the load starts
        requests = await _hit_loop(proxy_url, texts, cfg.profile_seconds - 1.0)
        stacks, _ = await recording
        out[name] = profile_hit.summarise(stacks, rate=rate, requests=requests)
    return out


def _rss_when_settled(service: Service, *, timeout: float = 180.0) -> int:
    """VmRSS once it changed by under 1% over 3 s (background index builds done)."""
    readings: list[int] = []

    def settled() -> bool:
        readings.append(service.rss_kb())
        recent = readings[-7:]
        return len(recent) == 7 and (max(recent) - min(recent)) <= 0.01 * max(recent)

    deadline = time.monotonic() + timeout
    while not settled():
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)  # one RSS reading per half second
    return readings[-1]


async def _wait_for_index(
    conn: HttpConnection, probe: ProxyProbe, within: float = 600.0
) -> dict[str, Any]:
    """Search the loaded partition once (a paraphrase hit), then wait until the embedded
    store's HNSW index, built in the background, is done. The index may start at load or
    on the first search, depending on the store; every poll is timed (answers the event
    loop gives at once), to see whether the build ever held the loop up."""
    started = time.monotonic()
    first = await post_json(conn, CHAT_PATH, chat_body(PAIRS[0][1], model=MODEL), AUTH)
    _check(first, "hit", "first search of the loaded partition")
    slowest = first.latency
    while True:
        asked = time.perf_counter()
        building = await probe.index_building()
        slowest = max(slowest, time.perf_counter() - asked)
        if not building:
            break
        if time.monotonic() - started > within:
            raise TimeoutError("the HNSW index was not built in time")
        await asyncio.sleep(0.05)  # poll interval
    return {
        "first_search_ms": first.latency * 1000,
        "index_built_seconds_after_ready": time.monotonic() - started,
        "slowest_answer_ms_while_building": slowest * 1000,
    }


async def _paraphrase_hits(conn: HttpConnection, probe: ProxyProbe, where: str) -> dict[str, Any]:
    """Paraphrase hits, each right after the proxy's model embedded the same text."""
    for _, p in PAIRS:  # the model's first call per input shape is slower
        await probe.embed_seconds(p)
    hits, bare, overhead = [], [], []
    for _, p in PAIRS:
        b = await probe.embed_seconds(p)
        h = await post_json(conn, CHAT_PATH, chat_body(p, model=MODEL), AUTH)
        _check(h, "hit", f"paraphrase at {where} {p!r}")
        hits.append(h.latency)
        bare.append(b)
        overhead.append(h.latency - b)
    return {
        "paraphrase_hit": summary_ms(hits),
        "bare_embedding": summary_ms(bare),
        "paraphrase_hit_minus_bare_embedding": summary_ms(overhead),
    }


async def measure_memory(
    upstream_url: str, embedder: Embedder, cfg: BenchConfig, workdir: Path
) -> dict[str, Any]:
    """RSS of the proxy on an empty data folder and on one holding ``entries`` entries."""
    out: dict[str, Any] = {"entries": cfg.entries}
    questions = [q for q, _ in PAIRS]
    known_texts = [normalize_query(q) for q in questions]
    vectors = np.asarray(await embedder.embed(known_texts))
    empty = workdir / "data-empty"
    full = workdir / "data-full"
    for folder in (empty, full):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    out["populate"] = await populate(
        full,
        cfg.entries,
        model_id=embedder.model_id,
        dimension=embedder.dimension,
        known=dict(zip(known_texts, vectors, strict=True)),
        request=_request_for,
        filler=lambda i: f"Archived question {i}: how does item {i} work?",
        destination=upstream_url,
    )
    for label, folder in (("empty", empty), ("full", full)):
        env = {
            "SEMANTIC_CACHE_DATA_PATH": str(folder),
            "SEMANTIC_CACHE_MAX_ENTRIES": str(max(cfg.entries, 1)),
            "SEMANTIC_CACHE_ADMIN_TOKEN": ADMIN_TOKEN,
            **cfg.embedder_env,
        }
        started = time.monotonic()
        service, url = await asyncio.to_thread(
            start_proxy, workdir, upstream_url, env, name=f"proxy-memory-{label}"
        )
        section: dict[str, Any] = {"ready_seconds": time.monotonic() - started}
        out[label] = section
        try:
            probe = ProxyProbe(url)
            conn = _conn(url)
            try:
                stats = await probe.stats()
                section["entries_loaded"] = stats.get("entries")
                section["vectors_loaded"] = stats.get("vectors")
                if label == "full":
                    section.update(await _wait_for_index(conn, probe))
                    section.update(await _paraphrase_hits(conn, probe, f"{cfg.entries} entries"))
                else:
                    h = await post_json(conn, CHAT_PATH, chat_body(questions[0], model=MODEL), AUTH)
                    _check(h, "miss", "first request on the empty cache")
            finally:
                await conn.close()
                await probe.close()
            section["rss_mib"] = await asyncio.to_thread(_rss_when_settled, service) / 1024
        finally:
            service.stop()
    if cfg.entries:
        delta = out["full"]["rss_mib"] - out["empty"]["rss_mib"]
        out["bytes_per_entry"] = delta * 1024 * 1024 / cfg.entries
    return out


# -- the run ----------------------------------------------------------------------------


async def _bench_backend(
    backend: str,
    upstream_url: str,
    cfg: BenchConfig,
    workdir: Path,
    results: dict[str, Any],
) -> None:
    env = {"SEMANTIC_CACHE_ADMIN_TOKEN": ADMIN_TOKEN, **cfg.embedder_env}
    cleanup: list[Callable[[], None]] = []
    if backend == "pg+redis":
        stores, drop = shared_stores(cfg.pg_admin_uri, cfg.redis_uri, "semcache_proxybench")
        cleanup.append(drop)
        env.update(stores)
    try:
        proxy, url = await asyncio.to_thread(
            start_proxy, workdir, upstream_url, env, name=f"proxy-{backend.replace('+', '-')}"
        )
        try:
            section: dict[str, Any] = {
                "settings": {k: v for k, v in env.items() if "TOKEN" not in k}
            }
            results["backends"][backend] = section
            section["latency"] = await measure_latency(url, upstream_url, cfg)
            if WRK is not None:
                section["throughput"] = await asyncio.to_thread(
                    measure_throughput, url, proxy, cfg, workdir
                )
            else:
                section["throughput"] = "skipped: wrk is not installed"
            if backend == "embedded" and cfg.profile_seconds > 0:
                if shutil.which(profile_hit.PY_SPY):
                    section["profile"] = await profile_hits(url, proxy, cfg)
                else:
                    section["profile"] = "skipped: py-spy is not installed (pip install py-spy)"
            section["rss_mib_after"] = proxy.rss_kb() / 1024
            section["breaker_openings"] = proxy.tail(100_000).count("breaker open")
            probe = ProxyProbe(url)
            section["cache_stats"] = await probe.stats()
            await probe.close()
        finally:
            proxy.stop()
    finally:
        for step in reversed(cleanup):
            step()


async def run_benchmark(
    cfg: BenchConfig, *, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    workdir = cfg.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "backends": {},
    }
    progress("loading the embedder (real vectors for the memory run)")
    settings = Settings.from_env(dict(cfg.embedder_env))
    embedder: Embedder = await asyncio.to_thread(plugins.create_embedder, settings)
    results["embedder"] = {
        "model_id": embedder.model_id,
        "dimension": embedder.dimension,
        "type": settings.embedder_type,
        # what ran: `auto` resolved by the embedder (its own choice where it has one)
        "backend": getattr(embedder, "backend", settings.embedder_backend),
        "threads": settings.embedder_threads,
    }
    upstream, upstream_url = await asyncio.to_thread(
        start_fake_upstream, workdir, latency=cfg.latency, chunk_delay=cfg.chunk_delay
    )
    try:
        for backend in cfg.backends:
            progress(
                f"{backend}: latency, throughput" + (", profile" if backend == "embedded" else "")
            )
            await _bench_backend(backend, upstream_url, cfg, workdir, results)
        if cfg.entries > 0:
            progress(f"memory at {cfg.entries} entries")
            results["memory"] = await measure_memory(upstream_url, embedder, cfg, workdir)
    finally:
        upstream.stop()
        await embedder.aclose()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return results
