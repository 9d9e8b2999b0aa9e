"""How many labelled pairs each synonym of the default verifier's lexicon decides.

For every entry of ``semcache.verify.lexicon.SYNONYMS`` and every pair of each file
given, the verifier's verdict ignoring similarity (the hard rule that fires, and the
topic rule's count of differing words) is computed with and without that entry; the
entry *fires* on a pair when they differ. With ``--model``, the pairs an entry fires on
are also embedded (all-MiniLM-L6-v2) and the script counts the hits the entry changes at
the default threshold: right answers (same_answer true) gained, wrong ones gained.

    python scripts/lexicon_usage.py tests/data/traps.jsonl /path/to/qqp_dev.jsonl --model

An entry that fires on one pair of the data the rules were developed on and nowhere
else is a fit to that pair, not general English.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from semcache.text import normalize_query
from semcache.verify import DefaultVerifier, analysis
from semcache.verify import lexicon as lx

THRESHOLD = 0.85
ENTRIES = list(lx.SYNONYMS)


def _texts(value: Any) -> list[str]:
    """The question (last user message) and, for a conversation, its earlier turns."""
    if isinstance(value, str):
        return [value]
    turns = [m.get("content", "") for m in value if isinstance(m, dict)]
    users = [i for i, m in enumerate(value) if m.get("role") == "user"]
    last = users[-1] if users else len(turns) - 1
    earlier = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value[:last])
    return [turns[last]] + ([earlier] if earlier else [])


def load(path: Path) -> list[tuple[str, str, str, bool]]:
    """(id, a, b, same_answer) for every comparison the verifier makes on the file."""
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            a_texts, b_texts = _texts(obj["a"]), _texts(obj["b"])
            for k, (a, b) in enumerate(zip(a_texts, b_texts, strict=False)):
                a, b = normalize_query(a), normalize_query(b)
                if a and b and a != b:
                    ident = str(obj.get("id", n)) + ("" if k == 0 else "/context")
                    out.append((ident, a, b, bool(obj["same_answer"])))
    return out


def _clear() -> None:
    analysis._key.cache_clear()
    analysis._synonyms_by_stem.cache_clear()
    analysis._cached_analyze.cache_clear()


def _outcome(verifier: DefaultVerifier, a: str, b: str) -> tuple[str | None, float]:
    verdict = verifier.check(b, a, 1.0)
    return verdict.rule, verdict.edits


def fired_pairs(
    pairs: list[tuple[str, str, str, bool]],
) -> dict[str, list[int]]:
    """Entry -> indices of the pairs whose outcome it changes."""
    verifier = DefaultVerifier()
    index: dict[str, set[int]] = defaultdict(set)
    for i, (_, a, b, _) in enumerate(pairs):
        for t in analysis.analyze(a).tokens + analysis.analyze(b).tokens:
            index[t].add(i)
            index[analysis.stem(t)].add(i)
    base = {}
    out: dict[str, list[int]] = {}
    for word in ENTRIES:
        candidates = sorted(index.get(word, ()))
        for i in candidates:
            if i not in base:
                base[i] = _outcome(verifier, pairs[i][1], pairs[i][2])
        target = lx.SYNONYMS.pop(word)
        _clear()
        try:
            out[word] = [
                i for i in candidates if _outcome(verifier, pairs[i][1], pairs[i][2]) != base[i]
            ]
        finally:
            lx.SYNONYMS[word] = target
            _clear()
    return out


async def _similarities(texts: list[tuple[str, str]]) -> list[float]:
    from semcache_embed_hf import HuggingFaceEmbedder

    embedder = HuggingFaceEmbedder(threads=2)
    try:
        flat = sorted({t for pair in texts for t in pair})
        rows = np.asarray(await embedder.embed(flat), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        at = {t: rows[i] for i, t in enumerate(flat)}
        return [float(at[a] @ at[b]) for a, b in texts]
    finally:
        await embedder.aclose()


def hit_changes(
    pairs: list[tuple[str, str, str, bool]], fired: dict[str, list[int]]
) -> dict[str, tuple[int, int]]:
    """Entry -> (right hits it adds, wrong hits it adds) at the default threshold;
    negative numbers are hits it takes away."""
    todo = sorted({i for idx in fired.values() for i in idx})
    sims = dict(zip(todo, asyncio.run(_similarities([pairs[i][1:3] for i in todo])), strict=True))
    verifier = DefaultVerifier()

    def served(i: int) -> bool:
        s = sims[i]
        return s >= THRESHOLD and verifier.check(pairs[i][2], pairs[i][1], s).accepted

    with_all = {i: served(i) for i in todo}
    out = {}
    for word, idx in fired.items():
        if not idx:
            continue
        target = lx.SYNONYMS.pop(word)
        _clear()
        try:
            right = wrong = 0
            for i in idx:
                delta = int(with_all[i]) - int(served(i))
                if pairs[i][3]:
                    right += delta
                else:
                    wrong += delta
            out[word] = (right, wrong)
        finally:
            lx.SYNONYMS[word] = target
            _clear()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", action="store_true", help="count hits changed (embeds)")
    parser.add_argument("--show", type=int, default=0, help="print up to N pairs per entry")
    args = parser.parse_args(argv)
    results = {}
    for path in args.files:
        pairs = load(path)
        fired = fired_pairs(pairs)
        changes = hit_changes(pairs, fired) if args.model else {}
        results[path.name] = (pairs, fired, changes)
    names = list(results)
    header = "entry".ljust(22) + "".join(n[:18].rjust(20) for n in names)
    print(header)
    for word in ENTRIES:
        cells = []
        for name in names:
            pairs, fired, changes = results[name]
            cell = str(len(fired[word]))
            if word in changes:
                right, wrong = changes[word]
                cell += f" ({right:+d}/{wrong:+d})"
            cells.append(cell.rjust(20))
        print(f"{word} -> {lx.SYNONYMS[word]}".ljust(22) + "".join(cells))
        if args.show:
            for name in names:
                pairs, fired, _ = results[name]
                for i in fired[word][: args.show]:
                    print(f"    {name}: {pairs[i][0]}: {pairs[i][1]!r} / {pairs[i][2]!r}")
    if args.model:
        print("\n(n (r/w)): pairs fired on; right hits and wrong hits the entry adds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
