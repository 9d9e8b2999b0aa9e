"""How far apart the default answer comparison puts agreeing and disagreeing answers, and
what one comparison costs (the basis of ``SEMANTIC_CACHE_AUDIT_AGREEMENT``).

    python -m benchmarks.audit_agreement

Embeds pairs of answers with the default model (all-MiniLM-L6-v2, through the
``huggingface`` plugin) as :class:`semcache.audit.EmbeddingComparer` does: two wordings
of one answer, and answers to two different questions that a loose threshold could
confuse. Prints each group's lowest / highest score and the median time of a comparison.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from semcache.audit import EmbeddingComparer

SAME = [
    (
        "Standard shipping takes three to five business days; express arrives next day.",
        "Orders usually arrive in 3-5 business days, or the next day with express shipping.",
    ),
    (
        "To reset your password, open Settings, choose Security and click Reset password.",
        "Go to Settings > Security and press 'Reset password' to choose a new one.",
    ),
    (
        "Paris is the capital of France.",
        "The capital of France is Paris, on the Seine.",
    ),
    (
        "Refunds go back to the original card within five business days of the return.",
        "Once we receive the return, the refund reaches your card in up to five business days.",
    ),
    (
        "Boil the pasta for 9 to 11 minutes in salted water, then drain it.",
        "Cook it in salted boiling water for about ten minutes and drain.",
    ),
]
DIFFERENT = [
    (
        "Standard shipping takes three to five business days; express arrives next day.",
        "Refunds go back to the original card within five business days of the return.",
    ),
    (
        "To reset your password, open Settings, choose Security and click Reset password.",
        "To change your email address, open Settings, choose Account and edit the address.",
    ),
    ("Paris is the capital of France.", "Berlin is the capital of Germany."),
    (
        "Boil the pasta for 9 to 11 minutes in salted water, then drain it.",
        "Bake the bread at 220 degrees for 35 minutes until golden.",
    ),
    (
        "The meeting is on Tuesday at 10 am in room 4.",
        "The meeting was cancelled; the next one is on Friday.",
    ),
]


async def main() -> None:
    from semcache_embed_hf import HuggingFaceEmbedder

    comparer = EmbeddingComparer(HuggingFaceEmbedder())
    for name, pairs in (("same answer, reworded", SAME), ("different answers", DIFFERENT)):
        scores = [await comparer.agreement("", a, b) or 0.0 for a, b in pairs]
        print(
            f"{name:24s} min {min(scores):.3f}  max {max(scores):.3f}  "
            f"({', '.join(f'{s:.2f}' for s in scores)})"
        )
    times = []
    for _ in range(50):
        started = time.perf_counter()
        await comparer.agreement("", *SAME[0])
        times.append(time.perf_counter() - started)
    print(f"one comparison (two texts embedded): median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
