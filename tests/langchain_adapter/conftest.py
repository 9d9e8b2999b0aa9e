"""Fixtures for the LangChain adapter: a clean global LLM cache, test caches, the real model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache

from semcache import SemanticCache, sync
from tests.support.scenarios.harness import build_cache


@pytest.fixture(autouse=True)
def global_llm_cache() -> Iterator[None]:
    """Each test starts and ends with LangChain's global cache as it found it."""
    before = get_llm_cache()
    yield
    set_llm_cache(before)


@pytest.fixture
def test_cache() -> Iterator[SemanticCache]:
    """A fast cache (hashing embedder, threshold 0.8, the default verifier), closed after."""
    cache = build_cache()
    yield cache
    sync.run(cache.close(), 10)


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[Any]:
    """all-MiniLM-L6-v2 through the huggingface plugin, loaded once per session."""
    hf = pytest.importorskip("semcache_embed_hf", reason="semcache-embed-hf is not installed")
    try:
        embedder = hf.HuggingFaceEmbedder(threads=2)
    except Exception as exc:  # no weights package and no network
        pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}")
    yield embedder
    sync.run(embedder.aclose(), 30)
