"""Do two answers to the same question agree? The default compares their meaning."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from semcache.protocols import Embedder

__all__ = ["AnswerComparer", "EmbeddingComparer"]


@runtime_checkable
class AnswerComparer(Protocol):
    """Scores how well the cached answer stands in for the fresh one, in ``[0, 1]``.

    ``question`` is the text the hit was served for. The score is held against the
    ``audit_agreement`` setting; ``None`` means no outcome. A judge (a model asked "do
    these answers say the same?") is one more comparer.
    """

    async def agreement(self, question: str, cached: str, fresh: str) -> float | None: ...


class EmbeddingComparer:
    """Cosine similarity of the two answers' embeddings, by the cache's own model."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    async def agreement(self, question: str, cached: str, fresh: str) -> float | None:
        if not cached.strip() or not fresh.strip():
            return None
        if cached == fresh:
            return 1.0
        rows = np.asarray(await self.embedder.embed([cached, fresh]), dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1)
        if rows.shape[0] != 2 or not np.all(norms > 0):
            return None
        return float(max(0.0, min(1.0, (rows[0] @ rows[1]) / (norms[0] * norms[1]))))
