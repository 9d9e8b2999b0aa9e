"""Conversation modes when many conversations end in the same follow-up.

    python -m benchmarks.context_crowd [FILE.jsonl ...]

A support bot's cache holds hundreds of conversations that end in "how much will that
cost me?". In the ``semantic`` and ``turns`` context modes they share one partition, so
the request must find its own conversation among them. Each conversation file (by
default every ``tests/data/conversations*.jsonl``) is rewritten so that every pair ends
in that one follow-up, on both sides; every ``a`` is stored in one partition, then every
``b`` is looked up (``semcache eval --crowded``). Prints, per file and mode, the right
follow-ups served, the traps served, and the lookups served another pair's answer, with
all-MiniLM-L6-v2 (the default embedder).

The rewrite keeps each pair's label where the pair differs in its earlier turns only: a
follow-up that depends on them is as right or as wrong as the original one. A trap whose
difference is in its last message ("we need 250 of them" / "500 of them") would lose it,
so such traps are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from semcache import Settings, plugins
from semcache.evaluation import Pair, evaluate, load_pairs
from semcache.text import normalize_query

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
FOLLOW_UP = "How much will that cost me?"


def keeps_label(line: dict[str, Any]) -> bool:
    """Does the pair keep its label once both sides end in :data:`FOLLOW_UP`?"""
    if line["same_answer"]:
        return True
    a, b = (normalize_query(_last_user(line[side])["content"]) for side in ("a", "b"))
    return a == b


def _last_user(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return [m for m in messages if m["role"] == "user"][-1]


def same_follow_up(line: dict[str, Any]) -> dict[str, Any]:
    """The pair with the last user message of both sides replaced by :data:`FOLLOW_UP`."""
    out = dict(line)
    for side in ("a", "b"):
        messages = [dict(m) for m in line[side]]
        last = max(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[last]["content"] = FOLLOW_UP
        out[side] = messages
    return out


def crowd_pairs(path: Path) -> list[Pair]:
    """The file's pairs, each ending in :data:`FOLLOW_UP` (traps that would lose their
    label left out)."""
    read = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    with tempfile.TemporaryDirectory() as folder:
        rewritten = Path(folder) / path.name
        rewritten.write_text(
            "".join(json.dumps(same_follow_up(x)) + "\n" for x in read if keeps_label(x))
        )
        return load_pairs(rewritten)


async def run(sets: list[tuple[str, list[Pair]]]) -> None:
    settings = Settings.from_env({})
    embedder = await asyncio.to_thread(plugins.create_embedder, settings)
    print(f"{'file':<34} {'mode':<9} {'right':>9} {'traps':>9} {'foreign':>8}")
    try:
        for name, pairs in sets:
            for mode in ("semantic", "turns"):
                report = await evaluate(
                    pairs, settings.replace(context_mode=mode), embedder=embedder, crowded=True
                )
                m = report.overall
                print(
                    f"{name:<34} {mode:<9} {m.true_hits:>4} of {m.positives:<3}"
                    f"{m.false_hits:>4} of {m.negatives:<3}{len(report.foreign_hits):>5}"
                )
    finally:
        await embedder.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = args.files or sorted(DATA.glob("conversations*.jsonl"))
    asyncio.run(run([(path.name, crowd_pairs(path)) for path in files]))


if __name__ == "__main__":
    main()
