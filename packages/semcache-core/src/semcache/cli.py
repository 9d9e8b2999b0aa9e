"""The ``semcache`` command: inspect settings, run a demo, evaluate and tune hit quality."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from semcache.errors import SemcacheError
from semcache.settings import Settings, settings_table

__all__ = ["main"]


def _cmd_settings(args: argparse.Namespace) -> int:
    if args.table:
        print(settings_table())
        return 0
    print(Settings.from_env())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Store one answer, then look up a repeat, a paraphrase and an unrelated question."""
    from semcache.cache import SemanticCache

    async def run() -> None:
        async with SemanticCache() as cache:
            assert cache.embedder is not None
            print(f"embedder: {cache.embedder.model_id}  threshold: {cache.threshold:.2f}")
            stored = "How do I reset my password?"
            await cache.store(stored, b"Open Settings > Account > Reset password.")
            print(f"stored:   {stored!r}")
            for question in (
                "how do I reset my password",
                "What are the steps to reset my password?",
                "How do I delete my account?",
            ):
                t0 = time.perf_counter()
                hit = await cache.lookup(question)
                ms = (time.perf_counter() - t0) * 1000
                result = f"hit ({hit.source}, similarity {hit.similarity:.3f})" if hit else "miss"
                print(f"lookup:   {question!r} -> {result} in {ms:.1f} ms")

    asyncio.run(run())
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    """Store each pair's ``a``, look up its ``b``; print hit rate, precision, recall."""
    from semcache import evaluation

    overrides: dict[str, Any] = {}
    for arg, name in (
        ("threshold", "threshold"),
        ("verifier", "verifier"),
        ("verifier_params", "verifier_params"),
        ("context_mode", "context_mode"),
        ("context_threshold", "context_threshold"),
        ("embedder", "embedder_type"),
        ("model", "embedder_model"),
    ):
        value = getattr(args, arg)
        if value is not None:
            overrides[name] = value
    settings = Settings.from_env(**overrides)
    sweep_spec = args.sweep if args.sweep is not None else (_DEFAULT_SWEEP if args.plot else None)
    sweep = evaluation.sweep_thresholds(sweep_spec) if sweep_spec else []
    if args.plot:
        evaluation.require_matplotlib()  # before the run, not after it
    pairs = evaluation.load_pairs(args.pairs, limit=args.limit, sample=args.sample, seed=args.seed)
    if not pairs:
        print("semcache: no pairs to evaluate", file=sys.stderr)
        return 2
    progress = None if args.quiet else _progress
    report = asyncio.run(
        evaluation.evaluate(
            pairs,
            settings,
            sweep=sweep,
            source=args.pairs,
            progress=progress,
            crowded=args.crowded,
        )
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.format())
    if args.plot:
        evaluation.plot_report(report, args.plot)
        print(f"chart: {args.plot}", file=sys.stderr)
    return 0


_DEFAULT_SWEEP = "0.70:0.99:0.01"


