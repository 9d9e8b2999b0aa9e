import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
TRAPS = DATA / "traps.jsonl"
HELDOUT = DATA / "heldout.jsonl"
TINY = DATA / "tiny_pairs.jsonl"


@pytest.fixture(scope="session")
def real_embedder() -> Iterator[Any]:
    """all-MiniLM-L6-v2 through the huggingface plugin, loaded once per session."""
    hf = pytest.importorskip("semcache_embed_hf", reason="semcache-embed-hf is not installed")
    try:
        embedder = hf.HuggingFaceEmbedder(threads=2)
    except Exception as exc:  # no weights package and no network
        pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}")
    yield embedder
    asyncio.run(embedder.aclose())


CACHE_ENV = (
    "SEMANTIC_CACHE_THRESHOLD",
    "SEMANTIC_CACHE_VERIFIER",
    "SEMANTIC_CACHE_VERIFIER_PARAMS",
    "SEMANTIC_CACHE_PG_URI",
    "SEMANTIC_CACHE_REDIS_URI",
    "SEMANTIC_CACHE_CONTEXT_MODE",
)
"""Settings a developer's shell may carry that would change what the CLI tests measure."""


@pytest.fixture
def clean_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CACHE_ENV:
        monkeypatch.delenv(var, raising=False)
