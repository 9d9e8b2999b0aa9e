"""One load of each backend per session: the real all-MiniLM-L6-v2 weights, no hub."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from semcache import BaseEmbedder
from semcache.types import Matrix
from semcache_embed_hf import HuggingFaceEmbedder


@pytest.fixture(scope="session")
def onnx_cache(semcache_user_cache: Path) -> Path:
    """The session's fresh per-user cache (tests/conftest.py): exported and quantised
    for real, once, and shared with every embedder built with the default folder."""
    return semcache_user_cache


def _load(**kwargs: object) -> Iterator[HuggingFaceEmbedder]:
    embedder = HuggingFaceEmbedder(**kwargs)  # type: ignore[arg-type]
    yield embedder
    embedder._executor.shutdown(wait=True)


@pytest.fixture(scope="session")
def hf_torch() -> Iterator[HuggingFaceEmbedder]:
    yield from _load(backend="torch")


@pytest.fixture(scope="session")
def hf_onnx(onnx_cache: Path) -> Iterator[HuggingFaceEmbedder]:
    yield from _load(backend="onnx", cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def hf_int8(onnx_cache: Path) -> Iterator[HuggingFaceEmbedder]:
    yield from _load(backend="onnx-int8", cache_dir=onnx_cache)


class Borrowed(BaseEmbedder):
    """Lends a session embedder to a cache that closes what it is given."""

    def __init__(self, inner: HuggingFaceEmbedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension

    async def embed(self, texts: Sequence[str]) -> Matrix:
        return await self.inner.embed(texts)
