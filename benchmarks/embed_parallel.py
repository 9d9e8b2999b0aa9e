"""Texts per second through `MicroBatchingEmbedder(HuggingFaceEmbedder(...))` by callers.

    python -m benchmarks.embed_parallel [--backends onnx torch] [--callers 1 16 64]
                                        [--duration 3] [--rounds 3] [--json PATH]

Closed-loop callers (1, 16, 64 at once) each embed one ~20-word question at a time, as
the cache does per lookup, against two set-ups of the same model: ``seed`` (one model
call at a time, batches of up to 32: ``workers=1, calibrate=False``) and ``auto`` (the
defaults: a call per usable core, the batch size calibrated at start-up). Each cell is
run ``--rounds`` times, interleaved, and medians are reported, with the median of the
per-round auto/seed ratios: compare within one run, since a machine shared with other
work moves the absolute numbers. Also prints what each set-up chose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from semcache import MicroBatchingEmbedder
from semcache_embed_hf import HuggingFaceEmbedder

_SENTENCE = (
    "how do I reset the password of my account when I no longer have access to the "
    "email address I used to sign up for the service last year please"
)
_WORDS = _SENTENCE.split()


def _question(i: int) -> str:
    # ~20 words, a different text each time (no tokenizer or model caching helps).
    words = _WORDS[: 18 + i % 5]
    return f"{' '.join(words)} {i}"


async def _cell(embedder: MicroBatchingEmbedder, callers: int, duration: float) -> float:
    done = 0
    counter = 0
    deadline = time.perf_counter() + duration

    async def caller() -> None:
        nonlocal done, counter
        while time.perf_counter() < deadline:
            counter += 1
            await embedder.embed([_question(counter)])
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - started)


async def _bench(backend: str, callers: list[int], duration: float, rounds: int) -> dict[str, Any]:
    # "seed": one model call at a time, batches of up to 32 (as before parallel
    # runners); "auto": the defaults (a call per core, calibrated batch size).
    seed_inner = await asyncio.to_thread(
        HuggingFaceEmbedder,
        backend=backend,  # type: ignore[arg-type]
        workers=1,
        calibrate=False,
    )
    auto_inner = await asyncio.to_thread(HuggingFaceEmbedder, backend=backend)  # type: ignore[arg-type]
    configs = {"seed": MicroBatchingEmbedder(seed_inner), "auto": MicroBatchingEmbedder(auto_inner)}
    info = {
        name: {
            "max_concurrency": b.concurrency,
            "batch_limit": b.batch_limit,
            "calibration_ms": {
                n: round(c * 1000, 2) for n, c in getattr(b.inner, "calibration", {}).items()
            },
        }
        for name, b in configs.items()
    }
    for b in configs.values():
        await _cell(b, 4, 0.5)  # warm up
    samples: dict[str, dict[int, list[float]]] = {n: {c: [] for c in callers} for n in configs}
    ratios: dict[int, list[float]] = {c: [] for c in callers}
    for _ in range(rounds):  # interleaved, so both see the same load on the machine
        for c in callers:
            for name, b in configs.items():
                samples[name][c].append(await _cell(b, c, duration))
            ratios[c].append(samples["auto"][c][-1] / samples["seed"][c][-1])
    for b in configs.values():
        await b.aclose()
    return {
        "info": info,
        "texts_per_s": {
            n: {c: statistics.median(v) for c, v in per.items()} for n, per in samples.items()
        },
        "auto_over_seed": {c: statistics.median(v) for c, v in ratios.items()},
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"])
    parser.add_argument("--callers", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores usable: {cores}")
    results: dict[str, Any] = {}
    for backend in args.backends:
        result = asyncio.run(_bench(backend, args.callers, args.duration, args.rounds))
        results[backend] = result
        for name, info in result["info"].items():
            print(f"{backend} {name}: {info}")
        for c in args.callers:
            seed, auto = (result["texts_per_s"][n][c] for n in ("seed", "auto"))
            print(
                f"  {c:>3} callers: seed {seed:7.1f}  auto {auto:7.1f} texts/s  "
                f"auto/seed {result['auto_over_seed'][c]:.2f} (median of per-round ratios)"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
