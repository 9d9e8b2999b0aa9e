"""A deterministic, model-free embedder for fast tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from semcache.embedder import BaseEmbedder
from semcache.types import Matrix

__all__ = ["HashingTestEmbedder"]

_WORD = re.compile(r"\w+")


class HashingTestEmbedder(BaseEmbedder):
    """Bag of hashed words and character trigrams: texts sharing most words score high.

    Deterministic across processes and machines, no model, microseconds per text. It
    knows nothing of meaning, so it is for testing the machinery, never for serving.
    ``calls`` counts ``embed`` calls and ``texts_embedded`` the texts they carried.
    """

    def __init__(self, dimension: int = 256, *, model_id: str = "testing/hashing") -> None:
        self.dimension = dimension
        self.model_id = f"{model_id}:{dimension}"
        self.calls = 0
        self.texts_embedded = 0

    async def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        self.texts_embedded += len(texts)
        return (
            np.stack([self._vector(t) for t in texts])
            if texts
            else np.zeros((0, self.dimension), dtype=np.float32)
        )

    def _vector(self, text: str) -> Matrix:
        v = np.zeros(self.dimension, dtype=np.float32)
        words = _WORD.findall(text.casefold())
        features = [("w", w) for w in words]
        for w in words:
            padded = f"#{w}#"
            features += [("t", padded[i : i + 3]) for i in range(len(padded) - 2)]
        for kind, feature in features:
            digest = hashlib.blake2b(f"{kind}:{feature}".encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimension
            sign = 1.0 if digest[4] & 1 else -1.0
            v[bucket] += sign * (2.0 if kind == "w" else 0.5)
        norm = np.linalg.norm(v)
        return v / norm if norm else v