def _cmd_tune(args: argparse.Namespace) -> int:
    """Fit the default verifier's levels on labelled pairs; write them to a file."""
    from pathlib import Path

    from semcache import evaluation

    overrides: dict[str, Any] = {}
    if args.embedder is not None:
        overrides["embedder_type"] = args.embedder
    if args.model is not None:
        overrides["embedder_model"] = args.model
    if args.threshold is not None:
        overrides["threshold"] = args.threshold
    settings = Settings.from_env(**overrides)
    named = {}
    for path in args.pairs:
        pairs = evaluation.load_pairs(path, limit=args.limit, sample=args.sample, seed=args.seed)
        if not pairs:
            print(f"semcache: no pairs in {path}", file=sys.stderr)
            return 2
        named[Path(path).name if Path(path).name not in named else path] = pairs
    result = asyncio.run(
        evaluation.tune(
            named,
            settings,
            max_false_hit_rate=args.max_false_hit_rate,
            folds=args.folds,
            seed=args.seed,
            progress=None if args.quiet else _progress,
        )
    )
    print(result.format())
    if args.out:
        Path(args.out).write_text(result.levels.to_json(), encoding="utf-8")
        print(f"levels: {args.out} (load with SEMANTIC_CACHE_VERIFIER_PARAMS={args.out})")
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcache", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "settings", help="print the effective settings (or, with --table, every group's table)"
    )
    p.add_argument("--table", action="store_true", help="print every variable as a Markdown table")
    p.set_defaults(func=_cmd_settings)
    p = sub.add_parser("demo", help="store an answer and look up a paraphrase")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser(
        "eval",
        help="measure hit quality on labelled pairs (JSON lines)",
        description=(
            "For each pair store `a` in an empty partition and look up `b`; report hit rate, "
            "precision, recall and false-hit rate, overall and per category, at the current "
            "settings (SEMANTIC_CACHE_* variables, then the options below). Lines: "
            '{"a": ..., "b": ..., "same_answer": true|false, "category": ...}; a and b may '
            "be lists of chat messages."
        ),
    )
    p.add_argument("pairs", help="JSON-lines file of labelled pairs")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate the first N pairs only")
    p.add_argument("--sample", action="store_true", help="with --limit: N pairs at random")
    p.add_argument("--seed", type=int, default=0, help="random seed for --sample (default 0)")
    p.add_argument(
        "--sweep",
        nargs="?",
        const=_DEFAULT_SWEEP,
        metavar="RANGE",
        help=f"also sweep thresholds: start:stop:step or a comma list (default {_DEFAULT_SWEEP})",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        help="write a precision/recall-vs-threshold chart (implies --sweep; needs matplotlib)",
    )
    p.add_argument("--threshold", type=float, help="similarity threshold (overrides the setting)")
    p.add_argument("--verifier", help="verifier: default, none or a plugin name")
    p.add_argument(
        "--verifier-params",
        metavar="LEVELS.json",
        help="levels written by `semcache tune` (overrides SEMANTIC_CACHE_VERIFIER_PARAMS)",
    )
    p.add_argument(
        "--context-mode", choices=("exact", "semantic", "turns"), help="context matching"
    )
    p.add_argument("--context-threshold", type=float, help="context similarity threshold")
    p.add_argument(
        "--crowded",
        action="store_true",
        help="store every pair's a in one partition, then look up every b "
        "(counts answers served from another pair)",
    )
    p.add_argument("--embedder", help="embedder plugin (overrides SEMANTIC_CACHE_EMBEDDER_TYPE)")
    p.add_argument("--model", help="embedder model (overrides SEMANTIC_CACHE_EMBEDDER_MODEL)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser(
        "tune",
        help="fit the default verifier's similarity levels on labelled pairs",
        description=(
            "Fit the threshold and the topic rule's levels on labelled pairs (the same "
            "JSON lines as `eval`) so that more right answers are served while each file's "
            "false-hit rate stays at most what the current levels serve on it (or "
            "--max-false-hit-rate). Prints k-fold cross-validated numbers; --out writes "
            "the levels for SEMANTIC_CACHE_VERIFIER_PARAMS. Hard rules (negation, numbers, "
            "dates, names...) are never relaxed."
        ),
    )
    p.add_argument("pairs", nargs="+", help="JSON-lines files of labelled pairs (one set each)")
    p.add_argument("--out", metavar="LEVELS.json", help="write the fitted levels here")
    p.add_argument(
        "--max-false-hit-rate",
        type=float,
        metavar="RATE",
        help="allowed false-hit rate on every file (default: what the current levels serve)",
    )
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--limit", type=int, metavar="N", help="use the first N pairs of each file")
    p.add_argument("--sample", action="store_true", help="with --limit: N pairs at random")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threshold", type=float, help="the current threshold to start from")
    p.add_argument("--embedder", help="embedder plugin (overrides SEMANTIC_CACHE_EMBEDDER_TYPE)")
    p.add_argument("--model", help="embedder model (overrides SEMANTIC_CACHE_EMBEDDER_MODEL)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_tune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SemcacheError as exc:
        print(f"semcache: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
