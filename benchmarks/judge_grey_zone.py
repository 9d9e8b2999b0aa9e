"""What a grey-zone judge can win and what it is trusted with, on labelled pairs.

    python -m benchmarks.judge_grey_zone [PAIRS.jsonl ...] [--floor 0.55]

Runs ``semcache eval``'s loop (the default embedder, in-memory stores, default settings)
three times: without a judge; with a perfect judge (it answers each pair's label: the
most a judge can win); and with a judge that always says yes (the worst judge: what the
hard rules alone still keep out). Printed per file: pairs served, split into same-answer
pairs and traps, and judge calls per pair. No model is called for the judge, so this
says nothing of a real judge's latency or error rate, only of the room it has.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from semcache import Settings, plugins
from semcache.evaluation import evaluate, load_pairs
from semcache.evaluation._pairs import Pair
from semcache.plugins import hookimpl
from semcache.text import exact_text, normalize_query

_DEFAULT_FILES = ["tests/data/heldout.jsonl", "tests/data/traps.jsonl"]


class _Judges:
    """The ``oracle`` and ``yes`` judges, counting their calls."""

    def __init__(self) -> None:
        self.labels: dict[tuple[str, str], bool] = {}
        self.calls = 0

    def learn(self, pairs: list[Pair]) -> None:
        for p in pairs:
            key = (normalize_query(exact_text(p.b.query)), normalize_query(exact_text(p.a.query)))
            self.labels[key] = p.same_answer

    @hookimpl
    def semcache_create_judge(self, name: str, settings: Settings) -> Any:
        judges = self

        class Judge:
            async def same_answer(self, query: str, candidate: str) -> bool | None:
                judges.calls += 1
                return True if name == "yes" else judges.labels.get((query, candidate))

            async def aclose(self) -> None:
                pass

        return Judge()


async def run(path: str, floor: float) -> None:
    pairs = load_pairs(Path(path))
    judges = _Judges()
    judges.learn(pairs)
    for name in ("oracle", "yes"):
        plugins.register("judge", name, judges)
    positives = sum(p.same_answer for p in pairs)
    print(f"{path}: {len(pairs)} pairs, {positives} same-answer, {len(pairs) - positives} traps")
    for name in ("none", "oracle", "yes"):
        judges.calls = 0
        settings = Settings.from_env(judge=name, judge_floor=floor, judge_budget=10**9)
        report = await evaluate(pairs, settings)
        o = report.overall
        print(
            f"  judge {name:>6}: same-answer served {o.true_hits}/{o.positives}, "
            f"traps served {o.false_hits}/{o.pairs - o.positives}, "
            f"judge calls per pair {judges.calls / o.pairs:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=_DEFAULT_FILES)
    parser.add_argument("--floor", type=float, default=0.55)
    args = parser.parse_args()
    for path in args.files:
        asyncio.run(run(path, args.floor))


if __name__ == "__main__":
    main()
