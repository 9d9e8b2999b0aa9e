"""Fill an embedded-store data folder with N entries, as the proxy would have stored them.

The entries go through the proxy's own request rules (:class:`HttpCachePolicy`) and
:class:`HttpCacheEngine`, so partition, key and stored format are the proxy's. Vectors
for the given questions are real embeddings; the other entries get random unit
vectors near a few hundred centres (like embeddings of related questions), which
weigh the same in memory and are far cheaper to make.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semcache import SemanticCache, Settings
from semcache.embedder import BaseEmbedder, normalize_rows
from semcache.http import Bypass, HttpCacheEngine, HttpCachePolicy, HttpRequest, StoredResponse
from semcache.types import Matrix

__all__ = ["populate", "stored_completion"]


class _PresetEmbedder(BaseEmbedder):
    """Known texts get their real vector; any other text a random one."""

    def __init__(self, model_id: str, dimension: int, known: Mapping[str, np.ndarray]) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self._known = dict(known)
        rng = np.random.default_rng(7)
        self._centres = normalize_rows(rng.normal(size=(256, dimension)).astype(np.float32))
        self._rng = rng

    async def embed(self, texts: Sequence[str]) -> Matrix:
        rows = []
        for text in texts:
            known = self._known.get(text)
            if known is not None:
                rows.append(np.asarray(known, dtype=np.float32))
                continue
            centre = self._centres[self._rng.integers(len(self._centres))]
            noise = self._rng.normal(size=self.dimension).astype(np.float32)
            rows.append(centre + 0.08 * noise)
        return normalize_rows(np.stack(rows))


def _file_sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.glob("*.sqlite3"))}


def stored_completion(question: str, n: int, model: str) -> StoredResponse:
    """A response shaped like the fake upstream's answer to ``question``."""
    answer = f"Answer #{n} to: {question}"
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }
    return StoredResponse(
        status=200,
        headers=(("content-type", "application/json"),),
        body=json.dumps(body).encode(),
    )


async def populate(
    data_path: Path,
    entries: int,
    *,
    model_id: str,
    dimension: int,
    known: Mapping[str, np.ndarray],
    request: Callable[[str], tuple[tuple[tuple[str, str], ...], dict[str, Any]]],
    filler: Callable[[int], str],
    model: str = "bench",
    destination: str | None = None,
) -> dict[str, Any]:
    """Store ``entries`` answers in ``data_path``: the ``known`` questions (keys are
    normalised texts with real vectors) first, then ``filler(i)`` questions.

    ``request(question)`` gives the headers and JSON body the benchmark client sends,
    and ``destination`` the upstream URL the proxy forwards to (part of its partition),
    so the entries land in the partition the client's requests look in.
    """
    settings = Settings.from_env(
        {},
        data_path=str(data_path),
        max_entries=max(entries, 1),
        vector_store="memory",
        response_store="memory",
    )
    embedder = _PresetEmbedder(model_id, dimension, known)
    cache = SemanticCache(settings, embedder=embedder, batch_max_size=1)
    policy = HttpCachePolicy(settings, destination=destination.rstrip("/") if destination else None)
    engine = HttpCacheEngine(cache, policy)
    started = time.perf_counter()
    stored = 0
    async with cache:
        questions = list(known)
        i = 0
        while stored < entries:
            question = questions[i] if i < len(questions) else filler(i)
            i += 1
            headers, body = request(question)
            plan = await policy.plan(
                HttpRequest("POST", "/v1/chat/completions", "", headers, json.dumps(body).encode())
            )
            if isinstance(plan, Bypass):
                raise RuntimeError(f"the benchmark request bypasses the cache: {plan}")
            if await engine.store(plan, stored_completion(question, i, model)) is not None:
                stored += 1
        count = await cache.stats()
    files = await asyncio.to_thread(_file_sizes, data_path)
    return {
        "entries": count.get("entries"),
        "vectors": count.get("vectors"),
        "seconds": time.perf_counter() - started,
        "files_bytes": files,
    }
