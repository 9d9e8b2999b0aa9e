"""``python -m benchmarks``: the proxy benchmark (and, with ``--faults``, the slow fault runs).

    python -m benchmarks                      # everything, about 10 minutes
    python -m benchmarks --quick              # fewer samples, shorter runs, 20k entries
    python -m benchmarks --faults             # also kill/restart Redis and PostgreSQL under load

Prints the tables and writes every figure as JSON (``--out``, default
``benchmarks/results/latest.json``). The other modules here run on their own:
``python -m benchmarks.embedded_index``, ``python -m benchmarks.store_faults``...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.proxy_bench import BenchConfig, run_benchmark
from benchmarks.store_faults import StoreFaultConfig, run_store_restarts

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


_PROFILE_TITLES = {
    "paraphrase_hit": "paraphrase hits, all threads",
    "paraphrase_hit_gil_only": "paraphrase hits, the thread holding the GIL only",
    "exact_hit": "exact hits",
}


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def format_report(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines: list[str] = []
    backends = list(results["backends"])
    emb = results.get("embedder", {})
    lines.append(
        f"Embedder: {emb.get('model_id')} ({emb.get('type')}, backend {emb.get('backend')}, "
        f"{emb.get('threads')} thread). Upstream latency {results['config']['latency'] * 1000:.0f} ms."
    )
    lines.append("")
    lines.append("Latency, one request at a time (ms):")
    lines.append("")
    header = ["", *[f"{b} {p}" for b in backends for p in ("p50", "p99")]]
    lines.append(_row(header))
    lines.append(_row(["---"] * len(header)))
    rows = [
        ("upstream called directly", "direct"),
        ("miss through the proxy", "miss"),
        ("miss minus direct (paired)", "miss_minus_direct"),
        ("bare embedding of the missed text (in the proxy)", "miss_bare_embedding"),
        ("miss minus direct minus embedding (paired)", "miss_minus_direct_minus_embedding"),
        ("exact-repeat hit", "exact_hit"),
        ("paraphrase hit", "paraphrase_hit"),
        ("bare embedding of the paraphrase (in the proxy)", "bare_embedding"),
        ("paraphrase hit minus bare embedding (paired)", "paraphrase_hit_minus_bare_embedding"),
    ]
    for label, key in rows:
        cells: list[Any] = [label]
        for b in backends:
            s = results["backends"][b]["latency"][key]
            cells += [_f(s.get("p50")), _f(s.get("p99"))]
        lines.append(_row(cells))
    stream_rows = [
        ("streamed: first event, direct", "ttfb_direct"),
        ("streamed: first event, miss through the proxy", "ttfb_miss"),
        ("streamed: first event, exact hit", "ttfb_exact_hit"),
        ("streamed: first event, paraphrase hit", "ttfb_paraphrase_hit"),
    ]
    for label, key in stream_rows:
        cells = [label]
        for b in backends:
            s = results["backends"][b]["latency"]["streaming"][key]
            cells += [_f(s.get("p50")), _f(s.get("p99"))]
        lines.append(_row(cells))
    lines.append("")
    for b in backends:
        lat = results["backends"][b]["latency"]
        per = lat["embeddings_per_request"]
        lines.append(
            f"{b}: texts embedded per request: miss {per['miss']:.2f}, exact hit "
            f"{per['exact_hit']:.2f}, paraphrase hit {per['paraphrase_hit']:.2f}; samples: "
            f"{lat['miss']['n']} misses, {lat['exact_hit']['n']} exact, "
            f"{lat['paraphrase_hit']['n']} paraphrase hits ({lat['paraphrase_misses']} paraphrases "
            f"missed), lowest paraphrase similarity {_f(lat['paraphrase_similarity_min'], 3)}."
        )
        side = lat["proxy_side_mean_ms"]
        lines.append(
            f"{b}: inside the proxy (mean ms, from /metrics): lookup on a miss "
            f"{_f(side['miss']['lookup'], 2)}, upstream to headers on a miss "
            f"{_f(side['miss']['upstream'], 2)}, lookup on an exact hit "
            f"{_f(side['exact_hit']['lookup'], 2)}, on a paraphrase hit "
            f"{_f(side['paraphrase_hit']['lookup'], 2)}."
        )
    lines.append("")
    lines.append("Throughput (wrk, one thread, keep-alive connections):")
    lines.append("")
    header = [
        "backend",
        "mix",
        "connections",
        "req/s",
        "hits (exact/semantic)",
        "p50 ms",
        "p99 ms",
        "non-200",
        "socket errors",
        "wrk CPU",
        "proxy CPU",
    ]
    lines.append(_row(header))
    lines.append(_row(["---"] * len(header)))
    for b in backends:
        runs = results["backends"][b].get("throughput")
        if not isinstance(runs, list):
            lines.append(_row([b, str(runs)] + [""] * (len(header) - 2)))
            continue
        for r in runs:
            wall = r["duration_us"] / 1e6
            lines.append(
                _row(
                    [
                        b,
                        r["mix"],
                        r["connections"],
                        _f(r["rps"], 0),
                        f"{r['hit_ratio']:.1%} ({r['cache']['exact_hits']}/"
                        f"{r['cache']['semantic_hits']})",
                        _f(r["p50_us"] / 1000),
                        _f(r["p99_us"] / 1000),
                        r["non_200"],
                        r["socket_errors"],
                        f"{r['wrk_cpu_seconds'] / wall:.0%}",
                        f"{r.get('proxy_cpu_seconds', 0) / wall:.0%}",
                    ]
                )
            )
    memory = results.get("memory")
    if memory:
        lines.append("")
        full, empty = memory["full"], memory["empty"]
        n = memory["entries"]
        lines.append(
            f"Memory (VmRSS of the proxy, embedded default): empty {empty['rss_mib']:.0f} MiB, "
            f"{n} entries {full['rss_mib']:.0f} MiB "
            f"(+{memory.get('bytes_per_entry', 0):.0f} bytes per entry; "
            f"{full['entries_loaded']} entries loaded; ready {full['ready_seconds']:.1f} s after "
            f"start; first search {_f(full.get('first_search_ms'))} ms; HNSW index built "
            f"{_f(full.get('index_built_seconds_after_ready'))} s after ready; the slowest answer "
            f"meanwhile took {_f(full.get('slowest_answer_ms_while_building'))} ms)."
        )
        if "paraphrase_hit" in full:
            lines.append(
                f"At {n} entries: paraphrase hit p50 {_f(full['paraphrase_hit']['p50'])} ms "
                f"(p99 {_f(full['paraphrase_hit']['p99'])}), bare embedding p50 "
                f"{_f(full['bare_embedding']['p50'])} ms, hit minus embedding (paired) p50 "
                f"{_f(full['paraphrase_hit_minus_bare_embedding']['p50'])} ms (p99 "
                f"{_f(full['paraphrase_hit_minus_bare_embedding']['p99'])})."
            )
    for b in backends:
        profile = results["backends"][b].get("profile")
        if not isinstance(profile, dict):
            if profile:
                lines += ["", f"Profile ({b}): {profile}"]
            continue
        for kind, summary in profile.items():
            lines.append("")
            lines.append(
                f"Profile of {_PROFILE_TITLES.get(kind, kind)} ({b}, py-spy {summary['rate_hz']} Hz, "
                f"{summary['requests']} requests, {summary['samples']} non-idle samples):"
            )
            lines.append("")
            lines.append(_row(["component", "share", "CPU ms per request"]))
            lines.append(_row(["---"] * 3))
            for row in summary["categories"]:
                lines.append(
                    _row([row["category"], f"{row['share']:.0%}", _f(row["ms_per_request"], 2)])
                )
    faults = results.get("faults")
    if faults:
        lines.append("")
        lines.append(
            f"Store restarts under load ({faults['workers']} workers, upstream "
            f"{faults['upstream_latency_s'] * 1000:.0f} ms): {faults['requests']} requests, "
            f"{faults['errors']} errors, baseline hit rate {faults['baseline_hit_rate']:.1%}."
        )
        lines.append("")
        header = [
            "store killed",
            "requests during outage",
            "hit rate during",
            "/readyz during",
            "recovered after restart (s)",
            "hit rate after",
        ]
        lines.append(_row(header))
        lines.append(_row(["---"] * len(header)))
        for o in faults["outages"]:
            lines.append(
                _row(
                    [
                        o["store"],
                        o["requests_during_outage"],
                        f"{o['hit_rate_during_outage']:.1%}",
                        "200" if o["readyz_ok_during_outage"] else "503",
                        _f(o["recovery_seconds_after_restart"]),
                        f"{o['hit_rate_after_recovery']:.1%}",
                    ]
                )
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--latency", type=float, default=0.3, help="upstream latency, seconds")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.05, help="seconds between SSE events"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--entries", type=int, default=100_000, help="entries for the memory figure"
    )
    parser.add_argument(
        "--backends", default="embedded,pg+redis", help="comma-separated: embedded, pg+redis"
    )
    parser.add_argument(
        "--pg-admin-uri",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server on which a database of the run's own is created and dropped",
    )
    parser.add_argument(
        "--redis-uri",
        default="redis://127.0.0.1:6379/0",
        help="Redis in which the run uses (and then deletes) a key prefix of its own",
    )
    parser.add_argument(
        "--embedder-backend",
        default=None,
        help="SEMANTIC_CACHE_EMBEDDER_BACKEND for the proxy and the bare timings",
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples, 3 s runs, 20k entries")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="also kill and restart Redis, then PostgreSQL, under load",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep logs and data here (default: a temporary folder, removed)",
    )
    args = parser.parse_args(argv)

    cfg = BenchConfig(
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        duration=args.duration,
        entries=args.entries,
        backends=tuple(b.strip() for b in args.backends.split(",") if b.strip()),
        pg_admin_uri=args.pg_admin_uri,
        redis_uri=args.redis_uri,
    )
    if args.embedder_backend:
        cfg.embedder_env["SEMANTIC_CACHE_EMBEDDER_BACKEND"] = args.embedder_backend
    if args.quick:
        cfg.hit_rounds, cfg.miss_rounds, cfg.stream_samples = 2, 1, 8
        cfg.duration = min(cfg.duration, 3.0)
        cfg.entries = min(cfg.entries, 20_000)
        cfg.profile_seconds = 5.0
    if args.no_profile:
        cfg.profile_seconds = 0.0

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            cfg.workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="semcache-bench-"))
            )
        else:
            cfg.workdir = args.workdir
        results = asyncio.run(run_benchmark(cfg, progress=progress))
        if args.faults:
            progress("faults: kill and restart Redis, then PostgreSQL, under load")
            fault_cfg = StoreFaultConfig(
                upstream_latency=cfg.latency, embedder_env=cfg.embedder_env
            )
            results["faults"] = asyncio.run(run_store_restarts(cfg.workdir / "faults", fault_cfg))
    results["command"] = "python -m benchmarks " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_report(results))
    print(f"\nJSON: {args.out}")
    faults = results.get("faults")
    return 1 if faults and faults["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
